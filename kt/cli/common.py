"""Shared pieces of the ``kt`` command line: the Typer apps, consoles,
error handling, common options and helpers.

Exit codes: 0 ok, 1 bad input or usage (one-line message), 2 internal error.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from kt.api import Reporter
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
    typer.Option(
        "--map", help="Column override canonical=Column (user_id, skill_id, item_id, correct, timestamp, order); repeatable."
    ),
]
DropDupOpt = Annotated[bool, typer.Option("--drop-duplicates", help="Drop duplicated attempts instead of only reporting them.")]
DropNullOpt = Annotated[bool, typer.Option("--drop-nulls", help="Drop rows with an empty learner or KC id instead of failing.")]
EncodingOpt = Annotated[
    Optional[str], typer.Option("--encoding", help="Text encoding of the file (default: UTF-8, Latin-1 fallback).")
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing --out (atomically); without it kt refuses and changes nothing.")
]

# Options shared by evaluate, cv and compare.
HistoryOpt = Annotated[Optional[int], typer.Option("--history", help="multistep: observed attempts per learner.")]
HistoryFracOpt = Annotated[
    Optional[float],
    typer.Option("--history-frac", help="multistep: observe this share of each learner's attempts instead (pyKT train_ratio)."),
]
HorizonOpt = Annotated[
    Optional[int], typer.Option("--horizon", help="multistep: attempts predicted after the history (default: all).")
]
ModeOpt = Annotated[
    str,
    typer.Option(
        "--mode",
        help="multistep: nonacc (from the history only) or acc (earlier predictions fed back as outcomes, 1 if p >= 0.5).",
    ),
]
ScoringOpt = Annotated[
    str,
    typer.Option(
        "--scoring", help="question (default: one score per question, KC rows fused) or kc-row (pyKT's expanded rows; leaky)."
    ),
]
FusionOpt = Annotated[str, typer.Option("--fusion", help="Fusion of a question's KC-row predictions: mean, vote or all.")]
IncludeFirstOpt = Annotated[
    bool, typer.Option("--include-first", help="next: also score each learner's first attempt (pyBKT convention).")
]
CollapseOpt = Annotated[
    bool,
    typer.Option(
        "--collapse-kc-rows",
        help="Merge consecutive rows with the same item and outcome (a question expanded into KC rows) into one multi-KC question.",
    ),
]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Model option key=value; repeatable (see `kt models`).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="TOML file with model options ([MODEL] tables).")]


_DEBUG: contextvars.ContextVar[bool] = contextvars.ContextVar("kt_debug", default=False)
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("kt_quiet", default=False)
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


def live_display() -> bool:
    """Whether spinners and progress bars are drawn: stderr is a terminal and no ``--quiet``."""
    return err.is_terminal and not _QUIET.get()


def _no_update(done: float, total: float | None = None, info: str = "") -> None:
    pass


class CliReporter(Reporter):
    """The API's notes, warnings, progress lines, status and progress bars, printed on stderr with rich.

    Spinners and bars are drawn only when stderr is a terminal and
    ``--quiet`` is not given; bars are transient (they vanish when their
    loop ends) and never touch stdout. ``--quiet`` also drops the
    per-epoch and per-fold lines; notes, warnings and errors stay.
    """

    def note(self, msg: str) -> None:
        _notes([msg])

    def warn(self, msg: str) -> None:
        err.print(f"[bold red]warning:[/] {msg}", highlight=False)

    def line(self, msg: str) -> None:
        if not _QUIET.get():
            err.print(msg, highlight=False)

    def status(self, msg: str):
        return err.status(msg) if not _QUIET.get() else contextlib.nullcontext()

    @contextlib.contextmanager
    def progress(self, what: str, total: float | None = None):
        if not live_display():
            yield _no_update
            return
        from rich.errors import LiveError
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=err,
            transient=True,
            redirect_stdout=False,  # stdout (--json, tables) is never captured
        )
        task = bar.add_task(what, total=total, info="")
        try:
            bar.start()
            started = True
        except LiveError:  # rich before 14.1 draws one live display at a time (a spinner is showing)
            started = False
        if not started:  # yield outside the except block, so an error in the caller's block does not chain to LiveError
            yield _no_update
            return

        def update(done: float, total: float | None = None, info: str = "") -> None:
            bar.update(task, completed=done, total=total, info=info)

        try:
            yield update
        finally:
            bar.stop()


UI = CliReporter()


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


def _write_json(path: Path | None, obj) -> None:
    """``--json PATH``: write ``obj`` there as JSON (atomically) and say so; nothing when ``path`` is ``None``."""
    if path is None:
        return
    from kt.atomic import write_text

    write_text(path, _json_dump(obj))
    out.print(f"wrote {path}")


def _overrides(pairs):
    from kt.data.columns import parse_overrides

    return parse_overrides(pairs)


def _version_cb(value: bool) -> None:
    if value:
        from kt import distribution_version

        typer.echo(distribution_version())
        raise typer.Exit(0)


@app.callback()
def main_callback(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="No progress bars, spinners or per-epoch/per-fold lines on stderr (notes, warnings and errors stay).",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the distribution name (kt-trace) and version, and exit.", is_eager=True, callback=_version_cb
        ),
    ] = False,
):
    """Knowledge tracing toolkit."""
    _DEBUG.set(debug)
    _QUIET.set(quiet)


def _load_data(file, map_, drop_duplicates, drop_nulls, encoding, vocab=None, min_attempts: int = 2):
    """``kt.load`` of a file, or of a ``kt data convert --partitions`` directory loaded whole, with status and notes."""
    from kt.api import _data

    return _data(
        Path(file),
        UI,
        map=map_ or None,
        vocab=vocab,
        min_attempts=min_attempts,
        drop_duplicates=drop_duplicates,
        drop_nulls=drop_nulls,
        encoding=encoding,
    )


def read_options(map_, drop_duplicates: bool, drop_nulls: bool, encoding: str | None) -> dict[str, Any]:
    """The API's keywords for reading a file, from ``--map``, ``--drop-duplicates``, ``--drop-nulls`` and ``--encoding``.

    Args:
        map_: the ``--map`` overrides (``None`` or a list of ``canonical=Column``).
        drop_duplicates: ``--drop-duplicates``.
        drop_nulls: ``--drop-nulls``.
        encoding: ``--encoding``.

    Returns:
        ``map``, ``drop_duplicates``, ``drop_nulls`` and ``encoding`` for
        ``kt.train``, ``kt.evaluate``, ``kt.cross_validate`` and ``kt.compare``.
    """
    return {"map": map_, "drop_duplicates": drop_duplicates, "drop_nulls": drop_nulls, "encoding": encoding}


def eval_options(
    history, history_frac, horizon, mode: str, scoring: str, fusion: str, include_first: bool, collapse: bool
) -> dict[str, Any]:
    """The API's evaluation keywords, from the options ``kt evaluate``, ``kt cv`` and ``kt compare`` share.

    Args:
        history: ``--history``.
        history_frac: ``--history-frac``.
        horizon: ``--horizon``.
        mode: ``--mode``.
        scoring: ``--scoring``.
        fusion: ``--fusion``.
        include_first: ``--include-first``.
        collapse: ``--collapse-kc-rows``.

    Returns:
        The keywords of ``kt.evaluate``, ``kt.cross_validate`` and
        ``kt.compare`` of the same names (``collapse`` as ``collapse_kc_rows``).
    """
    return {
        "history": history,
        "history_frac": history_frac,
        "horizon": horizon,
        "mode": mode,
        "scoring": scoring,
        "fusion": fusion,
        "include_first": include_first,
        "collapse_kc_rows": collapse,
    }


def _metrics_table(title: str, rows: dict[str, dict]) -> Table:
    t = Table(title=title)
    t.add_column("split")
    for m in ("auc", "accuracy", "rmse", "logloss", "n"):
        t.add_column(m, justify="right")
    for name, r in rows.items():
        t.add_row(name, *(_fmt(r[m]) for m in ("auc", "accuracy", "rmse", "logloss", "n")))
    return t


# XLA orders a CPU program for concurrency by default. Its memory-minimising
# order gives the same results (bit for bit) at the same speed on 2 cores and
# cuts the temporaries of CAKT's training step by 41% (1.77 -> 1.05 GB for
# 3,200 CNN volumes; docs/models/cakt.md).
XLA_CPU_MEMORY_FLAGS = ("--xla_cpu_enable_concurrency_optimized_scheduler=false",)


def use_memory_scheduler(environ: Any = None) -> str:
    """Add :data:`XLA_CPU_MEMORY_FLAGS` to ``XLA_FLAGS`` unless the user set those flags.

    XLA reads ``XLA_FLAGS`` once, when JAX starts its backend, so this must
    run before the first computation. Only the CLI and the bench scripts
    call it; importing kt changes no setting. Python users who want the same
    memory can set ``XLA_FLAGS`` themselves before importing JAX.

    Args:
        environ: the environment to change (default ``os.environ``).

    Returns:
        The resulting ``XLA_FLAGS`` value.
    """
    import os

    env = os.environ if environ is None else environ
    flags = env.get("XLA_FLAGS", "")
    for flag in XLA_CPU_MEMORY_FLAGS:
        if flag.split("=")[0] not in flags:
            flags = f"{flags} {flag}".strip()
    env["XLA_FLAGS"] = flags
    return flags


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
