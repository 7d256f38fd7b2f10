"""bench/psikt.py part ``cohorts``: the learner draw, the summary rows (mean ± sd, paired acceptance) and their
rendering in RESULTS.md, on fake rows (no model is trained)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_psikt", ROOT / "bench" / "psikt.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_psikt"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_split_disjoint_sizes_and_nested(bench):
    eligible = np.arange(5000, 12177)  # 7,177 eligible learners (assist2015)
    s100, s1000, sall = (bench.cohort_split(eligible, c, 3) for c in ("100", "1000", "all"))
    for s, n, v in ((s100, 100, 20), (s1000, 1000, 200), (sall, 5814, 1163)):
        assert (s["n_train"], s["n_valid"], s["n_test"]) == (n, v, 200)
        assert len(s["train"]) == n and len(s["valid"]) == v and len(s["test"]) == 200
        parts = [set(s["train"]), set(s["valid"]), set(s["test"])]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert set().union(*parts) <= set(eligible)
    assert (
        sall["n_train"] + sall["n_valid"] + 200
        <= len(eligible)
        < sall["n_train"] + 1 + bench._valid_size(sall["n_train"] + 1) + 200
    )
    assert np.array_equal(s100["test"], sall["test"])  # same test learners at every cohort size of a seed
    assert set(s100["train"]) <= set(s1000["train"]) <= set(sall["train"])
    assert not np.array_equal(bench.cohort_split(eligible, "100", 4)["test"], s100["test"])


def test_split_small_dataset(bench):
    eligible = np.arange(298)  # ednet_small: 100 test learners, cohort 1000 does not fit
    assert bench.cohort_split(eligible, "1000", 0) is None
    s = bench.cohort_split(eligible, "100", 0)
    assert (s["n_test"], s["n_train"], s["n_valid"]) == (100, 100, 20)
    a = bench.cohort_split(eligible, "all", 0)
    assert (a["n_test"], a["n_train"], a["n_valid"]) == (100, 165, 33)


def _rows():
    acc = {"psikt-filter": [0.60, 0.62, 0.58], "bkt": [0.61, 0.63, 0.60], "dkt": [0.59, 0.60, 0.58]}
    return [
        {
            "experiment": "cohorts",
            "dataset": "ds",
            "cohort": "100",
            "seed": s,
            "model": m,
            "accuracy": a[s],
            "f1": 0.5,
            "auc": 0.6,
            "next_auc": 0.65,
            "positive_share_h10": 0.5 + 0.1 * s,
            "observed_correct_h10": 0.5,
            "train_seconds": 1.0,
            "train_learners": 100,
            "test_learners": 200,
        }
        for m, a in acc.items()
        for s in range(3)
    ]


def test_summaries_and_acceptance(bench):
    summ = {r["model"]: r for r in bench.cohort_summaries(_rows())}
    assert [r["model"] for r in bench.cohort_summaries(_rows())] == ["psikt-filter", "bkt", "dkt"]
    f = summ["psikt-filter"]
    assert f["accuracy"] == pytest.approx(0.60) and f["accuracy_sd"] == pytest.approx(0.02)
    assert f["positive_share_h10"] == pytest.approx(0.6) and f["seeds"] == [0, 1, 2]
    a = f["acceptance"]
    d = np.array([0.60 - 0.61, 0.62 - 0.63, 0.58 - 0.60])
    assert a["best_baseline"] == "bkt" and not a["met"]
    assert a["mean_difference"] == pytest.approx(d.mean()) and a["sd_difference"] == pytest.approx(d.std(ddof=1))
    assert a["miss_in_sd"] == pytest.approx(-d.mean() / d.std(ddof=1))
    assert "acceptance" not in summ["bkt"]


def test_render_cohorts_table(bench):
    sys.path.insert(0, str(ROOT / "bench"))
    import results_render

    rows = _rows()
    d = {"rows": [{"dataset": "synthetic", "model": "psikt", "edge_auroc": 0.679}] + rows + bench.cohort_summaries(rows)}
    lines, extra, _ = results_render.sec_psikt(d)
    text = "\n".join(lines + extra)
    assert "0.6790" in text and "0.600 ± 0.020" in text and "0.60 ± 0.10" in text
    assert "psikt-filter window accuracy minus bkt -0.013" in text and "not met, short by" in text
    assert sum("| ds |" in line for line in lines) == 3  # summary rows only, not the per-seed rows
