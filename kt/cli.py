"""The ``kt`` command line. Commands parse options, call the library, print.

Exit codes: 0 ok, 1 bad input or usage (one-line message), 2 internal error.
"""

from __future__ import annotations

import contextvars
import functools
import json
import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from kt.errors import KTError

app = typer.Typer(
    name="kt",
    help="Knowledge tracing: ingest interaction logs, train BKT/DKT/CAKT/PSI-KT models, evaluate, export prerequisite graphs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Inspect and convert interaction files.", no_args_is_help=True)
app.add_typer(data_app, name="data")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

MapOpt = Annotated[
    Optional[list[str]],
    typer.Option("--map", help="Column override canonical=Column (user_id, skill_id, item_id, correct, timestamp, order); repeatable."),
]
DropDupOpt = Annotated[bool, typer.Option("--drop-duplicates", help="Drop duplicated attempts instead of only reporting them.")]
DropNullOpt = Annotated[bool, typer.Option("--drop-nulls", help="Drop rows with an empty learner or KC id instead of failing.")]
EncodingOpt = Annotated[Optional[str], typer.Option("--encoding", help="Text encoding of the file (default: UTF-8, Latin-1 fallback).")]


_DEBUG: contextvars.ContextVar[bool] = contextvars.ContextVar("kt_debug", default=False)
# Typer's own control-flow exceptions pass through untouched (names differ across Typer versions).
_PASSTHROUGH = tuple(e for e in (typer.Exit, typer.Abort, getattr(typer, "TyperException", None)) if e is not None)


def _debug() -> bool:
    return _DEBUG.get()


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())


def handle_errors(fn):
    """Turn KTError into a one-line message + exit 1, other errors into exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _PASSTHROUGH:
            raise
        except KTError as exc:
            if _debug():
                raise
            typer.echo(f"error: {_one_line(exc)}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - last-resort reporting
            if _debug():
                raise
            typer.echo(f"internal error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for a traceback)", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _notes(notes) -> None:
    for n in notes:
        err.print(f"[yellow]note:[/] {n}", highlight=False, markup=True)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def _json_dump(obj) -> str:
    def clean(o):
        if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o

    return json.dumps(clean(obj), indent=1)


def _overrides(pairs):
    from kt.data.columns import parse_overrides

    return parse_overrides(pairs)


def _version_cb(value: bool) -> None:
    if value:
        from kt import __version__

        typer.echo(f"kt {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print the kt version and exit.", is_eager=True, callback=_version_cb)
    ] = False,
):
    """Knowledge tracing toolkit."""
    _DEBUG.set(debug)


@data_app.command("inspect")
@handle_errors
def data_inspect(
    file: Annotated[Path, typer.Argument(help="CSV/TSV(.gz), Parquet, or 3/4-line sequence file.")],
    map_: MapOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    encoding: EncodingOpt = None,
):
    """Detected column mapping, counts, correctness rate, time span, sequence lengths and warnings."""
    from kt.data.schema import load
    from kt.report import inspect

    data = load(str(file), overrides=_overrides(map_), min_attempts=1, encoding=encoding)
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
    out_path: Annotated[Path, typer.Option("--out", help="Output file: .parquet or .csv.")],
    map_: MapOpt = None,
    drop_duplicates: DropDupOpt = False,
    drop_nulls: DropNullOpt = False,
    encoding: EncodingOpt = None,
):
    """Write the validated, ordered interactions in kt's canonical columns."""
    from kt.atomic import atomic_path
    from kt.data.schema import load
    from kt.report import canonical_export

    data = load(str(file), overrides=_overrides(map_), min_attempts=1, drop_duplicates=drop_duplicates,
                drop_nulls=drop_nulls, encoding=encoding)
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


def _load_train(file, map_, drop_duplicates, drop_nulls, encoding, vocab=None):
    from kt.data.schema import load

    with err.status(f"reading {file}"):
        data = load(str(file), overrides=_overrides(map_), vocab=vocab, drop_duplicates=drop_duplicates,
                    drop_nulls=drop_nulls, encoding=encoding)
    _notes(data.notes)
    return data


def _metrics_table(title: str, rows: dict[str, dict]) -> Table:
    t = Table(title=title)
    t.add_column("split")
    for m in ("auc", "accuracy", "rmse", "logloss", "n"):
        t.add_column(m, justify="right")
    for name, r in rows.items():
        t.add_row(name, *(_fmt(r[m]) for m in ("auc", "accuracy", "rmse", "logloss", "n")))
    return t


