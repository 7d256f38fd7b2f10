"""Graph algorithms on thresholded prerequisite graphs: strongly connected
components (Tarjan), cycle breaking, transitive reduction, learning order
and drawing layers.

Nodes are integers 0..n-1 and edges ``(source, target, weight)`` triples.
Plain Python and NumPy: these graphs have at most a few thousand KCs, and
kt's runtime dependencies stay small.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

Edge = tuple[int, int, float]


def strongly_connected(n: int, edges: list[Edge]) -> list[list[int]]:
    """Strongly connected components (Tarjan's algorithm, iterative).

    Args:
        n: number of nodes.
        edges: directed edges.

    Returns:
        Components as sorted node lists, in reverse topological order of the
        condensation (Tarjan's natural output order).
    """
    succ: list[list[int]] = [[] for _ in range(n)]
    for u, v, _ in edges:
        succ[u].append(v)
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    comps: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        # Each frame is (node, next successor position); recursion would
        # overflow Python's stack on long prerequisite chains.
        work = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            v, i = work[-1]
            if i < len(succ[v]):
                work[-1] = (v, i + 1)
                w = succ[v][i]
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w]:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp.append(w)
                    if w == v:
                        break
                comps.append(sorted(comp))
    return comps


def break_cycles(n: int, edges: list[Edge]) -> tuple[list[Edge], list[dict]]:
    """Make the graph acyclic by dropping the weakest edge of each cycle.

    Edges are added strongest first and an edge is dropped when it would
    close a cycle: every other edge of that cycle was added before it, so
    it is the cycle's weakest. Only edges inside strongly connected
    components can close a cycle; the rest are kept untouched. Cycle checks
    keep a topological order up to date as edges arrive (Pearce & Kelly
    2006), so an edge that agrees with the order costs nothing.

    Args:
        n: number of nodes.
        edges: directed edges (any order).

    Returns:
        ``(kept, dropped)``: the acyclic edge list (input order) and, per
        dropped edge (u, v, w), ``{"edge": (u, v, w), "cycle": [v, ..., u]}``,
        a path of kept edges that the edge would close.
    """
    comp_of = np.full(n, -1)
    for c, comp in enumerate(strongly_connected(n, edges)):
        if len(comp) > 1:
            comp_of[comp] = c
    inside = [e for e in edges if e[0] != e[1] and comp_of[e[0]] >= 0 and comp_of[e[0]] == comp_of[e[1]]]
    dropped: list[dict] = [{"edge": e, "cycle": [e[0]]} for e in edges if e[0] == e[1]]
    if inside:
        order = _IncrementalOrder(n)
        for e in sorted(inside, key=lambda e: (-e[2], e[0], e[1])):
            cycle = order.add(e[0], e[1])
            if cycle is not None:
                dropped.append({"edge": e, "cycle": cycle})
    gone = {(d["edge"][0], d["edge"][1]) for d in dropped}
    return [e for e in edges if (e[0], e[1]) not in gone], dropped


class _IncrementalOrder:
    """A topological order kept valid while edges are added (Pearce-Kelly)."""

    def __init__(self, n: int):
        self.pos = list(range(n))
        self.succ: list[list[int]] = [[] for _ in range(n)]
        self.pred: list[list[int]] = [[] for _ in range(n)]

    def add(self, u: int, v: int) -> list[int] | None:
        """Add u -> v unless it closes a cycle; return that cycle's path v..u then."""
        lb, ub = self.pos[v], self.pos[u]
        if lb < ub:
            # v may reach u: search forward from v among nodes placed before u.
            parent = {v: v}
            stack = [v]
            while stack:
                x = stack.pop()
                for y in self.succ[x]:
                    if y == u:
                        path = [u, x]
                        while path[-1] != v:
                            path.append(parent[path[-1]])
                        return path[::-1]
                    if y not in parent and self.pos[y] < ub:
                        parent[y] = x
                        stack.append(y)
            fwd = list(parent)
            back = {u}
            stack = [u]
            while stack:
                x = stack.pop()
                for y in self.pred[x]:
                    if y not in back and self.pos[y] > lb:
                        back.add(y)
                        stack.append(y)
            # Move u's ancestors ahead of v's descendants, reusing their slots.
            moved = sorted(back, key=self.pos.__getitem__) + sorted(fwd, key=self.pos.__getitem__)
            for node, slot in zip(moved, sorted(self.pos[x] for x in moved)):
                self.pos[node] = slot
        self.succ[u].append(v)
        self.pred[v].append(u)
        return None


def topological_order(
    n: int, edges: list[Edge], difficulty: np.ndarray | None = None, names: list[str] | None = None
) -> list[int]:
    """Topological order of a DAG; among the KCs that are ready, easiest first.

    Args:
        n: number of nodes.
        edges: acyclic directed edges.
        difficulty: per-node difficulty (lower first; NaN after known ones).
        names: per-node names, the last tie-breaker (node index otherwise).

    Returns:
        All nodes in order.

    Raises:
        ValueError: the edges contain a cycle.
    """
    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for u, v, _ in edges:
        succ[u].append(v)
        indeg[v] += 1

    def key(i: int):
        d = float(difficulty[i]) if difficulty is not None else math.nan
        return (math.isnan(d), 0.0 if math.isnan(d) else d, names[i] if names is not None else "", i)

    heap = [key(i) for i in range(n) if indeg[i] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        i = heapq.heappop(heap)[-1]
        order.append(i)
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(heap, key(j))
    if len(order) != n:
        raise ValueError("topological_order: the graph has a cycle")
    return order


def transitive_closure(n: int, edges: list[Edge]) -> np.ndarray:
    """Reachability of a DAG: ``R[a, b]`` is True when a path a -> b exists.

    Args:
        n: number of nodes.
        edges: acyclic directed edges.

    Returns:
        Boolean n x n matrix with a False diagonal.
    """
    adj = _adjacency(n, edges)
    reach = np.zeros((n, n), dtype=bool)
    for u in reversed(topological_order(n, edges)):
        kids = adj[u]
        reach[u] = kids | reach[kids].any(axis=0)
    return reach


def transitive_reduction(n: int, edges: list[Edge]) -> list[Edge]:
    """Drop every edge u -> v that another path u -> ... -> v already implies.

    Args:
        n: number of nodes.
        edges: acyclic directed edges.

    Returns:
        The kept edges, in input order (unique for a DAG).
    """
    adj = _adjacency(n, edges)
    reach = transitive_closure(n, edges)
    # u -> v is implied when some child w of u reaches v; float32 keeps it a BLAS product.
    implied = (adj.astype(np.float32) @ reach.astype(np.float32)) > 0
    return [e for e in edges if not implied[e[0], e[1]]]


def layers(n: int, edges: list[Edge]) -> list[int]:
    """Longest-path layer of each node of a DAG (sources at 0).

    Args:
        n: number of nodes.
        edges: acyclic directed edges.

    Returns:
        Layer index per node.
    """
    layer = [0] * n
    pred: list[list[int]] = [[] for _ in range(n)]
    for u, v, _ in edges:
        pred[v].append(u)
    for v in topological_order(n, edges):
        if pred[v]:
            layer[v] = 1 + max(layer[u] for u in pred[v])
    return layer


def _adjacency(n: int, edges: list[Edge]) -> np.ndarray:
    adj = np.zeros((n, n), dtype=bool)
    for u, v, _ in edges:
        adj[u, v] = True
    return adj
