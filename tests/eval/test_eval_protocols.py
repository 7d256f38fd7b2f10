"""Question-level scoring, KC-row expansion, fusion and the next-step protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kt.data.schema import load
from kt.errors import KTError
from kt.eval.expand import collapse_kc_rows, expanded_rows, kc_rows, question_index
from kt.eval.fusion import fuse
from kt.eval.protocols import EvalSpec, learning_curves, next_step
from kt.models.base import Model, create

# Item -> KCs; several items have two or three KCs.
ITEM_KCS = {
    f"i{n}": kcs for n, kcs in enumerate(["a", "b", "c", "d", "a~~b", "b~~c", "c~~d", "a~~d", "a~~b~~c", "b", "c", "d~~a"])
}


def write_multi_kc(path: Path, learners: int = 30, questions: int = 16, seed: int = 0) -> Path:
    """A CSV of multi-KC questions; consecutive questions never share an item."""
    rng = np.random.default_rng(seed)
    items = list(ITEM_KCS)
    rows = []
    for u in range(learners):
        ability = rng.normal(0, 1)
        prev = None
        for t in range(questions):
            it = rng.choice([i for i in items if i != prev])
            prev = it
            p = 1 / (1 + np.exp(-(ability + 0.15 * t - 0.3 * ITEM_KCS[it].count("~~"))))
            rows.append((f"u{u:02d}", it, ITEM_KCS[it], int(rng.random() < p)))
    pl.DataFrame(rows, schema=["user_id", "item_id", "skill_id", "correct"], orient="row").write_csv(path)
    return path


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    path = write_multi_kc(tmp_path_factory.mktemp("multi") / "multi.csv")
    data = load(str(path))
    assert data.multi_kc
    return data


@pytest.fixture(scope="module")
def bkt(multi):
    return create("bkt", sets=["num_fits=1", "max_iter=20"]).fit(multi, key=0)


# -- expansion ---------------------------------------------------------------------------


def test_kc_rows_one_row_per_question_kc(multi):
    ex = kc_rows(multi)
    lens = multi.frame["skill_id"].list.len().to_numpy()
    assert not ex.multi_kc and ex.n_rows == lens.sum()
    assert ex.vocab is multi.vocab
    qi = question_index(multi)
    f = multi.frame
    for col in ("user_id", "item_id", "correct", "line"):
        np.testing.assert_array_equal(ex.frame[col].to_numpy(), f[col].to_numpy()[qi])
    assert ex.frame["skill_id"].to_list() == f["skill_id"].explode().to_list()
    assert kc_rows(ex) is ex  # single-KC data is left alone


def test_collapse_inverts_the_expansion(multi):
    ex = kc_rows(multi)
    assert expanded_rows(ex) == ex.n_rows - multi.n_rows
    back = collapse_kc_rows(ex)
    assert back.frame.equals(multi.frame)
    assert back.stats["collapsed_kc_rows"] == ex.n_rows - multi.n_rows
    assert expanded_rows(multi) == 0 and collapse_kc_rows(multi) is multi


def test_collapse_keeps_reattempts_and_other_outcomes_apart(write_file):
    p = write_file("x.csv", "user_id,item_id,skill_id,correct\nu,q1,a,1\nu,q1,b,1\nu,q1,a,1\nu,q2,a,0\nu,q2,b,1\nv,q2,b,1\n")
    data = collapse_kc_rows(load(str(p), min_attempts=1))
    assert data.frame["skill_id"].to_list() == [["a", "b"], ["a"], ["a"], ["b"], ["b"]]
    assert data.frame["user_id"].to_list() == ["u"] * 4 + ["v"]


# -- fusion ---------------------------------------------------------------------------------


def test_fusions_follow_pykt_late_fusion():
    probs = [[0.2, 0.6, 0.7], [0.1, 0.9], [0.4], [0.6, 0.3, 0.2], [0.8, 0.9]]
    np.testing.assert_allclose(fuse(probs, "mean"), [0.5, 0.5, 0.4, 11 / 30, 0.85])
    # vote: mean of the majority side of 0.5; a tie goes to the side >= 0.5
    np.testing.assert_allclose(fuse(probs, "vote"), [0.65, 0.9, 0.4, 0.25, 0.85])
    # all: the >= 0.5 side only when every row is there
    np.testing.assert_allclose(fuse(probs, "all"), [0.2, 0.1, 0.4, 0.25, 0.85])
    with pytest.raises(KTError, match="--fusion"):
        fuse(probs, "max")


# -- question-level scoring ----------------------------------------------------------------------


def test_question_level_is_the_default(multi, bkt):
    r = next_step(bkt, multi)
    assert r["scoring"] == "question" and r["fusion"] == "mean" and r["leaky"] is False
    assert r["n"] == multi.n_rows - multi.n_users  # one score per question, first question unscored
    assert r["multi_kc_questions"] == int((multi.frame["skill_id"].list.len() > 1).sum())
    assert "warning" not in r


def test_kc_row_scoring_is_flagged(multi, bkt):
    r = next_step(bkt, multi, scoring="kc-row")
    assert r["scoring"] == "kc-row" and r["leaky"] is True and "leak" in r["warning"]
    assert r["fusion"] is None
    assert r["n"] == kc_rows(multi).n_rows - multi.n_users


def test_bkt_kc_rows_carry_no_leak(multi, bkt):
    """BKT tracks each KC separately, so a question's KC rows do not see each
    other: the mean of its kc-row predictions is its question-level prediction."""
    q = bkt.predict(multi)["prob"].to_numpy()
    rows = bkt.predict(kc_rows(multi))["prob"].to_numpy()
    means = np.bincount(question_index(multi), weights=rows) / multi.frame["skill_id"].list.len().to_numpy()
    np.testing.assert_allclose(means, q, rtol=1e-5)


class _FixedKC(Model):
    """Test double: P(correct) per KC from a table; reports prob_kc."""

    name = "fixed-kc"

    def _predict_probs(self, data):
        table = self.params
        lists = data.frame["skill_id"].to_list()
        per = [[table[k] for k in ks] for ks in lists]
        return np.array([np.mean(p) for p in per]), {"prob_kc": pl.Series("prob_kc", per, dtype=pl.List(pl.Float64))}


def _fixed(multi):
    m = _FixedKC()
    m.vocab = multi.vocab
    m.params = {"a": 0.9, "b": 0.2, "c": 0.6, "d": 0.45}
    return m


def test_vote_and_all_fusion_use_prob_kc(multi):
    m = _fixed(multi)
    preds = m.predict(multi).filter(pl.col("position") > 0)
    for how in ("vote", "all"):
        r = next_step(m, multi, fusion=how, breakdown=False)
        expect = fuse(preds["prob_kc"], how)
        from kt import metrics

        assert r["fusion"] == how
        assert r["auc"] == pytest.approx(metrics.auc(preds["correct"].to_numpy(), expect))


def test_vote_needs_prob_kc(multi, bkt):
    with pytest.raises(KTError, match="prob_kc"):
        next_step(bkt, multi, fusion="vote")


def test_single_kc_data_scores_attempts(sample_dir):
    data = load(str(sample_dir / "test.csv"))
    m = create("kc-rate").fit(data)
    r = next_step(m, data, scoring="kc-row")
    assert r["scoring"] == "attempt" and r["leaky"] is False and r["fusion"] is None


# -- result contents ---------------------------------------------------------------------------


def test_curve_data_in_the_result(multi, bkt):
    r = next_step(bkt, multi)
    assert 2 < len(r["roc"]["fpr"]) <= 200
    lc = r["learning_curves"]
    assert lc["all"][0]["opportunity"] == 1 and len(lc["per_kc"]) == 4
    # every scored (question, KC) pair lands at one opportunity of the pooled curve
    ex = multi.frame.with_columns(pl.int_range(pl.len()).over("user_idx").alias("pos")).filter(pl.col("pos") > 0)
    assert sum(p["n"] for p in lc["all"]) == ex["skill_id"].list.len().sum()
    kc = lc["per_kc"][0]
    assert kc["n"] == sum(p["n"] for p in kc["points"])
    for p in lc["all"]:
        assert 0 <= p["observed"] <= 1 and 0 <= p["predicted"] <= 1


def test_learning_curve_counts_opportunities_per_kc():
    preds = pl.DataFrame(
        {
            "user_id": ["u"] * 5,
            "skill_id": ["a", "b", "a", "a", "b"],
            "position": [0, 1, 2, 3, 4],
            "correct": [0, 1, 1, 1, 0],
            "prob": [0.5, 0.6, 0.7, 0.8, 0.4],
        }
    )
    lc = learning_curves(preds, include_first=True)
    by = {p["opportunity"]: p for p in lc["all"]}
    assert by[1]["n"] == 2 and by[2]["n"] == 2 and by[3]["n"] == 1
    assert by[2]["observed"] == pytest.approx(0.5) and by[2]["predicted"] == pytest.approx(0.55)
    assert [c["skill_id"] for c in lc["per_kc"]] == ["a", "b"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"protocol": "window"}, "--protocol"),
        ({"scoring": "concept"}, "--scoring"),
        ({"fusion": "vote", "scoring": "kc-row"}, "--fusion"),
        ({"history": 3}, "--protocol multistep"),
        ({"protocol": "multistep"}, "--history"),
        ({"protocol": "multistep", "history": 3, "history_frac": 0.5}, "--history"),
        ({"protocol": "multistep", "history": 0}, "--history 0"),
        ({"protocol": "multistep", "history_frac": 1.0}, "--history-frac"),
        ({"protocol": "multistep", "history": 3, "horizon": 0}, "--horizon"),
        ({"protocol": "multistep", "history": 3, "mode": "greedy"}, "--mode"),
        ({"protocol": "psikt-window", "history": 5}, "psikt-window"),
        ({"protocol": "multistep", "history": 3, "include_first": True}, "--include-first"),
    ],
)
def test_spec_validation(kwargs, match):
    with pytest.raises(KTError, match=match):
        EvalSpec(**kwargs).checked()


def test_spec_settings_expand_the_preset():
    s = EvalSpec("psikt-window").settings()
    assert (s["history"], s["horizon"], s["mode"]) == (10, 10, "nonacc")
    assert EvalSpec("multistep", history=2, mode="accumulative").checked().mode == "acc"