@app.command()
@handle_errors
def train(
    file: Annotated[Path, typer.Argument(help="Training interactions.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (see `kt models`).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the model to.")],
    valid_frac: Annotated[float, typer.Option("--valid-frac", help="Share of learners held out for validation.")] = 0.1,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Training epochs (gradient models).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (split, init, shuffling).")] = 0,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Model option key=value; repeatable (see `kt models`).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file with model options.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run from OUT.ckpt (gradient models; same data, options and seed).")
    ] = False,
    map_: MapOpt = None,
    drop_duplicates: DropDupOpt = False,
    drop_nulls: DropNullOpt = False,
    encoding: EncodingOpt = None,
):
    """Train a model on a file and save it to a directory (model.json + params.eqx).

    Gradient models checkpoint every epoch to OUT.ckpt (removed after a
    successful save), so an interrupted run continues with --resume.
    """
    import time

    from kt.data.splits import train_valid
    from kt.eval.protocols import next_step
    from kt.models.base import create

    sets = list(set_ or [])
    if epochs is not None:
        sets.append(f"epochs={epochs}")
    m = create(model, toml_path=config, sets=sets)
    data = _load_train(file, map_, drop_duplicates, drop_nulls, encoding)
    tr, va = train_valid(data, valid_frac, seed)
    t0 = time.perf_counter()

    def progress(rec: dict) -> None:
        parts = [f"epoch {rec['epoch']}", f"loss {rec.get('train_loss', float('nan')):.4f}"]
        if "valid_auc" in rec:
            parts.append(f"valid AUC {rec['valid_auc']:.4f}")
        if rec.get("interactions_per_second"):
            parts.append(f"{rec['interactions_per_second']:,.0f} interactions/s")
        err.print("  " + " | ".join(parts), highlight=False)

    import shutil

    ckpt = out_dir.with_name(out_dir.name + ".ckpt")
    extra = {}
    if m.resumable:
        extra = {"checkpoint": ckpt, "resume": resume}
    elif resume:
        raise KTError(f"--resume: model {model!r} trains in one pass and has no checkpoints")
    with err.status(f"training {model} on {tr.n_rows:,} attempts of {tr.n_users:,} learners"):
        m.fit(tr, valid=va, key=seed, progress=progress, **extra)
    seconds = time.perf_counter() - t0
    _notes(m.meta.get("warnings", []))
    rows = {}
    m.meta.update({"train_seconds": seconds, "train_file": str(file), "seed": seed, "valid_frac": valid_frac,
                   "data_fingerprint": data.fingerprint(), "train_attempts": tr.n_rows, "train_learners": tr.n_users})
    if va is not None:
        res = next_step(m, va, breakdown=False)
        m.meta["valid_metrics"] = {k: res[k] for k in ("auc", "accuracy", "rmse", "logloss", "n")}
        rows["valid"] = res
    m.save(out_dir)
    if extra:
        shutil.rmtree(ckpt, ignore_errors=True)
    if rows:
        out.print(_metrics_table(f"{model} ({seconds:.1f}s)", rows))
    out.print(f"saved {model} to {out_dir}")


@app.command()
@handle_errors
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory.")],
    file: Annotated[Path, typer.Argument(help="Test interactions.")],
    protocol: Annotated[str, typer.Option("--protocol", help="Evaluation protocol: next (one step ahead).")] = "next",
    include_first: Annotated[bool, typer.Option("--include-first", help="Also score each learner's first attempt (pyBKT convention).")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the full result (metrics, per-KC, calibration) as JSON here.")] = None,
    map_: MapOpt = None,
    drop_duplicates: DropDupOpt = False,
    drop_nulls: DropNullOpt = False,
    encoding: EncodingOpt = None,
):
    """Evaluate a saved model on a file; print the metrics and optionally write JSON."""
    from kt.atomic import write_text
    from kt.eval.protocols import next_step
    from kt.models.base import load

    if protocol != "next":
        raise KTError(f"--protocol {protocol!r}: only 'next' is available in this version")
    m = load(model_dir)
    data = _load_train(file, map_, drop_duplicates, drop_nulls, encoding, vocab=m.vocab)
    with err.status(f"predicting {data.n_rows:,} attempts"):
        res = next_step(m, data, include_first=include_first)
    res["model_dir"] = str(model_dir)
    out.print(_metrics_table(f"{m.name} on {file} (protocol next, {res['scoring']}-level)", {"test": res}))
    if json_out is not None:
        write_text(json_out, _json_dump(res))
        out.print(f"wrote {json_out}")


@app.command()
@handle_errors
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory.")],
    file: Annotated[Path, typer.Argument(help="Interactions to predict.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output CSV (or .parquet).")],
    mastery: Annotated[bool, typer.Option("--mastery", help="Write per learner x KC knowledge state instead of per-attempt predictions.")] = False,
    map_: MapOpt = None,
    encoding: EncodingOpt = None,
):
    """Per-attempt P(correct) from each learner's history, or mastery per learner x KC."""
    from kt.atomic import atomic_path
    from kt.data.schema import load as load_data
    from kt.models.base import load

    m = load(model_dir)
    data = load_data(str(file), overrides=_overrides(map_), vocab=m.vocab, min_attempts=1, encoding=encoding)
    _notes(data.notes)
    frame = m.mastery(data) if mastery else m.predict(data)
    if "skill_id" in frame.columns and str(frame.schema["skill_id"]).startswith("List"):
        frame = frame.with_columns(frame["skill_id"].list.join("~~"))
    with atomic_path(out_path) as tmp:
        frame.write_parquet(tmp) if out_path.suffix.lower() == ".parquet" else frame.write_csv(tmp)
    out.print(f"wrote {frame.height:,} rows to {out_path}")


