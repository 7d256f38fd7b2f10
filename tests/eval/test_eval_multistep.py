"""Multi-step open-loop prediction: history split, pseudo-learners, both modes, presets."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kt.data.schema import Interactions, load
from kt.errors import KTError
from kt.models import ahead
from kt.eval.multistep import predict_ahead, split_history
from kt.eval.protocols import EvalSpec, multistep
from kt.models.base import Model, create


class RunningRate(Model):
    """Test double that depends on the history: smoothed share correct so far,
    of the learner overall and on the attempt's KC (mean of the two)."""

    name = "running-rate"

    def _predict_probs(self, data):
        c = pl.col("correct").cast(pl.Float64)
        f = data.frame.select(
            ((c.cum_sum().over("user_idx") - c + 1) / (pl.int_range(pl.len()).over("user_idx") + 2)).alias("u"),
            (
                (c.cum_sum().over("user_idx", "skill_idx") - c + 1) / (pl.int_range(pl.len()).over("user_idx", "skill_idx") + 2)
            ).alias("k"),
        )
        return ((f["u"] + f["k"]) / 2).to_numpy()


@pytest.fixture(scope="module")
def data(sample_dir):
    d = load(str(sample_dir / "test.csv"))
    # a handful of learners keeps the brute-force checks quick
    users = d.frame["user_idx"].unique().sort().to_numpy()[:12]
    return d.subset(users)


@pytest.fixture(scope="module")
def bkt(data):
    return create("bkt", sets=["num_fits=1", "max_iter=10"]).fit(data, key=0)


@pytest.fixture(scope="module")
def rr(data):
    m = RunningRate()
    m.vocab, m.params = data.vocab, {}
    return m


def _rows(d: Interactions, user: int) -> pl.DataFrame:
    return d.frame.filter(pl.col("user_idx") == user)


def _as_data(frame: pl.DataFrame, like: Interactions) -> Interactions:
    return Interactions(frame, like.vocab, like.source)


def _pykt_history(n: int, ratio: float) -> int:
    """pyKT's get_cur_teststart: observed questions of a sequence of n."""
    q = int(n * ratio)
    q = 1 if q == 0 else q
    return q - 1 if q == n else q


def test_split_history_fixed(data):
    hist, fut, info = split_history(data, history=5, horizon=3)
    lengths = data.frame.group_by("user_idx").len()
    keep = lengths.filter(pl.col("len") > 5)
    assert info["learners"] == keep.height and info["skipped_learners"] == lengths.height - keep.height
    assert hist.n_rows == 5 * keep.height
    assert fut.n_rows == int(np.minimum(keep["len"].to_numpy() - 5, 3).sum())
    full_hist, full_fut, full = split_history(data, history=5, horizon=3, require_full=True)
    assert full["learners"] == lengths.filter(pl.col("len") >= 8).height
    assert full_fut.n_rows == 3 * full["learners"]


@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.7, 0.9])
def test_split_history_fraction_follows_pykt(data, ratio):
    hist, fut, _ = split_history(data, history_frac=ratio)
    n = data.frame.group_by("user_idx").len().sort("user_idx")
    h = hist.frame.group_by("user_idx").len().sort("user_idx")
    expect = [_pykt_history(int(k), ratio) for k in n["len"]]
    assert h["len"].to_list() == expect
    assert hist.n_rows + fut.n_rows == data.n_rows  # no horizon: everything after the history


def test_first_step_is_the_next_step_prediction(data, bkt):
    hist, fut, _ = split_history(data, history=6, horizon=4)
    ahead = predict_ahead(bkt, hist, fut, "nonacc")
    assert ahead.height == fut.n_rows and ahead["step"].min() == 1 and ahead["step"].max() == 4
    nxt = bkt.predict(data).filter(pl.col("position") == 6)
    first = ahead.filter(pl.col("step") == 1)
    assert first["user_id"].to_list() == nxt["user_id"].to_list()
    np.testing.assert_allclose(first["prob"].to_numpy(), nxt["prob"].to_numpy(), rtol=1e-6)
    assert (ahead["position"] == 6 + ahead["step"] - 1).all()
    np.testing.assert_array_equal(ahead["correct"].to_numpy(), fut.frame["correct"].to_numpy())


@pytest.mark.parametrize("model", ["rr", "bkt"])
def test_nonacc_matches_brute_force(data, model, request):
    bkt = request.getfixturevalue(model)
    hist, fut, _ = split_history(data, history=4, horizon=5)
    ahead = predict_ahead(bkt, hist, fut, "nonacc")
    for u in fut.frame["user_idx"].unique().sort().to_list()[: 4 if model == "rr" else 1]:
        h, f = _rows(hist, u), _rows(fut, u)
        got = ahead.filter(pl.col("user_id") == f["user_id"][0])["prob"].to_numpy()
        for j in range(f.height):
            p = bkt.predict(_as_data(pl.concat([h, f[j : j + 1]]), data))["prob"][-1]
            assert got[j] == pytest.approx(p, rel=1e-6)


