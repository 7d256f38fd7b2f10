"""Summaries of data for ``kt data inspect`` (JSON-ready)."""

from __future__ import annotations

from typing import cast

import numpy as np
import polars as pl

from kt.data.schema import Interactions, correct_rate


def inspect(data: Interactions) -> dict:
    """Counts, rates, lengths and warnings of a loaded file.

    Args:
        data: interactions loaded with ``min_attempts=1`` (nothing dropped).

    Returns:
        JSON-ready dict: ``file``, ``format``, ``mapping``, ``rows``,
        ``learners``, ``kcs``, ``items``, ``correct_rate``, ``multi_kc_rows``,
        ``time_span_days``, ``sequence_length`` quantiles, ``duplicates``,
        ``single_attempt_learners`` and ``warnings``.
    """
    f = data.frame
    lengths = f.group_by("user_idx").len()["len"].to_numpy()
    q = np.quantile(lengths, [0, 0.25, 0.5, 0.75, 0.9, 1.0]) if len(lengths) else np.zeros(6)
    multi_rows = int((f["skill_id"].list.len() > 1).sum()) if data.multi_kc else 0
    span = None
    if data.has_time:
        ts = f["timestamp"].drop_nulls()  # Float64 seconds, some present (has_time)
        span = (cast(float, ts.max()) - cast(float, ts.min())) / 86400.0
    single = int((lengths == 1).sum())
    warnings = list(data.notes)
    if single:
        warnings.append(f"{single} learners have a single attempt (training drops them)")
    return {
        "file": data.source,
        "format": data.fmt,
        "mapping": data.colmap.to_dict() if data.colmap else None,
        "rows": data.n_rows,
        "learners": int(len(lengths)),
        "kcs": len(data.vocab.skill_id),
        "items": len(data.vocab.item_id),
        "correct_rate": correct_rate(f),
        "multi_kc_rows": multi_rows,
        "time_span_days": span,
        "sequence_length": dict(zip(["min", "q25", "median", "q75", "q90", "max"], [float(v) for v in q])),
        "duplicates": int(data.stats.get("duplicates", 0)),
        "single_attempt_learners": single,
        "warnings": warnings,
    }


def canonical_export(data: Interactions) -> pl.DataFrame:
    """The canonical columns with original ids, as written by ``kt data convert``."""
    return data.frame.select("user_id", "skill_id", "item_id", "correct", "timestamp", "order")
