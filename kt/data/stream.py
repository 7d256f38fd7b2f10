"""Streaming conversion of a large log into learner partitions (``kt data convert --partitions``).

The file is never loaded whole. Polars scans it lazily (``scan_csv`` /
``scan_parquet``) and its streaming engine runs two passes:

1. a first pass (three streaming queries, run one after another so memory
   stays flat) validates every row with the checks of
   :func:`kt.data.schema.to_interactions` (same one-line messages: file,
   line/row, column, fix) and collects what is small: the distinct (KC cell,
   item) pairs with their attempt/correct counts and the learners with their
   row counts;
2. one pass types the columns into kt's canonical ones and sinks them as
   Parquet files partitioned by learner (``pl.PartitionBy``); each learner's
   partition comes from a stable hash of its id
   (:func:`kt.data.partitioned.partition_of`), joined in as a small table.

Everything goes into a temporary sibling directory; ``meta.json`` is written
last and the directory is renamed into place, so a failed or interrupted
conversion leaves nothing behind. :class:`kt.data.partitioned.PartitionedData`
reads the result.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import polars as pl

from kt.data import rules
from kt.data.columns import ColumnMap, detect
from kt.data.io import (
    LINE_COL,
    _first_ragged_line,
    _is_utf8_file,
    _looks_line_format,
    _open_text_head,
    _sniff_separator,
    require_file,
    check_duplicate_columns,
    scan_parquet,
    sniff_input,
)
from kt.data.partitioned import FORMAT, FORMAT_VERSION, HASH_SCHEME, LEARNERS, META, is_partitioned, partition_of
from kt.data.schema import _DATETIME_FORMATS, _split_kcs
from kt.errors import DataError, KTError

_PART_FILE = re.compile(r"^part-(\d+)-(\d+)\.parquet$")


@dataclass
class _Source:
    """A lazily scanned file: mapped columns plus ``__line``."""

    lf: pl.LazyFrame
    colmap: ColumnMap
    header: list[str]
    schema: dict
    fmt: str
    unit: str
    sep: str | None
    path: Path
    src: str


def _scan(path: Path, overrides: dict | None, encoding: str | None) -> _Source:
    src = str(path)
    require_file(path, "CSV/TSV or Parquet")
    kind = sniff_input(path, encoding=encoding)
    if path.suffix == ".parquet" or kind == "parquet":
        lf, schema = scan_parquet(path)
        header = list(schema)
        colmap = detect(header, overrides, source=src)
        return _Source(
            lf.select(_used(colmap)).with_row_index(LINE_COL, offset=1), colmap, header, schema, "parquet", "row", None, path, src
        )
    if path.suffix == ".gz":
        raise DataError(
            src, "compressed files are not streamed", f"decompress it first (gunzip -k {src}) or convert without --partitions"
        )
    try:
        utf8 = not encoding or codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        raise DataError(src, f"--encoding {encoding}: unknown encoding", "give a Python codec name such as utf-8") from None
    if not utf8:
        raise DataError(
            src,
            f"--encoding {encoding}: streaming conversion reads UTF-8 only",
            f"convert the file first (iconv -f {encoding} -t utf-8 {src} > {path.stem}.utf8{path.suffix})",
        )
    head = _open_text_head(path)
    if not head.strip():
        raise DataError(src, "file is empty", "give a file with a header row and at least one interaction")
    if _looks_line_format(head):
        raise DataError(
            src,
            "3/4-line sequence files are not streamed",
            "convert it without --partitions (kt data convert FILE --out x.parquet), then partition x.parquet",
        )
    if not _is_utf8_file(path):
        raise DataError(
            src,
            "not valid UTF-8; streaming conversion reads UTF-8 only",
            f"convert it first (iconv -f latin1 -t utf-8 {src} > {path.stem}.utf8{path.suffix})",
        )
    first_line = head.decode("utf-8", "replace").lstrip("\ufeff").splitlines()[0]
    sep = _sniff_separator(first_line)
    try:
        header = pl.read_csv(path, separator=sep, infer_schema=False, n_rows=0).columns
    except pl.exceptions.PolarsError as exc:
        raise DataError(src, f"cannot parse header ({str(exc).splitlines()[0]})", "check the delimiter and quoting") from None
    colmap = detect(header, overrides, source=src)
    check_duplicate_columns(first_line, sep, header, colmap, src)  # its note (a --map choice) has nowhere to go here
    lf = pl.scan_csv(path, separator=sep, infer_schema=False, row_index_name=LINE_COL, row_index_offset=2)
    schema = {c: pl.String for c in header}
    return _Source(
        lf.select(LINE_COL, *_used(colmap)), colmap, header, schema, "tsv" if sep == "\t" else "csv", "line", sep, path, src
    )


@contextlib.contextmanager
def _bounded_csv_chunks(nbytes: int = 4_000_000):
    """Cap the bytes Polars' streaming CSV reader takes at a time (``POLARS_CSV_CHUNK_SIZE``).

    Polars 2.1 otherwise sizes its CSV chunks so that the reader holds memory
    in proportion to the file (about the file's size: 300 MB for a 300 MB
    CSV, even for ``head``); 4 MB chunks keep it near 100 MB at the same
    speed. A value the user set is kept; an unknown variable is ignored by
    other Polars versions.
    """
    key = "POLARS_CSV_CHUNK_SIZE"
    if key in os.environ:
        yield
        return
    os.environ[key] = str(nbytes)
    try:
        yield
    finally:
        os.environ.pop(key, None)


def _used(cm: ColumnMap) -> list[str]:
    return list(dict.fromkeys([*cm.columns.values(), *([cm.item_step] if cm.item_step else [])]))


class _Plan:
    """Typing and validation of one source, mirroring ``to_interactions``.

    ``typed`` holds every value parsed once per row (``u``, ``s``, ``i``:
    learner, KC cell, item; ``c``, ``t``, ``o``: outcome, seconds, order as
    Float64; ``ct``, ``tt``, ``ot``: the stripped text they came from, for
    the checks and messages); the checks and the canonical frame only read
    those columns, so nothing is parsed twice.
    """

    def __init__(self, s: _Source, drop_nulls: bool, bool_correct: bool = False):
        self.s = s
        cm = s.colmap
        self.user_col, self.correct_col = (rules.required_column(cm, req, s.src, s.header) for req in ("user_id", "correct"))
        self.notes: list[str] = []
        self.skill_col, kc_note = rules.kc_column(cm, s.src)
        if kc_note:
            self.notes.append(kc_note)
        item = rules.item_text(cm, self.text)
        self.drop_nulls = drop_nulls
        self.bool_correct = bool_correct
        self.null_user = rules.blank(pl.col("u"))
        self.null_skill = rules.blank(pl.col("s"))
        self.keep = ~(self.null_user | self.null_skill) if drop_nulls else None
        cols = [
            pl.col(LINE_COL),
            self.text(self.user_col).alias("u"),
            self.text(self.skill_col).alias("s"),
            (item if item is not None else pl.lit(None, pl.String)).alias("i"),
        ]
        cols += self.number(self.correct_col, "c", bool_text=bool_correct)
        time_cols = self._time()
        self.has_time = bool(time_cols)
        cols += time_cols or [pl.lit(None, pl.Float64).alias("t")]
        order_col = cm.get("order")
        self.has_order = order_col is not None
        cols += self.number(order_col, "o") if order_col is not None else [pl.lit(None, pl.Float64).alias("o")]
        self.typed = s.lf.select(cols)

    def text(self, col: str) -> pl.Expr:
        return rules.stripped(pl.col(col), self.s.schema[col])

    def number(self, col: str, name: str, bool_text: bool = False) -> list[pl.Expr]:
        """Float64 column ``name`` (and its text ``name``+t), as ``schema._to_float``."""
        dt = self.s.schema[col]
        e = pl.col(col)
        if dt == pl.Boolean or dt.is_numeric():
            return [e.cast(pl.Float64).alias(name)]
        shown = self.text(col)
        if bool_text:
            shown = rules.bool_words(shown)
        return [shown.cast(pl.Float64, strict=False).alias(name), shown.alias(name + "t")]

    def _time(self) -> list[pl.Expr]:
        """Seconds ``t`` (and text ``tt``), or nothing; mirrors ``schema._parse_time``."""
        s, cm = self.s, self.s.colmap
        col = cm.get("timestamp")
        if col is None:
            return []
        dt = s.schema[col]
        e = pl.col(col)
        if dt == pl.Date or isinstance(dt, pl.Datetime):
            return [rules.epoch_seconds(e.cast(pl.Datetime("us"))).alias("t")]
        if dt.is_numeric():
            return [e.cast(pl.Float64).alias("t")]
        text = self.text(col)

        # The format is chosen on the first present values (as Polars infers
        # it from the first value in load), then checked on every row.
        def first_times(lf: pl.LazyFrame) -> pl.DataFrame:
            q = lf.select(
                pl.col(LINE_COL), text.alias("t"), self.text(self.user_col).alias("u"), self.text(self.skill_col).alias("s")
            )
            if self.keep is not None:
                q = q.filter(self.keep)
            return q.filter(pl.col("t").is_not_null() & (pl.col("t") != "")).head(5000).collect(engine="streaming")

        sample = first_times(s.lf.head(50_000))  # reads only the file's head
        if sample.height == 0:
            sample = first_times(s.lf)
        if sample.height == 0:
            return []
        values = sample["t"]
        if values.cast(pl.Float64, strict=False).is_not_null().all():
            return [text.cast(pl.Float64, strict=False).alias("t"), text.alias("tt")]
        fmt = next(
            (f for f in _DATETIME_FORMATS if values.str.to_datetime(format=f, strict=False, time_unit="us").is_not_null().all()),
            None,
        )
        if fmt is None:
            try:
                ok = values.str.to_datetime(strict=False, time_unit="us").is_not_null().any()
            except pl.exceptions.PolarsError:
                ok = False
            if not ok:
                if "timestamp" in cm.explicit:
                    raise rules.row_error(s.src, f"{s.unit} {sample[LINE_COL][0]}", col, "time_format", values[0])
                self.notes.append(rules.note(s.src, "times_unparsed", column=col, v=values[0]))
                return []
        value = rules.epoch_seconds(text.str.to_datetime(format=fmt, strict=False, time_unit="us"))
        return [value.alias("t"), text.alias("tt")]

    def checks(self) -> list[tuple[str, pl.Expr, str | None, str]]:
        """The row checks of ``to_interactions``, in its order.

        Returns:
            ``(name, mask, shown, column)``: the error's name in
            :data:`kt.data.rules.ROW_ERRORS`, the bad rows, the typed column
            whose value the message shows (or ``None``) and the source column.
        """
        cm = self.s.colmap
        names = set(self.typed.collect_schema().names())
        c = pl.col("c")

        def bad_text(v: str) -> pl.Expr:
            return rules.unparsed(pl.col(v), pl.col(v + "t"))

        out: list[tuple[str, pl.Expr, str | None, str]] = []
        if not self.drop_nulls:
            out += [("null_user", self.null_user, None, self.user_col), ("null_skill", self.null_skill, None, self.skill_col)]
        if "ct" in names:
            out.append(("correct_nan", bad_text("c"), "ct", self.correct_col))
        out += [
            ("correct_null", c.is_null(), None, self.correct_col),
            ("correct_range", rules.outside_unit(c), "c", self.correct_col),
        ]
        if "tt" in names:
            out.append(("time_bad", bad_text("t"), "tt", cm.columns["timestamp"]))
        if "ot" in names:
            out.append(("order_nan", bad_text("o"), "ot", cm.columns["order"]))
        if self.keep is not None:
            out = [(n, m & self.keep, shown, col) for n, m, shown, col in out]
        return out

    def kept(self) -> pl.LazyFrame:
        """The typed rows that are kept (all, or those with a learner and KC under --drop-nulls)."""
        return self.typed if self.keep is None else self.typed.filter(self.keep)

    def canonical(self, with_time: bool) -> pl.LazyFrame:
        """The canonical columns (``skill_id`` still the raw cell) of the kept rows."""
        return self.kept().select(
            pl.col("u").alias("user_id"),
            pl.col("s").alias("skill_id"),
            pl.col("i").alias("item_id"),
            rules.as_outcome(pl.col("c")).alias("correct"),
            (pl.col("t") if with_time else pl.lit(None, pl.Float64)).alias("timestamp"),
            pl.col("o").alias("order"),
            pl.col(LINE_COL).cast(pl.Int64).alias("line"),
        )


def _collect(s: _Source, queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
    """Run streaming queries one after another (bad CSV structure -> one-line error).

    One at a time on purpose: ``collect_all`` shares the scan but buffers
    rows for the slower queries, so its memory grows with the file.
    """
    try:
        return [q.collect(engine="streaming") for q in queries]
    except pl.exceptions.PolarsError as exc:
        where = _first_ragged_line(s.path, s.sep, len(s.header)) if s.sep is not None else None
        msg = where or f"cannot read as {s.fmt.upper()} ({str(exc).splitlines()[0]})"
        raise DataError(s.src, msg, "check the delimiter and quoting" if s.sep else "re-export the file") from None


def _pairs(canon: pl.LazyFrame) -> pl.LazyFrame:
    """Attempts ``n`` and correct ``c`` per (KC cell, item): KC and item lists in one pass."""
    return canon.group_by("skill_id", "item_id").agg(pl.len().alias("n"), pl.col("correct").cast(pl.Int64).sum().alias("c"))


def _cells(pairs: pl.DataFrame) -> pl.DataFrame:
    return pairs.group_by("skill_id").agg(pl.col("n").sum(), pl.col("c").sum())


def _first_pass(s: _Source, plan: _Plan) -> tuple[dict, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The first pass (three streaming queries): check counts, KC cells, items and learners.

    Returns:
        (one row of counts with ``<check>_n``/``<check>_line`` per check,
        KC cells with attempts ``n`` and correct ``c``, distinct items,
        learners with their ``rows``).
    """
    c, keep = pl.col("c"), plan.keep
    aggs = [pl.len().alias("rows_read")]
    for name, mask, *_ in plan.checks():
        aggs += [mask.sum().alias(f"{name}_n"), pl.when(mask).then(pl.col(LINE_COL)).min().alias(f"{name}_line")]
    if keep is None:
        aggs += [
            pl.len().alias("rows"),
            rules.partial_credit(c).sum().alias("partial"),
            pl.col("t").min().alias("tmin"),
            pl.col("t").max().alias("tmax"),
        ]
    else:
        aggs += [
            keep.sum().alias("rows"),
            (rules.partial_credit(c) & keep).sum().alias("partial"),
            pl.col("t").filter(keep).min().alias("tmin"),
            pl.col("t").filter(keep).max().alias("tmax"),
        ]
    canon = plan.canonical(with_time=False)
    counts, pairs, users = _collect(
        s,
        [
            plan.typed.select(aggs),
            _pairs(canon),
            canon.group_by("user_id").agg(pl.len().cast(pl.Int64).alias("rows")),
        ],
    )
    row = counts.row(0, named=True)
    row.setdefault("correct_nan_n", 0)
    return row, _cells(pairs), pairs.select(pl.col("item_id").unique()), users