@app.command()
@handle_errors
def models():
    """List the available models and their options."""
    import dataclasses

    from kt.models.base import REGISTRY, _ensure_builtin

    _ensure_builtin()
    t = Table(title="kt models")
    t.add_column("name")
    t.add_column("description")
    t.add_column("options (--set key=value)")
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        opts = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls.Config)) or "-"
        t.add_row(name, cls.summary, opts)
    out.print(t)


@app.command("export-graph")
@handle_errors
def export_graph(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output file.")],
    fmt: Annotated[str, typer.Option("--format", help="json (more formats come with the graph module).")] = "json",
    threshold: Annotated[float, typer.Option("--threshold", help="Keep edges with probability >= this.")] = 0.5,
):
    """Write the model's prerequisite graph for curriculum designers."""
    from kt.atomic import write_text
    from kt.models.base import load

    if not 0 <= threshold <= 1:
        raise KTError(f"--threshold {threshold}: must be in [0, 1]")
    if fmt != "json":
        raise KTError(f"--format {fmt!r}: only 'json' is available in this version")
    m = load(model_dir)
    g = m.graph()
    if g is None:
        raise KTError(f"{model_dir}: model {m.name!r} has no prerequisite graph; graph models (psikt) and derived graphs come in a later version")
    write_text(out_path, _json_dump(g.to_dict(threshold)))
    out.print(f"wrote {out_path}")


@app.command()
@handle_errors
def simulate(
    kind: Annotated[str, typer.Option("--kind", help="Generator: bkt (more kinds come with their models).")],
    out_path: Annotated[Path, typer.Option("--out", help="Interactions CSV to write.")],
    learners: Annotated[int, typer.Option("--learners", help="Number of learners.")] = 1000,
    kcs: Annotated[int, typer.Option("--kcs", help="Number of KCs.")] = 5,
    steps: Annotated[int, typer.Option("--steps", help="Attempts per learner and KC.")] = 20,
    items_per_kc: Annotated[int, typer.Option("--items-per-kc", help="Distinct items per KC.")] = 1,
    forgets: Annotated[bool, typer.Option("--forgets", help="Sample a non-zero forget probability.")] = False,
    multigs: Annotated[bool, typer.Option("--multigs", help="Guess/slip per item.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    truth: Annotated[Optional[Path], typer.Option("--truth", help="Write the true parameters as JSON here.")] = None,
):
    """Generate synthetic interactions with known parameters (for recovery checks)."""
    from kt.atomic import atomic_path, write_text
    from kt.data.synthetic import simulate_bkt

    if kind != "bkt":
        raise KTError(f"--kind {kind!r}: available generators: bkt")
    frame, true = simulate_bkt(learners, kcs, steps, seed=seed, forgets=forgets, items_per_kc=items_per_kc, multigs=multigs)
    with atomic_path(out_path) as tmp:
        frame.write_csv(tmp)
    if truth is not None:
        write_text(truth, _json_dump(true))
    out.print(f"wrote {frame.height:,} rows ({learners} learners x {kcs} KCs x {steps} steps) to {out_path}")


@app.command("export-params")
@handle_errors
def export_params(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output CSV (or .parquet, .json).")],
):
    """Write a model's fitted parameters as a tidy table (BKT: KC, param, class, value)."""
    from kt.atomic import atomic_path
    from kt.models.base import load

    m = load(model_dir)
    table_fn = getattr(m, "params_table", None)
    if table_fn is None:
        raise KTError(f"{model_dir}: model {m.name!r} has no parameter table to export")
    table = table_fn()
    suffix = out_path.suffix.lower()
    with atomic_path(out_path) as tmp:
        if suffix == ".parquet":
            table.write_parquet(tmp)
        elif suffix == ".json":
            table.write_json(tmp)
        else:
            table.write_csv(tmp)
    out.print(f"wrote {table.height:,} parameters to {out_path}")


def _enable_compile_cache() -> None:
    """Reuse XLA programs across runs (JAX persistent compilation cache).

    Repeated `kt` runs on data of the same shape skip compilation. Only the
    CLI turns this on; importing kt changes no JAX setting. Opt out with
    KT_NO_COMPILE_CACHE=1; the directory is $KT_CACHE_DIR or ~/.cache/kt/jax.
    """
    import os

    if os.environ.get("KT_NO_COMPILE_CACHE"):
        return
    base = os.environ.get("KT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kt", "jax"
    )
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:  # a cache is an optimisation, never a failure
        return
    # Environment variables (read when JAX is first imported) keep commands
    # that never touch JAX, like `kt data inspect`, from importing it.
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", base)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def main() -> None:
    """Console-script entry point."""
    _enable_compile_cache()
    app(prog_name="kt")


if __name__ == "__main__":
    sys.exit(main())
