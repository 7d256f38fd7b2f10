"""bench/results_render.py (RESULTS.md rendering) and bench/run_all.py (the run bookkeeping), on small fake
result files."""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_run_all"] = mod  # dataclasses resolve the module by name
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def results_render(run_all):
    # The module run_all itself imported (run_all puts bench/ on sys.path), so both see one Script class.
    return importlib.import_module("results_render")


ENV = {
    "machine": "2 CPU cores, 24 GB, no GPU",
    "platform": "Linux x86_64",
    "versions": {"python": "3.11.7", "kt": "0.1.0"},
    "commit": "abc1234",
}
NOW = dt.datetime(2026, 1, 2, 3, 4)


def _row(impl, **kw):
    return {
        "dataset": "assist2009/gervet",
        "split": "train->test",
        "model": kw.pop("model", "bkt"),
        "impl": impl,
        "auc": None,
        "accuracy": None,
        "rmse": None,
        "train_seconds": None,
        "interactions_per_second": None,
        "peak_rss_mb": None,
        "notes": "",
        **kw,
    }


def _results(tmp_path: Path) -> Path:
    d = tmp_path / "results"
    d.mkdir()
    (d / "bkt.json").write_text(
        json.dumps(
            {
                "machine": "2 CPU cores",
                "date": "2026-01-01",
                "versions": {"kt": "0.1.0", "peer": "pyBKT 1.4.1"},
                "rows": [
                    _row(
                        "kt",
                        auc=0.71529,
                        accuracy=0.7079,
                        train_seconds=10.36,
                        interactions_per_second=21236.2,
                        peak_rss_mb=535.1,
                        notes="cold | process",
                    ),
                    _row("pybkt", auc=0.71526, accuracy=0.7078, train_seconds=4.6, peak_rss_mb=281.2),
                ],
                "ratios": {
                    "speed_pybkt_fit_over_kt_process_cold": 0.444,
                    "speed_pybkt_fit_over_kt_process_second": 0.768,
                    "speed_pybkt_fit_over_kt_steady_fit": 1.7585,
                },
                "parity": {
                    "auc_kt": 0.71529,
                    "auc_pybkt": 0.71526,
                    "auc_delta_kt_minus_pybkt": 3e-5,
                    "accuracy_delta": 1e-4,
                    "rmse_delta": -2e-5,
                    "n_test_kt": 58266,
                    "auc_target_abs_delta": 0.003,
                    "auc_ok": True,
                },
            }
        )
    )
    (d / "dkt_vs_pykt.json").write_text(
        json.dumps(
            {
                "machine": "2 CPU cores",
                "date": "2026-01-02",
                "versions": {"kt": "0.1.0", "peer": "pyKT 0.0.38"},
                "rows": [
                    _row(
                        "kt",
                        model="dkt",
                        auc=0.7412,
                        accuracy=0.7201,
                        interactions_per_second=25892.7,
                        n_scored_test=57512,
                        acc_epochs=10,
                    ),
                    _row(
                        "pykt",
                        model="dkt",
                        auc=0.7380,
                        accuracy=0.7190,
                        interactions_per_second=11259.2,
                        n_scored_test=57512,
                        acc_epochs=10,
                    ),
                ],
                "repeats": {"kt": [1, 2, 3], "pykt": [1, 2, 3]},
                "ratios": {
                    "kt_over_pykt": 2.2997,
                    "target": 2.0,
                    "ok": True,
                    "scored_positions_agree": True,
                    "min_over_repeats": 2.2,
                    "max_over_repeats": 2.44,
                },
                "accuracy": {"kt": {"auc": 0.7412}, "pykt": {"auc": 0.7380}, "scored_positions_agree": True},
                "deltas": {
                    "auc_kt_minus_pykt": 0.0032,
                    "accuracy_kt_minus_pykt": 0.0011,
                    "rmse_kt_minus_pykt": -0.0005,
                    "n_scored_test": {"kt": 57512, "pykt": 57512},
                    "scored_positions_agree": True,
                    "epochs": 10,
                },
            }
        )
    )
    (d / "psikt.json").write_text(
        json.dumps(
            {
                "machine": "2 CPU cores",
                "date": "2025-12-31",
                "versions": {"kt": "0.1.0"},
                "rows": [
                    {"dataset": "synthetic", "model": "psikt", "impl": "kt", "edge_auroc": 0.679, "spearman_mu": 0.5},
                    {
                        "dataset": "mean",
                        "model": "psikt",
                        "impl": "kt",
                        "mean_edge_auroc": 0.55,
                        "acceptance": {"edge_auroc >= 0.75": False},
                    },
                ],
            }
        )
    )
    (d / "dkt.json").write_text("{not json")
    return d


