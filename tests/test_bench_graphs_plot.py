"""bench/graphs_plot.py (the README's recovery curves) on small fake result rows."""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("bench_graphs_plot", ROOT / "bench" / "graphs_plot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(dataset, schedule, learners, model, auroc, seed="mean", kcs=10):
    return {
        "dataset": dataset,
        "generator": "gated",
        "schedule": schedule,
        "kcs": kcs,
        "steps": 100,
        "learners": learners,
        "model": model,
        "seed": seed,
        "edge_auroc": auroc,
        "edge_auroc_sd": 0.05,
        "seeds": [0, 1],
    }


def test_curves_keep_the_default_density_summaries_and_the_svg_parses(tmp_path):
    m = _module()
    rows = [
        _row("gated-random/K10/N300/T100", "random", 300, "gated", 0.9),
        _row("gated-random/K10/N100/T100", "random", 100, "gated", 0.8),
        _row("gated-random/K10/N100/T100", "random", 100, "gated", 0.1, seed=0),  # a per-seed row: not drawn
        _row("gated-random/K10/N100/T100/p0.3", "random", 100, "gated", 0.2),  # another density: not drawn
        _row("gated-random/K30/N100/T100", "random", 100, "gated", 0.3, kcs=30),  # another K
        _row("gated-curriculum/K10/N100/T100", "curriculum", 100, "mastery", 0.7),
        _row("gated-curriculum/K10/N100/T100", "curriculum", 100, "oracle", 1.0),
    ]
    c = m.curves(rows, 10)
    assert [(n, a) for n, a, *_ in c["random"]["gated"]] == [(100, 0.8), (300, 0.9)]  # sorted by learners
    assert set(c["random"]) == {"gated"} and set(c["curriculum"]) == {"mastery", "oracle"}
    results = tmp_path / "g.json"
    results.write_text(json.dumps({"rows": rows}))
    m.main(["--results", str(results), "--out", str(tmp_path / "g.svg")])
    svg = ET.parse(tmp_path / "g.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert len(svg.findall(f"{ns}polyline")) == 1  # one method with two points draws a line
    legend = [t.text for t in svg.iter(f"{ns}text")]
    assert "gated (default)" in legend and "mastery" in legend and "transition counts" not in legend
