"""Canonical interactions: typing, validation, ordering and id encoding.

The canonical frame holds one row per attempt, sorted by learner and then by
timestamp, order column and file position (stable). Columns:

``user_id`` (str), ``skill_id`` (str, or list[str] for multi-KC items),
``item_id`` (str or null), ``correct`` (Int8), ``timestamp`` (Float64
seconds or null), ``order`` (Float64 or null), ``line`` (Int64, the row's
line in the source file), and the encoded ``user_idx``, ``skill_idx``
(Int32 or list[Int32]; -1 = KC unknown to the vocabulary) and ``item_idx``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import polars as pl

from kt.data import rules
from kt.data.columns import ColumnMap
from kt.data.io import LINE_COL, RawTable
from kt.data.vocab import Vocab
from kt.errors import DataError

_NUMERIC_MULTI = r"^\d+([_,]\d+)+$"
_ALWAYS_SPLIT = ("~~", ";")
_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d")


@dataclass(frozen=True)
class Interactions:
    """Validated, ordered, encoded interactions.

    Attributes:
        frame: the canonical frame (see module docstring).
        vocab: id vocabularies; ``user_id`` always covers this data's learners.
        source: where the data came from (for messages).
        colmap: how source columns were mapped.
        fmt: file format that was read.
        notes: warnings and remarks collected while loading.
        stats: counts gathered during validation (duplicates, dropped rows...).
    """

    frame: pl.DataFrame
    vocab: Vocab
    source: str = "<memory>"
    colmap: ColumnMap | None = None
    fmt: str = "frame"
    notes: tuple[str, ...] = ()
    stats: dict = field(default_factory=dict)

    @property
    def multi_kc(self) -> bool:
        """True when ``skill_id`` holds lists (items with several KCs)."""
        return isinstance(self.frame.schema["skill_id"], pl.List)

    @property
    def has_time(self) -> bool:
        """True when real (non-constant) timestamps are present."""
        return self.frame["timestamp"].null_count() < self.frame.height

    @property
    def n_rows(self) -> int:
        """Number of attempts."""
        return self.frame.height

    @property
    def n_users(self) -> int:
        """Number of learners."""
        return self.frame["user_idx"].n_unique()

    def explode(self) -> pl.DataFrame:
        """One row per (attempt, KC), with ``attempt`` = the attempt's row index.

        Returns:
            The frame with scalar ``skill_id``/``skill_idx``; single-KC data
            gets the ``attempt`` column and is otherwise unchanged.
        """
        f = self.frame.with_row_index("attempt")
        if self.multi_kc:
            f = f.explode(["skill_id", "skill_idx"])
        return f

    def subset(self, users: np.ndarray) -> "Interactions":
        """Interactions of the given learner indices (for splits).

        Args:
            users: ``user_idx`` values to keep.

        Returns:
            A new :class:`Interactions` sharing the vocabulary.
        """
        keep = self.frame.filter(pl.col("user_idx").is_in(pl.Series(users, dtype=pl.Int32).implode()))
        return Interactions(keep, self.vocab, self.source, self.colmap, self.fmt, self.notes, dict(self.stats))

    def fingerprint(self) -> str:
        """Short content hash of learners, KCs and outcomes (saved with models)."""
        h = hashlib.sha256()
        for col in ("user_idx", "correct"):
            h.update(self.frame[col].to_numpy().tobytes())
        h.update(str(self.frame.height).encode())
        return h.hexdigest()[:16]


def correct_rate(frame: pl.DataFrame) -> float:
    """Share of correct attempts: the mean of a canonical frame's 0/1 ``correct`` column.

    Raises:
        ValueError: ``frame`` has no rows, so no rate.
    """
    rate = frame["correct"].mean()
    if rate is None:
        raise ValueError("correct rate of no attempts")
    return cast(float, rate)  # Polars types Series.mean() loosely; the mean of a 0/1 column is a float


def _nulls(n: int, dtype) -> pl.Series:
    return pl.repeat(None, n, dtype=dtype, eager=True)


def _where(raw: RawTable, mask: pl.Series) -> str:
    idx = mask.arg_true()
    return rules.rows_text(raw.unit, int(raw.frame[LINE_COL][int(idx[0])]), len(idx))


def _column(raw: RawTable, canonical: str) -> str:
    """The source column mapped to ``canonical`` (its canonical name when none is)."""
    return raw.colmap.get(canonical) or canonical


def _to_float(raw: RawTable, canonical: str, s: pl.Series) -> pl.Series:
    if s.dtype == pl.Boolean:
        return s.cast(pl.Float64)
    if s.dtype.is_numeric():
        return s.cast(pl.Float64)
    text = pl.select(rules.bool_words(rules.stripped(s, s.dtype))).to_series()
    out = text.cast(pl.Float64, strict=False)
    bad = rules.unparsed(out, text)
    if bad.any():
        raise rules.row_error(raw.source, _where(raw, bad), _column(raw, canonical), f"{canonical}_nan", text.filter(bad)[0])
    return out


def _parse_time(raw: RawTable, s: pl.Series, explicit: bool, notes: list[str]) -> pl.Series | None:
    if s.dtype in (pl.Date,) or isinstance(s.dtype, pl.Datetime):
        return rules.epoch_seconds(s.cast(pl.Datetime("us")))
    if s.dtype.is_numeric():
        return s.cast(pl.Float64)
    text = rules.stripped(s, s.dtype)
    present = text.is_not_null() & (text != "")
    numeric = text.cast(pl.Float64, strict=False)
    if (numeric.is_not_null() == present).all():
        return numeric
    parsed = None
    try:
        parsed = text.str.to_datetime(strict=False, time_unit="us")
    except pl.exceptions.PolarsError:
        for fmt in _DATETIME_FORMATS:
            cand = text.str.to_datetime(format=fmt, strict=False, time_unit="us")
            if cand.is_not_null().any():
                parsed = cand
                break
    column = _column(raw, "timestamp")
    if parsed is None or not parsed.is_not_null().any():
        if explicit:
            raise rules.row_error(raw.source, _where(raw, present), column, "time_format", text.filter(present)[0])
        notes.append(rules.note(raw.source, "times_unparsed", column=column, v=text.filter(present)[0]))
        return None
    bad = parsed.is_null() & present
    if bad.any():
        raise rules.row_error(raw.source, _where(raw, bad), column, "time_bad", text.filter(bad)[0])
    return rules.epoch_seconds(parsed)


def _split_kcs(s: pl.Series) -> tuple[pl.Series, bool]:
    """Split multi-KC cells into lists; return (series, any_multi).

    The rules run on the distinct cell values only (usually a few hundred),
    then map back to the rows.
    """
    name = s.name
    uniq = pl.DataFrame({"s": s.unique()})
    always = pl.lit(False)
    for sep in _ALWAYS_SPLIT:
        always = always | pl.col("s").str.contains(sep, literal=True)
    flags = uniq.select((always | pl.col("s").str.contains(_NUMERIC_MULTI)).alias("m"))["m"]
    if not flags.any():
        return s, False
    table = uniq.with_columns(
        pl.when(pl.col("s").str.contains("~~", literal=True))
        .then(pl.col("s").str.split("~~"))
        .when(pl.col("s").str.contains(";", literal=True))
        .then(pl.col("s").str.split(";"))
        .when(pl.col("s").str.contains(_NUMERIC_MULTI))
        .then(pl.col("s").str.replace_all(",", "_", literal=True).str.split("_"))
        .otherwise(pl.concat_list(pl.col("s")))
        .list.eval(pl.element().str.strip_chars())
        .list.eval(pl.element().filter(pl.element() != ""))
        .list.unique(maintain_order=True)
        .alias("kcs")
    )
    out = pl.DataFrame({"s": s}).join(table, on="s", how="left", maintain_order="left", nulls_equal=True)["kcs"]
    return out.alias(name), True


def _encode(s: pl.Series, values: list[str]) -> pl.Series:
    """Index of each value in ``values`` (-1 if absent), as Int32."""
    return s.replace_strict(values, np.arange(len(values), dtype=np.int32), default=-1, return_dtype=pl.Int32)


def to_interactions(
    raw: RawTable,
    *,
    vocab: Vocab | None = None,
    min_attempts: int = 2,
    drop_duplicates: bool = False,
    drop_nulls: bool = False,
) -> Interactions:
    """Type, validate, order and encode a raw table.

    Args:
        raw: output of :func:`kt.data.io.read_table`.
        vocab: encode KCs/items with this vocabulary (a saved model's);
            unknown KCs get index -1 and a note. ``None`` builds one.
        min_attempts: learners with fewer attempts are dropped (counted).
        drop_duplicates: drop exact duplicate attempts (same learner, item,
            KC, outcome and time/order) instead of only counting them.
        drop_nulls: drop rows with an empty learner or KC instead of failing.

    Returns:
        The validated :class:`Interactions`.

    Raises:
        DataError: with a one-line message naming file, row/column and fix.
    """
    src = raw.source
    notes: list[str] = list(raw.notes)
    stats: dict = {"rows_read": raw.frame.height}
    cm = raw.colmap
    # Columns first: a header kt cannot map is the real problem even when rows follow.
    columns = raw.header or [c for c in raw.frame.columns if c != LINE_COL]
    user_col, correct_col = (rules.required_column(cm, req, src, columns) for req in ("user_id", "correct"))
    if raw.frame.height == 0:
        raise rules.no_rows(src)
    skill_col, kc_note = rules.kc_column(cm, src)
    if kc_note:
        notes.append(kc_note)

    f = raw.frame
    if raw.unit == "line" and f[LINE_COL].dtype != pl.Int64:
        f = f.with_columns(pl.col(LINE_COL).cast(pl.Int64))

    def text(col: str) -> pl.Series:
        return rules.stripped(f[col], f[col].dtype)

    user = text(user_col).alias("user_id")
    skill = text(skill_col).alias("skill_id")
    item = rules.item_text(cm, text)
    item = (item if item is not None else _nulls(f.height, pl.String)).alias("item_id")

    null_user = rules.blank(user)
    null_skill = rules.blank(skill)
    if drop_nulls and (null_user.any() or null_skill.any()):
        keep = ~(null_user | null_skill)
        stats["dropped_nulls"] = int((~keep).sum())
        notes.append(rules.note(src, "dropped_nulls", n=stats["dropped_nulls"]))
        f, user, skill, item = f.filter(keep), user.filter(keep), skill.filter(keep), item.filter(keep)
        raw = RawTable(f, cm, src, raw.fmt, raw.unit, raw.notes, raw.header)
        null_user, null_skill = user.is_null(), skill.is_null()
    for name, mask, col in (("null_user", null_user, user_col), ("null_skill", null_skill, skill_col)):
        if mask.any():
            raise rules.row_error(src, _where(raw, mask), col, name)

    raw_correct = f[correct_col]
    if raw_correct.dtype == pl.String and raw_correct.is_in(["0", "1"]).all():
        correct = raw_correct.cast(pl.Int8).cast(pl.Float64)  # the common case, without string munging
    else:
        correct = _to_float(raw, "correct", raw_correct)
    if correct.is_null().any():
        raise rules.row_error(src, _where(raw, correct.is_null()), correct_col, "correct_null")
    out_of_range = rules.outside_unit(correct)
    if out_of_range.any():
        raise rules.row_error(src, _where(raw, out_of_range), correct_col, "correct_range", correct.filter(out_of_range)[0])
    partial = rules.partial_credit(correct)
    if partial.any():
        stats["rounded_partial_credit"] = int(partial.sum())
        notes.append(rules.note(src, "partial_credit", n=stats["rounded_partial_credit"]))
    correct = rules.as_outcome(correct).alias("correct")

    timestamp = None
    time_col, order_col = cm.get("timestamp"), cm.get("order")
    if time_col is not None:
        timestamp = _parse_time(raw, f[time_col], "timestamp" in cm.explicit, notes)
    if timestamp is not None and timestamp.min() == timestamp.max():
        notes.append(rules.note(src, "times_constant"))
        timestamp = None
    timestamp = (timestamp if timestamp is not None else _nulls(f.height, pl.Float64)).alias("timestamp")
    order = _to_float(raw, "order", f[order_col]) if order_col is not None else _nulls(f.height, pl.Float64)

    skill, multi = _split_kcs(skill)
    if multi:
        empty = skill.list.len() == 0
        if empty.any():
            if not drop_nulls:
                raise rules.row_error(src, _where(raw, empty), skill_col, "kc_separators")
            keep = ~empty
            f, user, skill, item, correct = (
                f.filter(keep),
                user.filter(keep),
                skill.filter(keep),
                item.filter(keep),
                correct.filter(keep),
            )
            timestamp, order = timestamp.filter(keep), order.filter(keep)
            stats["dropped_nulls"] = stats.get("dropped_nulls", 0) + int(empty.sum())
    frame = pl.DataFrame([user, skill, item, correct, timestamp, order.alias("order"), f[LINE_COL].cast(pl.Int64).alias("line")])
    frame = _order(frame)
    frame, dup_count = _duplicates(frame, drop_duplicates)
    stats["duplicates"] = dup_count
    if dup_count:
        verb = "dropped" if drop_duplicates else "kept (pass --drop-duplicates to drop them)"
        notes.append(f"{src}: {dup_count} duplicated attempts (same learner, item, KC, outcome and time/order); {verb}")

    runs = frame.select(pl.col("user_id").rle_id())["user_id"].to_numpy()  # frame is sorted by learner
    lengths = np.bincount(runs)
    short = lengths < min_attempts
    if short.any():
        frame = frame.filter(pl.Series(~short[runs]))
        stats["dropped_short_learners"] = int(short.sum())
        stats["dropped_short_rows"] = int(lengths[short].sum())
        notes.append(
            f"{src}: dropped {stats['dropped_short_learners']} learners with fewer than {min_attempts} attempts "
            f"({stats['dropped_short_rows']} rows)"
        )
    if frame.height == 0:
        raise DataError(src, f"no learner has {min_attempts} or more attempts", "give longer sequences")

    frame, vocab = _encode_all(frame, vocab, multi, notes, src, stats)
    return Interactions(frame, vocab, src, cm, raw.fmt, tuple(notes), stats)


def _order(frame: pl.DataFrame) -> pl.DataFrame:
    keys = ["user_id"]
    if frame["timestamp"].null_count() < frame.height:
        keys.append("timestamp")
    if frame["order"].null_count() < frame.height:
        keys.append("order")
    keys.append("line")
    return frame.sort(keys, maintain_order=True, nulls_last=True)


def _duplicates(frame: pl.DataFrame, drop: bool) -> tuple[pl.DataFrame, int]:
    has_time = frame["timestamp"].null_count() < frame.height
    has_order = frame["order"].null_count() < frame.height
    if not (has_time or has_order):
        return frame, 0  # without time or order, repeats cannot be told from re-attempts
    # The frame is sorted by (learner, time, order), so rows sharing that key
    # are adjacent; only such runs can hold duplicates and need the full check.
    key = ["user_id", "timestamp", "order"]
    same_prev = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift(1)) for c in key])
    cand = frame.select((same_prev | same_prev.shift(-1)).fill_null(False).alias("c"))["c"]
    if not cand.any():
        return frame, 0
    idx = cand.arg_true()
    sub = frame[idx]
    keys = ["user_id", "item_id", "skill_id", "correct", "timestamp", "order"]
    dup_sub = sub.select(~pl.struct(keys).is_first_distinct()).to_series()
    n = int(dup_sub.sum())
    if drop and n:
        mask = np.zeros(frame.height, dtype=bool)
        mask[idx.filter(dup_sub).to_numpy()] = True
        frame = frame.filter(pl.Series(~mask))
    return frame, n


def _encode_all(frame: pl.DataFrame, vocab: Vocab | None, multi: bool, notes: list[str], src: str, stats: dict):
    # The frame is sorted by learner id, so a learner's index in the sorted
    # vocabulary is the run number of its rows.
    users = frame["user_id"].unique(maintain_order=True).to_list()
    frame = frame.with_columns(pl.col("user_id").rle_id().cast(pl.Int32).alias("user_idx"))
    if vocab is None:
        skills_series = frame["skill_id"].explode() if multi else frame["skill_id"]
        skills = skills_series.unique().drop_nulls().sort().to_list()
        items = frame["item_id"].unique().drop_nulls().sort().to_list()
        vocab = Vocab(user_id=users, skill_id=skills, item_id=items)
    else:
        vocab = Vocab(user_id=users, skill_id=vocab.skill_id, item_id=vocab.item_id)
    frame = frame.with_columns(_encode(frame["item_id"], vocab.item_id).alias("item_idx"))
    if multi:
        ex = frame.select(pl.int_range(pl.len()).alias("_r"), "skill_id").explode("skill_id")
        ex = ex.with_columns(_encode(ex["skill_id"], vocab.skill_id).alias("skill_idx"))
        agg = ex.group_by("_r", maintain_order=True).agg(pl.col("skill_idx"))
        frame = frame.with_columns(agg["skill_idx"])
        unknown = ex.filter(pl.col("skill_idx") < 0)["skill_id"]
    else:
        frame = frame.with_columns(_encode(frame["skill_id"], vocab.skill_id).alias("skill_idx"))
        unknown = frame.filter(pl.col("skill_idx") < 0)["skill_id"]
    if unknown.len():
        names = unknown.unique().sort().to_list()
        stats["unknown_kcs"] = len(names)
        shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        notes.append(f"{src}: {len(names)} KCs unknown to the model ({unknown.len()} rows): {shown}")
    return frame, vocab


def load(
    path: str,
    *,
    overrides: dict[str, str] | None = None,
    vocab: Vocab | None = None,
    min_attempts: int = 2,
    drop_duplicates: bool = False,
    drop_nulls: bool = False,
    encoding: str | None = None,
) -> Interactions:
    """Read and validate an interaction file in one call.

    Args:
        path: any supported file (see :func:`kt.data.io.read_table`).
        overrides: explicit column choices (``--map``).
        vocab: encode with an existing vocabulary (e.g. a saved model's).
        min_attempts: drop learners with fewer attempts.
        drop_duplicates: drop duplicated attempts.
        drop_nulls: drop rows with empty learner/KC ids instead of failing.
        encoding: force a text encoding.

    Returns:
        Validated :class:`Interactions`.
    """
    from kt.data.io import read_table

    raw = read_table(path, overrides=overrides, encoding=encoding)
    return to_interactions(raw, vocab=vocab, min_attempts=min_attempts, drop_duplicates=drop_duplicates, drop_nulls=drop_nulls)
