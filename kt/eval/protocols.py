"""Evaluation protocols; each result names its protocol and settings."""

from __future__ import annotations

import numpy as np
import polars as pl

from kt.data.schema import Interactions
from kt.eval import metrics


def scored(preds: pl.DataFrame, *, include_first: bool = False) -> pl.DataFrame:
    """Rows of a predictions frame that count toward metrics.

    Args:
        preds: output of ``model.predict``.
        include_first: score each learner's first attempt too (pyBKT does;
            cross-model tables do not, following pyKT).

    Returns:
        The scored subset.
    """
    return preds if include_first else preds.filter(pl.col("position") > 0)


def per_kc(preds: pl.DataFrame) -> list[dict]:
    """AUC, accuracy and count per KC (multi-KC attempts count for each KC)."""
    f = preds.explode("skill_id") if isinstance(preds.schema["skill_id"], pl.List) else preds
    out = []
    for (kc,), g in f.group_by("skill_id", maintain_order=True):
        y, p = g["correct"].to_numpy(), g["prob"].to_numpy()
        out.append({"skill_id": kc, "n": len(y), "auc": metrics.auc(y, p), "accuracy": metrics.accuracy(y, p)})
    return sorted(out, key=lambda r: (-r["n"], str(r["skill_id"])))  # deterministic order for equal counts


def next_step(model, data: Interactions, *, include_first: bool = False, breakdown: bool = True) -> dict:
    """One-step-ahead evaluation over all attempts of ``data``.

    Each attempt is predicted from the learner's attempts before it; metrics
    are computed once over all scored attempts. Items with several KCs are
    scored once per question (the model fuses its KC predictions).

    Args:
        model: a fitted kt model.
        data: test interactions encoded with the model's vocabulary.
        include_first: also score each learner's first attempt.
        breakdown: add per-KC metrics and reliability bins.

    Returns:
        Dict with ``protocol``, the settings, the metrics (``auc``,
        ``accuracy``, ``rmse``, ``logloss``, ``brier``, ``ece``, ``n``) and,
        with ``breakdown``, ``per_kc`` and ``reliability``.
    """
    preds = model.predict(data)
    s = scored(preds, include_first=include_first)
    y = s["correct"].to_numpy()
    p = s["prob"].to_numpy()
    result = {
        "protocol": "next",
        "model": model.name,
        "data": data.source,
        "include_first": include_first,
        "scoring": "question" if data.multi_kc else "attempt",
        "window": getattr(model.config, "eval_mode", "full"),
        "window_length": getattr(model.config, "window", None),
        "learners": data.n_users,
        "attempts": data.n_rows,
        **metrics.summary(y, p),
    }
    unknown = data.stats.get("unknown_kcs", 0)
    if unknown:
        result["unknown_kcs"] = unknown
    if breakdown:
        result["per_kc"] = per_kc(s)
        result["reliability"] = metrics.reliability(y, p)
    return result


def prediction_arrays(preds: pl.DataFrame, include_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of the scored rows of a predictions frame."""
    s = scored(preds, include_first=include_first)
    return s["correct"].to_numpy(), s["prob"].to_numpy()
