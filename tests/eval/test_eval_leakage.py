"""Acceptance: per-KC-row scoring inflates DKT's AUC on ASSIST2009; question level is the default.

The AKT ``assist2009_pid`` files list a multi-KC problem as consecutive rows
(one per skill) sharing the response. Collapsed back into questions, DKT is
scored once per question from the state before it; scoring the expanded rows
instead lets rows 2..m see row 1's answer (EVALUATION.md §3).
"""

from __future__ import annotations

import json

import pytest

from kt.data.schema import load
from kt.eval.cv import holdout
from kt.eval.expand import collapse_kc_rows, kc_rows
from kt.eval.protocols import next_step
from kt.models.base import create

FOLD = "assist2009/akt_pid/assist2009_pid_test1.csv.gz"
DKT = ["hidden=64", "epochs=5", "lr=0.005"]


@pytest.fixture(scope="module")
def split(shared_data):
    path = shared_data / FOLD
    if not path.exists():
        pytest.skip(f"{FOLD} not found under {shared_data}")
    questions = collapse_kc_rows(load(str(path)))
    assert questions.multi_kc and questions.stats["collapsed_kc_rows"] > 5000
    train, test = holdout(questions, 0.2, 0)
    return path, train, test


@pytest.mark.slow
@pytest.mark.parametrize("trained_on", ["questions", "kc-rows"])
def test_kc_row_scoring_inflates_dkt_auc(split, trained_on, tmp_path, cli):
    _, train, test = split
    model = create("dkt", sets=DKT)
    model.fit(train if trained_on == "questions" else kc_rows(train), key=0)
    question = next_step(model, test, breakdown=False)
    leaky = next_step(model, test, scoring="kc-row", breakdown=False)
    print(
        f"\nDKT trained on {trained_on}: question-level AUC {question['auc']:.4f} (n={question['n']}), "
        f"kc-row AUC {leaky['auc']:.4f} (n={leaky['n']})"
    )
    assert question["scoring"] == "question" and leaky["leaky"] is True
    assert leaky["n"] > question["n"]
    # pyKT-style training on expanded rows learns to exploit the leak more.
    margin = 0.005 if trained_on == "questions" else 0.015
    assert leaky["auc"] > question["auc"] + margin
    if trained_on == "questions":
        # the CLI scores whole questions unless told otherwise
        model.save(tmp_path / "m")
        path = split[0]
        r = cli("evaluate", tmp_path / "m", path, "--collapse-kc-rows", "--json", tmp_path / "e.json")
        assert r.exit_code == 0, r.output
        res = json.loads((tmp_path / "e.json").read_text())
        assert res["scoring"] == "question" and res["fusion"] == "mean" and res["leaky"] is False
        r = cli("evaluate", tmp_path / "m", path, "--json", tmp_path / "raw.json")
        assert r.exit_code == 0 and "--collapse-kc-rows" in r.output  # expanded rows are pointed out
