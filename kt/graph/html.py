"""Self-contained HTML view of a prerequisite graph.

One file, no network: the graph is embedded as JSON in a
``<script type="application/json" id="kt-graph-data">`` block, an inline
script draws it as SVG. Nodes sit in columns by prerequisite depth; the
reader filters edges by strength and clicks (or picks) a KC to highlight
its prerequisites and dependents. Bootstrapped graphs add a stability
filter; each edge's opacity follows its stability, edges below
kt.graph.export.STABLE are dashed, and the tooltip gives the stability and
the 95% interval of the strength. The state is kept in the URL fragment
(``#kc=NAME&t=0.7&s=0.9``), so a link or a headless browser can open a view.
"""

from __future__ import annotations

import html
import json

from kt.graph.export import STABLE, GraphView
from kt.graph.html_page import PAGE

_COL_W, _ROW_H, _MARGIN = 240, 28, 40


def layout(v: GraphView) -> tuple[list[float], list[float], list[int]]:
    """Node positions: columns by layer, rows ordered to reduce crossings.

    KCs without any exported edge go to a last column of their own.

    Args:
        v: the view.

    Returns:
        ``(x, y, lone)``: coordinates per KC and the lone KC indices.
    """
    n = v.graph.n_kcs
    touched = {i for u, w, _ in v.edges for i in (u, w)}
    lone = [i for i in v.order if i not in touched]
    rank = {i: r for r, i in enumerate(v.order)}
    n_layers = max((v.layer[i] for i in touched), default=-1) + 1
    cols: list[list[int]] = [[] for _ in range(n_layers)]
    for i in v.order:
        if i in touched:
            cols[v.layer[i]].append(i)
    pred: dict[int, list[int]] = {}
    for u, w, _ in v.edges:
        if (u, w) not in v.cycle_edges:
            pred.setdefault(w, []).append(u)
    row = {i: r for col in cols for r, i in enumerate(col)}
    # Barycentre sweeps (Sugiyama): a KC sits near the mean row of its prerequisites.
    for _ in range(2):
        for col in cols[1:]:
            col.sort(key=lambda i: (sum(row[p] for p in pred.get(i, [])) / len(pred[i]) if pred.get(i) else 1e9, rank[i]))
            row.update({i: r for r, i in enumerate(col)})
    x = [0.0] * n
    y = [0.0] * n
    for c, col in enumerate(cols + [lone]):
        for r, i in enumerate(col):
            x[i] = _MARGIN + c * _COL_W
            y[i] = _MARGIN + 20 + r * _ROW_H
    return x, y, lone


def to_html(v: GraphView) -> str:
    """The HTML page for a view (see the module docstring)."""
    g = v.graph
    x, y, lone = layout(v)
    diff = None if g.difficulty is None else [None if d != d else round(float(d), 4) for d in g.difficulty]
    support = g.support
    data = {
        "method": g.method,
        "threshold": v.threshold,
        "top_k": v.top_k,
        "reduced": v.reduced,
        "kcs": g.kcs,
        "difficulty": diff,
        "order": v.order,
        "x": x,
        "y": y,
        "lone": lone,
        "col_w": _COL_W,
        "edges": [
            [u, w, round(p, 4), None if support is None else float(support[u, w]), int((u, w) in v.cycle_edges)]
            for u, w, p in v.edges
        ],
        # Per edge [stability, 2.5% and 97.5% strength quantiles] of a bootstrapped graph, else null.
        "stability": None
        if g.stability is None
        else [
            [round(float(a[u, w]), 4) if a is not None else None for a in (g.stability, g.strength_lo, g.strength_hi)]
            for u, w, _ in v.edges
        ],
        "stable": STABLE,
        "min_stability": v.min_stability,
        "refits": (g.meta.get("bootstrap") or {}).get("refits"),
        "cycles": [[g.kcs[i] for i in c] for c in v.cycles],
        "dropped": [[g.kcs[d["edge"][0]], g.kcs[d["edge"][1]], round(d["edge"][2], 4)] for d in v.dropped],
    }
    # Escaping <, > and & keeps "</script>" in a KC name from ending the block; JSON.parse undoes it.
    blob = (
        json.dumps(data, ensure_ascii=False, allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    title = f"Prerequisite graph ({g.method}, {len(v.edges)} edges, {g.n_kcs} KCs)"
    return PAGE.replace("__KT_TITLE__", html.escape(title)).replace("__KT_DATA__", blob)
