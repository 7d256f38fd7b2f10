"""Recovery curves of bench/graphs.py: edge AUROC against the number of learners, one line per method.

Usage: python bench/graphs_plot.py [--results bench/results/graphs.json] [--kcs 10] [--out docs/img/graph-recovery.svg]

Reads the summary rows (``seed: "mean"``) of ``bench/graphs.py`` for the gated
generator at the default density (K = ``--kcs``, 100 attempts per learner), one
panel per schedule, and draws each method's mean edge AUROC over the seeds
against the learners (log scale) with ± 1 sd bars, the oracle ranking where
it was measured (true parameters; the ceiling in AUROC terms) and chance
(0.5). Writes one standalone SVG (no plotting library: the styles are inline)
and prints the numbers it drew.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (row model, legend label, colour); methods missing from the results are skipped.
METHODS = (
    ("gated", "gated (default)", "#1f77b4"),
    ("mastery", "mastery", "#2ca02c"),
    ("causal-support", "causal support (BKT)", "#ff7f0e"),
    ("dkt", "DKT influence", "#9467bd"),
    ("psikt[multi_kc=expand]", "PSI-KT learned", "#8c564b"),
    ("transition", "transition counts", "#7f7f7f"),
)
SCHEDULES = (("random", "random practice"), ("curriculum", "curriculum"))
Y_LO, Y_HI = 0.3, 1.03


def curves(rows: list[dict], kcs: int) -> dict:
    """{schedule: {model: [(learners, mean, sd, seeds)]}} from the default-density summary rows."""
    out: dict = {s: {} for s, _ in SCHEDULES}
    for r in rows:
        if r.get("generator") != "gated" or r.get("seed") != "mean" or r.get("kcs") != kcs or r.get("steps") != 100:
            continue
        if "/p" in r["dataset"] or "/effect" in r["dataset"] or r.get("edge_auroc") is None:
            continue  # other densities and effects are other settings
        out[r["schedule"]].setdefault(r["model"], []).append(
            (r["learners"], r["edge_auroc"], r.get("edge_auroc_sd") or 0.0, r.get("seeds") or [])
        )
    for by_model in out.values():
        for pts in by_model.values():
            pts.sort()
    return out


def svg(data: dict, kcs: int, learners: list[int]) -> str:
    """The two-panel SVG."""
    pw, ph, ml, mt, gap = 300, 230, 52, 44, 40
    width = ml + 2 * pw + gap + 20
    legend_y = mt + ph + 48
    height = legend_y + 20 * math.ceil(len(METHODS) / 3) + 26
    lo, hi = math.log10(learners[0]) - 0.15, math.log10(learners[-1]) + 0.15
    p = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="600">Edge AUROC against learners, '
        f"gated simulator (K = {kcs}, 100 attempts each)</text>",
    ]
    for j, (sched, title) in enumerate(SCHEDULES):
        x0 = ml + j * (pw + gap)

        def sx(n: float, x0: float = x0) -> float:
            return x0 + (math.log10(n) - lo) / (hi - lo) * pw

        def sy(v: float) -> float:
            return mt + ph - (v - Y_LO) / (Y_HI - Y_LO) * ph

        p.append(f'<text x="{x0 + pw / 2}" y="{mt - 8}" text-anchor="middle" font-weight="600">{title}</text>')
        p.append(f'<rect x="{x0}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        for v in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
            y = sy(v)
            p.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
            p.append(f'<text x="{x0 - 5}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{v:.1f}</text>')
        for n in learners:
            x = sx(n)
            p.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mt}" y2="{mt + ph}" stroke="#eee"/>')
            p.append(f'<text x="{x:.1f}" y="{mt + ph + 15}" text-anchor="middle" fill="#555">{n:,}</text>')
        p.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{sy(0.5):.1f}" y2="{sy(0.5):.1f}" stroke="#aaa" stroke-dasharray="4 4"/>')
        p.append(f'<text x="{x0 + pw - 4}" y="{sy(0.5) - 4:.1f}" text-anchor="end" fill="#888">chance</text>')
        p.append(f'<text x="{x0 + pw / 2}" y="{mt + ph + 32}" text-anchor="middle" fill="#333">learners</text>')
        if j == 0:
            p.append(
                f'<text x="14" y="{mt + ph / 2}" text-anchor="middle" fill="#333" '
                f'transform="rotate(-90 14 {mt + ph / 2})">edge AUROC (mean ± sd over seeds)</text>'
            )
        for n, m, _, _ in data[sched].get("oracle", []):
            x, y = sx(n), sy(m)
            p.append(
                f'<path d="M{x:.1f},{y - 9:.1f} L{x + 9:.1f},{y:.1f} L{x:.1f},{y + 9:.1f} L{x - 9:.1f},{y:.1f} Z" fill="none" stroke="#000" stroke-width="1.4"/>'
            )
        for model, _, colour in METHODS:
            pts = data[sched].get(model, [])
            if len(pts) > 1:
                coords = " ".join(f"{sx(n):.1f},{sy(m):.1f}" for n, m, _, _ in pts)
                p.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for n, m, sd, _ in pts:
                x = sx(n)
                if sd > 0:
                    p.append(
                        f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{sy(min(Y_HI, m + sd)):.1f}" y2="{sy(max(Y_LO, m - sd)):.1f}" '
                        f'stroke="{colour}" stroke-width="1"/>'
                    )
                p.append(f'<circle cx="{x:.1f}" cy="{sy(m):.1f}" r="3" fill="{colour}"/>')
    shown = [(label, colour) for model, label, colour in METHODS if any(model in data[s] for s, _ in SCHEDULES)]
    for i, (label, colour) in enumerate(shown + [("oracle (true parameters, seed 0)", "#000")]):
        x, y = ml + (i % 3) * 215, legend_y + 20 * (i // 3)
        if colour == "#000":
            p.append(
                f'<path d="M{x + 9},{y - 9} L{x + 15},{y - 3} L{x + 9},{y + 3} L{x + 3},{y - 3} Z" fill="none" stroke="#000" stroke-width="1.4"/>'
            )
        else:
            p.append(f'<line x1="{x}" x2="{x + 18}" y1="{y - 3}" y2="{y - 3}" stroke="{colour}" stroke-width="2"/>')
        p.append(f'<text x="{x + 24}" y="{y + 1}" fill="#333">{label}</text>')
    p.append("</svg>")
    return "\n".join(p) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(REPO / "bench" / "results" / "graphs.json"))
    ap.add_argument("--kcs", type=int, default=10)
    ap.add_argument("--out", default=str(REPO / "docs" / "img" / "graph-recovery.svg"))
    args = ap.parse_args(argv)
    data = curves(json.loads(Path(args.results).read_text())["rows"], args.kcs)
    learners = sorted({n for by_model in data.values() for pts in by_model.values() for n, *_ in pts})
    if not learners:
        raise SystemExit(f"{args.results}: no gated summary rows at K = {args.kcs}; run bench/graphs.py first")
    print(f"{'schedule':<11} {'method':<24} " + " ".join(f"{n:>13,}" for n in learners))
    for sched, _ in SCHEDULES:
        for model in [m for m, *_ in METHODS] + ["oracle"]:
            pts = {n: (m, sd, len(seeds)) for n, m, sd, seeds in data[sched].get(model, [])}
            if pts:
                cells = [f"{pts[n][0]:.3f}±{pts[n][1]:.3f}" if n in pts else "–" for n in learners]
                print(f"{sched:<11} {model:<24} " + " ".join(f"{c:>13}" for c in cells))
    Path(args.out).write_text(svg(data, args.kcs, learners))
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
