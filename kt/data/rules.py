"""The validation rules of an interaction log, shared by the two readers.

:func:`kt.data.schema.to_interactions` applies them to a table in memory
(Polars Series); :mod:`kt.data.stream` applies the same rules lazily (Polars
expressions) to a file it never loads whole. Both say the same thing about
the same input: the messages, fixes and notes are written here once, and
the row masks take a Series or an expression alike.

A row error reads ``<file>: <unit> <first> (and <n-1> more), column '<col>':
<problem>; <fix>``, with the problem and fix of :data:`ROW_ERRORS`.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import polars as pl

from kt.data.columns import ColumnMap
from kt.errors import DataError

S = TypeVar("S", pl.Series, pl.Expr)

FILL_FIX = "fill it in, remove those rows, or pass --drop-nulls"
_UNORDERED = "ordering by the order column and file order"

# Row errors, name -> (problem, fix); ``{v}`` is the first bad value.
ROW_ERRORS: dict[str, tuple[str, str]] = {
    "null_user": ("empty learner id", FILL_FIX),
    "null_skill": ("empty KC id", FILL_FIX),
    "correct_nan": ("{v!r} is not a number", "fix the value or map another column with --map correct=COLUMN"),
    "correct_null": ("empty outcome", "every attempt needs 0 or 1"),
    "correct_range": ("value {v:g} is outside [0, 1]", "outcomes must be 0/1 (partial credit in [0, 1] is rounded)"),
    "time_format": (
        "cannot parse timestamps such as {v!r}",
        "give ISO dates (2020-01-31 12:00:00) or seconds, or drop --map timestamp",
    ),
    "time_bad": (
        "cannot parse {v!r} as a time",
        "fix the value (ISO dates or seconds), or map another column with --map timestamp=COLUMN",
    ),
    "order_nan": ("{v!r} is not a number", "fix the value or map another column with --map order=COLUMN"),
    "kc_separators": ("KC cell has only separators", FILL_FIX),
}

# Notes, name -> text after "<file>: ".
NOTES: dict[str, str] = {
    "kc_from_item": "no KC column; using the item column '{column}' as the KC",
    "dropped_nulls": "dropped {n} rows with an empty learner or KC (--drop-nulls)",
    "partial_credit": "{n} partial-credit outcomes in (0, 1) rounded to 0/1 (>= 0.5 -> 1)",
    "times_unparsed": "column '{column}' does not hold parseable times (e.g. {v!r}); ignored, " + _UNORDERED,
    "times_constant": "timestamps are constant (e.g. all 0); " + _UNORDERED,
}


def note(source: str, name: str, **values) -> str:
    """A note on the data.

    Args:
        source: the file.
        name: a key of :data:`NOTES`.
        **values: the template's fields.

    Returns:
        ``"<source>: <text>"``.
    """
    return f"{source}: " + NOTES[name].format(**values)


def rows_text(unit: str, first: int, n: int) -> str:
    """Where a row error is: ``line 3`` or ``row 3 (and 4 more)``.

    Args:
        unit: ``line`` (text files) or ``row`` (Parquet, frames).
        first: the first bad line or row.
        n: how many rows are bad.

    Returns:
        The text.
    """
    return f"{unit} {first}" + (f" (and {n - 1} more)" if n > 1 else "")


def row_error(source: str, rows: str, column: str, name: str, value=None) -> DataError:
    """The error for bad rows.

    Args:
        source: the file.
        rows: where, from :func:`rows_text`.
        column: the source column at fault.
        name: a key of :data:`ROW_ERRORS`.
        value: the first bad value, for the problem's ``{v}``.

    Returns:
        The :class:`DataError` to raise.
    """
    problem, fix = ROW_ERRORS[name]
    return DataError(source, f"{rows}, column '{column}': " + problem.format(v=value), fix)


def no_rows(source: str) -> DataError:
    """The error for a file with a header and no rows."""
    return DataError(source, "no data rows", "give a file with at least one interaction")


def required_column(colmap: ColumnMap, canonical: str, source: str, columns: list[str]) -> str:
    """The source column mapped to ``canonical``.

    Args:
        colmap: the column mapping.
        canonical: ``user_id`` or ``correct``.
        source: the file.
        columns: the file's columns (for the message).

    Returns:
        The column's name.

    Raises:
        DataError: no column is mapped to ``canonical``.
    """
    col = colmap.get(canonical)
    if col is None:
        raise DataError(
            source,
            f"no column for '{canonical}' (columns: {', '.join(columns) or 'none'})",
            f"name it with --map {canonical}=COLUMN",
        )
    return col


def kc_column(colmap: ColumnMap, source: str) -> tuple[str, str | None]:
    """The column holding the KCs: ``skill_id``, or else the item column.

    Args:
        colmap: the column mapping.
        source: the file.

    Returns:
        ``(column, note)``: the note says when the item column stands in.

    Raises:
        DataError: neither column is mapped.
    """
    col = colmap.get("skill_id")
    if col is not None:
        return col, None
    item = colmap.get("item_id")
    if item is None:
        raise DataError(source, "no KC column (skill_id) and no item column", "name one with --map skill_id=COLUMN")
    return item, note(source, "kc_from_item", column=item)


def item_text(colmap: ColumnMap, text: Callable[[str], S]) -> S | None:
    """The item id of every row: the item column, joined with the step column when one is mapped.

    Args:
        colmap: the column mapping.
        text: a column's stripped text (a Series or an expression).

    Returns:
        The item ids, or ``None`` without an item column.
    """
    col = colmap.get("item_id")
    if col is None:
        return None
    item = text(col)
    if colmap.item_step is not None:
        item = item + ":" + text(colmap.item_step)
    return item


def stripped(x: S, dtype: pl.DataType) -> S:
    """A column as text without surrounding blanks.

    Args:
        x: the column (Series or expression).
        dtype: its type.

    Returns:
        ``x`` cast to text (unless it is) with blanks stripped.
    """
    return (x if dtype == pl.String else x.cast(pl.String)).str.strip_chars()


def blank(text: S) -> S:
    """Rows without an id: null or empty text."""
    return text.is_null() | (text == "")


def unparsed(value: S, text: S) -> S:
    """Rows whose text is present but did not parse (``value`` is null)."""
    return value.is_null() & text.is_not_null() & (text != "")


def outside_unit(correct: S) -> S:
    """Outcomes outside [0, 1] (or NaN)."""
    return (correct < 0) | (correct > 1) | correct.is_nan()


def partial_credit(correct: S) -> S:
    """Outcomes strictly between 0 and 1 (rounded to 0/1)."""
    return (correct != 0) & (correct != 1)


def as_outcome(correct: S) -> S:
    """The 0/1 outcome (Int8) of a number in [0, 1]: 1 from 0.5 up."""
    return (correct >= 0.5).cast(pl.Int8)


def bool_words(text: pl.Series | pl.Expr) -> pl.Expr:
    """``true``/``false`` (any case) as ``1``/``0``, other text as it is."""
    low = text.str.to_lowercase()
    return pl.when(low == "true").then(pl.lit("1")).when(low == "false").then(pl.lit("0")).otherwise(text)


def epoch_seconds(times: S) -> S:
    """Datetimes as Float64 seconds since 1970 (to the microsecond)."""
    return times.dt.epoch("us").cast(pl.Float64) / 1e6
