"""Host-side layout for vectorised BKT: packed subsequences and slot tables.

Every (learner, KC) subsequence is an independent HMM. Subsequences are
packed end to end into rows of a time-major grid ``[L, rows]`` (L = the
longest subsequence), with ``first``/``last`` flags resetting the filter, so
one ``lax.scan`` of L steps covers all KCs and learners with little padding.

Parameters live in *slots*: one per (KC, class) pair seen in training, for
each of prior, resource (learn/forget) and guess/slip. Per-step slot indices
let one gather turn the slot tables into per-step parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from jaxtyping import Bool, Int

DEFAULT_CLASS = -1  # multipair: a learner's first attempt on a KC


@dataclass(frozen=True)
class Packed:
    """Packed grid, time-major (``[L, rows]``).

    Attributes:
        obs: 1/0 response, -1 where missing or padding.
        valid: real step (not padding).
        first: first step of a (learner, KC) subsequence.
        last: last step of a subsequence.
        kc: KC index of the step (0 on padding).
        prior_slot / res_slot / gs_slot: slot of the step's prior class
            (meaningful at first steps), resource (transition *out of* the
            step) and guess/slip class.
        src: index of the step in the exploded frame, -1 on padding.
        row_prior_slot / row_res_slot / row_gs_slot: the slot of each row's
            first step (every step of a row shares the prior slot and KC;
            resource and guess/slip slots are shared unless per-item).
    """

    obs: Int[np.ndarray, "L rows"]
    valid: Bool[np.ndarray, "L rows"]
    first: Bool[np.ndarray, "L rows"]
    last: Bool[np.ndarray, "L rows"]
    kc: Int[np.ndarray, "L rows"]
    prior_slot: Int[np.ndarray, "L rows"]
    res_slot: Int[np.ndarray, "L rows"]
    gs_slot: Int[np.ndarray, "L rows"]
    src: Int[np.ndarray, "L rows"]
    row_prior_slot: Int[np.ndarray, " rows"]
    row_res_slot: Int[np.ndarray, " rows"]
    row_gs_slot: Int[np.ndarray, " rows"]


def subsequence_order(kc: np.ndarray, user: np.ndarray) -> np.ndarray:
    """Row order grouping rows by (KC, learner), time order kept inside."""
    return np.lexsort((np.arange(len(kc)), user, kc))


def pack(lengths: np.ndarray, group: np.ndarray, row_len: int | None = None) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Shelf-pack subsequences (longest first) into rows, one group per row.

    Keeping a single group (the prior slot, hence a single KC) per row lets
    the E-step sum row-constant statistics over time before scattering them
    to slots, which is far cheaper than scattering every step.

    Args:
        lengths: length of each subsequence.
        group: group id of each subsequence; rows never mix groups.
        row_len: row length; defaults to the longest subsequence, rounded up
            to a multiple of 8 so nearby data sizes share compiled shapes.

    Returns:
        (row, offset) per subsequence, the row length and the row count.
    """
    if len(lengths) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 8, 1
    L = int(row_len or -(-int(lengths.max()) // 8) * 8)
    order = np.lexsort((-lengths, group))
    sl = lengths[order]
    sg = group[order]
    cum = np.concatenate([[0], np.cumsum(sl)])
    group_end = np.r_[np.flatnonzero(sg[1:] != sg[:-1]) + 1, len(sg)]
    row_of = np.empty(len(sl), np.int64)
    off_of = np.empty(len(sl), np.int64)
    start, r, gi = 0, 0, 0
    # One pass per output row (not per subsequence): each row takes the next
    # run of same-group subsequences whose lengths fit.
    while start < len(sl):
        while group_end[gi] <= start:
            gi += 1
        end = int(np.searchsorted(cum, cum[start] + L, side="right")) - 1
        end = min(max(end, start + 1), int(group_end[gi]))
        row_of[start:end] = r
        off_of[start:end] = cum[start:end] - cum[start]
        start, r = end, r + 1
    row = np.empty_like(row_of)
    off = np.empty_like(off_of)
    row[order] = row_of
    off[order] = off_of
    return row, off, L, r


def round_rows(n: int) -> int:
    """Round a row count up (to 1/8 octave steps) so shapes repeat across runs."""
    if n <= 8:
        return 8
    step = 1 << max(int(np.log2(n)) - 3, 0)
    return -(-n // step) * step


def build_packed(
    kc: np.ndarray,
    user: np.ndarray,
    obs: np.ndarray,
    prior_slot: np.ndarray,
    res_slot: np.ndarray,
    gs_slot: np.ndarray,
    *,
    row_len: int | None = None,
    min_rows: int = 0,
) -> tuple[Packed, np.ndarray]:
    """Pack per-row arrays (already in subsequence order) into the grid.

    Args:
        kc, user, obs, prior_slot, res_slot, gs_slot: one entry per exploded
            row, grouped by (KC, learner) with time order inside.
        row_len: force the row length (>= the longest subsequence).
        min_rows: pad the grid to at least this many rows.

    Returns:
        The packed grid and, per input row, its flat position ``t * rows + r``.
    """
    n = len(kc)
    boundary = np.ones(n, dtype=bool)
    if n > 1:
        boundary[1:] = (kc[1:] != kc[:-1]) | (user[1:] != user[:-1])
    seq = np.cumsum(boundary) - 1
    starts = np.flatnonzero(boundary)
    lengths = np.diff(np.append(starts, n))
    row, off, L, rows = pack(lengths, prior_slot[starts], row_len)
    rows = max(round_rows(rows), min_rows)
    pos_in_seq = np.arange(n) - starts[seq]
    t = off[seq] + pos_in_seq
    r = row[seq]
    is_last = np.zeros(n, dtype=bool)
    is_last[np.append(starts[1:], n) - 1] = True

    def row_values(values):
        out = np.zeros(rows, np.int32)
        out[r[::-1]] = values[::-1]  # any step of the row; rows share these by construction
        return out

    def grid(values, fill, dtype):
        g = np.full((L, rows), fill, dtype=dtype)
        g[t, r] = values
        return g

    packed = Packed(
        obs=grid(obs, -1, np.int8),
        valid=grid(np.ones(n, bool), False, bool),
        first=grid(boundary, False, bool),
        last=grid(is_last, False, bool),
        kc=grid(kc, 0, np.int32),
        prior_slot=grid(prior_slot, 0, np.int32),
        res_slot=grid(res_slot, 0, np.int32),
        gs_slot=grid(gs_slot, 0, np.int32),
        src=grid(np.arange(n), -1, np.int64),
        row_prior_slot=row_values(prior_slot),
        row_res_slot=row_values(res_slot),
        row_gs_slot=row_values(gs_slot),
    )
    return packed, t * rows + r


@dataclass(frozen=True)
class Slots:
    """(KC, class) -> slot tables for prior, resource and guess/slip.

    Attributes:
        prior / res / gs: frames with ``skill_idx``, ``cls`` and ``slot``.
    """

    prior: pl.DataFrame
    res: pl.DataFrame
    gs: pl.DataFrame

    def kc_of(self, kind: str) -> np.ndarray:
        """KC index of every slot of ``kind`` (``prior``, ``res``, ``gs``)."""
        return getattr(self, kind).sort("slot")["skill_idx"].to_numpy()

    def to_dict(self) -> dict:
        """JSON-ready (kc, class) lists in slot order."""
        return {
            k: {c: getattr(self, k).sort("slot")[c].to_list() for c in ("skill_idx", "cls")}
            for k in ("prior", "res", "gs")
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Slots":
        """Inverse of :meth:`to_dict`."""

        def frame(v):
            n = len(v["skill_idx"])
            return pl.DataFrame(
                {
                    "skill_idx": pl.Series(v["skill_idx"], dtype=pl.Int32),
                    "cls": pl.Series(v["cls"], dtype=pl.Int64),
                    "slot": pl.Series(np.arange(n), dtype=pl.Int32),
                }
            )

        return cls(frame(d["prior"]), frame(d["res"]), frame(d["gs"]))


def make_slots(keys: pl.DataFrame) -> pl.DataFrame:
    """Slot table for the distinct (skill_idx, cls) pairs of ``keys``, sorted."""
    u = keys.select("skill_idx", "cls").unique().sort("skill_idx", "cls")
    return u.with_columns(pl.int_range(pl.len(), dtype=pl.Int32).alias("slot"))


def lookup(keys: pl.DataFrame, table: pl.DataFrame, fallback_base: int) -> tuple[np.ndarray, np.ndarray]:
    """Slot of each (skill_idx, cls) row; unknown pairs get a fallback slot.

    Fallback slots follow the fitted ones: ``fallback_base + kc`` is the mean
    over that KC's classes, ``fallback_base + K`` (K = number of KCs, passed
    as unknown KCs' index) the mean over all KCs.

    Returns:
        (slot per row, True where a fallback was used).
    """
    j = keys.select("skill_idx", "cls").join(table, on=["skill_idx", "cls"], how="left", maintain_order="left")
    slot = j["slot"].to_numpy()
    miss = j["slot"].is_null().to_numpy()
    if miss.any():
        slot = np.where(miss, fallback_base + j["skill_idx"].to_numpy(), slot)
    return slot.astype(np.int32), miss
