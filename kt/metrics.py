"""Metrics computed once over all scored positions (never averaged per batch).

NumPy on the host: metrics need global sorting, and they are cheap next to
model inference.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike

_EPS = 1e-7


def _prep(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ in shape")
    return y, p


def midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given the mean of their positions.

    Args:
        x: values to rank.

    Returns:
        Float ranks, same shape as ``x``.
    """
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(xs)]
    ranks_sorted = ((starts + 1 + ends) / 2.0)[group]
    out = np.empty(len(x), dtype=np.float64)
    out[order] = ranks_sorted
    return out


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """Tie-aware ROC-AUC (Mann–Whitney U / (n+ n-)).

    Args:
        y: 0/1 labels.
        p: scores.

    Returns:
        AUC in [0, 1]; NaN when only one class is present.
    """
    y, p = _prep(y, p)
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = midranks(p)
    return float((r[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def accuracy(y: ArrayLike, p: ArrayLike, threshold: float = 0.5) -> float:
    """Share of predictions ``p >= threshold`` that match ``y``."""
    y, p = _prep(y, p)
    return float(np.mean((p >= threshold) == (y == 1))) if len(y) else float("nan")


def rmse(y: ArrayLike, p: ArrayLike) -> float:
    """Root mean squared error of probabilities."""
    y, p = _prep(y, p)
    return float(np.sqrt(np.mean((p - y) ** 2))) if len(y) else float("nan")


def brier(y: ArrayLike, p: ArrayLike) -> float:
    """Mean squared error of probabilities (Brier score)."""
    y, p = _prep(y, p)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def logloss(y: ArrayLike, p: ArrayLike) -> float:
    """Mean negative log-likelihood, probabilities clipped to [1e-7, 1-1e-7]."""
    y, p = _prep(y, p)
    if not len(y):
        return float("nan")
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def reliability(y: ArrayLike, p: ArrayLike, bins: int = 10) -> list[dict]:
    """Equal-width reliability bins.

    Args:
        y: 0/1 labels.
        p: probabilities in [0, 1].
        bins: number of bins over [0, 1].

    Returns:
        One dict per non-empty bin: ``lo``, ``hi``, ``count``,
        ``mean_pred``, ``frac_correct``.
    """
    y, p = _prep(y, p)
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = idx == b
        n = int(sel.sum())
        if n:
            out.append(
                {
                    "lo": b / bins,
                    "hi": (b + 1) / bins,
                    "count": n,
                    "mean_pred": float(p[sel].mean()),
                    "frac_correct": float(y[sel].mean()),
                }
            )
    return out


def ece(y: ArrayLike, p: ArrayLike, bins: int = 10) -> float:
    """Expected calibration error over equal-width bins (count-weighted)."""
    y, p = _prep(y, p)
    if not len(y):
        return float("nan")
    return float(sum(b["count"] * abs(b["mean_pred"] - b["frac_correct"]) for b in reliability(y, p, bins)) / len(y))


def f1(y: ArrayLike, p: ArrayLike, threshold: float = 0.5) -> float:
    """F1 score of the predictions ``p >= threshold`` for the class 1 (correct).

    Args:
        y: 0/1 labels.
        p: probabilities.
        threshold: decision threshold.

    Returns:
        2 TP / (2 TP + FP + FN); NaN when there is no positive label and no
        positive prediction (scikit-learn reports 0 there, with a warning).
    """
    y, p = _prep(y, p)
    pos, pred = y == 1, p >= threshold
    tp = float(np.sum(pos & pred))
    denom = 2 * tp + float(np.sum(~pos & pred)) + float(np.sum(pos & ~pred))
    return 2 * tp / denom if denom else float("nan")


def roc_points(y: ArrayLike, p: ArrayLike, max_points: int = 200) -> dict[str, list[float]]:
    """ROC curve, downsampled for plotting.

    The exact curve has one vertex per distinct score. Keeping at most
    ``max_points`` vertices (always (0, 0) and (1, 1)), chosen evenly along
    the curve's path length, keeps the JSON small; the trapezoid area of
    the points stays within a few thousandths of :func:`auc` for curves of
    ordinary shape.

    Args:
        y: 0/1 labels.
        p: scores.
        max_points: upper bound on the number of points (>= 2).

    Returns:
        ``{"fpr": [...], "tpr": [...]}`` (empty lists when one class is absent).
    """
    y, p = _prep(y, p)
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    if n_pos == 0 or n_neg == 0:
        return {"fpr": [], "tpr": []}
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    last = np.r_[ps[1:] != ps[:-1], True]  # one vertex after each run of tied scores
    tpr = np.r_[0.0, np.cumsum(ys)[last] / n_pos]
    fpr = np.r_[0.0, np.cumsum(1 - ys)[last] / n_neg]
    if len(fpr) > max_points:
        path = np.r_[0.0, np.cumsum(np.hypot(np.diff(fpr), np.diff(tpr)))]
        targets = np.linspace(0.0, path[-1], max(max_points, 2))
        keep = np.unique(np.r_[0, np.searchsorted(path, targets[1:-1]), len(fpr) - 1])
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [round(float(v), 5) for v in fpr], "tpr": [round(float(v), 5) for v in tpr]}


def summary(y: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """All scalar metrics at once.

    Args:
        y: 0/1 labels of the scored positions.
        p: predicted probabilities of correct.

    Returns:
        ``auc``, ``accuracy``, ``rmse``, ``logloss``, ``brier``, ``ece``, ``n``.
    """
    y, p = _prep(y, p)
    return {
        "auc": auc(y, p),
        "accuracy": accuracy(y, p),
        "rmse": rmse(y, p),
        "logloss": logloss(y, p),
        "brier": brier(y, p),
        "ece": ece(y, p),
        "n": int(len(y)),
    }
