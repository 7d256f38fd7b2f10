"""Happy-path CLI: train -> evaluate -> predict, data convert, models, --version."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import kt
from kt import metrics
from tests.cli_run import output as run

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "datasets" / "assist2009_sample"
TRAIN, TEST = SAMPLE / "train.csv", SAMPLE / "test.csv"
METRICS = ("auc", "accuracy", "rmse", "logloss", "brier", "ece", "n")


def _shared_data() -> Path:
    env = os.environ.get("KT_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def _n_rows(path: Path) -> int:
    with open(path, newline="") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli_flow")


@pytest.fixture(scope="module")
def model_dir(work) -> Path:
    out = run("train", TRAIN, "--model", "kc-rate", "--out", work / "model")
    assert "saved kc-rate" in out and "valid" in out
    return work / "model"


@pytest.fixture(scope="module")
def result(model_dir, work) -> dict:
    run("evaluate", model_dir, TEST, "--json", work / "eval.json")
    return json.loads((work / "eval.json").read_text())


def test_train_writes_model_dir(model_dir):
    assert sorted(p.name for p in model_dir.iterdir()) == ["graph.json", "model.json", "params.eqx"]
    h = json.loads((model_dir / "model.json").read_text())
    assert h["model"] == "kc-rate" and h["config"] == {"prior": 10.0}
    assert h["format_version"] == 1 and h["kt_version"] == kt.__version__
    meta = h["meta"]
    assert meta["seed"] == 0 and meta["valid_frac"] == 0.1
    assert set(meta["valid_metrics"]) == {"auc", "accuracy", "rmse", "logloss", "n"}
    assert 0.5 < meta["valid_metrics"]["auc"] < 1


def test_evaluate_json(result, model_dir):
    assert result["protocol"] == "next"
    assert result["model"] == "kc-rate"
    assert result["model_dir"] == str(model_dir)
    assert result["include_first"] is False and result["scoring"] == "attempt"
    for k in METRICS:
        assert k in result
    assert result["auc"] > 0.55
    assert 0.5 < result["accuracy"] < 1 and 0 < result["rmse"] < 0.5 and 0 < result["logloss"] < 0.693
    # the first attempt of each learner is not scored by default
    assert result["attempts"] == _n_rows(TEST)
    assert result["n"] == result["attempts"] - result["learners"]
    assert result["unknown_kcs"] == 1
    assert sum(r["count"] for r in result["reliability"]) == result["n"]
    assert sum(r["n"] for r in result["per_kc"]) == result["n"]


def test_evaluate_include_first(model_dir, work, result):
    run("evaluate", model_dir, TEST, "--include-first", "--json", work / "eval_first.json")
    r = json.loads((work / "eval_first.json").read_text())
    assert r["include_first"] is True
    assert r["n"] == result["n"] + result["learners"]


def test_evaluate_is_deterministic(model_dir, work, result):
    run("evaluate", model_dir, TEST, "--json", work / "eval_again.json")
    again = json.loads((work / "eval_again.json").read_text())
    assert again == result


def test_predict_one_row_per_attempt(model_dir, work, result):
    out = work / "preds.csv"
    run("predict", model_dir, TEST, "--out", out)
    p = pl.read_csv(out, schema_overrides={"user_id": pl.String, "skill_id": pl.String, "item_id": pl.String})
    assert p.columns == ["user_id", "skill_id", "item_id", "position", "line", "correct", "prob"]
    assert p.height == _n_rows(TEST)
    # every data line of the CSV (header is line 1) exactly once
    assert sorted(p["line"].to_list()) == list(range(2, _n_rows(TEST) + 2))
    prob = p["prob"].to_numpy()
    assert np.isfinite(prob).all() and (prob >= 0).all() and (prob <= 1).all()
    assert (p.group_by("user_id").agg(pl.col("position").min())["position"] == 0).all()
    # the predictions file reproduces the evaluated metrics
    s = p.filter(pl.col("position") > 0)
    assert metrics.auc(s["correct"].to_numpy(), s["prob"].to_numpy()) == pytest.approx(result["auc"], abs=1e-12)
    assert s.height == result["n"]


def test_predict_parquet(model_dir, work):
    out = work / "preds.parquet"
    run("predict", model_dir, TEST, "--out", out)
    assert pl.read_parquet(out).height == _n_rows(TEST)


def test_predict_mastery(model_dir, work):
    out = work / "mastery.csv"
    run("predict", model_dir, TEST, "--out", out, "--mastery")
    m = pl.read_csv(out, schema_overrides={"user_id": pl.String, "skill_id": pl.String})
    assert m.columns == ["user_id", "skill_id", "attempts", "mastery"]
    assert m.select("user_id", "skill_id").is_unique().all()
    assert m["attempts"].sum() == _n_rows(TEST)
    assert ((m["mastery"] >= 0) & (m["mastery"] <= 1)).all()


def test_convert_to_parquet_then_train_gives_same_numbers(work, result):
    pq = work / "train.parquet"
    run("data", "convert", TRAIN, "--out", pq)
    assert pl.read_parquet(pq).height == _n_rows(TRAIN)
    run("train", pq, "--model", "kc-rate", "--out", work / "model_pq")
    run("evaluate", work / "model_pq", TEST, "--json", work / "eval_pq.json")
    r = json.loads((work / "eval_pq.json").read_text())
    for k in (*METRICS, "per_kc", "reliability", "learners", "attempts"):
        assert r[k] == result[k], k
    a = json.loads((work / "model" / "model.json").read_text())
    b = json.loads((work / "model_pq" / "model.json").read_text())
    assert a["vocab"] == b["vocab"]
    assert a["meta"]["data_fingerprint"] == b["meta"]["data_fingerprint"]
    assert a["meta"]["valid_metrics"] == b["meta"]["valid_metrics"]


def test_train_with_set_and_config(work):
    run("train", TRAIN, "-m", "kc-rate", "-o", work / "m_set", "--set", "prior=0", "--valid-frac", "0")
    h = json.loads((work / "m_set" / "model.json").read_text())
    assert h["config"] == {"prior": 0.0} and "valid_metrics" not in h["meta"]
    cfg = work / "kt.toml"
    cfg.write_text("[kc-rate]\nprior = 3\n")
    run("train", TRAIN, "-m", "kc-rate", "-o", work / "m_cfg", "--config", cfg)
    assert json.loads((work / "m_cfg" / "model.json").read_text())["config"] == {"prior": 3.0}


def test_majority_flow(work):
    run("train", TRAIN, "-m", "majority", "-o", work / "maj")
    run("evaluate", work / "maj", TEST, "--json", work / "maj.json")
    r = json.loads((work / "maj.json").read_text())
    assert r["auc"] == pytest.approx(0.5)  # a constant prediction ranks nothing


def test_models_lists_baselines():
    out = run("models")
    assert "majority" in out and "kc-rate" in out and "prior=10.0" in out


def test_version():
    assert run("--version").strip() == f"kt-trace {kt.__version__}"  # the distribution name: `kt` on PyPI is another project


def test_real_assist2009_gervet(tmp_path):
    d = _shared_data() / "assist2009" / "gervet"
    train, test = d / "preprocessed_data_train.csv.gz", d / "preprocessed_data_test.csv.gz"
    if not (train.exists() and test.exists()):
        pytest.skip(f"shared dataset not found under {d} (set KT_SHARED_DATA)")
    run("train", train, "-m", "kc-rate", "-o", tmp_path / "m", "--valid-frac", "0")
    run("evaluate", tmp_path / "m", test, "--json", tmp_path / "r.json")
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["n"] == 57643
    assert 0.60 <= r["auc"] <= 0.66  # about 0.627
