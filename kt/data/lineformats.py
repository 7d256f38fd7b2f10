"""Headerless block formats used by KT research code.

* ``3-line`` (DKT/DKVMN): ``length`` / KC ids / responses.
* ``3-line-userid`` (e.g. Junyi folds): ``user id`` / KC ids / responses.
* ``akt-3line``: ``user_index,original_user_id`` / KC ids / responses.
* ``akt-4line``: ``user_index,original_user_id`` / item ids / KC ids / responses.
* ``kcmn-4line``: ``length,user_id`` / item ids / KC ids / responses.

Each block is one learner. Trailing commas are ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from kt.data.columns import ColumnMap
from kt.data.io import LINE_COL, RawTable
from kt.errors import DataError


def _fields(line: str) -> list[str]:
    return [f.strip() for f in line.strip().rstrip(",").split(",")]


def _block_ok(lines: list[tuple[int, str]], start: int, size: int, strict: bool = True) -> bool:
    if start + size > len(lines):
        return False
    body = [_fields(lines[start + j][1]) for j in range(1, size)]
    n = len(body[-1])
    return all(len(b) == n for b in body) and (not strict or all(v in ("0", "1") for v in body[-1]))


def _block_size(lines: list[tuple[int, str]]) -> int | None:
    # Strict first (0/1 responses tell 3- from 4-line apart); then by line lengths
    # alone, so that a stray response value is reported with its line below.
    for strict in (True, False):
        for size in (4, 3):
            if len(lines) % size:
                continue
            probe = range(0, min(len(lines), size * 50), size)
            if all(_block_ok(lines, s, size, strict) for s in probe):
                return size
    return None


def read_line_format(path: Path, text: str) -> RawTable:
    """Parse a 3- or 4-line block file.

    Args:
        path: file path (for messages and synthetic learner ids).
        text: decoded file contents.

    Returns:
        A :class:`RawTable` whose frame already uses canonical column names.

    Raises:
        DataError: blocks of inconsistent size, mismatched line lengths, or
            responses other than 0/1, naming the line.
    """
    src = str(path)
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    size = _block_size(lines)
    if size is None:
        raise DataError(
            src,
            "looks like a 3/4-line sequence file but the blocks do not line up "
            "(each block must be a header line, then id lines, then a 0/1 line of the same length)",
            "check for missing or extra lines, or give a CSV with a header",
        )
    heads = [_fields(lines[s][1]) for s in range(0, len(lines), size)]
    lengths = [len(_fields(lines[s + size - 1][1])) for s in range(0, len(lines), size)]
    two_field = all(len(h) == 2 for h in heads)
    first_is_len = all(h[0].isdigit() and int(h[0]) == n for h, n in zip(heads, lengths))
    if size == 4:
        fmt = "kcmn-4line" if first_is_len else "akt-4line"
    elif two_field:
        fmt = "akt-3line"
    elif first_is_len:
        fmt = "3-line"
    else:
        fmt = "3-line-userid"

    stem = path.name.split(".")[0]
    users: list[str] = []
    items: list[str] = []
    skills: list[str] = []
    correct: list[str] = []
    line_no: list[np.ndarray] = []
    for b, s in enumerate(range(0, len(lines), size)):
        head = heads[b]
        if fmt == "3-line":
            uid = f"{stem}:{b + 1}"
        elif two_field:
            uid = head[1]
        else:
            uid = head[0]
        body = [_fields(lines[s + j][1]) for j in range(1, size)]
        n = len(body[-1])
        for j, row in enumerate(body):
            if len(row) != n:
                raise DataError(
                    src,
                    f"line {lines[s + 1 + j][0]}: {len(row)} values but the response line has {n}",
                    "every line of a block must have one value per attempt",
                )
        bad = [v for v in body[-1] if v not in ("0", "1")]
        if bad:
            raise DataError(src, f"line {lines[s + size - 1][0]}: response {bad[0]!r} is not 0/1", "fix the response line")
        users.extend([uid] * n)
        if size == 4:
            items.extend(body[0])
        skills.extend(body[-2])
        correct.extend(body[-1])
        line_no.append(np.full(n, lines[s + size - 1][0], dtype=np.int64))

    data = {
        "user_id": pl.Series(users, dtype=pl.String),
        "skill_id": pl.Series(skills, dtype=pl.String),
        "correct": pl.Series(correct, dtype=pl.String),
        LINE_COL: pl.Series(np.concatenate(line_no) if line_no else np.zeros(0, np.int64)),
    }
    columns = {"user_id": "user_id", "skill_id": "skill_id", "correct": "correct"}
    if size == 4:
        data["item_id"] = pl.Series(items, dtype=pl.String)
        columns["item_id"] = "item_id"
    notes = []
    if fmt == "3-line":
        notes.append(f"{src}: 3-line format has no learner ids; each block is one learner named '{stem}:<block>'")
    return RawTable(pl.DataFrame(data), ColumnMap(columns=columns, layout=fmt), src, fmt, notes=notes)
