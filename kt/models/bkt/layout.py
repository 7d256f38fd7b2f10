"""Host-side layout for vectorised BKT: packed subsequences and slot tables.

Every (learner, KC) subsequence is an independent HMM. Subsequences are
packed end to end into rows of a time-major grid ``[L, rows]`` (L = the
longest subsequence), with ``first``/``last`` flags resetting the filter, so
one ``lax.scan`` of L steps covers all KCs and learners with little padding.
The lane engine (:class:`LaneData`) packs the same way, into rows of a
chosen capacity, and encodes each step in one int8 code.

Parameters live in *slots*: one per (KC, class) pair seen in training, for
each of prior, resource (learn/forget) and guess/slip. Per-step slot indices
let one gather turn the slot tables into per-step parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from jaxtyping import Bool, Int

DEFAULT_CLASS = -1  # multipair: a learner's first attempt on a KC

# Step codes of the lane engine (int8; see kt.models.bkt.lanes.lane_chunk): bits
# 0-1 the response (0 wrong, 1 right, MISSING, PAD: no step), FIRST where a
# subsequence starts (and on padding), CLOSE where the previous step ended a
# subsequence.
MISSING, PAD, FIRST, CLOSE = 2, 3, 4, 8
PAD_CODE = FIRST | PAD


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
    if len(kc) == 0:
        return np.zeros(0, np.int64)
    kc, user = np.asarray(kc, np.int64), np.asarray(user, np.int64)
    lo, span = int(user.min()), int(user.max() - user.min()) + 1
    if span * (int(kc.max()) - int(kc.min()) + 1) < 2**62:  # one stable sort on a combined key
        return np.argsort((kc - kc.min()) * span + (user - lo), kind="stable")
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
    row_of, off_of, n_rows = next_fit(lengths[order], group[order], L)
    row = np.empty_like(row_of)
    off = np.empty_like(off_of)
    row[order] = row_of
    off[order] = off_of
    return row, off, L, n_rows


def next_fit(lengths: np.ndarray, group: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Greedy next-fit of consecutive subsequences into rows of ``cap`` steps.

    Each row takes the next run of same-group subsequences whose total
    length fits (a longer subsequence gets a row of its own). All groups
    advance together, one row per pass, so the loop runs as many times as
    the largest group has rows.

    Args:
        lengths: subsequence lengths, grouped (callers sort by group, then
            longest first).
        group: group of each subsequence; rows never mix groups.
        cap: row capacity in steps.

    Returns:
        (row, offset in the row) per subsequence, and the row count; rows
        are numbered in subsequence order.
    """
    n = len(lengths)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    cum = np.concatenate([[0], np.cumsum(lengths)])
    bounds = np.flatnonzero(group[1:] != group[:-1]) + 1
    s, e = np.r_[0, bounds], np.r_[bounds, n]
    is_start = np.zeros(n, bool)
    while len(s):
        is_start[s] = True
        nxt = np.searchsorted(cum, cum[s] + cap, side="right") - 1
        s = np.minimum(np.maximum(nxt, s + 1), e)
        keep = s < e
        s, e = s[keep], e[keep]
    row = np.cumsum(is_start) - 1
    starts = np.flatnonzero(is_start)
    return row, cum[:-1] - cum[starts[row]], len(starts)


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
        return {k: {c: getattr(self, k).sort("slot")[c].to_list() for c in ("skill_idx", "cls")} for k in ("prior", "res", "gs")}

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


