"""PSI-KT through the CLI: simulate ou-graph -> train psikt -> update -> predict."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from kt.cli import app
from tests.cli_run import output as run

# Same shapes and options as tests/models/psikt/test_psikt.py, so the jit caches are shared in one pytest run.
SETS = ["epochs=2", "batch_size=16", "mc_samples=4", "dim=8", "update_steps=3"]


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    d = tmp_path_factory.mktemp("psikt_cli")
    out = run(
        "simulate",
        "--kind",
        "ou-graph",
        "--learners",
        40,
        "--kcs",
        4,
        "--steps",
        14,
        "--seed",
        3,
        "--out",
        d / "sim.csv",
        "--truth",
        d / "truth.json",
    )
    assert "prerequisite edges" in out
    sets = [a for kv in SETS for a in ("--set", kv)]
    out = run("train", d / "sim.csv", "--model", "psikt", "--out", d / "model", "--valid-frac", 0.2, *sets)
    assert "saved psikt" in out
    return d


def test_simulate_writes_rows_and_the_agreed_truth(flow):
    frame = pl.read_csv(flow / "sim.csv")
    assert frame.height == 40 * 14 and set(frame.columns) == {"user_id", "skill_id", "timestamp", "correct"}
    truth = json.loads((flow / "truth.json").read_text())
    assert {"kcs", "edges", "adjacency", "traits", "settings"} <= set(truth)
    assert sorted(frame["skill_id"].unique()) <= sorted(truth["kcs"])
    assert len(truth["traits"]) == 40 and set(truth["traits"][0]) == {"user_id", "alpha", "mu", "sigma", "gamma"}
    again = run(
        "simulate", "--kind", "ou-graph", "--learners", 40, "--kcs", 4, "--steps", 14, "--seed", 3, "--out", flow / "again.csv"
    )
    assert "wrote" in again and pl.read_csv(flow / "again.csv").equals(frame)


def test_train_saves_model_history_and_graph(flow):
    header = json.loads((flow / "model" / "model.json").read_text())
    assert header["model"] == "psikt" and len(header["meta"]["state_users"]) == 40
    assert (flow / "model" / "history.jsonl").exists()
    assert header["meta"]["time"] == "days"


def test_update_refines_states_and_reports_seconds(flow):
    new = pl.read_csv(flow / "sim.csv").group_by("user_id", maintain_order=True).tail(2)
    new = new.with_columns(pl.col("timestamp") + 30 * 86400.0)
    new = pl.concat(
        [new, pl.DataFrame({"user_id": ["fresh"], "skill_id": [new["skill_id"][0]], "timestamp": [2e9], "correct": [1]})],
        how="vertical_relaxed",
    )
    new.write_csv(flow / "new.csv")
    out = run("update", flow / "model", flow / "new.csv", "--out", flow / "model2", "--json", flow / "upd.json")
    assert "continual update" in out and "saved updated psikt" in out
    rep = json.loads((flow / "upd.json").read_text())
    assert rep["learners"] == 41 and rep["new_learners"] == 1 and rep["arrivals"] == 2 and rep["seconds_per_update"] > 0
    header = json.loads((flow / "model2" / "model.json").read_text())
    assert len(header["meta"]["state_users"]) == 41
    assert len(json.loads((flow / "model" / "model.json").read_text())["meta"]["state_users"]) == 40  # --out leaves DIR alone
    out = run("predict", flow / "model2", flow / "new.csv", "--out", flow / "mastery.csv", "--mastery")
    m = pl.read_csv(flow / "mastery.csv")
    assert {"user_id", "skill_id", "p_correct"} <= set(m.columns)


def test_update_out_needs_overwrite_unless_in_place(flow, tmp_path):
    import shutil

    new = pl.read_csv(flow / "sim.csv").group_by("user_id", maintain_order=True).tail(1).head(3)
    new = new.with_columns(pl.col("timestamp") + 60 * 86400.0)
    new.write_csv(tmp_path / "new.csv")
    shutil.copytree(flow / "model", tmp_path / "other")
    before = (tmp_path / "other" / "model.json").read_bytes()
    res = CliRunner().invoke(app, ["update", str(flow / "model"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "other")])
    assert res.exit_code == 1 and "already exists; pass --overwrite" in res.output and "Traceback" not in res.output
    assert (tmp_path / "other" / "model.json").read_bytes() == before
    run("update", flow / "model", tmp_path / "new.csv", "--out", tmp_path / "other", "--overwrite")
    assert (tmp_path / "other" / "model.json").read_bytes() != before
    run("update", tmp_path / "other", tmp_path / "new.csv")  # in place: the command's purpose, no --overwrite


def test_update_errors_are_one_line(flow, tmp_path):
    res = CliRunner().invoke(app, ["update", str(tmp_path / "nope"), str(flow / "sim.csv")])
    assert res.exit_code == 1 and "not a kt model directory" in res.output
    run("train", flow / "sim.csv", "--model", "kc-rate", "--out", tmp_path / "kcr")
    res = CliRunner().invoke(app, ["update", str(tmp_path / "kcr"), str(flow / "sim.csv")])
    assert res.exit_code == 1 and "continual updates need psikt" in res.output
    res = CliRunner().invoke(app, ["simulate", "--kind", "nope", "--out", str(tmp_path / "x.csv")])
    assert res.exit_code == 1 and "ou-graph" in res.output


def test_models_lists_psikt():
    assert "psikt" in run("models")
