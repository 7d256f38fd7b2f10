"""Interactions -> padded per-learner arrays with masks, windows and buckets.

Everything here is NumPy so ingestion never pays JAX's import or compile
cost; models move batches to the device themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import polars as pl
from jaxtyping import Bool, Float, Int

from kt.errors import KTError

DEFAULT_BUCKETS = (16, 32, 64, 128, 256, 512, 1024)
BATCHINGS = ("bucket", "random", "pack")
# The per-step arrays of Sequences and the value that marks padding in each.
STEP_FIELDS = (("skill", -1), ("item", -1), ("correct", 0), ("time", np.nan), ("mask", False), ("row", -1), ("group", -1))


@dataclass(frozen=True)
class Sequences:
    """Padded sequences; row n is one learner (or one window of a learner).

    Attributes:
        skill: KC index per step, -1 on padding / unknown KC.
        item: item index per step, -1 where absent.
        correct: 0/1 outcomes, 0 on padding.
        time: seconds (NaN where absent or padding).
        mask: True on real steps.
        row: index of the step's row in the source frame, -1 on padding.
        user: ``user_idx`` of each sequence.
        start: position of the sequence's first step within its learner.
        group: question occurrence of each step (the canonical frame's row,
            shared by the KC rows of a multi-KC question), -1 on padding.
        segment: ``None``, or for packed rows (:mod:`kt.data.packing`) the
            packed sequence each step belongs to, -1 on padding; recurrent
            state restarts where it changes.
    """

    skill: Int[np.ndarray, "N T"]
    item: Int[np.ndarray, "N T"]
    correct: Int[np.ndarray, "N T"]
    time: Float[np.ndarray, "N T"]
    mask: Bool[np.ndarray, "N T"]
    row: Int[np.ndarray, "N T"]
    user: Int[np.ndarray, " N"]
    start: Int[np.ndarray, " N"]
    group: Int[np.ndarray, "N T"]
    segment: Int[np.ndarray, "N T"] | None = None

    @property
    def lengths(self) -> Int[np.ndarray, " N"]:
        """Number of real steps per sequence."""
        return self.mask.sum(axis=1)

    def take(self, idx: np.ndarray, length: int | None = None) -> "Sequences":
        """Select sequences and optionally cut/pad the time axis to ``length``."""
        out = {}
        T = self.mask.shape[1]
        L = T if length is None else length
        for name, fill in STEP_FIELDS:
            arr = getattr(self, name)[idx]
            if L <= T:
                arr = arr[:, :L]
            else:
                pad = np.full((arr.shape[0], L - T), fill, dtype=arr.dtype)
                arr = np.concatenate([arr, pad], axis=1)
            out[name] = arr
        return Sequences(**out, user=self.user[idx], start=self.start[idx])


def build_sequences(
    frame: pl.DataFrame, *, window: int | None = None, min_len: int = 1, max_cells: int = 200_000_000
) -> Sequences:
    """Pad a canonical (single-KC or exploded) frame into per-learner arrays.

    Args:
        frame: sorted canonical frame with ``user_idx``, scalar ``skill_idx``,
            ``item_idx``, ``correct`` and ``timestamp``; an exploded frame
            (``Interactions.explode``) also has ``attempt``, which becomes
            ``group``.
        window: if given, cut each learner into consecutive non-overlapping
            windows of this length (history resets at each window).
        min_len: drop sequences (windows) shorter than this.
        max_cells: refuse to allocate more padded cells than this (a long
            tail of learners makes full padding explode; use ``window``).

    Returns:
        :class:`Sequences` with T = the longest (window) length.
    """
    user = frame["user_idx"].to_numpy()
    n = len(user)
    if n == 0:
        z = np.zeros((0, 0), np.int32)
        return Sequences(
            z,
            z,
            z.astype(np.int8),
            z.astype(np.float64),
            z.astype(bool),
            z.astype(np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            z.astype(np.int64),
        )
    boundary = np.empty(n, dtype=bool)
    boundary[0] = True
    np.not_equal(user[1:], user[:-1], out=boundary[1:])
    starts = np.flatnonzero(boundary)
    seq_of_row = np.cumsum(boundary) - 1
    pos = np.arange(n) - starts[seq_of_row]
    if window:
        chunk = pos // window
        new = boundary | (pos % window == 0)
        seq_of_row = np.cumsum(new) - 1
        step = pos % window
        first_pos = (chunk * window)[new]
    else:
        step = pos
        first_pos = np.zeros(len(starts), dtype=np.int64)
    n_seq = int(seq_of_row[-1]) + 1
    lengths = np.bincount(seq_of_row, minlength=n_seq)
    T = int(lengths.max())
    if n_seq * T > max_cells:
        raise KTError(
            f"padding {n_seq:,} sequences to length {T:,} needs {n_seq * T:,} cells "
            f"({n / (n_seq * T):.1%} real); pass window=L to cut learners into windows of length L"
        )

    def pad(values: np.ndarray, fill, dtype) -> np.ndarray:
        out = np.full((n_seq, T), fill, dtype=dtype)
        out[seq_of_row, step] = values
        return out

    ts = frame["timestamp"].to_numpy()
    seqs = Sequences(
        skill=pad(frame["skill_idx"].to_numpy(), -1, np.int32),
        item=pad(frame["item_idx"].to_numpy(), -1, np.int32),
        correct=pad(frame["correct"].to_numpy(), 0, np.int8),
        time=pad(ts.astype(np.float64), np.nan, np.float64),
        mask=pad(np.ones(n, bool), False, bool),
        row=pad(np.arange(n), -1, np.int64),
        user=user[_first_rows(seq_of_row)].astype(np.int32),
        start=first_pos.astype(np.int64),
        group=pad(frame["attempt"].to_numpy() if "attempt" in frame.columns else np.arange(n), -1, np.int64),
    )
    if min_len > 1:
        keep = np.flatnonzero(lengths >= min_len)
        seqs = seqs.take(keep, int(lengths[keep].max()) if len(keep) else 0)
    return seqs


def _first_rows(seq_of_row: np.ndarray) -> np.ndarray:
    first = np.empty(len(seq_of_row), dtype=bool)
    first[0] = True
    np.not_equal(seq_of_row[1:], seq_of_row[:-1], out=first[1:])
    return np.flatnonzero(first)


def bucket_length(length: int, buckets: tuple[int, ...] = DEFAULT_BUCKETS) -> int:
    """Smallest bucket >= ``length`` (multiples of the largest bucket beyond it).

    Padding every batch to one of a few lengths bounds the number of jit
    compilations to the number of buckets.
    """
    for b in buckets:
        if length <= b:
            return b
    top = buckets[-1]
    return -(-length // top) * top


def batches(
    seqs: Sequences,
    batch_size: int,
    *,
    rng: np.random.Generator | None = None,
    buckets: tuple[int, ...] = DEFAULT_BUCKETS,
    batching: str = "bucket",
) -> Iterator[Sequences]:
    """Yield batches padded to a bucket length.

    With ``rng``, the order of sequences and of batches is shuffled;
    without it, the order is deterministic (and ``random`` and ``pack``
    fall back to ``bucket``).

    Args:
        seqs: all sequences.
        batch_size: sequences per batch (the last batch of a bucket may be
            smaller; callers that need a fixed shape pad it).
        rng: NumPy generator for shuffling, or ``None``.
        buckets: allowed padded lengths.
        batching: ``bucket`` groups sequences of similar length (little
            padding, but each batch holds one kind of learner); ``random``
            draws batches uniformly (the gradient statistics of unsorted
            loaders, padded to the batch's longest sequence); ``pack`` draws
            them uniformly and packs each batch's sequences side by side
            into rows of the longest sequence's bucket length
            (:func:`kt.data.packing.pack`; for models that restart their
            state at segment starts).

    Yields:
        :class:`Sequences` of at most ``batch_size`` rows, time axis padded
        to a bucket length.
    """
    if batching not in BATCHINGS:
        raise ValueError(f"batching={batching!r}: choose one of {', '.join(BATCHINGS)}")
    lengths = seqs.lengths
    uniform = rng is not None and batching != "bucket"
    if rng is not None and uniform:
        order = rng.permutation(len(lengths))
    else:
        noise = rng.random(len(lengths)) if rng is not None else np.arange(len(lengths)) / max(len(lengths), 1)
        # Longest first, so the one partial batch holds the shortest sequences
        # and pads to a short bucket instead of to the longest one.
        order = np.lexsort((noise, -lengths))
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(groups)
    if uniform and batching == "pack" and len(lengths):
        from kt.data.packing import pack

        width = bucket_length(int(lengths.max()), buckets)  # one width per call: only the row count varies
        for idx in groups:
            yield pack(seqs, idx, width, batch_size)
        return
    for idx in groups:
        yield seqs.take(idx, bucket_length(int(lengths[idx].max()), buckets))


def length_batches(
    seqs: Sequences,
    rows: int,
    buckets: tuple[int, ...] = DEFAULT_BUCKETS,
    *,
    rows_at: Callable[[int], int] | None = None,
) -> Iterator[tuple[Int[np.ndarray, " B"], Sequences]]:
    """Prediction batches: the sequences from shortest to longest, each batch padded to a bucket length.

    Sorting by length keeps the padding of every batch small; the order is
    stable, so equal lengths keep their input order.

    Args:
        seqs: the sequences to predict.
        rows: sequences per batch.
        buckets: allowed padded lengths (see :func:`bucket_length`).
        rows_at: optional cap on the rows of a batch given its padded length
            ``T`` (for models whose memory grows with ``T``): the next batch
            holds ``rows_at(T)`` sequences, where ``T`` is the bucket length
            of the next ``rows`` sequences. It must not exceed ``rows``.

    Yields:
        ``(idx, batch)``: the indices of the batch's sequences in ``seqs``,
        and those sequences with the time axis cut or padded to the bucket
        length of the longest.
    """
    lengths = seqs.lengths
    order = np.argsort(lengths, kind="stable")
    i = 0
    while i < len(order):
        n = rows
        if rows_at is not None:
            n = rows_at(bucket_length(int(lengths[order[min(i + rows, len(order)) - 1]]), buckets))
        idx = order[i : i + n]
        yield idx, seqs.take(idx, bucket_length(int(lengths[idx].max()), buckets))
        i += len(idx)
