"""Multi-step (open-loop) evaluation: split each learner into a history and a future to predict.

The predictions come from ``Model.predict_ahead`` (the generic
implementation, for any model, is :func:`kt.models.ahead.predict_ahead`;
PSI-KT propagates its own dynamics). EVALUATION.md §7, pyKT's "predict
future": non-accumulative (pyKT ``use_pred=0``) or accumulative
(``use_pred=1``).
"""

from __future__ import annotations

import polars as pl

from kt.data.schema import Interactions
from kt.errors import KTError
from kt.models.ahead import MAX_ROWS, MODE_NAMES, MODES, canonical_mode, predict_ahead

__all__ = ["MAX_ROWS", "MODES", "MODE_NAMES", "canonical_mode", "predict_ahead", "split_history"]


def split_history(
    data: Interactions,
    *,
    history: int | None = None,
    history_frac: float | None = None,
    horizon: int | None = None,
    require_full: bool = False,
) -> tuple[Interactions, Interactions, dict]:
    """Cut every learner into an observed history and the attempts to predict.

    Args:
        data: interactions (learner-sorted, as loaded).
        history: number of observed attempts per learner.
        history_frac: instead of ``history``, observe the first
            ``int(n * history_frac)`` of a learner's n attempts, at least 1 and
            at most n - 1 (pyKT's ``train_ratio`` rule).
        horizon: predict at most this many attempts after the history
            (``None``: all remaining ones).
        require_full: keep only learners with ``history + horizon`` attempts,
            so every horizon step has the same learners.

    Returns:
        ``(history, future, info)``: two :class:`Interactions` over the same
        learners (both learner-sorted) and counts ``learners``,
        ``skipped_learners``, ``history_rows`` and ``future_rows``.

    Raises:
        KTError: invalid settings.
    """
    if (history is None) == (history_frac is None):
        raise KTError("multistep: give exactly one of --history H or --history-frac F")
    if history is not None and history < 1:
        raise KTError(f"--history {history}: must be >= 1")
    if history_frac is not None and not 0 < history_frac < 1:
        raise KTError(f"--history-frac {history_frac}: must be in (0, 1)")
    if horizon is not None and horizon < 1:
        raise KTError(f"--horizon {horizon}: must be >= 1")
    if require_full and (history is None or horizon is None):
        raise KTError("multistep: a full horizon needs a fixed --history and --horizon")
    f = data.frame.with_columns(pl.int_range(pl.len()).over("user_idx").alias("_pos"), pl.len().over("user_idx").alias("_n"))
    if history is not None:
        h = pl.lit(history, dtype=pl.Int64)
    else:
        # int() as in pyKT's get_cur_teststart; then at least one observed and one predicted.
        h = (pl.col("_n") * history_frac).floor().cast(pl.Int64).clip(1, pl.max_horizontal(pl.col("_n") - 1, 1))
    f = f.with_columns(h.alias("_h"))
    need = pl.col("_h") + (horizon if require_full else 1)
    f = f.filter(pl.col("_n") >= need)
    n_all = data.n_users
    hist = f.filter(pl.col("_pos") < pl.col("_h"))
    fut = f.filter(pl.col("_pos") >= pl.col("_h"))
    if horizon is not None:
        fut = fut.filter(pl.col("_pos") < pl.col("_h") + horizon)
    cols = data.frame.columns
    mk = lambda fr: Interactions(fr.select(cols), data.vocab, data.source, data.colmap, data.fmt, data.notes, dict(data.stats))  # noqa: E731
    users = f["user_idx"].n_unique()
    info = {"learners": users, "skipped_learners": n_all - users, "history_rows": hist.height, "future_rows": fut.height}
    return mk(hist), mk(fut), info