def slots_of(kc: np.ndarray, cls: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
    """Slot table of the distinct (KC, class) pairs (as :func:`make_slots`) and each row's slot.

    NumPy on one combined integer key; equivalent to ``make_slots`` followed
    by ``lookup`` on the same rows, several times faster.
    """
    kc = np.asarray(kc, np.int64)
    cls = np.asarray(cls, np.int64)
    if len(kc) == 0:
        return make_slots(
            pl.DataFrame({"skill_idx": pl.Series([], dtype=pl.Int32), "cls": pl.Series([], dtype=pl.Int64)})
        ), np.zeros(0, np.int32)
    lo = int(cls.min())
    span = int(cls.max()) - lo + 1
    if span * (int(kc.max()) + 1) >= 2**62:  # key would overflow: polars
        keys = pl.DataFrame({"skill_idx": kc.astype(np.int32), "cls": cls})
        table = make_slots(keys)
        return table, lookup(keys, table, 0)[0]
    uniq, inverse = np.unique(kc * span + (cls - lo), return_inverse=True)
    table = pl.DataFrame(
        {
            "skill_idx": pl.Series(uniq // span, dtype=pl.Int32),
            "cls": pl.Series(uniq % span + lo, dtype=pl.Int64),
            "slot": pl.Series(np.arange(len(uniq)), dtype=pl.Int32),
        }
    )
    return table, inverse.reshape(-1).astype(np.int32)


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


@dataclass(frozen=True)
class LaneData:
    """Host view of the data for the lane engine (row-constant slots).

    Subsequences are sorted by group (prior slot, which fixes the KC and the
    resource and guess/slip slots), longest first; ``rows`` packs them into
    rows of a given capacity.

    Attributes:
        code: per input row (subsequence order): response code (0 wrong,
            1 right, ``MISSING``) plus ``FIRST`` at each subsequence start.
        seq_start / seq_len / seq_group: subsequences (sorted as above).
        group_kc / group_res / group_gs: KC, resource and guess/slip slot of
            each group (prior slot).
        n_first: subsequences per prior slot (pi's denominator).
        n_trans: transitions per resource slot.
        n_seen / n_wrong: observed / wrong responses per guess/slip slot.
        missing: some responses are missing.
    """

    code: np.ndarray
    seq_start: np.ndarray
    seq_len: np.ndarray
    seq_group: np.ndarray
    group_kc: np.ndarray
    group_res: np.ndarray
    group_gs: np.ndarray
    n_first: np.ndarray
    n_trans: np.ndarray
    n_seen: np.ndarray
    n_wrong: np.ndarray
    missing: bool
    _rows: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, kc, user, obs, prior_slot, res_slot, gs_slot, sizes: tuple[int, int, int]) -> "LaneData":
        """From per-row arrays in subsequence order (as for :func:`build_packed`)."""
        n = len(kc)
        first = np.ones(n, dtype=bool)
        if n > 1:
            first[1:] = (kc[1:] != kc[:-1]) | (user[1:] != user[:-1])
        last = np.r_[first[1:], True] if n else first
        starts = np.flatnonzero(first)
        lengths = np.diff(np.append(starts, n))
        group = prior_slot[starts]
        order = np.lexsort((-lengths, group))
        n_p, n_r, n_g = sizes
        group_kc = np.zeros(n_p, np.int64)
        group_res = np.zeros(n_p, np.int64)
        group_gs = np.zeros(n_p, np.int64)
        group_kc[prior_slot] = kc
        group_res[prior_slot] = res_slot
        group_gs[prior_slot] = gs_slot
        resp = np.where(obs == 1, 1, np.where(obs == 0, 0, MISSING)).astype(np.int8)

        def count(slot, mask, size):
            return np.bincount(slot[mask], minlength=size).astype(np.float64)

        return cls(
            code=resp + (FIRST * first).astype(np.int8),
            seq_start=starts[order],
            seq_len=lengths[order],
            seq_group=group[order],
            group_kc=group_kc,
            group_res=group_res,
            group_gs=group_gs,
            n_first=count(prior_slot, first, n_p),
            n_trans=count(res_slot, ~last, n_r),
            n_seen=count(gs_slot, obs >= 0, n_g),
            n_wrong=count(gs_slot, obs == 0, n_g),
            missing=bool((obs < 0).any()),
        )

    def rows(self, cap: int, pad_to: int) -> "LaneRows":
        """All subsequences packed into rows of ``cap`` steps (cached per capacity).

        Args:
            cap: row capacity (steps); longer subsequences get their own row.
            pad_to: the code matrix's length is rounded up to a multiple of it.

        Returns:
            The rows, with their step codes.
        """
        key = (cap, pad_to)
        if key in self._rows:
            return self._rows[key]
        lengths = self.seq_len
        row, off, n_rows = next_fit(lengths, self.seq_group, cap)
        row_len = np.bincount(row, weights=lengths, minlength=n_rows).astype(np.int64) + 1  # + closing step
        row_group = np.zeros(n_rows, np.int64)
        row_group[row] = self.seq_group
        T = -(-int(row_len.max(initial=1)) // pad_to) * pad_to
        code = np.full((T, n_rows), PAD_CODE, np.int8)
        seq_of_step = np.repeat(np.arange(len(lengths)), lengths)
        pos = np.arange(len(seq_of_step)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        code[off[seq_of_step] + pos, row[seq_of_step]] = self.code[self.seq_start[seq_of_step] + pos]
        later = off > 0  # a subsequence after another in its row closes the previous one
        code[off[later], row[later]] |= CLOSE
        code[row_len - 1, np.arange(n_rows)] |= CLOSE  # the closing step
        self._rows[key] = LaneRows(code=code, length=row_len, group=row_group)
        return self._rows[key]


@dataclass(frozen=True)
class LaneRows:
    """Rows of one lane layout: step codes ``[T, rows]``, lengths (with the closing step) and groups."""

    code: np.ndarray
    length: np.ndarray
    group: np.ndarray
