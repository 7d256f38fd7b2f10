"""Read interaction files into a raw Polars frame plus a detected column map.

Tabular files (CSV, TSV, gzip'd CSV/TSV, Parquet) are read with only the
mapped columns and every value as a string, so a stray value in a column kt
does not use can never break ingestion; typing happens in ``schema.py``.
Line formats (DKT/DKVMN 3-line, AKT 3/4-line, KCMN 4-line) are parsed here
into the canonical column names directly.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from kt.data.columns import ColumnMap, detect
from kt.errors import DataError

LINE_COL = "__line"
_LINE_FORMAT_ROW = re.compile(r"^[\s0-9.,-]*$")
_LINE_FORMAT_HEAD = re.compile(r"^\s*[\w.:-]+\s*(,\s*[\w.:-]+\s*)?,?\s*$")


@dataclass
class RawTable:
    """A file as read, before typing and validation.

    Attributes:
        frame: mapped source columns (strings for text files, native dtypes
            for Parquet), plus ``__line`` (the 1-based line of the row in the
            text file, or the row number for Parquet).
        colmap: detected column map (for line formats: canonical names).
        source: the path as given, for messages.
        fmt: ``csv``, ``tsv``, ``parquet``, ``3-line``, ``akt-3line``,
            ``akt-4line``, ``kcmn-4line`` or ``3-line-userid``.
        unit: ``line`` or ``row`` (how ``__line`` should be read).
        notes: remarks for the user (encoding fallbacks and the like).
        header: every column name of the file as read (tabular formats), so
            messages can list the columns a ``--map`` could name.
    """

    frame: pl.DataFrame
    colmap: ColumnMap
    source: str
    fmt: str
    unit: str = "line"
    notes: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)


def _open_text_head(path: Path, nbytes: int = 65536) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(nbytes)
    except (OSError, EOFError) as exc:
        raise DataError(str(path), f"cannot read file ({exc})", "check the file (gzip -t for .gz files)") from None


def _sniff_separator(first_line: str) -> str:
    counts = {sep: first_line.count(sep) for sep in ("\t", ",", ";", "|")}
    sep = max(counts, key=counts.get)
    return sep if counts[sep] > 0 else ","


def _looks_line_format(head: bytes) -> bool:
    lines = [ln for ln in head.decode("utf-8", "replace").splitlines() if ln.strip()][:4]
    if len(lines) < 3:
        return False
    return bool(_LINE_FORMAT_HEAD.match(lines[0])) and all(_LINE_FORMAT_ROW.match(ln) for ln in lines[1:3])


def read_table(
    path: str | Path,
    *,
    overrides: dict[str, str] | None = None,
    encoding: str | None = None,
) -> RawTable:
    """Read an interaction file of any supported format.

    Args:
        path: CSV/TSV (optionally ``.gz``), Parquet, or a 3/4-line text file.
        overrides: explicit canonical -> source column choices.
        encoding: force a text encoding (e.g. ``latin-1``); by default UTF-8
            is tried first and Latin-1 is used, with a note, if that fails.

    Returns:
        The raw table with its column map.

    Raises:
        DataError: missing, empty or unreadable file.
    """
    p = Path(path)
    src = str(path)
    require_file(p, "CSV/TSV, Parquet or 3/4-line")
    if p.suffix == ".parquet":
        return _read_parquet(p, overrides)
    head = _open_text_head(p)
    if not head.strip():
        raise DataError(src, "file is empty", "give a file with a header row and at least one interaction")
    if _looks_line_format(head):
        from kt.data.lineformats import read_line_format

        text, notes = _read_text(p, encoding, src)
        raw = read_line_format(p, text)
        raw.notes[:0] = notes
        return raw
    return _read_delimited(p, head, overrides, encoding)


def _read_text(p: Path, encoding: str | None, src: str) -> tuple[str, list[str]]:
    try:
        data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    except (OSError, EOFError) as exc:  # truncated or corrupt gzip past the sniffed head
        raise DataError(src, f"cannot read file ({exc})", "check that the file is complete (e.g. gzip -t)") from None
    return _decode(data, encoding, src)


def _decode(data: bytes, encoding: str | None, src: str) -> tuple[str, list[str]]:
    if encoding:
        try:
            return data.decode(encoding), []
        except (UnicodeDecodeError, LookupError) as exc:
            raise DataError(src, f"cannot decode as {encoding} ({exc})", "pass the right --encoding") from None
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        name = Path(src).name
        if name.endswith(".gz"):
            name = name[: -len(".gz")]
            convert = f"gunzip -c {src} | iconv -f latin1 -t utf-8 > {Path(name).stem}.utf8{Path(name).suffix}"
        else:
            convert = f"iconv -f latin1 -t utf-8 {src} > {Path(name).stem}.utf8{Path(name).suffix}"
        note = f"{src}: not valid UTF-8 (byte {exc.start}); read as Latin-1. To convert once: {convert}"
        return data.decode("latin-1"), [note]


def _read_delimited(p: Path, head: bytes, overrides, encoding) -> RawTable:
    src = str(p)
    first_line = head.decode("utf-8", "replace").lstrip("\ufeff").splitlines()[0]
    sep = _sniff_separator(first_line)
    notes: list[str] = []
    needs_decode = p.suffix == ".gz" or encoding is not None
    source: Path | io.BytesIO = p
    if needs_decode or not _is_utf8_file(p):
        text, notes = _read_text(p, encoding, src)
        source = io.BytesIO(text.encode("utf-8"))
    try:
        header = pl.read_csv(source, separator=sep, infer_schema=False, n_rows=0).columns
    except pl.exceptions.PolarsError as exc:
        raise DataError(src, f"cannot parse header ({str(exc).splitlines()[0]})", "check the delimiter and quoting") from None
    if isinstance(source, io.BytesIO):
        source.seek(0)
    colmap = detect(header, overrides, source=src)
    cols = list(dict.fromkeys([*colmap.columns.values(), *([colmap.item_step] if colmap.item_step else [])]))
    fmt = "tsv" if sep == "\t" else "csv"
    if not cols:
        return RawTable(pl.DataFrame(), colmap, src, fmt, notes=notes, header=header)
    try:
        frame = pl.read_csv(
            source,
            separator=sep,
            infer_schema=False,
            columns=cols,
            row_index_name=LINE_COL,
            row_index_offset=2,
        )
    except pl.exceptions.PolarsError as exc:
        if isinstance(source, io.BytesIO):
            source.seek(0)
        where = _first_ragged_line(source, sep, len(header))
        msg = where or f"cannot parse as {fmt.upper()} ({str(exc).splitlines()[0]})"
        raise DataError(src, msg, "check the delimiter and quoting") from None
    return RawTable(frame, colmap, src, fmt, notes=notes, header=header)


def _first_ragged_line(source: Path | io.BytesIO, sep: str, width: int) -> str | None:
    """Describe the first record whose field count differs from the header's (error path only)."""
    if isinstance(source, io.BytesIO):
        fh = io.TextIOWrapper(source, encoding="utf-8", newline="")
    else:
        fh = open(source, encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    try:
        reader = csv.reader(fh, delimiter=sep)
        start = 1
        for record in reader:
            if start > 1 and record and len(record) != width:
                return f"line {start}: {len(record)} fields but the header has {width}"
            start = reader.line_num + 1
    except csv.Error as exc:
        return f"line {start}: cannot parse ({exc})"
    finally:
        fh.close()
    return None


def _is_utf8_file(p: Path, chunk: int = 1 << 24) -> bool:
    # Checked in chunks so a large plain file is never held in memory twice.
    dec = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(p, "rb") as fh:
            while block := fh.read(chunk):
                dec.decode(block)
            dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def require_file(p: Path, kinds: str) -> None:
    """Fail with a one-line error unless ``p`` is an existing file.

    Args:
        p: the path given by the user.
        kinds: the accepted formats, for the hint (e.g. ``"CSV/TSV or Parquet"``).

    Raises:
        DataError: ``p`` is missing or a directory.
    """
    if not p.exists():
        raise DataError(str(p), "file not found", "check the path")
    if p.is_dir():
        raise DataError(str(p), "is a directory, expected a data file", f"give the path of a {kinds} file")


def scan_parquet(p: Path) -> tuple[pl.LazyFrame, dict]:
    """A lazy scan of a Parquet file and its schema (column -> dtype).

    Raises:
        DataError: the file is not readable Parquet (one line, no traceback).
    """
    try:
        lf = pl.scan_parquet(p)
        return lf, dict(lf.collect_schema())
    except pl.exceptions.PolarsError as exc:
        raise DataError(str(p), f"cannot read Parquet ({str(exc).splitlines()[0]})", "check that the file is complete, or re-export it") from None


def _read_parquet(p: Path, overrides) -> RawTable:
    src = str(p)
    lf, schema = scan_parquet(p)
    header = list(schema)
    colmap = detect(header, overrides, source=src)
    cols = list(dict.fromkeys([*colmap.columns.values(), *([colmap.item_step] if colmap.item_step else [])]))
    if not cols:
        return RawTable(pl.DataFrame(), colmap, src, "parquet", unit="row", header=header)
    try:
        frame = lf.select(cols).with_row_index(LINE_COL, offset=1).collect()
    except pl.exceptions.PolarsError as exc:
        raise DataError(src, f"cannot read Parquet ({str(exc).splitlines()[0]})", "re-export the file") from None
    return RawTable(frame, colmap, src, "parquet", unit="row", header=header)
