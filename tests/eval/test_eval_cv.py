"""`kt cv` and `kt compare`: learner-level folds, reproducibility, one table for several models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kt.data.schema import load
from kt.errors import KTError
from kt.eval.cv import aggregate, cross_validate, model_sets

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "datasets" / "assist2009_sample" / "train.csv"


def _strip_times(obj):
    """The record without wall-clock fields (the only run-to-run difference)."""
    if isinstance(obj, dict):
        return {k: _strip_times(v) for k, v in obj.items() if k != "train_seconds"}
    if isinstance(obj, list):
        return [_strip_times(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def cv_runs(tmp_path_factory):
    from typer.testing import CliRunner

    from kt.cli import app

    d = tmp_path_factory.mktemp("cv")
    outs = []
    for name in ("a", "b"):
        r = CliRunner().invoke(
            app, ["cv", str(TRAIN), "--model", "kc-rate", "--folds", "5", "--seed", "3", "--json", str(d / f"{name}.json")]
        )
        assert r.exit_code == 0, r.output
        outs.append((r.output, json.loads((d / f"{name}.json").read_text())))
    return outs


def test_cv_same_seed_same_folds_and_metrics(cv_runs):
    (out_a, a), (_, b) = cv_runs
    assert [f["test_users"] for f in a["fold_results"]] == [f["test_users"] for f in b["fold_results"]]
    assert _strip_times(a) == _strip_times(b)
    assert "mean" in out_a and "sd" in out_a


def test_cv_folds_partition_the_learners(cv_runs):
    _, rec = cv_runs[0]
    data = load(str(TRAIN))
    folds = [set(f["test_users"]) for f in rec["fold_results"]]
    assert sum(len(f) for f in folds) == data.n_users == rec["learners"]
    assert set().union(*folds) == set(data.frame["user_id"].unique().to_list())
    for f in rec["fold_results"]:
        r = f["result"]
        assert r["learners"] == len(f["test_users"])
        # validation learners come from the fold's training learners
        assert r["train_learners"] + r["valid_learners"] == data.n_users - len(f["test_users"])
        assert r["protocol"] == "next" and r["scoring"] == "attempt"
    assert rec["scheme"] == "kfold" and rec["seed"] == 3 and rec["settings"]["protocol"] == "next"


def test_cv_summary_is_mean_and_sample_sd(cv_runs):
    _, rec = cv_runs[0]
    aucs = np.array([f["result"]["auc"] for f in rec["fold_results"]])
    s = rec["summary"]["auc"]
    assert s["mean"] == pytest.approx(aucs.mean()) and s["std"] == pytest.approx(aucs.std(ddof=1))
    assert s["values"] == pytest.approx(list(aucs))


def test_cv_other_seed_other_folds():
    data = load(str(TRAIN))
    a = cross_validate(data, "majority", folds=3, seed=0, spec=None)
    b = cross_validate(data, "majority", folds=3, seed=1, spec=None)
    assert [f["test_users"] for f in a["fold_results"]] != [f["test_users"] for f in b["fold_results"]]


def test_cv_pykt_scheme():
    data = load(str(TRAIN))
    rec = cross_validate(data, "kc-rate", folds=3, seed=0, scheme="pykt")
    test = set(rec["test_users"])
    assert len(test) == round(0.2 * data.n_users) and rec["test_seed"] == 1024
    valids = [set(f["valid_users"]) for f in rec["fold_results"]]
    assert not any(v & test for v in valids)
    assert sum(len(v) for v in valids) == data.n_users - len(test)
    for f in rec["fold_results"]:
        assert f["result"]["learners"] == len(test)  # every model is scored on the same test set
        assert f["result"]["valid_learners"] == len(f["valid_users"])


def test_cv_rejects_bad_settings():
    data = load(str(TRAIN))
    with pytest.raises(KTError, match="--folds"):
        cross_validate(data, "kc-rate", folds=1)
    with pytest.raises(KTError, match="kfold or pykt"):
        cross_validate(data, "kc-rate", scheme="loo")


def test_aggregate_single_fold_has_no_sd():
    s = aggregate([{"auc": 0.7}])
    assert s["auc"]["mean"] == 0.7 and np.isnan(s["auc"]["std"])


def test_model_sets():
    got = model_sets(["kc-rate", "bkt"], ["kc-rate.prior=3", "num_fits=2", "prior=1"], epochs=4)
    assert got == {"kc-rate": ["prior=3", "prior=1"], "bkt": ["num_fits=2"]}
    got = model_sets(["dkt", "bkt"], ["dkt.hidden=16"], epochs=2)
    assert got == {"dkt": ["hidden=16", "epochs=2"], "bkt": []}
    with pytest.raises(KTError, match="not one of the compared"):
        model_sets(["bkt"], ["dkt.hidden=3"])
    with pytest.raises(KTError, match="no compared model"):
        model_sets(["bkt", "kc-rate"], ["hidden=3"])
    with pytest.raises(KTError, match="KEY=VALUE"):
        model_sets(["bkt"], ["num_fits"])


def test_compare_one_split_for_all_models(cli, tmp_path):
    r = cli(
        "compare", TRAIN, "--models", "kc-rate,majority", "--set", "kc-rate.prior=5", "--seed", "2", "--json", tmp_path / "c.json"
    )
    assert r.exit_code == 0, r.output
    assert "kc-rate" in r.output and "majority" in r.output and "train s" in r.output
    rec = json.loads((tmp_path / "c.json").read_text())
    assert rec["kind"] == "compare" and rec["split"] == "learners" and rec["models"] == ["kc-rate", "majority"]
    a, b = rec["results"]
    assert a["config"] == {"prior": 5.0} and b["model"] == "majority"
    assert a["learners"] == b["learners"] == len(rec["test_users"]) and a["n"] == b["n"]
    assert b["auc"] == pytest.approx(0.5) and a["auc"] > 0.6


def test_compare_with_test_file_and_folds(cli, tmp_path, sample_dir):
    r = cli(
        "compare",
        TRAIN,
        "--models",
        "kc-rate",
        "--test",
        sample_dir / "test.csv",
        "--protocol",
        "multistep",
        "--history",
        "5",
        "--horizon",
        "3",
        "--json",
        tmp_path / "t.json",
    )
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "t.json").read_text())
    assert rec["split"] == "files" and rec["results"][0]["protocol"] == "multistep" and "by horizon step" not in r.output
    r = cli("compare", TRAIN, "--models", "kc-rate,majority", "--folds", "3", "--json", tmp_path / "f.json")
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "f.json").read_text())
    folds = [[f["test_users"] for f in m["fold_results"]] for m in rec["results"]]
    assert folds[0] == folds[1]  # the same folds for every model
    assert "± sd" in r.output


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--models", ""], "at least one model"),
        (["--models", "kc-rate,kc-rate"], "twice"),
        (["--models", "nope"], "unknown model"),
        (["--models", "kc-rate", "--folds", "1"], "--folds 1"),
        (["--models", "kc-rate", "--test-frac", "1.5"], "--test-frac"),
        (["--models", "kc-rate", "--set", "bkt.num_fits=2"], "not one of the compared"),
        (["--models", "kc-rate", "--protocol", "psikt-window", "--horizon", "3"], "psikt-window"),
    ],
)
def test_compare_errors(cli, args, msg):
    r = cli("compare", TRAIN, *args)
    assert r.exit_code == 1 and msg in r.output, r.output


def test_cv_cli_errors(cli):
    r = cli("cv", TRAIN, "--model", "kc-rate", "--protocol", "loo")
    assert r.exit_code == 1 and "kfold or pykt" in r.output
    r = cli("cv", TRAIN, "--model", "nope")
    assert r.exit_code == 1 and "unknown model" in r.output
    r = cli("cv", TRAIN, "--model", "kc-rate", "--eval", "multistep")
    assert r.exit_code == 1 and "--history" in r.output


@pytest.mark.slow
def test_cv_bkt_is_reproducible(tmp_path, cli):
    outs = []
    for name in ("a", "b"):
        r = cli("cv", TRAIN, "--model", "bkt", "--folds", "3", "--set", "num_fits=2", "--json", tmp_path / f"{name}.json")
        assert r.exit_code == 0, r.output
        outs.append(json.loads((tmp_path / f"{name}.json").read_text()))
    assert _strip_times(outs[0]) == _strip_times(outs[1])
