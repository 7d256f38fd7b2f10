"""Read interaction files into a raw Polars frame plus a detected column map.

Tabular files (CSV, TSV, gzip'd CSV/TSV, Parquet) are read with only the
mapped columns and every value as a string, so a stray value in a column kt
does not use can never break ingestion; typing happens in ``schema.py``.
Line formats (DKT/DKVMN 3-line, AKT 3/4-line, KCMN 4-line) are parsed here
into the canonical column names directly. Before any parsing, a file's first
bytes say what it is (``sniff_input``): spreadsheets, archives, images, PDFs
and other binary files stop with one line naming the kind and the export route.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

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
    sep = max(counts, key=counts.__getitem__)
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
        DataError: missing, empty or unreadable file; a file that is not a
            text table (spreadsheet, archive, image, PDF, other binary); a
            used column name that appears twice in the header.
    """
    p = Path(path)
    src = str(path)
    require_file(p, "CSV/TSV, Parquet or 3/4-line")
    kind = sniff_input(p, encoding=encoding)  # first: a mis-named spreadsheet fails as what it is
    if p.suffix == ".parquet" or kind == "parquet":
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
    notes += check_duplicate_columns(first_line, sep, header, colmap, src)
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
    fh: TextIO
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


# (leading bytes, what the file is). Checked before any parsing, so that a
# spreadsheet or an image fails with a name for what it is instead of a
# parser error about delimiters or a header of mojibake.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Excel .xls workbook or other OLE2 Office file"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"%PDF-", "PDF document"),
    (b"\xfd7zXZ\x00", "xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\x28\xb5\x2f\xfd", "zstd archive"),
    (b"SQLite format 3\x00", "SQLite database"),
    (b"ARROW1", "Arrow/Feather file"),
    (b"\x89HDF\r\n\x1a\n", "HDF5 file"),
    (b"\x93NUMPY", "NumPy array"),
    (b"\x7fELF", "executable"),
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
# Byte-order marks of UTF-16/32 text, which is full of NUL bytes but is text.
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_EXPORT = "export it as CSV"
_EXCEL = "export it as CSV (in Excel: File > Save As > CSV UTF-8)"


def _zip_kind(p: Path) -> tuple[str, str]:
    import zipfile

    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
            mimetype = z.read("mimetype").decode("ascii", "replace") if "mimetype" in names else ""
    except (zipfile.BadZipFile, OSError, KeyError):
        return "zip archive", "unzip it and give the CSV inside"
    if any(n.startswith("xl/") for n in names):
        return "Excel .xlsx workbook", _EXCEL
    if "spreadsheet" in mimetype:
        return "OpenDocument .ods spreadsheet", "export it as CSV (in LibreOffice: File > Save As > Text CSV)"
    if any(n.startswith("word/") for n in names) or "text" in mimetype:
        return "word-processor document", _EXPORT
    tables = [n for n in names if n.lower().endswith((".csv", ".tsv", ".txt", ".parquet"))]
    if len(tables) == 1:
        return "zip archive", f"unzip it and give {tables[0]}"
    return "zip archive", "unzip it and give the CSV inside"