def test_render_tables_ratios_and_flags(results_render, tmp_path):
    d = _results(tmp_path)
    ran = {
        "dkt_vs_pykt": {"rc": 0, "seconds": 754.0, "commands": ["python bench/dkt_vs_pykt.py --repeats 3"]},
        "psikt": {"rc": 3, "seconds": 5.0, "commands": ["python bench/psikt.py"], "log": str(d / "logs/psikt.log")},
    }
    text = results_render.render(d, ran=ran, env=ENV, now=NOW, invocation="bench/run_all.py --only dkt_vs_pykt,psikt")
    assert text.startswith("# Benchmark results")
    assert "2026-01-02 03:04" in text and "abc1234" in text and "2 CPU cores, 24 GB" in text
    # Summary: one row per peer comparison with its ratio and delta.
    summary = text.split("## kt against its peers")[1].split("\n## ")[0]
    assert "BKT: kt vs pyBKT 1.4.1" in summary and "DKT: kt vs pyKT 0.0.38" in summary
    assert "cold 0.44x, warm 0.77x" in summary and "+0.00003" in summary
    assert "kt / pyKT throughput 2.30x" in summary and "+0.0032" in summary and "+0.0011" in summary
    # Sections: run flags and dates.
    bkt = text.split("## BKT vs pyBKT")[1].split("\n## ")[0]
    assert "dated **2026-01-01**" in bkt and "**Not run in this invocation** (not produced by run_all)" in bkt
    assert "| 0.7153 | 0.7079 | 10.4 | 21,236 | 535 |" in bkt
    assert "cold \\| process" in bkt  # a '|' in a note does not break the table
    dkt = text.split("## DKT vs pyKT")[1].split("\n## ")[0]
    assert "Run in this invocation (754 s)" in dkt
    assert "**2.30x**" in dkt and "AUC **+0.0032**" in dkt and "57,512" in dkt
    psikt = text.split("## PSI-KT")[1].split("\n## ")[0]
    assert "**FAILED in this invocation** (exit 3" in psikt and "the table shows the earlier JSON" in psikt
    assert "0.6790" in psikt and "0.5500" in psikt and "edge_auroc >= 0.75: not met" in psikt
    assert "**No result**" in text.split("## DKT accuracy")[1].split("\n## ")[0]  # unreadable JSON
    assert "**No result**" in text.split("## Ingestion")[1].split("\n## ")[0]  # missing JSON
    assert "Streaming ingestion" not in text or (ROOT / "bench" / "stream.py").exists()


def test_render_only_flags_every_table_and_old_dkt_json(results_render, tmp_path):
    d = _results(tmp_path)
    data = json.loads((d / "dkt_vs_pykt.json").read_text())
    del data["deltas"], data["accuracy"]  # a JSON from before the accuracy comparison
    (d / "dkt_vs_pykt.json").write_text(json.dumps(data))
    text = results_render.render(d, ran=None, env=ENV, now=NOW)
    assert "render only" in text and "Run in this invocation" not in text
    assert text.count("**Not run in this invocation**") >= 3
    assert "not measured" in text.split("## kt against its peers")[1].split("\n## ")[0]
    assert "**Accuracy delta**: not in this JSON" in text


def test_merge_parts(run_all):
    a = {"machine": "m", "date": "2026-01-01", "versions": {"kt": "1"}, "rows": [{"dataset": "a"}]}
    b = {"machine": "m", "date": "2026-01-03", "versions": {"kt": "1"}, "rows": [{"dataset": "b"}, {"dataset": "c"}]}
    m = run_all.merge_parts([a, b], [["--datasets", "a"], ["--datasets", "b,c"]])
    assert [r["dataset"] for r in m["rows"]] == ["a", "b", "c"]
    assert m["date"] == "2026-01-03" and m["machine"] == "m" and len(m["parts"]) == 2


