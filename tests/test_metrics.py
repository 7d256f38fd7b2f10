"""kt.metrics against scikit-learn / scipy and brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, mean_squared_error, roc_auc_score

from kt import metrics

CASES = [(seed, n, ties) for seed in (0, 1, 2) for n in (7, 100, 2_000) for ties in (False, True)]


def _data(seed: int, n: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    """Random labels and probabilities loosely correlated with them."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.6).astype(np.int64)
    y[0], y[1] = 0, 1  # both classes always present
    p = np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(0, 0.25, n), 0.0, 1.0)
    if ties:
        p = np.round(p, 1)  # heavy ties, including exact 0.0, 0.5 and 1.0
    return y, p


@pytest.mark.parametrize("seed,n,ties", CASES)
def test_auc_matches_sklearn(seed, n, ties):
    y, p = _data(seed, n, ties)
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


@pytest.mark.parametrize("seed,n,ties", CASES)
def test_accuracy_matches_sklearn_at_half(seed, n, ties):
    y, p = _data(seed, n, ties)
    # p == 0.5 counts as a prediction of "correct"
    assert metrics.accuracy(y, p) == pytest.approx(accuracy_score(y, (p >= 0.5).astype(int)), abs=1e-12)


@pytest.mark.parametrize("seed,n,ties", CASES)
def test_rmse_brier_match_sklearn(seed, n, ties):
    y, p = _data(seed, n, ties)
    mse = mean_squared_error(y, p)
    assert metrics.brier(y, p) == pytest.approx(mse, rel=1e-12, abs=1e-15)
    assert metrics.brier(y, p) == pytest.approx(brier_score_loss(y, p), rel=1e-12, abs=1e-15)
    assert metrics.rmse(y, p) == pytest.approx(math.sqrt(mse), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed,n,ties", CASES)
def test_logloss_matches_sklearn(seed, n, ties):
    y, p = _data(seed, n, ties)
    # kt clips to [1e-7, 1 - 1e-7]; sklearn clips to machine epsilon, so compare on pre-clipped input
    ref = log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])
    assert metrics.logloss(y, p) == pytest.approx(ref, rel=1e-10)


def test_logloss_is_finite_at_hard_zero_and_one():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.0, 1.0, 1.0, 0.0])
    v = metrics.logloss(y, p)
    assert math.isfinite(v)
    # two confident misses cost -log(1e-7) each, two confident hits ~0
    assert v == pytest.approx(-0.5 * math.log(1e-7), rel=1e-5)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("levels", [None, 3, 10])
def test_midranks_match_scipy(seed, levels):
    rng = np.random.default_rng(seed)
    x = rng.random(257)
    if levels is not None:
        x = np.floor(x * levels) / levels
    np.testing.assert_allclose(metrics.midranks(x), rankdata(x, method="average"))


def test_midranks_small_cases():
    np.testing.assert_array_equal(metrics.midranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1.0, 3.5, 2.0])
    np.testing.assert_array_equal(metrics.midranks(np.array([5.0, 5.0, 5.0])), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(metrics.midranks(np.array([1.0])), [1.0])
    assert metrics.midranks(np.array([])).shape == (0,)


def test_auc_hand_values():
    assert metrics.auc([0, 1], [0.2, 0.8]) == 1.0
    assert metrics.auc([1, 0], [0.2, 0.8]) == 0.0
    assert metrics.auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    # one tied pair counts half: pairs (0.9>0.1, 0.9>0.5, 0.5=0.5, 0.5>0.1) -> 3.5/4
    assert metrics.auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.875)


@pytest.mark.parametrize("y", [[1, 1, 1], [0, 0], [1], []])
def test_auc_single_class_is_nan(y):
    assert math.isnan(metrics.auc(y, np.linspace(0, 1, len(y))))


def test_empty_inputs_give_nan():
    for f in (metrics.accuracy, metrics.rmse, metrics.brier, metrics.logloss, metrics.ece):
        assert math.isnan(f([], []))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        metrics.auc([0, 1, 1], [0.1, 0.2])