def _binary_kind(head: bytes) -> str | None:
    """What ``head`` (a file's first bytes) is, when it is a known non-text format."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"BZh") and head[4:10] == b"1AY&SY":
        return "bzip2 archive"
    if head[257:262] == b"ustar":
        return "tar archive"
    if head.startswith(_ZIP_MAGIC):
        return "zip archive"
    if head.startswith(_GZIP_MAGIC):
        return "gzip archive"
    return None


def sniff_input(p: Path, *, encoding: str | None = None) -> str:
    """Recognise a data file by its leading bytes, before any parsing.

    Args:
        p: an existing file.
        encoding: the ``--encoding`` given, if any; a wide encoding such as
            UTF-16 legitimately has NUL bytes, so none is then taken for binary.

    Returns:
        ``"parquet"`` (magic ``PAR1``, whatever the file's name) or ``"text"``
        (plain or, for ``.gz`` names, gzip'd text).

    Raises:
        DataError: the file is not a text table: a spreadsheet, an archive,
            an image, a PDF, gzip holding anything but text, or other binary
            data; the message names what it is and how to export a CSV.
    """
    src = str(p)
    try:
        with open(p, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise DataError(src, f"cannot read file ({exc.strerror or exc})", "check the path and its permissions") from None
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    kind: str | None  # what the leading bytes say the file is, when not a text table
    if head.startswith(_ZIP_MAGIC):
        kind, fix = _zip_kind(p)
        raise DataError(src, f"not a text table ({kind})", fix)
    if head.startswith(_GZIP_MAGIC):
        if p.suffix != ".gz":
            raise DataError(
                src, "gzip-compressed but not named .gz", f"rename it to {p.name}.gz, or decompress it (gunzip -c {src} > x.csv)"
            )
        try:
            with gzip.open(p, "rb") as fh:
                inner = fh.read(4096)
        except (OSError, EOFError) as exc:
            raise DataError(src, f"cannot read file ({exc})", "check the file (gzip -t)") from None
        kind = _binary_kind(inner) or (
            None if encoding or inner.startswith(_WIDE_BOMS) or b"\x00" not in inner else "binary data"
        )
        if inner.startswith(_PARQUET_MAGIC):
            kind = "Parquet"
        if kind is not None:
            raise DataError(src, f"not a text table (gzip holding {kind})", f"decompress it (gunzip -k {src}) and {_EXPORT}")
        return "text"
    if not encoding and head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(src, "UTF-16 text (byte-order mark)", "pass --encoding utf-16, or save it as CSV UTF-8")
    kind = _binary_kind(head)
    if kind is None and not encoding and not head.startswith(_WIDE_BOMS) and b"\x00" in head:
        kind = "binary data"
    if kind is not None:
        fix = _EXCEL if "Excel" in kind else _EXPORT
        if kind == "binary data":
            fix += " (or, if it is UTF-16 text, pass --encoding utf-16)"
        raise DataError(src, f"not a text table ({kind})", fix)
    return "text"


def check_duplicate_columns(first_line: str, sep: str, header: list[str], colmap: ColumnMap, src: str) -> list[str]:
    """Refuse a header whose column kt would read appears twice under one name.

    Polars renames the second ``correct`` to ``correct_duplicated_0``, so
    the raw header line is read to find them. Duplicated columns kt does not
    read are harmless; ``--map`` settles a used one.

    Args:
        first_line: the file's header line, decoded.
        sep: its delimiter.
        header: column names as Polars reads them (same order).
        colmap: the detected column map.
        src: the file, for messages.

    Returns:
        Notes for a duplicate that ``--map`` chose explicitly.

    Raises:
        DataError: a duplicated name is mapped by auto-detection; the message
            names the columns, their positions and the ``--map`` choices.
    """
    try:
        raw = next(csv.reader([first_line], delimiter=sep))
    except (csv.Error, StopIteration):
        return []
    if len(raw) != len(header):  # a header Polars split differently (quoted newline): positions do not line up
        return []
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(raw):
        positions.setdefault(name.strip().lstrip("\ufeff"), []).append(i)
    used = {col: canon for canon, col in colmap.columns.items()}
    if colmap.item_step:
        used.setdefault(colmap.item_step, "item_id")
    notes = []
    for name, pos in positions.items():
        if len(pos) < 2:
            continue
        aliases = [header[i] for i in pos]
        canon = next((used[a] for a in aliases if a in used), None)
        if canon is None:
            continue
        where = ", ".join(str(i + 1) for i in pos[:-1]) + f" and {pos[-1] + 1}"
        named = f"{'both' if len(pos) == 2 else 'all'} named {name!r}"
        if canon in colmap.explicit:
            chosen = colmap.columns[canon]
            notes.append(
                f"{src}: columns {where} are {named}; --map {canon}={chosen} reads column {pos[aliases.index(chosen)] + 1}"
            )
            continue
        choices = " or ".join(f"--map {canon}={a} (column {i + 1})" for a, i in zip(aliases, pos))
        raise DataError(src, f"columns {where} are {named}", f"rename one, or pick one with {choices}")
    return notes


def frame_table(frame: pl.DataFrame, *, overrides: dict[str, str] | None = None, source: str = "<frame>") -> RawTable:
    """A Polars frame in memory as a raw table (what :func:`read_table` gives for a file).

    Columns are detected and mapped exactly as for a file's header; the
    mapped columns keep their dtypes (as for Parquet), and ``__line`` is the
    row's 0-based position in ``frame``.

    Args:
        frame: the interactions, one row per attempt.
        overrides: explicit canonical -> column choices (``--map``).
        source: name used in messages and as the data's ``source``.

    Returns:
        The raw table (format ``frame``, unit ``row``).

    Raises:
        KTError: an override names a column the frame does not have.
    """
    header = [str(c) for c in frame.columns]
    colmap = detect(header, overrides, source=source)
    cols = list(dict.fromkeys([*colmap.columns.values(), *([colmap.item_step] if colmap.item_step else [])]))
    if not cols:
        return RawTable(pl.DataFrame(), colmap, source, "frame", unit="row", header=header)
    f = frame.select(cols).with_row_index(LINE_COL).with_columns(pl.col(LINE_COL).cast(pl.Int64))
    return RawTable(f, colmap, source, "frame", unit="row", header=header)


def scan_parquet(p: Path) -> tuple[pl.LazyFrame, dict]:
    """A lazy scan of a Parquet file and its schema (column -> dtype).

    Raises:
        DataError: the file is not readable Parquet (one line, no traceback).
    """
    try:
        lf = pl.scan_parquet(p)
        return lf, dict(lf.collect_schema())
    except pl.exceptions.PolarsError as exc:
        raise DataError(
            str(p), f"cannot read Parquet ({str(exc).splitlines()[0]})", "check that the file is complete, or re-export it"
        ) from None


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
