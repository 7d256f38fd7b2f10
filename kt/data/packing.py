"""Packing several short sequences into one padded row.

A batch of uniformly drawn training chunks (the gradient statistics of the
usual shuffled loaders) mixes long and short chunks, so padding each to the
longest wastes most of the compute. Packing places the chunks of one batch
side by side in rows of a fixed width; a model that restarts its recurrent
state at every segment start computes exactly what it would on the unpacked
batch, at the cost of the real positions plus a little row padding.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Int

from kt.data.sequences import STEP_FIELDS, Sequences


def first_fit(lengths: Int[np.ndarray, " n"], width: int) -> tuple[Int[np.ndarray, " n"], Int[np.ndarray, " n"], int]:
    """First-fit-decreasing bin packing of sequences into rows of ``width`` steps.

    Args:
        lengths: steps of each sequence (each <= ``width``).
        width: row length.

    Returns:
        ``(row, offset, n_rows)``: the row each sequence goes to, the step at
        which it starts there, and the number of rows used.
    """
    n = len(lengths)
    if n and int(lengths.max()) > width:
        raise ValueError(f"a sequence of {int(lengths.max())} steps does not fit a row of {width}")
    row = np.empty(n, np.int64)
    offset = np.empty(n, np.int64)
    free = np.full(n + 1, width, np.int64)  # never more rows than sequences
    used = 0
    for i in np.argsort(-lengths, kind="stable"):
        need = lengths[i]
        r = int(np.argmax(free[: used + 1] >= need))  # row `used` is empty, so always fits
        row[i], offset[i] = r, width - free[r]
        free[r] -= need
        used = max(used, r + 1)
    return row, offset, used


def row_bucket(rows: int, cap: int) -> int:
    """Rows padded to the next of 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (at most ``cap``).

    Two sizes per octave bound the row padding to a third while keeping the
    number of compiled shapes small.
    """
    size = 1
    while size < rows:
        if size < 2:
            size = 2
        elif size & (size - 1) == 0:  # a power of two p -> 3p/2
            size = size * 3 // 2
        else:  # 3p/2 -> 2p
            size = size * 4 // 3
    return max(min(size, cap), rows)


def pack(seqs: Sequences, idx: Int[np.ndarray, " n"], width: int, max_rows: int) -> Sequences:
    """The sequences ``idx`` of ``seqs`` packed into rows of ``width`` steps.

    Args:
        seqs: sequences with real steps first in each row (as
            :func:`~kt.data.sequences.build_sequences` makes them).
        idx: the sequences of one batch.
        width: row length (at least the longest of them).
        max_rows: cap on the padded row count (the unpacked batch size).

    Returns:
        :class:`Sequences` whose ``segment`` numbers each row's packed
        sequences (-1 on padding); ``user`` and ``start`` are those of each
        row's first segment.
    """
    lengths = seqs.lengths[idx]
    row, offset, used = first_fit(lengths, width)
    rows = row_bucket(used, max_rows)
    n_i, t_i = np.nonzero(seqs.mask[idx])
    r, c = row[n_i], offset[n_i] + t_i
    src = idx[n_i]
    out = {}
    for name, fill in STEP_FIELDS:
        a = getattr(seqs, name)
        o = np.full((rows, width), fill, a.dtype)
        o[r, c] = a[src, t_i]
        out[name] = o
    segment = np.full((rows, width), -1, np.int64)
    segment[r, c] = n_i
    first = np.full(rows, -1, np.int64)
    at_zero = offset == 0
    first[row[at_zero]] = idx[at_zero]
    has = first >= 0
    user = np.full(rows, -1, np.int32)
    start = np.zeros(rows, np.int64)
    user[has], start[has] = seqs.user[first[has]], seqs.start[first[has]]
    return Sequences(**out, user=user, start=start, segment=segment)