def test_accepts_2d_and_lists():
    y, p = _data(3, 60, True)
    assert metrics.auc(y.reshape(6, 10), p.reshape(6, 10)) == pytest.approx(roc_auc_score(y, p))
    assert metrics.rmse(list(y), list(p)) == pytest.approx(metrics.rmse(y, p))


def _ece_brute(y, p, bins):
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i in range(len(p)) if (lo <= p[i] < hi) or (b == bins - 1 and p[i] == 1.0)]
        if members:
            conf = sum(p[i] for i in members) / len(members)
            acc = sum(y[i] for i in members) / len(members)
            total += len(members) * abs(conf - acc)
    return total / len(p)


@pytest.mark.parametrize("seed,n,ties", [c for c in CASES if c[1] <= 100])
@pytest.mark.parametrize("bins", [5, 10, 15])
def test_ece_matches_brute_force(seed, n, ties, bins):
    y, p = _data(seed, n, ties)
    assert metrics.ece(y, p, bins=bins) == pytest.approx(_ece_brute(y, p, bins), abs=1e-12)


def test_ece_bin_edges_are_half_open():
    # every multiple of 1/bins starts its own bin; 1.0 falls in the last bin
    for bins in (5, 10, 20):
        p = np.arange(bins + 1) / bins
        rel = metrics.reliability(np.zeros_like(p), p, bins=bins)
        assert [r["count"] for r in rel] == [1] * (bins - 2) + [1, 2]
        assert [round(r["lo"] * bins) for r in rel] == list(range(bins))


def test_reliability_bins():
    y = np.array([0, 1, 1, 1, 0])
    p = np.array([0.05, 0.15, 0.95, 1.0, 0.92])
    rel = metrics.reliability(y, p, bins=10)
    assert [(r["lo"], r["hi"], r["count"]) for r in rel] == [(0.0, 0.1, 1), (0.1, 0.2, 1), (0.9, 1.0, 3)]
    assert rel[2]["mean_pred"] == pytest.approx((0.95 + 1.0 + 0.92) / 3)
    assert rel[2]["frac_correct"] == pytest.approx(2 / 3)
    assert sum(r["count"] for r in rel) == len(y)


def test_ece_perfectly_calibrated_is_zero():
    y = np.array([1, 0] * 50)
    p = np.full(100, 0.5)
    assert metrics.ece(y, p) == pytest.approx(0.0)


def test_summary_keys_and_values():
    y, p = _data(0, 500, True)
    s = metrics.summary(y, p)
    assert set(s) == {"auc", "accuracy", "rmse", "logloss", "brier", "ece", "n"}
    assert s["n"] == 500 and isinstance(s["n"], int)
    assert s["auc"] == metrics.auc(y, p)
    assert s["accuracy"] == metrics.accuracy(y, p)
    assert s["rmse"] == metrics.rmse(y, p)
    assert s["logloss"] == metrics.logloss(y, p)
    assert s["brier"] == metrics.brier(y, p)
    assert s["ece"] == metrics.ece(y, p)
    assert all(isinstance(v, float) for k, v in s.items() if k != "n")


def test_global_auc_differs_from_mean_of_batch_aucs():
    """Within each batch the ranking is perfect, across batches it is not.

    Averaging per-batch AUCs reports 1.0; the AUC over all scored positions
    is 0.75. kt computes metrics once, globally.
    """
    y1, p1 = np.array([1, 0]), np.array([0.9, 0.8])
    y2, p2 = np.array([1, 0]), np.array([0.2, 0.1])
    per_batch = np.mean([metrics.auc(y1, p1), metrics.auc(y2, p2)])
    y, p = np.r_[y1, y2], np.r_[p1, p2]
    assert per_batch == 1.0
    assert metrics.auc(y, p) == pytest.approx(0.75)
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p))


def test_auc_large_n_precision():
    rng = np.random.default_rng(7)
    y = (rng.random(200_000) < 0.7).astype(int)
    p = np.round(np.clip(0.6 + 0.1 * y + rng.normal(0, 0.2, len(y)), 0, 1), 2)
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-10)
