"""`kt data`: inspect and convert interaction files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from kt.cli.common import (
    data_app,
    out,
    UI,
    MapOpt,
    DropDupOpt,
    DropNullOpt,
    EncodingOpt,
    handle_errors,
    _fmt,
    _json_dump,
    _load_data,
    _notes,
    _overrides,
)
from kt.errors import KTError


@data_app.command("inspect")
@handle_errors
def data_inspect(
    file: Annotated[
        Path, typer.Argument(help="CSV/TSV(.gz), Parquet, 3/4-line sequence file, or a `kt data convert --partitions` directory.")
    ],
    map_: MapOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    encoding: EncodingOpt = None,
):
    """Detected column mapping, counts, correctness rate, time span, sequence lengths and warnings."""
    from kt.report import inspect

    data = _load_data(file, map_, False, False, encoding, min_attempts=1)
    rep = inspect(data)
    if as_json:
        typer.echo(_json_dump(rep))
        return
    t = Table(title=f"{file}", show_header=False)
    t.add_row("format", f"{rep['format']} ({rep['mapping']['layout']})")
    for canon, col in rep["mapping"]["columns"].items():
        t.add_row(f"  {canon}", col)
    for key in ("rows", "learners", "kcs", "items", "correct_rate", "multi_kc_rows", "time_span_days", "duplicates"):
        t.add_row(key, _fmt(rep[key]) if rep[key] is not None else "no timestamps")
    sl = rep["sequence_length"]
    t.add_row("length min/median/q90/max", f"{sl['min']:.0f} / {sl['median']:.0f} / {sl['q90']:.0f} / {sl['max']:.0f}")
    out.print(t)
    _notes(rep["warnings"])


@data_app.command("convert")
@handle_errors
def data_convert(
    file: Annotated[Path, typer.Argument(help="Input interaction file (any supported format).")],
    out_path: Annotated[Path, typer.Option("--out", help="Output file: .parquet or .csv (with --partitions: a directory).")],
    partitions: Annotated[
        Optional[int],
        typer.Option(
            "--partitions",
            help="Stream a CSV/TSV/Parquet log larger than memory into N Parquet files by learner hash (a directory for `kt train DIR`).",
        ),
    ] = None,
    map_: MapOpt = None,
    drop_duplicates: DropDupOpt = False,
    drop_nulls: DropNullOpt = False,
    encoding: EncodingOpt = None,
):
    """Write the validated, ordered interactions in kt's canonical columns.

    With --partitions N the file is never loaded whole: Polars' streaming
    engine validates it and writes OUT/part-*.parquet (each learner in one
    partition) plus OUT/meta.json (mapping, vocabularies, counts), which
    `kt train OUT --model dkt` trains from one partition at a time.
    """
    from kt.atomic import check_location

    check_location(out_path)  # before reading the whole file
    if partitions is not None:
        _convert_partitioned(file, out_path, partitions, map_, drop_duplicates, drop_nulls, encoding)
        return
    from kt.atomic import atomic_path
    from kt.data.schema import load
    from kt.report import canonical_export

    with UI.status(f"reading {file}"):
        data = load(
            str(file),
            overrides=_overrides(map_),
            min_attempts=1,
            drop_duplicates=drop_duplicates,
            drop_nulls=drop_nulls,
            encoding=encoding,
        )
    frame = canonical_export(data)
    suffix = out_path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise KTError(f"--out {out_path}: unknown output type {suffix!r}; use .parquet or .csv")
    with atomic_path(out_path) as tmp:
        if suffix == ".parquet":
            frame.write_parquet(tmp)
        else:
            if data.multi_kc:
                frame = frame.with_columns(frame["skill_id"].list.join("~~"))
            frame.write_csv(tmp)
    _notes(data.notes)
    out.print(f"wrote {frame.height:,} rows to {out_path}")


def _convert_partitioned(file: Path, out_dir: Path, partitions: int, map_, drop_duplicates, drop_nulls, encoding) -> None:
    from kt.api import StepBars
    from kt.data.stream import convert_partitioned

    with UI.status(f"streaming {file} into {partitions} partitions"), StepBars(UI) as bars:
        meta = convert_partitioned(
            file,
            out_dir,
            partitions,
            overrides=_overrides(map_),
            drop_duplicates=drop_duplicates,
            drop_nulls=drop_nulls,
            encoding=encoding,
            on_step=bars.on_step,
        )
    _notes(meta["notes"])
    secs = meta["seconds"]
    out.print(
        f"wrote {meta['rows']:,} rows of {meta['learners']:,} learners to {out_dir} ({partitions} partitions) "
        f"in {secs:.1f} s ({meta['rows'] / max(secs, 1e-9):,.0f} rows/s)"
    )
