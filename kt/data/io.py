"""Read interaction files into a raw Polars frame plus a detected column map.

Tabular files (CSV, TSV, gzip'd CSV/TSV, Parquet) are read with only the
mapped columns and every value as a string, so a stray value in a column kt
does not use can never break ingestion; typing happens in ``schema.py``.
Line formats (DKT/DKVMN 3-line, AKT 3/4-line, KCMN 4-line) are parsed here
into the canonical column names directly.
"""

from __future__ import annotations

import codecs
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
    """

    frame: pl.DataFrame
    colmap: ColumnMap
    source: str
    fmt: str
    unit: str = "line"
    notes: list[str] = field(default_factory=list)


def _open_text_head(path: Path, nbytes: int = 65536) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(nbytes)
    except (OSError, EOFError) as exc:
        raise DataError(str(path), f"cannot read file ({exc})") from None


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
    if not p.exists():
        raise DataError(src, "file not found", "check the path")
    if p.is_dir():
        raise DataError(src, "is a directory, expected a data file")
    if p.suffix == ".parquet":
        return _read_parquet(p, overrides)
    head = _open_text_head(p)
    if not head.strip():
        raise DataError(src, "file is empty", "give a file with a header row and at least one interaction")
    if _looks_line_format(head):
        from kt.data.lineformats import read_line_format

        return read_line_format(p, _read_text(p, encoding, src)[0])
    return _read_delimited(p, head, overrides, encoding)


def _read_text(p: Path, encoding: str | None, src: str) -> tuple[str, list[str]]:
    data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
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
        note = (
            f"{src}: not valid UTF-8 (byte {exc.start}); read as Latin-1. "
            f"To convert once: iconv -f latin1 -t utf-8 {src} > {Path(src).stem}.utf8.csv"
        )
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
        raise DataError(src, f"cannot parse header ({exc})") from None
    if isinstance(source, io.BytesIO):
        source.seek(0)
    colmap = detect(header, overrides, source=src)
    cols = list(dict.fromkeys([*colmap.columns.values(), *([colmap.item_step] if colmap.item_step else [])]))
    if not cols:
        return RawTable(pl.DataFrame(), colmap, src, "tsv" if sep == "\t" else "csv", notes=notes)
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
        msg = str(exc).splitlines()[0]
        raise DataError(src, f"cannot parse as {'TSV' if sep == chr(9) else 'CSV'} ({msg})", "check the delimiter and quoting") from None
    return RawTable(frame, colmap, src, "tsv" if sep == "\t" else "csv", notes=notes)


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


def _read_parquet(p: Path, overrides) -> RawTable:
    src = str(p)
    try:
        lf = pl.scan_parquet(p)
        header = lf.collect_schema().names()
    except pl.exceptions.PolarsError as exc:
        raise DataError(src, f"cannot read Parquet ({str(exc).splitlines()[0]})") from None
    colmap = detect(header, overrides, source=src)
    cols = list(dict.fromkeys([*colmap.columns.values(), *([colmap.item_step] if colmap.item_step else [])]))
    frame = (
        lf.select(cols)
        .with_row_index(LINE_COL, offset=1)
        .collect()
    )
    return RawTable(frame, colmap, src, "parquet", unit="row")