def _has_bool_text(plan: _Plan) -> bool:
    """True when some outcomes that are not numbers read true/false (load maps them to 1/0)."""
    t = pl.col("ct")
    bad = plan.typed.filter(rules.unparsed(pl.col("c"), t))
    got = bad.select(t.str.to_lowercase().is_in(["true", "false"]).any()).collect(engine="streaming")
    return bool(got.item())


def _raise_first(s: _Source, plan: _Plan, row: dict) -> None:
    for name, _, shown, column in plan.checks():
        n = row[f"{name}_n"] or 0
        if not n:
            continue
        first = int(row[f"{name}_line"])
        v = None
        if shown is not None:
            v = plan.typed.filter(pl.col(LINE_COL) == first).select(shown).collect(engine="streaming").item(0, 0)
        raise rules.row_error(s.src, rules.rows_text(s.unit, first, n), column, name, v)


def _source_hash(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 24):
            h.update(block)
    return h.hexdigest()


def _check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (not is_partitioned(out) and any(out.iterdir()))):
        raise KTError(f"--out {out}: exists and is not a kt partitioned dataset; choose another --out or remove it")


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished temporary directory into place (replacing an older dataset)."""
    if not out.exists():
        os.rename(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    os.rename(out, old / "d")
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old / "d", out)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def convert_partitioned(
    path: str | Path,
    out: str | Path,
    partitions: int,
    *,
    overrides: dict[str, str] | None = None,
    drop_duplicates: bool = False,
    drop_nulls: bool = False,
    encoding: str | None = None,
    min_attempts: int = 2,
    on_step: Callable[[int, int | None, dict], None] | None = None,
) -> dict:
    """Stream a CSV/TSV/Parquet log into Parquet partitions by learner.

    Args:
        path: the log (plain UTF-8 CSV/TSV, or Parquet).
        out: target directory (created; an older partitioned dataset there
            is replaced, anything else is refused).
        partitions: number of partitions N (learner hash mod N).
        overrides: explicit column choices (``--map``).
        drop_duplicates: recorded in ``meta.json``; duplicated attempts are
            dropped when partitions are loaded (they never span partitions).
        drop_nulls: drop rows with an empty learner or KC instead of failing.
        encoding: only UTF-8 is streamed (anything else is refused).
        min_attempts: learners with fewer attempts are kept in the files but
            not counted in the KC/item vocabularies (``kt train`` drops them).
        on_step: progress hook ``(done, total, metrics)`` over the two
            passes (checking, then writing), with ``metrics["rows_read"]``
            once the first pass has counted them.

    Returns:
        The ``meta.json`` content.

    Raises:
        DataError: bad input, with the file, line/row, column and fix.
    """
    if partitions < 1:
        raise KTError(f"--partitions {partitions}: must be >= 1")
    _check_target(Path(out))
    with _bounded_csv_chunks():
        return _convert(
            Path(path),
            Path(out),
            partitions,
            overrides=overrides,
            drop_duplicates=drop_duplicates,
            drop_nulls=drop_nulls,
            encoding=encoding,
            min_attempts=min_attempts,
            on_step=on_step,
        )


def _convert(
    path: Path, out: Path, partitions: int, *, overrides, drop_duplicates, drop_nulls, encoding, min_attempts, on_step=None
) -> dict:
    t0 = time.perf_counter()
    what = f"converting {path.name}"
    if on_step:
        on_step(0, 2, {"what": what, "phase": "pass 1 of 2: reading and checking"})
    s = _scan(path, overrides, encoding)
    plan = _Plan(s, drop_nulls)
    row, cells, items, users = _first_pass(s, plan)
    if row["correct_nan_n"] and not plan.bool_correct and _has_bool_text(plan):
        plan = _Plan(s, drop_nulls, bool_correct=True)  # true/false outcomes: parse them as load does
        row, cells, items, users = _first_pass(s, plan)
    if row["rows_read"] == 0:
        raise rules.no_rows(s.src)
    _raise_first(s, plan, row)
    if row["rows"] == 0:
        raise DataError(s.src, "no rows left after --drop-nulls", "fill in the learner and KC columns")
    if on_step:
        on_step(
            1, 2, {"what": what, "rows_read": int(row["rows_read"]), "phase": f"pass 2 of 2: writing {partitions} partitions"}
        )
    canon = plan.canonical(with_time=False)
    notes, stats = list(plan.notes), {"rows_read": row["rows_read"]}
    if drop_nulls and row["rows"] < row["rows_read"]:
        stats["dropped_nulls"] = row["rows_read"] - row["rows"]
        notes.append(rules.note(s.src, "dropped_nulls", n=stats["dropped_nulls"]))
    if row["partial"]:
        stats["rounded_partial_credit"] = row["partial"]
        notes.append(rules.note(s.src, "partial_credit", n=row["partial"]))
    with_time = row["tmin"] is not None
    if with_time and row["tmin"] == row["tmax"]:
        notes.append(rules.note(s.src, "times_constant"))
        with_time = False

    # Multi-KC cells are split on the distinct values only, as load does.
    kcs, multi = _split_kcs(cells["skill_id"])
    cellmap = None
    if multi:
        cellmap = pl.DataFrame({"skill_id": cells["skill_id"], "kcs": kcs})
        empty = cellmap.filter(pl.col("kcs").list.len() == 0)["skill_id"]
        if empty.len():
            bad = canon.filter(pl.col("skill_id").is_in(empty.implode()))
            got = _collect(s, [bad.select(pl.col("line").min(), pl.len())])[0].row(0)
            if not drop_nulls:
                raise rules.row_error(s.src, rules.rows_text(s.unit, got[0], got[1]), plan.skill_col, "kc_separators")
            stats["dropped_nulls"] = stats.get("dropped_nulls", 0) + got[1]
            notes.append(f"{s.src}: dropped {got[1]} rows whose KC cell has only separators (--drop-nulls)")
            canon = canon.filter(~pl.col("skill_id").is_in(empty.implode()))
            cells = cells.filter(~pl.col("skill_id").is_in(empty.implode()))
            pairs, users = _collect(s, [_pairs(canon), canon.group_by("user_id").agg(pl.len().cast(pl.Int64).alias("rows"))])
            items = pairs.select(pl.col("item_id").unique())
            cellmap = cellmap.filter(pl.col("kcs").list.len() > 0)

    # Vocabularies as load builds them: over learners with >= min_attempts rows.
    short = users.filter(pl.col("rows") < min_attempts)
    vocab_cells, vocab_items = cells.select("skill_id"), items
    if short.height:
        kept = canon.join(short.lazy().select("user_id"), on="user_id", how="anti")
        pairs = _collect(s, [_pairs(kept)])[0]
        vocab_cells, vocab_items = pairs.select(pl.col("skill_id").unique()), pairs.select(pl.col("item_id").unique())
        notes.append(
            f"{s.src}: {short.height} learners have fewer than {min_attempts} attempts ({int(short['rows'].sum())} rows); "
            "kept in the partitions, left out of the vocabularies and of training"
        )
    if cellmap is not None:
        vocab_kcs = vocab_cells.join(cellmap, on="skill_id")["kcs"].explode()
        per_kc = cells.join(cellmap, on="skill_id").explode("kcs").group_by("kcs").agg(pl.col("n").sum(), pl.col("c").sum())
        per_kc = per_kc.rename({"kcs": "skill_id"})
    else:
        vocab_kcs, per_kc = vocab_cells["skill_id"], cells
    skill_vocab = vocab_kcs.unique().drop_nulls().sort().to_list()
    item_vocab = vocab_items["item_id"].unique().drop_nulls().sort().to_list()
    counts = dict(zip(per_kc["skill_id"].to_list(), zip(per_kc["n"].to_list(), per_kc["c"].to_list())))

    users = users.sort("user_id")
    users = users.with_columns(pl.Series("part", partition_of(users["user_id"].to_list(), partitions)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp.", dir=out.parent))
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700; give a normal directory's mode
        final = plan.canonical(with_time=with_time)
        if cellmap is not None:
            final = final.join(cellmap.lazy(), on="skill_id", how="inner").drop("skill_id").rename({"kcs": "skill_id"})
            final = final.select("user_id", "skill_id", "item_id", "correct", "timestamp", "order", "line")
        final = final.join(users.lazy().select("user_id", "part"), on="user_id", how="left")
        sink = pl.PartitionBy(
            tmp,
            key="part",
            include_key=False,
            approximate_bytes_per_file=None,
            file_path_provider=lambda a: f"part-{int(a.partition_keys['part'][0]):05d}-{a.index_in_partition}.parquet",
        )
        try:
            final.sink_parquet(sink, mkdir=True, engine="streaming")
        except pl.exceptions.PolarsError as exc:
            raise DataError(
                s.src, f"cannot write partitions ({str(exc).splitlines()[0]})", "check the disk space and --out"
            ) from None
        files: dict[int, list[str]] = {i: [] for i in range(partitions)}
        for f in sorted(tmp.iterdir()):
            m = _PART_FILE.match(f.name)
            if m:
                files[int(m.group(1))].append(f.name)
        users.write_parquet(tmp / LEARNERS)
        part_sizes = users.group_by("part").agg(pl.len().alias("learners"), pl.col("rows").sum())
        per_part = {r["part"]: r for r in part_sizes.iter_rows(named=True)}
        source_hash = _source_hash(path)
        opts = {"drop_nulls": drop_nulls, "drop_duplicates": drop_duplicates}
        cols = {**s.colmap.to_dict(), "kc_column": plan.skill_col, "explicit": sorted(s.colmap.explicit)}
        fp = hashlib.sha256(json.dumps({"source": source_hash, "columns": cols, "options": opts}, sort_keys=True).encode())
        n_rows = int(users["rows"].sum())
        meta: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kt_version": _kt_version(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": {"path": str(path.resolve()), "format": s.fmt, "bytes": path.stat().st_size, "blake2b": source_hash},
            "fingerprint": fp.hexdigest()[:16],
            "columns": cols,
            "options": opts,
            "partitioning": {"key": "user_id", "scheme": HASH_SCHEME, "partitions": partitions},
            "rows": n_rows,
            "learners": users.height,
            "correct_rate": int(cells["c"].sum()) / int(cells["n"].sum()),  # integer counts
            "multi_kc": multi,
            "has_time": with_time,
            "vocab": {"min_attempts": min_attempts, "skill_id": skill_vocab, "item_id": item_vocab},
            "kc_attempts": [int(counts.get(kc, (0, 0))[0]) for kc in skill_vocab],
            "kc_correct": [int(counts.get(kc, (0, 0))[1]) for kc in skill_vocab],
            "learners_file": LEARNERS,
            "partitions": [
                {
                    "id": i,
                    "files": files[i],
                    "rows": int(per_part.get(i, {}).get("rows", 0)),
                    "learners": int(per_part.get(i, {}).get("learners", 0)),
                }
                for i in range(partitions)
            ],
            "stats": stats,
            "notes": notes,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        for p in meta["partitions"]:  # the files themselves must hold what the learner table says
            held = pl.scan_parquet([tmp / f for f in p["files"]]).select(pl.len()).collect().item() if p["files"] else 0
            if held != p["rows"]:
                raise KTError(f"{s.src}: internal error, partition {p['id']} holds {held} rows, expected {p['rows']}")
        (tmp / META).write_text(json.dumps(meta, indent=1))
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _kt_version() -> str:
    from kt import __version__

    return __version__