def test_acc_matches_brute_force(data, rr):
    bkt = rr
    hist, fut, _ = split_history(data, history=4, horizon=5)
    ahead = predict_ahead(bkt, hist, fut, "acc")
    for u in fut.frame["user_idx"].unique().sort().to_list()[:4]:
        seq, f = _rows(hist, u), _rows(fut, u)
        got = ahead.filter(pl.col("user_id") == f["user_id"][0])["prob"].to_numpy()
        for j in range(f.height):
            p = bkt.predict(_as_data(pl.concat([seq, f[j : j + 1]]), data))["prob"][-1]
            assert got[j] == pytest.approx(p, rel=1e-6)
            guess = f[j : j + 1].with_columns(pl.lit(int(p >= 0.5), dtype=pl.Int8).alias("correct"))
            seq = pl.concat([seq, guess])  # the model's own answer becomes the history


def test_modes_agree_on_a_one_step_horizon(data, rr):
    bkt = rr
    hist, fut, _ = split_history(data, history=5, horizon=1)
    a = predict_ahead(bkt, hist, fut, "acc")["prob"].to_numpy()
    b = predict_ahead(bkt, hist, fut, "non-accumulative")["prob"].to_numpy()
    np.testing.assert_allclose(a, b)


@pytest.mark.parametrize("mode", ["nonacc", "acc"])
def test_chunked_prediction_is_identical(data, rr, monkeypatch, mode):
    hist, fut, _ = split_history(data, history=20, horizon=6)
    whole = predict_ahead(rr, hist, fut, mode)
    monkeypatch.setattr(ahead, "MAX_ROWS", 50)
    parts = predict_ahead(rr, hist, fut, mode)
    assert whole.equals(parts)


def test_model_predict_ahead_is_the_generic_one(data, bkt):
    hist, fut, _ = split_history(data, history=3, horizon=2)
    assert bkt.predict_ahead(hist, fut, "acc").equals(predict_ahead(bkt, hist, fut, "acc"))
    with pytest.raises(KTError, match="--mode"):
        bkt.predict_ahead(hist, fut, "greedy")


def test_multistep_result(data, bkt):
    r = multistep(bkt, data, history=5, horizon=3, mode="acc")
    assert r["protocol"] == "multistep" and r["mode"] == "accumulative" and r["feedback"] == "1[p >= 0.5]"
    assert r["predict_ahead"] == "generic" and r["leaky"] is False
    assert [s["step"] for s in r["by_step"]] == [1, 2, 3]
    assert sum(s["n"] for s in r["by_step"]) == r["n"]
    for key in ("auc", "accuracy", "f1", "per_kc", "reliability", "roc"):
        assert key in r
    # step 1 of an open-loop run is an ordinary next-step prediction
    nxt = bkt.predict(data).filter(pl.col("position") == 5)
    assert r["by_step"][0]["n"] == nxt.height
    assert r["by_step"][0]["accuracy"] == pytest.approx(float(((nxt["prob"] >= 0.5) == (nxt["correct"] == 1)).mean()))


def test_psikt_window_preset(data, bkt):
    r = EvalSpec("psikt-window").run(bkt, data)
    lengths = data.frame.group_by("user_idx").len()["len"].to_numpy()
    n_full = int((lengths >= 20).sum())
    assert r["protocol"] == "psikt-window" and r["history"] == 10 and r["horizon"] == 10
    assert r["mode"] == "non-accumulative" and r["require_full_horizon"] is True
    assert r["split_learners"] == n_full and r["n"] == 10 * n_full
    assert [s["n"] for s in r["by_step"]] == [n_full] * 10
    assert "not comparable" in r["note"]


def test_override_of_predict_ahead_is_used(data, bkt):
    class Shifted(type(bkt)):
        def predict_ahead(self, history, future, mode="nonacc"):
            out = super().predict_ahead(history, future, mode)
            return out.with_columns(pl.lit(0.25).alias("prob"))

    m = Shifted(bkt.config)
    m.vocab, m.params, m.meta = bkt.vocab, bkt.params, bkt.meta
    r = multistep(m, data, history=3, horizon=2)
    assert r["predict_ahead"] == "Shifted" and r["accuracy"] == pytest.approx(
        float((data.frame.filter(pl.int_range(pl.len()).over("user_idx").is_between(3, 4))["correct"] == 0).mean())
    )


def test_too_short_learners(data, bkt):
    with pytest.raises(KTError, match="no learner"):
        multistep(bkt, data, history=10_000, horizon=1)


def test_multi_kc_questions_fuse_in_multistep(tmp_path):
    from tests.eval.test_eval_protocols import write_multi_kc

    d = load(str(write_multi_kc(tmp_path / "m.csv")))
    m = create("kc-rate").fit(d)
    r = multistep(m, d, history=5, horizon=3)
    assert r["scoring"] == "question" and r["n"] == 3 * d.n_users
    rk = multistep(m, d, history=5, horizon=3, scoring="kc-row")
    assert rk["scoring"] == "kc-row" and rk["n"] == 3 * d.n_users  # counted in KC rows there


def test_per_sample_decisions_are_reported(data, rr):
    class Sampler(RunningRate):
        def predict_ahead(self, history, future, mode="nonacc"):
            out = super().predict_ahead(history, future, mode)
            return out.with_columns(pl.Series("sample_positive_rate", (out["prob"].to_numpy() >= 0.5).astype(float)))

    m = Sampler()
    m.vocab, m.params = rr.vocab, {}
    r = multistep(m, data, history=4, horizon=3)
    # all samples on one side of 0.5: per-sample metrics equal the thresholded ones
    assert r["sample_accuracy"] == pytest.approx(r["accuracy"]) and r["sample_f1"] == pytest.approx(r["f1"])
    assert "sample_f1" not in multistep(rr, data, history=4, horizon=3)
