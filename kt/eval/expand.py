"""Questions <-> KC rows: pyKT's expansion of multi-KC items and its inverse.

kt's canonical frame has one row per question; a question with several KCs
holds them as a list. pyKT (and the AKT/DKVMN data forms) instead expand
such a question into one row per KC, consecutive and sharing the response.
Scoring those rows one by one leaks the answer: rows 2..m of a question see
row 1's outcome (EVALUATION.md §3). :func:`kc_rows` builds the expanded
form, for the explicit ``--scoring kc-row`` comparison; :func:`collapse_kc_rows`
turns already-expanded data back into questions.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kt.data.schema import Interactions


def _continues_question() -> pl.Expr:
    """True where a row repeats the previous row's learner, item and outcome with another KC."""
    return (
        (pl.col("user_idx") == pl.col("user_idx").shift(1))
        & (pl.col("item_id") == pl.col("item_id").shift(1))
        & (pl.col("correct") == pl.col("correct").shift(1))
        & (pl.col("skill_id") != pl.col("skill_id").shift(1))
    ).fill_null(False)


def kc_rows(data: Interactions) -> Interactions:
    """One row per (question, KC), consecutive in the learner's sequence.

    Args:
        data: interactions; multi-KC questions hold lists of KCs.

    Returns:
        Single-KC interactions with the same vocabulary (``data`` itself
        when it has no multi-KC column). The KC rows of a question keep its
        outcome, item, time and source line, in the order the KCs are listed.
    """
    if not data.multi_kc:
        return data
    frame = data.frame.explode(["skill_id", "skill_idx"])
    stats = {**data.stats, "expanded_questions": data.n_rows}
    return Interactions(frame, data.vocab, data.source, data.colmap, data.fmt, data.notes, stats)


def question_index(data: Interactions) -> np.ndarray:
    """For each row of :func:`kc_rows` (data), the row index of its question in ``data``."""
    if not data.multi_kc:
        return np.arange(data.n_rows)
    counts = data.frame["skill_idx"].list.len().to_numpy()
    return np.repeat(np.arange(data.n_rows), counts)


def _question_starts(data: Interactions) -> np.ndarray:
    """True where a row starts a new question (see :func:`collapse_kc_rows`)."""
    cont = data.frame.select(_continues_question().alias("c"))["c"].to_numpy().copy()
    skills = data.frame["skill_id"].to_numpy()
    seen: set = set()
    # A KC already seen in the current question means a re-attempt: only the
    # rows that continue a question need this check, in order.
    for i in np.flatnonzero(cont):
        if not cont[i - 1]:
            seen = {skills[i - 1]}
        if skills[i] in seen:
            cont[i] = False
            seen = {skills[i]}
        else:
            seen.add(skills[i])
    return ~cont


def collapse_kc_rows(data: Interactions) -> Interactions:
    """Merge KC rows that expand one question back into a multi-KC question.

    Consecutive rows of a learner with the same (non-null) item and outcome
    and different KCs are taken as one question, as in the AKT ``*_pid``
    files. A row whose KC the current question already has starts a new
    question (a re-attempt, not a second KC).

    Args:
        data: single-KC interactions, possibly expanded.

    Returns:
        Interactions with list-valued ``skill_id``/``skill_idx`` when at
        least one question has several KCs; otherwise ``data`` unchanged.
        ``stats['collapsed_kc_rows']`` counts the rows merged away.
    """
    if data.multi_kc or data.frame["item_id"].null_count() == data.n_rows:
        return data
    starts = _question_starts(data)
    if starts.all():  # every row starts a question: nothing to merge
        return data
    f = data.frame
    q = pl.Series("_q", np.cumsum(starts))
    scalar = [c for c in f.columns if c not in ("skill_id", "skill_idx")]
    grouped = (
        f.with_columns(q)
        .group_by("_q", maintain_order=True)
        .agg(*(pl.col(c).first() for c in scalar), pl.col("skill_id"), pl.col("skill_idx"))
        .select(f.columns)
    )
    merged = f.height - grouped.height
    stats = {**data.stats, "collapsed_kc_rows": merged}
    notes = (
        *data.notes,
        f"{data.source}: merged {merged} KC rows into multi-KC questions (consecutive rows with the same item and outcome)",
    )
    return Interactions(grouped, data.vocab, data.source, data.colmap, data.fmt, notes, stats)


def expanded_rows(data: Interactions) -> int:
    """Rows that look like a multi-KC question expanded into KC rows.

    Counts the rows :func:`collapse_kc_rows` would merge away (same learner,
    item and outcome as the previous row, another KC); such data scored row
    by row is leaky.
    """
    if data.multi_kc or data.frame["item_id"].null_count() == data.n_rows:
        return 0
    return int((~_question_starts(data)).sum())
