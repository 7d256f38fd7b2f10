"""Export formats for prerequisite graphs: JSON, DOT, GraphML, Mermaid, HTML.

Every format shows the same selection (:func:`view`): edges at or above a
threshold (and, for bootstrapped graphs, a minimum stability), optionally
only the top k, optionally transitively reduced, plus the cycles found among
them and a suggested learning order. Bootstrapped graphs
(kt.graph.bootstrap) carry each edge's stability: DOT draws edges below
:data:`STABLE` dashed, GraphML has ``stability``/``strength_lo``/``strength_hi``
keys, Mermaid labels show it, HTML fades and dashes unstable edges.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from kt.errors import KTError
from kt.graph import order as algo
from kt.graph.graph import PrerequisiteGraph, dumps

FORMATS = ("json", "dot", "graphml", "mermaid", "html")
_SUFFIX = {
    ".json": "json",
    ".dot": "dot",
    ".gv": "dot",
    ".graphml": "graphml",
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".html": "html",
    ".htm": "html",
}
STABLE = 0.9  # stability at or above which DOT/HTML/Mermaid draw an edge as stable (solid)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class GraphView:
    """What an export shows.

    Attributes:
        graph: the full graph.
        threshold: edges kept have ``prob >= threshold``.
        min_stability: edges kept have ``stability >=`` this (None: no filter).
        top_k: at most this many of the strongest edges (None: all).
        reduced: transitive reduction applied.
        edges: exported edges ``(source, target, prob)``, strongest first.
        cycle_edges: exported edges that close a cycle (left out of the order).
        cycles: strongly connected groups of 2+ KCs among the kept edges.
        dropped: per cycle-closing edge, ``{"edge", "cycle"}`` (see
            :func:`kt.graph.order.break_cycles`).
        order: suggested learning order (node indices).
        layer: drawing layer per KC (longest path in the acyclic graph).
    """

    graph: PrerequisiteGraph
    threshold: float
    top_k: int | None
    reduced: bool
    edges: list[algo.Edge]
    cycle_edges: frozenset[tuple[int, int]]
    cycles: list[list[int]]
    dropped: list[dict]
    order: list[int]
    layer: list[int]
    min_stability: float | None = None


def view(
    graph: PrerequisiteGraph,
    threshold: float = 0.5,
    top_k: int | None = None,
    reduce: bool = False,
    min_stability: float | None = None,
) -> GraphView:
    """Select, de-cycle, optionally reduce and order a graph for export.

    Args:
        graph: the prerequisite graph.
        threshold: keep edges with ``prob >= threshold`` (and > 0), in [0, 1].
        top_k: keep at most this many of the strongest edges (>= 1).
        reduce: apply transitive reduction to the acyclic graph.
        min_stability: keep only edges with bootstrap ``stability >=`` this, in [0, 1].

    Returns:
        The :class:`GraphView`.

    Raises:
        KTError: threshold or min_stability outside [0, 1], top_k < 1, or
            min_stability for a graph without stability.
    """
    if not 0 <= threshold <= 1:
        raise KTError(f"--threshold {threshold}: must be in [0, 1]")
    if top_k is not None and top_k < 1:
        raise KTError(f"--top-k {top_k}: must be >= 1")
    if min_stability is not None:
        if not 0 <= min_stability <= 1:  # also rejects NaN
            raise KTError(f"--min-stability {min_stability}: must be in [0, 1]")
        if graph.stability is None:
            raise KTError(
                "--min-stability needs per-edge stability: add --bootstrap N (e.g. 20), or train psikt with "
                "--set num_fits=N --set fit_resample=true"
            )
    n = graph.n_kcs
    edges = graph.edge_index(threshold, top_k, min_stability)
    cycles = [c for c in algo.strongly_connected(n, edges) if len(c) > 1]
    dag, dropped = algo.break_cycles(n, edges)
    cycle_edges = frozenset((d["edge"][0], d["edge"][1]) for d in dropped)
    if reduce:
        edges = algo.transitive_reduction(n, dag)
        cycle_edges = frozenset()
    order = algo.topological_order(n, dag, graph.difficulty, graph.kcs)
    return GraphView(
        graph,
        threshold,
        top_k,
        reduce,
        edges,
        cycle_edges,
        sorted(cycles, key=len, reverse=True),
        dropped,
        order,
        algo.layers(n, dag),
        min_stability,
    )


def format_for(path: str | os.PathLike[str], fmt: str | None) -> str:
    """The export format: ``fmt`` if given, else guessed from the file suffix (JSON otherwise).

    Raises:
        KTError: unknown format name.
    """
    if fmt is None:
        return _SUFFIX.get(Path(path).suffix.lower(), "json")
    f = fmt.lower()
    if f not in FORMATS:
        raise KTError(f"--format {fmt!r}: unknown format; choose one of {', '.join(FORMATS)}")
    return f


def render(v: GraphView, fmt: str) -> str:
    """The text of one export format.

    Args:
        v: the view to export.
        fmt: one of :data:`FORMATS`.

    Returns:
        The file contents.
    """
    if fmt == "html":
        from kt.graph.html import to_html

        return to_html(v)
    return {"json": to_json, "dot": to_dot, "graphml": to_graphml, "mermaid": to_mermaid}[fmt](v)


def export(
    graph: PrerequisiteGraph,
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    threshold: float = 0.5,
    top_k: int | None = None,
    reduce: bool = False,
    min_stability: float | None = None,
) -> GraphView:
    """Write a graph to ``path`` atomically (the Python side of ``kt export-graph``).

    Args:
        graph: the prerequisite graph.
        path: output file.
        fmt: format (None: from the suffix, JSON otherwise).
        threshold: keep edges with ``prob >= threshold``.
        top_k: keep at most this many of the strongest edges.
        reduce: transitive reduction.
        min_stability: keep only edges with bootstrap stability >= this.

    Returns:
        The exported :class:`GraphView` (cycles, order).
    """
    from kt.atomic import write_text

    f = format_for(path, fmt)
    v = view(graph, threshold, top_k, reduce, min_stability)
    write_text(path, render(v, f))
    return v


def summary(v: GraphView) -> dict:
    """JSON-ready description of the export: edges, cycles, learning order.

    Args:
        v: the view.

    Returns:
        Dict with ``threshold``, ``top_k``, ``reduced``, ``edges``,
        ``cycles``, ``dropped_for_order`` and ``learning_order``.
    """
    g = v.graph
    names = g.kcs

    def edge(u: int, w: int, p: float) -> dict:
        e = {"source": names[u], "target": names[w], "prob": round(p, 6)}
        for attr in ("confidence", "support", "score", "stability", "strength_lo", "strength_hi"):
            m = getattr(g, attr)
            if m is not None:
                x = float(m[u, w])
                e[attr] = int(x) if x.is_integer() else round(x, 6)
        if (u, w) in v.cycle_edges:
            e["breaks_cycle"] = True
        return e

    return {
        "threshold": v.threshold,
        **({} if v.min_stability is None else {"min_stability": v.min_stability}),
        "top_k": v.top_k,
        "reduced": v.reduced,
        "n_edges": len(v.edges),
        "edges": [edge(*e) for e in v.edges],
        "cycles": [[names[i] for i in c] for c in v.cycles],
        "dropped_for_order": [
            {
                "source": names[d["edge"][0]],
                "target": names[d["edge"][1]],
                "prob": round(d["edge"][2], 6),
                "cycle": None if d["cycle"] is None else [names[i] for i in d["cycle"]],
            }
            for d in v.dropped
        ],
        "learning_order": [names[i] for i in v.order],
    }


def to_json(v: GraphView) -> str:
    """JSON export: the selection, cycles and learning order, then the full graph
    (``prob`` matrix etc., so ``kt graph-eval`` can score every pair)."""
    full = v.graph.to_dict()
    head = {k: full.pop(k) for k in ("kt_graph", "method", "kcs")}
    return dumps({**head, **summary(v), **full})


def to_dot(v: GraphView) -> str:
    """Graphviz DOT: KC nodes, edges labelled and weighted by probability;
    cycle-closing edges dashed red and not used for ranking. Bootstrapped
    graphs: a ``stability`` edge attribute, ``(s 0.95)`` in the label and
    ``style=dashed`` below :data:`STABLE`."""
    g = v.graph
    lines = [
        f"// kt prerequisite graph: method {g.method}, threshold {v.threshold}"
        + (f", top {v.top_k}" if v.top_k else "")
        + (", transitively reduced" if v.reduced else "")
        + _stability_note(v),
        "digraph prerequisites {",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
    ]
    for i in _shown_nodes(v):
        tip = _dot_str(_tooltip(g, i))
        lines.append(f"  n{i} [label={_dot_str(g.kcs[i])}, tooltip={tip}];")
    for u, w, p in v.edges:
        st = _stab(g, u, w)
        label = f"{p:.2f}" if st is None else f"{p:.2f} (s {st:.2f})"
        tip = f"{g.kcs[u]} -> {g.kcs[w]}: {p:.3f}" + ("" if st is None else f", {_stab_text(g, u, w, st)}")
        attrs = f'label="{label}", penwidth={0.5 + 3.5 * p:.2f}, tooltip={_dot_str(tip)}'
        if st is not None:
            attrs += f", stability={st:.3f}"
        if (u, w) in v.cycle_edges:
            attrs += ', style=dashed, color="red", constraint=false'
        elif st is not None and st < STABLE:
            attrs += ", style=dashed"
        lines.append(f"  n{u} -> n{w} [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_graphml(v: GraphView) -> str:
    """GraphML (reads in networkx, yEd, Gephi): node id = KC name, with
    ``difficulty`` and ``order``; edges carry ``prob`` (and ``support``;
    bootstrapped graphs ``stability``, ``strength_lo``, ``strength_hi``)."""
    g = v.graph
    pos = {i: r for r, i in enumerate(v.order)}
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
        '  <key id="method" for="graph" attr.name="method" attr.type="string"/>',
        '  <key id="threshold" for="graph" attr.name="threshold" attr.type="double"/>',
        '  <key id="difficulty" for="node" attr.name="difficulty" attr.type="double"/>',
        '  <key id="order" for="node" attr.name="order" attr.type="int"/>',
        '  <key id="prob" for="edge" attr.name="prob" attr.type="double"/>',
        '  <key id="breaks_cycle" for="edge" attr.name="breaks_cycle" attr.type="boolean"/>',
    ]
    if g.support is not None:
        out.append('  <key id="support" for="edge" attr.name="support" attr.type="double"/>')
    boot = [a for a in ("stability", "strength_lo", "strength_hi") if getattr(g, a) is not None]
    for a in boot:
        out.append(f'  <key id="{a}" for="edge" attr.name="{a}" attr.type="double"/>')
    out += [
        '  <graph id="prerequisites" edgedefault="directed">',
        f'    <data key="method">{_xml(g.method)}</data>',
        f'    <data key="threshold">{v.threshold}</data>',
    ]
    for i, name in enumerate(g.kcs):
        data = f'<data key="order">{pos[i]}</data>'
        if g.difficulty is not None and g.difficulty[i] == g.difficulty[i]:
            data += f'<data key="difficulty">{float(g.difficulty[i]):.6g}</data>'
        out.append(f"    <node id={quoteattr(_clean(name))}>{data}</node>")
    for u, w, p in v.edges:
        data = f'<data key="prob">{p:.6g}</data><data key="breaks_cycle">{str((u, w) in v.cycle_edges).lower()}</data>'
        if g.support is not None:
            data += f'<data key="support">{float(g.support[u, w]):.6g}</data>'
        for a in boot:
            data += f'<data key="{a}">{float(getattr(g, a)[u, w]):.6g}</data>'
        out.append(f"    <edge source={quoteattr(_clean(g.kcs[u]))} target={quoteattr(_clean(g.kcs[w]))}>{data}</edge>")
    out += ["  </graph>", "</graphml>"]
    return "\n".join(out) + "\n"


def to_mermaid(v: GraphView) -> str:
    """Mermaid flowchart: ids ``n0, n1, ...``, quoted labels with entity codes
    for characters Mermaid would parse, edge labels = probabilities (and
    ``s`` + stability for bootstrapped graphs, dotted below :data:`STABLE`;
    cycle-closing edges dotted too)."""
    g = v.graph
    lines = [
        "flowchart LR",
        f"  %% kt prerequisite graph: method {_clean(g.method)}, threshold {v.threshold}"
        + (f", top {v.top_k}" if v.top_k else "")
        + (", transitively reduced" if v.reduced else "")
        + _stability_note(v),
    ]
    for i in _shown_nodes(v):
        lines.append(f'  n{i}["{_mermaid_label(g.kcs[i])}"]')
    for u, w, p in v.edges:
        st = _stab(g, u, w)
        arrow = "-.->" if (u, w) in v.cycle_edges or (st is not None and st < STABLE) else "-->"
        label = f"{p:.2f}" if st is None else f"{p:.2f} s{st:.2f}"
        lines.append(f"  n{u} {arrow}|{label}| n{w}")
    return "\n".join(lines) + "\n"


def _stab(g: PrerequisiteGraph, u: int, w: int) -> float | None:
    return None if g.stability is None else float(g.stability[u, w])


def _stab_text(g: PrerequisiteGraph, u: int, w: int, stability: float) -> str:
    t = f"stability {stability:.2f}"
    if g.strength_lo is not None and g.strength_hi is not None:
        t += f", 95% interval {float(g.strength_lo[u, w]):.2f}-{float(g.strength_hi[u, w]):.2f}"
    return t


def _stability_note(v: GraphView) -> str:
    g = v.graph
    if g.stability is None:
        return ""
    b = g.meta.get("bootstrap") or {}
    n = f"{b['refits']} learner resamples" if "refits" in b else "the bootstrap"
    return f"; stability = share of {n} keeping the edge, dashed below {STABLE:g}" + (
        "" if v.min_stability is None else f", edges below {v.min_stability:g} left out"
    )


def _shown_nodes(v: GraphView) -> list[int]:
    # A 500-KC map with 20 edges is unreadable with every KC drawn; lone KCs
    # stay in the JSON/GraphML/HTML, which list them, and the learning order.
    used = sorted({i for u, w, _ in v.edges for i in (u, w)})
    return used if v.edges else list(range(v.graph.n_kcs))


def _tooltip(g: PrerequisiteGraph, i: int) -> str:
    if g.difficulty is None or g.difficulty[i] != g.difficulty[i]:
        return g.kcs[i]
    return f"{g.kcs[i]} (difficulty {float(g.difficulty[i]):.2f})"


def _clean(s: str) -> str:
    return _CONTROL.sub(" ", str(s))


def _xml(s: str) -> str:
    return escape(_clean(s))


def _dot_str(s: str) -> str:
    # DOT treats backslash sequences in labels as escapes (\n, \l); keep them literal.
    return '"' + _clean(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _mermaid_label(s: str) -> str:
    s = " ".join(_clean(s).split())
    # '#' first: the entity codes themselves start with it.
    for ch, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        s = s.replace(ch, code)
    return s
