"""Late fusion of the KC-row predictions of a multi-KC question (pyKT's three).

Every KC row of a question is predicted from the history before the
question; fusion turns those m probabilities into one per question:

* ``mean``: their mean (kt's default and pyKT's headline ``late_mean``).
* ``vote``: the mean of the rows on the majority side of 0.5; a tie goes
  to the side >= 0.5 (pyKT ``late_vote``).
* ``all``: the mean of the rows >= 0.5 when every row is >= 0.5, otherwise
  the mean of the rows below 0.5 (pyKT ``late_all``: correct only if all
  KCs are predicted correct).

The models fuse with the mean (:func:`question_means`, from their per-row
arrays) and may report the rows' values (:func:`question_rows`, the
``prob_kc`` column) for the evaluation to apply another rule with
:func:`fuse`. This module sits in the models layer so that both the
models and :mod:`kt.eval` (which re-exports it) use the one rule.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kt.errors import check_choice

FUSIONS = ("mean", "vote", "all")


def fuse(prob_kc: pl.Series | list, how: str = "mean") -> np.ndarray:
    """One probability per question from its KC-row probabilities.

    Args:
        prob_kc: per question, the list of its KC rows' probabilities.
        how: ``mean``, ``vote`` or ``all``.

    Returns:
        Float64 array, one value per question.

    Raises:
        KTError: unknown ``how``.
    """
    check_choice("--fusion ", how, FUSIONS)
    s = prob_kc if isinstance(prob_kc, pl.Series) else pl.Series("p", prob_kc, dtype=pl.List(pl.Float64))
    f = pl.DataFrame({"p": s.cast(pl.List(pl.Float64))})
    if how == "mean":
        return f.select(pl.col("p").list.mean())["p"].to_numpy()
    high = pl.col("p").list.eval(pl.element().filter(pl.element() >= 0.5)).list.mean()
    low = pl.col("p").list.eval(pl.element().filter(pl.element() < 0.5)).list.mean()
    n_high = pl.col("p").list.eval(pl.element() >= 0.5).list.sum()
    n = pl.col("p").list.len()
    take_high = (2 * n_high >= n) if how == "vote" else (n_high == n)
    return f.select(pl.when(take_high).then(high).otherwise(low).alias("p"))["p"].to_numpy().astype(np.float64)


def question_means(question: np.ndarray | pl.Series, **rows: np.ndarray | pl.Series) -> pl.DataFrame:
    """The mean fusion of per-KC-row values: one row per question, each column its rows' mean.

    Args:
        question: per KC row, its question (``attempt`` of
            :meth:`kt.data.schema.Interactions.explode`: rows of a question
            are adjacent and questions ascend).
        **rows: per KC row, the values to fuse (probabilities; a boolean
            column's mean is the share of its rows that are set).

    Returns:
        One row per question in order: a Float64 column per keyword, the
        mean over the question's KC rows (single-KC data: the values).
    """
    return (
        pl.DataFrame({"_q": question, **rows})
        .group_by("_q", maintain_order=True)
        .agg([pl.col(name).mean() for name in rows])
        .drop("_q")
    )


def question_rows(question: np.ndarray | pl.Series, values: np.ndarray) -> pl.Series:
    """Per question, the list of its KC rows' values (the ``prob_kc`` column :func:`fuse` reads).

    Args:
        question: per KC row, its question (as in :func:`question_means`).
        values: per KC row, the value (a probability).

    Returns:
        ``prob_kc``: a list of Float64 per question, in order.
    """
    return pl.DataFrame({"_q": question, "prob_kc": values}).group_by("_q", maintain_order=True).agg("prob_kc")["prob_kc"]
