"""`kt evaluate` protocols from the command line: JSON settings, scoring level, warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kt.data.schema import load
from kt.eval.expand import kc_rows

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "datasets" / "assist2009_sample"


def ok(cli, *args):
    r = cli(*args)
    assert r.exit_code == 0, f"kt {' '.join(map(str, args))} exited {r.exit_code}:\n{r.output}\n{r.exception!r}"
    return r.output


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from typer.testing import CliRunner

    from kt.cli import app

    d = tmp_path_factory.mktemp("evalcli") / "m"
    r = CliRunner().invoke(app, ["train", str(SAMPLE / "train.csv"), "-m", "kc-rate", "-o", str(d)])
    assert r.exit_code == 0, r.output
    return d


def test_evaluate_multistep(cli, model_dir, tmp_path):
    out = ok(
        cli,
        "evaluate",
        model_dir,
        SAMPLE / "test.csv",
        "--protocol",
        "multistep",
        "--history",
        "5",
        "--horizon",
        "4",
        "--mode",
        "acc",
        "--json",
        tmp_path / "ms.json",
    )
    assert "by horizon step" in out and "accumulative" in out
    r = json.loads((tmp_path / "ms.json").read_text())
    assert (r["protocol"], r["history"], r["horizon"], r["mode"]) == ("multistep", 5, 4, "accumulative")
    assert r["feedback"] == "1[p >= 0.5]" and r["model_dir"] == str(model_dir)
    assert [s["step"] for s in r["by_step"]] == [1, 2, 3, 4]
    for k in ("auc", "accuracy", "f1", "per_kc", "reliability", "roc", "split_learners", "scoring", "data_format"):
        assert k in r


def test_evaluate_history_fraction(cli, model_dir, tmp_path):
    ok(
        cli,
        "evaluate",
        model_dir,
        SAMPLE / "test.csv",
        "--protocol",
        "multistep",
        "--history-frac",
        "0.8",
        "--json",
        tmp_path / "f.json",
    )
    r = json.loads((tmp_path / "f.json").read_text())
    assert r["history_frac"] == 0.8 and r["history"] is None and r["horizon"] is None
    assert r["split_skipped_learners"] == 0  # every learner with 2 attempts has a history and a future


def test_evaluate_psikt_window(cli, model_dir, tmp_path):
    out = ok(cli, "evaluate", model_dir, SAMPLE / "test.csv", "--protocol", "psikt-window", "--json", tmp_path / "p.json")
    r = json.loads((tmp_path / "p.json").read_text())
    assert r["protocol"] == "psikt-window" and len(r["by_step"]) == 10 and "f1" in r
    assert "skipped" in out  # learners shorter than 20 attempts are reported


def test_evaluate_next_json_has_curves(cli, model_dir, tmp_path):
    ok(cli, "evaluate", model_dir, SAMPLE / "test.csv", "--json", tmp_path / "n.json")
    r = json.loads((tmp_path / "n.json").read_text())
    assert r["first_position"].startswith("unscored") and r["leaky"] is False
    assert len(r["roc"]["fpr"]) <= 200 and r["learning_curves"]["per_kc"]


@pytest.fixture(scope="module")
def multi_files(tmp_path_factory):
    from tests.eval.test_eval_protocols import write_multi_kc

    d = tmp_path_factory.mktemp("multi")
    path = write_multi_kc(d / "multi.csv", learners=40)
    data = load(str(path))
    expanded = kc_rows(data).frame.select("user_id", "item_id", "skill_id", "correct")
    expanded.write_csv(d / "expanded.csv")
    return path, d / "expanded.csv"


def test_question_level_is_the_default_on_multi_kc_data(cli, multi_files, tmp_path):
    path, _ = multi_files
    ok(cli, "train", path, "-m", "bkt", "-o", tmp_path / "m", "--set", "num_fits=1", "--set", "max_iter=10")
    out = ok(cli, "evaluate", tmp_path / "m", path, "--json", tmp_path / "q.json")
    assert "question-level" in out and "warning" not in out
    q = json.loads((tmp_path / "q.json").read_text())
    assert q["scoring"] == "question" and q["fusion"] == "mean" and q["leaky"] is False

    out = ok(cli, "evaluate", tmp_path / "m", path, "--scoring", "kc-row", "--json", tmp_path / "k.json")
    assert "warning:" in out and "leak" in out
    k = json.loads((tmp_path / "k.json").read_text())
    assert k["scoring"] == "kc-row" and k["leaky"] is True and k["n"] > q["n"]

    r = cli("evaluate", tmp_path / "m", path, "--fusion", "vote")
    assert r.exit_code == 1 and "prob_kc" in r.output  # BKT reports no per-row probabilities


def test_expanded_rows_are_noticed_and_collapsed(cli, multi_files, tmp_path):
    path, expanded = multi_files
    ok(cli, "train", path, "-m", "kc-rate", "-o", tmp_path / "m")
    ok(cli, "evaluate", tmp_path / "m", path, "--json", tmp_path / "q.json")
    out = ok(cli, "evaluate", tmp_path / "m", expanded, "--json", tmp_path / "e.json")
    assert "--collapse-kc-rows" in out and "leaks" in out
    out = ok(cli, "evaluate", tmp_path / "m", expanded, "--collapse-kc-rows", "--json", tmp_path / "c.json")
    q, e, c = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("q", "e", "c"))
    assert e["scoring"] == "attempt" and e["n"] > q["n"]
    assert c["scoring"] == "question"
    for key in ("auc", "accuracy", "n", "multi_kc_questions"):
        assert c[key] == pytest.approx(q[key])


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--protocol", "future"], "--protocol 'future'"),
        (["--protocol", "multistep"], "--history"),
        (["--protocol", "multistep", "--history", "3", "--mode", "both"], "--mode 'both'"),
        (["--horizon", "3"], "need --protocol multistep"),
        (["--scoring", "concept"], "--scoring"),
        (["--eval-mode", "window"], "no history modes"),
    ],
)
def test_evaluate_option_errors(cli, model_dir, args, msg):
    r = cli("evaluate", model_dir, SAMPLE / "test.csv", *args)
    assert r.exit_code == 1 and msg in r.output, r.output
    assert r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1


def test_kc_row_note_on_single_kc_data(cli, model_dir):
    out = ok(cli, "evaluate", model_dir, SAMPLE / "test.csv", "--scoring", "kc-row")
    assert "one KC per attempt" in out