FAKE = """
import argparse, json
ap = argparse.ArgumentParser()
ap.add_argument("--name"); ap.add_argument("--fail", action="store_true"); ap.add_argument("--repeats")
ap.add_argument("--out")
a = ap.parse_args()
if a.fail:
    raise SystemExit(3)
json.dump({"machine": "m", "date": "2026-01-01", "rows": [{"dataset": a.name, "model": "x", "impl": "kt",
           "auc": 0.6, "repeats_seen": a.repeats}]}, open(a.out, "w"))
print("done", a.name)
"""


def test_run_script_parts_manifest_and_failure(run_all, results_render, tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE)
    s = results_render.Script(
        "fake", "fake.json", "Fake", full=(("--name", "a"), ("--name", "b")), quick=None, repeats=True, file=str(script)
    )
    parts = run_all.script_args(s, quick=False, repeats=3, extra={})
    assert parts == [["--name", "a", "--repeats", "3"], ["--name", "b", "--repeats", "3"]]
    assert run_all.script_args(s, quick=True, repeats=3, extra={}) == []
    assert run_all.script_args(s, quick=False, repeats=3, extra={"fake": "--name z"}) == [["--name", "z"]]
    out = tmp_path / "res"
    rec = run_all.run_script(s, parts, out, timeout=60)
    assert rec["rc"] == 0 and rec["json_written"] and len(rec["commands"]) == 2
    merged = json.loads((out / "fake.json").read_text())
    assert [r["dataset"] for r in merged["rows"]] == ["a", "b"] and merged["rows"][0]["repeats_seen"] == "3"
    assert "done a" in (out / "logs" / "fake.log").read_text()
    assert not list((out / ".parts").glob("*.json"))
    bad = run_all.run_script(s, [["--name", "c", "--fail"]], out, timeout=60)
    assert bad["rc"] == 3 and not bad["json_written"]
    assert json.loads((out / "fake.json").read_text())["rows"][0]["dataset"] == "a"  # earlier JSON kept
    text = results_render.render(out, ran={"fake": bad}, env=ENV, now=NOW, scripts=(s,))
    assert "**FAILED in this invocation** (exit 3" in text and "| a | x | kt | 0.6000 |" in text


def test_main_render_only_and_quick_guard(run_all, tmp_path):
    d = _results(tmp_path)
    md = tmp_path / "R.md"
    assert run_all.main(["--render-only", "--results-dir", str(d), "--md", str(md)]) == 0
    assert "## DKT vs pyKT" in md.read_text()
    assert run_all.main(["--render-only", "--results-dir", str(d)]) == 0
    assert (d / "RESULTS.md").exists()  # another results dir never writes bench/RESULTS.md
    with pytest.raises(SystemExit):
        run_all.main(["--quick", "--results-dir", str(run_all.RESULTS_DIR), "--render-only"])
    with pytest.raises(SystemExit):
        run_all.main(["--only", "nope", "--render-only"])


def test_optional_script_gets_only_the_options_it_lists(run_all, results_render, tmp_path):
    script = tmp_path / "stream_fake.py"
    script.write_text(
        "import argparse\nap = argparse.ArgumentParser()\nap.add_argument('--quick', action='store_true')\n"
        "ap.add_argument('--out')\nap.parse_args()\n"
    )
    s = results_render.Script(
        "stream", "stream.json", "Streaming", full=((),), quick=((),), repeats=True, optional=True, file=str(script)
    )
    assert run_all.script_args(s, quick=False, repeats=3, extra={}) == [[]]  # no --repeats: not listed
    assert run_all.script_args(s, quick=True, repeats=3, extra={}) == [["--quick"]]
    absent = results_render.Script(
        "stream", "stream.json", "Streaming", full=((),), quick=((),), optional=True, file=str(tmp_path / "missing.py")
    )
    d = tmp_path / "res"
    d.mkdir()
    assert "Streaming" not in results_render.render(d, env=ENV, now=NOW, scripts=(absent,))
