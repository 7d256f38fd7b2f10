"""F1 and the downsampled ROC curve, against scikit-learn (test oracle only)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score, roc_curve

from kt import metrics


def _data(seed: int, n: int, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.65).astype(int)
    p = np.clip(0.55 + 0.15 * (y - 0.5) + rng.normal(0, 0.2, n), 0, 1)
    return y, (np.round(p, 2) if ties else p)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_f1_matches_sklearn(seed, threshold):
    y, p = _data(seed, 300 + 50 * seed)
    assert metrics.f1(y, p, threshold) == pytest.approx(f1_score(y, (p >= threshold).astype(int)), abs=1e-12)


def test_f1_threshold_is_inclusive_and_undefined_case_is_nan():
    assert metrics.f1([1, 0], [0.5, 0.49]) == 1.0  # 0.5 counts as a predicted correct, as accuracy does
    assert np.isnan(metrics.f1([0, 0], [0.1, 0.2]))  # no positive label, no positive prediction
    assert metrics.f1([1, 1], [0.1, 0.2]) == 0.0


def test_roc_points_exact_when_small():
    y, p = _data(1, 150, ties=True)  # fewer distinct scores than the point budget
    pts = metrics.roc_points(y, p)
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(pts["fpr"], fpr, atol=1e-5)
    np.testing.assert_allclose(pts["tpr"], tpr, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_roc_points_downsampled_keep_the_area(seed):
    y, p = _data(seed, 20_000)
    pts = metrics.roc_points(y, p, max_points=200)
    fpr, tpr = np.array(pts["fpr"]), np.array(pts["tpr"])
    assert 2 < len(fpr) <= 200
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(roc_auc_score(y, p), abs=0.003)


def test_roc_points_one_class_is_empty():
    assert metrics.roc_points([1, 1, 1], [0.2, 0.4, 0.9]) == {"fpr": [], "tpr": []}
