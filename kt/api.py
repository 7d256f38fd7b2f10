"""The Python API: what the ``kt`` command does, callable from a notebook.

Everything here is exported from the package (``kt.train``, ``kt.evaluate``,
...), and the command line calls these functions, so a model trained with
``kt.train(..., out=DIR)`` is saved exactly as ``kt train --out DIR`` saves
it. Heavy modules (JAX, the models) are imported inside the functions:
``import kt`` stays light.

Data arguments accept a path (``str`` or ``os.PathLike``: any file kt reads,
or a ``kt data convert --partitions`` directory), a pandas or Polars
DataFrame (columns detected as in a file's header), or an
:class:`~kt.data.schema.Interactions` from :func:`load`.

Notes (dropped learners, duplicates, model warnings) and per-epoch progress
go to stderr as ``note: ...`` lines; pass ``verbose=False`` to silence them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

from kt.data.schema import Interactions
from kt.errors import KTError

if TYPE_CHECKING:
    import polars as pl
    from typing_extensions import TypeIs  # typing.TypeIs from Python 3.13

    from kt.data.vocab import Vocab
    from kt.graph.export import GraphView
    from kt.graph.graph import PrerequisiteGraph
    from kt.models.base import Model

PathLike = Union[str, "os.PathLike[str]"]
#: What data arguments accept: a path, a pandas/Polars DataFrame, or loaded interactions.
DataLike = Union[PathLike, "pl.DataFrame", Any, Interactions]
ModelName = Literal["majority", "kc-rate", "bkt", "dkt", "cakt", "psikt"]
EvalProtocol = Literal["next", "multistep", "psikt-window"]
Scoring = Literal["question", "kc-row"]
Fusion = Literal["mean", "vote", "all"]
Mode = Literal["nonacc", "acc"]
Scheme = Literal["kfold", "pykt"]
SimKind = Literal["bkt", "ou-graph", "gated"]
GraphFormat = Literal["json", "dot", "graphml", "mermaid", "html"]
ColumnMapping = Union[Mapping[str, str], Sequence[str]]


# -- how the API reports ------------------------------------------------------
class Reporter:
    """Where notes, warnings, progress lines and long-step status go.

    The default writes plain lines to stderr (nothing when ``verbose`` is
    false, except warnings); the command line passes one that prints with
    rich, so ``kt`` and the API share every step and message.
    """

    def __init__(self, verbose: bool = True):
        self.verbose = verbose

    def note(self, msg: str) -> None:
        """A remark (dropped rows, model warnings)."""
        if self.verbose:
            print(f"note: {msg}", file=sys.stderr)

    def warn(self, msg: str) -> None:
        """A warning that results are not what they seem (always shown)."""
        print(f"warning: {msg}", file=sys.stderr)

    def line(self, msg: str) -> None:
        """A progress line (per epoch, per fold)."""
        if self.verbose:
            print(msg, file=sys.stderr)

    def status(self, msg: str):
        """Context manager around a long step (a spinner on the command line)."""
        return contextlib.nullcontext()

    def progress(self, what: str, total: float | None = None):
        """Context manager around a loop with a known (or unknown) length: a live bar on the command line.

        Used as ``with ui.progress("epoch 3", total=40) as update: update(done, total, info)``:
        ``update`` sets the completed count, the total when it becomes known
        (``None`` keeps it) and a short text shown after the bar. The
        default shows nothing (``update`` is a no-op), so notebooks and
        scripts get no bars unless they pass a reporter that draws them.
        """
        return contextlib.nullcontext(_no_update)

    def notes(self, msgs: Iterable[str]) -> None:
        for m in msgs:
            self.note(m)


def _no_update(done: float, total: float | None = None, info: str = "") -> None:
    """The ``update`` of :meth:`Reporter.progress` when nothing is shown."""


def step_text(metrics: Mapping[str, Any]) -> str:
    """The text after a progress bar, from a lower layer's ``on_step`` metrics."""
    parts = []
    if metrics.get("loss") is not None:
        parts.append(f"loss {metrics['loss']:.4f}")
    if metrics.get("interactions_per_second"):
        parts.append(f"{metrics['interactions_per_second']:,.0f} interactions/s")
    if metrics.get("iteration") is not None:
        parts.append(f"iteration {metrics['iteration']}")
    if metrics.get("rows_read") is not None:
        parts.append(f"{metrics['rows_read']:,} rows read")
    if metrics.get("phase"):
        parts.append(str(metrics["phase"]))
    return " · ".join(parts)


class StepBars:
    """Progress bars for a fit's ``on_step(done, total, metrics)`` calls: one bar per epoch.

    A new bar opens when ``metrics["epoch"]`` changes (or with the first
    call, for fits without epochs, named by ``metrics["what"]``); the bar is
    closed before the epoch's summary line, so :meth:`on_epoch` wraps the
    per-epoch callback. Use as a context manager so the last bar closes
    even when the fit fails.
    """

    def __init__(self, ui: Reporter, prefix: str = ""):
        self.ui, self.prefix = ui, prefix
        self._cm: contextlib.AbstractContextManager[Any] | None = None
        self._update = _no_update
        self._key: Any = object()

    def on_step(self, done: float, total: float | None, metrics: Mapping[str, Any]) -> None:
        key = (metrics.get("fit"), metrics.get("epoch", metrics.get("what")))
        if self._cm is None or key != self._key:
            self.close()
            what = f"epoch {key[1]}" if "epoch" in metrics else str(key[1] or "fitting")
            if key[0] is not None:  # models that fit several times (psikt num_fits)
                what = f"fit {key[0]} {what}"
            self._cm = self.ui.progress(self.prefix + what, total)
            self._update = self._cm.__enter__()
            self._key = key
        self._update(done, total, step_text(metrics))

    def on_epoch(self, inner: Callable[[dict], None]) -> Callable[[dict], None]:
        def call(rec: dict) -> None:
            self.close()
            inner(rec)

        return call

    def close(self) -> None:
        cm, self._cm, self._update = self._cm, None, _no_update
        if cm is not None:
            cm.__exit__(None, None, None)

    def __enter__(self) -> "StepBars":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fit_kwargs(m: "Model", bars: StepBars) -> dict:
    """``on_step=`` for models whose ``fit`` reports steps (gradient models, BKT's EM)."""
    return {"on_step": bars.on_step} if m.capabilities.on_step else {}


def _reporter(ui: Reporter | None, verbose: bool) -> Reporter:
    return ui if ui is not None else Reporter(verbose)


def epoch_line(rec: dict, prefix: str = "", rate: bool = True) -> str:
    """The per-epoch progress line of gradient models (``kt train`` adds the rate; ``cv``/``compare`` do not)."""
    parts = [f"epoch {rec['epoch']}", f"loss {rec.get('train_loss', float('nan')):.4f}"]
    if rec.get("fit") is not None:
        parts[0] = f"fit {rec['fit']} {parts[0]}"
    if "valid_auc" in rec:
        parts.append(f"valid AUC {rec['valid_auc']:.4f}")
    if rate and rec.get("interactions_per_second"):
        parts.append(f"{rec['interactions_per_second']:,.0f} interactions/s")
    return "  " + prefix + " | ".join(parts)


def _progress(
    progress: Callable[[dict], None] | None, ui: Reporter, prefix: str = "", rate: bool = True
) -> Callable[[dict], None]:
    if progress is not None:
        return progress
    return lambda rec: ui.line(epoch_line(rec, prefix, rate))


# -- data -----------------------------------------------------------------
def _is_path(x: Any) -> TypeIs[str | os.PathLike[str]]:
    return isinstance(x, (str, os.PathLike))


def _overrides(map: ColumnMapping | None, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    from kt.data.columns import parse_overrides

    if overrides is not None:  # kt.load's earlier keyword: canonical -> column, passed on as given
        if map is not None:
            raise KTError("give the column choices once: map= (overrides= is its older name)")
        return dict(overrides)
    if map is None:
        return {}
    if isinstance(map, Mapping):
        return parse_overrides([f"{k}={v}" for k, v in map.items()])
    if isinstance(map, str):
        return parse_overrides([map])
    return parse_overrides(list(map))


def _polars_frame(df: Any) -> "pl.DataFrame":
    import polars as pl

    if isinstance(df, pl.LazyFrame):
        return df.collect()
    if isinstance(df, pl.DataFrame):
        return df
    pd = sys.modules.get("pandas")  # a pandas frame means pandas is imported already
    if pd is not None and isinstance(df, pd.DataFrame):
        try:
            return pl.from_pandas(df)
        except Exception as exc:  # noqa: BLE001 - pyarrow missing, unconvertible object columns
            raise KTError(f"cannot convert the pandas DataFrame to Polars ({type(exc).__name__}: {exc})") from None
    raise KTError(f"expected a pandas or Polars DataFrame, got {type(df).__name__}")


def _is_frame(x: Any) -> bool:
    import polars as pl

    if isinstance(x, (pl.DataFrame, pl.LazyFrame)):
        return True
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(x, pd.DataFrame)


def from_frame(
    df: Any,
    *,
    map: ColumnMapping | None = None,
    source: str = "<frame>",
    vocab: "Vocab | None" = None,
    min_attempts: int = 2,
    drop_duplicates: bool = False,
    drop_nulls: bool = False,
) -> Interactions:
    """Interactions from a pandas or Polars DataFrame, validated as a file would be.

    Columns are detected by the same names as in files (kt's own, pyBKT's
    ``Anon Student Id``/``skill_name``/``correct``/``order_id``,
    ASSISTments, DataShop, EdNet, ...); the rows are typed, checked,
    ordered and encoded exactly as :func:`load` does for a file. Messages
    name rows by their 0-based position in ``df``, which is also the
    ``line`` column of the result and of ``model.predict``.

    Args:
        df: a ``polars.DataFrame`` (or ``LazyFrame``) or a ``pandas.DataFrame``
            (converted with ``polars.from_pandas``; needs pyarrow).
        map: explicit column choices, ``{"correct": "Correct First Attempt"}``
            or ``["correct=Correct First Attempt"]`` (as ``--map``).
        source: name of the data in messages and in ``Interactions.source``.
        vocab: encode with an existing vocabulary (a trained model's ``vocab``).
        min_attempts: drop learners with fewer attempts.
        drop_duplicates: drop duplicated attempts instead of only counting them.
        drop_nulls: drop rows with an empty learner or KC id instead of failing.

    Returns:
        The validated :class:`Interactions` (remarks in ``.notes``).

    Raises:
        KTError: not a DataFrame, a missing column, or invalid values
            (``DataError``, one line naming the row and column).
    """
    from kt.data.io import frame_table
    from kt.data.schema import to_interactions

    raw = frame_table(_polars_frame(df), overrides=_overrides(map), source=source)
    return to_interactions(raw, vocab=vocab, min_attempts=min_attempts, drop_duplicates=drop_duplicates, drop_nulls=drop_nulls)


def load(
    data: DataLike,
    *,
    map: ColumnMapping | None = None,
    vocab: "Vocab | None" = None,
    min_attempts: int = 2,
    drop_duplicates: bool = False,
    drop_nulls: bool = False,
    encoding: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Interactions:
    """Read and validate interactions from a file, a partitioned directory or a DataFrame.

    Args:
        data: a path (CSV/TSV, optionally ``.gz``, Parquet, 3/4-line text,
            or a ``kt data convert --partitions`` directory, loaded whole),
            a pandas or Polars DataFrame (see :func:`from_frame`), or
            :class:`Interactions` (returned as given).
        map: explicit column choices, ``{"skill_id": "KC(Default)"}`` or
            ``["skill_id=KC(Default)"]`` (as ``--map``).
        vocab: encode with an existing vocabulary, e.g. ``model.vocab`` for
            test data (unknown KCs are named in ``.notes``, not renumbered).
        min_attempts: drop learners with fewer attempts.
        drop_duplicates: drop duplicated attempts instead of only counting them.
        drop_nulls: drop rows with an empty learner or KC id instead of failing.
        encoding: force a text encoding (default UTF-8 with a Latin-1 fallback).
        overrides: the older name of ``map`` (a dict only), still accepted.

    Returns:
        Validated, ordered, encoded :class:`Interactions`; remarks
        (dropped learners, duplicates, unknown KCs) are in ``.notes``.

    Raises:
        KTError: unreadable input or invalid values (one line naming the
            file, row and column, and a fix).
    """
    if isinstance(data, Interactions):
        return data
    if _is_frame(data):
        if encoding is not None:
            raise KTError("encoding= applies to files; a DataFrame is already decoded")
        return from_frame(
            data,
            map=_overrides(map, overrides),
            vocab=vocab,
            min_attempts=min_attempts,
            drop_duplicates=drop_duplicates,
            drop_nulls=drop_nulls,
        )
    if not _is_path(data):
        raise KTError(f"expected a path, a DataFrame or Interactions, got {type(data).__name__}")
    from kt.data.partitioned import PartitionedData, is_partitioned
    from kt.data.schema import load as load_file

    if is_partitioned(data):
        if map or overrides or encoding:
            raise KTError(f"{data}: --map/--encoding apply when converting; a partitioned dataset already has its columns")
        part = PartitionedData.open(Path(data), min_attempts=min_attempts, drop_duplicates=drop_duplicates)
        out = part.to_interactions(vocab=vocab)
        note = f"loading all {part.n_rows:,} attempts of the partitioned dataset {data} into memory"
        import dataclasses

        return dataclasses.replace(out, notes=(note, *out.notes))
    return load_file(
        str(Path(data)),
        overrides=_overrides(map, overrides),
        vocab=vocab,
        min_attempts=min_attempts,
        drop_duplicates=drop_duplicates,
        drop_nulls=drop_nulls,
        encoding=encoding,
    )


def _data(
    data: DataLike,
    ui: Reporter,
    *,
    map=None,
    vocab=None,
    min_attempts: int = 2,
    drop_duplicates: bool = False,
    drop_nulls: bool = False,
    encoding=None,
) -> Interactions:
    """:func:`load` with the command line's status line and notes (not for Interactions given as such)."""
    if isinstance(data, Interactions):
        return data
    what = data if _is_path(data) else "data frame"
    with ui.status(f"reading {what}"):
        out = load(
            data,
            map=map,
            vocab=vocab,
            min_attempts=min_attempts,
            drop_duplicates=drop_duplicates,
            drop_nulls=drop_nulls,
            encoding=encoding,
        )
    ui.notes(out.notes)
    return out


def _test_data(data: DataLike, model: "Model", ui: Reporter, **load_opts) -> Interactions:
    """Data to score with ``model``: loaded with its vocabulary, or checked to have been."""
    if isinstance(data, Interactions):
        v, mv = data.vocab, model._fitted_vocab
        if v is not mv and (list(v.skill_id) != list(mv.skill_id) or list(v.item_id) != list(mv.item_id)):
            raise KTError(
                f"{data.source}: encoded with another vocabulary than the model's; "
                "load it with kt.load(path, vocab=model.vocab), or pass the path or DataFrame itself"
            )
        return data
    return _data(data, ui, vocab=model.vocab, **load_opts)


# -- models ---------------------------------------------------------------
def list_models() -> dict[str, dict]:
    """The registered models, as ``kt models`` lists them.

    (Named ``list_models`` because ``kt.models`` is the models subpackage.)

    Returns:
        ``{name: {"summary": str, "options": {option: default}}}``, sorted
        by name; the options are what ``kt.train(data, name, **options)``
        and ``--set key=value`` accept.
    """
    import dataclasses

    from kt.models.base import REGISTRY, _ensure_builtin

    _ensure_builtin()
    return {
        name: {
            "summary": REGISTRY[name].summary,
            "options": {f.name: f.default for f in dataclasses.fields(REGISTRY[name].Config)},
        }
        for name in sorted(REGISTRY)
    }


def create(
    model: ModelName | str = "bkt", *, config: PathLike | None = None, sets: Sequence[str] | None = None, **options
) -> "Model":
    """An unfitted model with its options resolved (defaults, then ``config``, ``sets``, ``options``).

    Args:
        model: registry name (see :func:`list_models`).
        config: TOML file with model options (as ``--config``).
        sets: ``"key=value"`` strings (as ``--set``).
        **options: model options as Python values, e.g. ``hidden=64``.

    Returns:
        The model; ``model.fit(data, valid=..., key=seed)`` trains it.
    """
    from kt.models.base import create as _create

    return _create(model, toml_path=config, sets=list(sets or []), **options)


def load_model(path: PathLike) -> "Model":
    """Load a model directory written by :func:`train` (``out=``), ``kt train`` or ``model.save``.

    Args:
        path: the model directory (``model.json``, ``params.eqx``).

    Returns:
        The fitted model: ``predict(data)``, ``mastery(data)``,
        ``predict_ahead(history, future)``, ``graph()``, ``save(dir)``;
        ``meta`` holds the training record (validation metrics, seconds,
        data fingerprint).
    """
    from kt.models.base import load as _load

    return _load(Path(path))


def train(
    data: DataLike,
    model: ModelName | str = "bkt",
    *,
    valid_frac: float = 0.1,
    seed: int = 0,
    out: PathLike | None = None,
    overwrite: bool = False,
    config: PathLike | None = None,
    sets: Sequence[str] | None = None,
    resume: bool = False,
    devices: int | None = None,
    distributed: bool = False,
    map: ColumnMapping | None = None,
    drop_duplicates: bool = False,
    drop_nulls: bool = False,
    encoding: str | None = None,
    progress: Callable[[dict], None] | None = None,
    verbose: bool = True,
    _ui: Reporter | None = None,
    **options,
) -> "Model":
    """Train a model: the pipeline of ``kt train``.

    ``valid_frac`` of the learners (seeded) are held out for early stopping
    and validation metrics; the model is fitted on the rest with ``seed``;
    its ``meta`` records the training seconds, data source and fingerprint,
    seed, split sizes and validation metrics. With ``out``, the model
    directory is written exactly as ``kt train --out`` writes it
    (``model.json``, ``params.eqx``, ``history.jsonl`` for gradient models,
    and ``graph.json``, the model's prerequisite graph).

    Args:
        data: a path (file or ``kt data convert --partitions`` directory,
            which DKT streams), a pandas/Polars DataFrame, or
            :class:`Interactions`.
        model: registry name (see :func:`list_models`).
        valid_frac: share of learners held out for validation (0: none).
        seed: seed of the split, the initialisation and the shuffling.
        out: save the model to this directory (missing parents created).
        overwrite: replace an existing model directory at ``out``
            (checked before training; the old one stays until the new one
            is complete).
        config: TOML file with model options (as ``--config``).
        sets: ``"key=value"`` option strings (as ``--set``).
        resume: continue an interrupted run from ``OUT.ckpt`` (gradient
            models with ``out``; same data, options and seed).
        devices: gradient models: split each batch over this many devices.
        distributed: join a multi-host JAX cluster first (see ``kt train --help``).
        map: column choices for a path or DataFrame (see :func:`load`).
        drop_duplicates: drop duplicated attempts.
        drop_nulls: drop rows with an empty learner or KC id.
        encoding: text encoding of a file.
        progress: called with each epoch's record (gradient models);
            default: a line on stderr (when ``verbose``).
        verbose: print notes and epoch lines to stderr.
        **options: model options, keyword-only: ``kt.train(data, "dkt",
            hidden=64, epochs=20)`` (see :func:`list_models`).

    Returns:
        The fitted model.

    Raises:
        KTError: unknown model or option, unreadable data, an existing
            ``out`` without ``overwrite``, options the model does not support.
    """
    import shutil
    import time

    from kt.atomic import check_output
    from kt.data.partitioned import PartitionedData, is_partitioned, open_for_training
    from kt.data.splits import train_valid

    ui = _reporter(_ui, verbose)
    if distributed:
        from kt.train.shard import init_distributed

        init_distributed()
    m = create(model, config=config, sets=sets, **options)
    out_dir = Path(out) if out is not None else None
    # After the cheap option checks (so a bad option is reported as such), before any data is read.
    if out_dir is not None:
        check_output(out_dir, overwrite=overwrite, what="model directory", kind="dir")
    if _is_path(data) and is_partitioned(data):  # DKT streams it, other models load it whole
        source = str(Path(data))
        full, tr, va, notes = open_for_training(
            Path(data), m, valid_frac, seed, map_=map, encoding=encoding, drop_duplicates=drop_duplicates
        )
        ui.notes(notes)
    else:
        source = str(Path(data)) if _is_path(data) else (data.source if isinstance(data, Interactions) else "<frame>")
        full = _data(data, ui, map=map, drop_duplicates=drop_duplicates, drop_nulls=drop_nulls, encoding=encoding)
        tr, va = train_valid(full, valid_frac, seed)
    t0 = time.perf_counter()
    ckpt = None
    if out_dir is not None:
        ckpt = out_dir.with_name(out_dir.name + ".ckpt")
    rank = 0
    if distributed:
        import jax

        rank = jax.process_index()
        if rank and out_dir is not None:  # every process checkpoints its own copy; only process 0 writes the model
            ckpt = out_dir.with_name(f"{out_dir.name}.ckpt.p{rank}")
    extra: dict = {}
    if m.capabilities.resumable:
        if ckpt is not None:
            extra = {"checkpoint": ckpt, "resume": resume}
        elif resume:
            raise KTError("resume: give out= (the checkpoint is OUT.ckpt)")
    elif resume:
        raise KTError(f"--resume: model {model!r} trains in one pass and has no checkpoints")
    if m.capabilities.devices:
        from kt.train.shard import data_mesh

        data_mesh(devices)  # a bad devices count fails here, before any training
        extra["devices"] = devices
    elif devices not in (None, 1) or distributed:
        raise KTError(f"--devices/--distributed: model {model!r} trains on one device; drop the option")
    bars = StepBars(ui)
    extra.update(_fit_kwargs(m, bars))
    with ui.status(f"training {model} on {tr.n_rows:,} attempts of {tr.n_users:,} learners"), bars:
        m.fit(tr, valid=va, key=seed, progress=bars.on_epoch(_progress(progress, ui)), **extra)
    seconds = time.perf_counter() - t0
    ui.notes(m.meta.get("warnings", []))
    m.meta.update(
        {
            "train_seconds": seconds,
            "train_file": source,
            "seed": seed,
            "valid_frac": valid_frac,
            "data_fingerprint": full.fingerprint(),
            "train_attempts": tr.n_rows,
            "train_learners": tr.n_users,
        }
    )
    if va is not None:
        from kt.eval.protocols import next_step, next_step_partitioned  # only with a validation split (~40 ms)

        res = next_step_partitioned(m, va) if isinstance(va, PartitionedData) else next_step(m, va, breakdown=False)
        m.meta["valid_metrics"] = {k: res[k] for k in ("auc", "accuracy", "rmse", "logloss", "n")}
    if out_dir is None:
        return m
    files = {}
    try:
        from kt.graph.build import graph_for, partitioned_graph

        g = partitioned_graph(m, tr) if isinstance(tr, PartitionedData) else graph_for(m, tr)
        if g is not None:
            files["graph.json"] = g.to_json()
    except Exception as exc:  # noqa: BLE001 - the graph is a by-product; never lose a trained model to it
        ui.note(f"no prerequisite graph saved ({type(exc).__name__}: {' '.join(str(exc).split())})")
    if rank:
        if m.capabilities.resumable and ckpt is not None:
            shutil.rmtree(ckpt, ignore_errors=True)
        return m
    m.save(out_dir, extra_files=files)
    if m.capabilities.resumable and ckpt is not None:
        shutil.rmtree(ckpt, ignore_errors=True)
    return m


def _model(model: "Model | PathLike") -> "Model":
    return load_model(model) if _is_path(model) else model


# -- evaluation -----------------------------------------------------------
def _spec(protocol, include_first, scoring, fusion, history, history_frac, horizon, mode, breakdown=True):
    from kt.eval.protocols import EvalSpec

    return EvalSpec(protocol, include_first, scoring, fusion, history, history_frac, horizon, mode, breakdown).checked()


def prepare(data: Interactions, spec, collapse: bool, ui: Reporter) -> Interactions:
    """Apply ``collapse_kc_rows`` and report scoring caveats (shared with ``kt evaluate``/``cv``/``compare``)."""
    from kt.eval.expand import collapse_kc_rows, expanded_rows
    from kt.eval.protocols import LEAK_WARNING

    if collapse:
        data = collapse_kc_rows(data)
        n = data.stats.get("collapsed_kc_rows", 0)
        ui.note(f"--collapse-kc-rows merged {n:,} KC rows into multi-KC questions")
    if spec.scoring == "kc-row":
        if data.multi_kc:
            ui.warn(LEAK_WARNING)
        else:
            ui.note("--scoring kc-row: the data has one KC per attempt, so every attempt is scored as usual")
    elif not data.multi_kc:
        n = expanded_rows(data)
        if n:
            ui.note(
                f"{data.source}: {n:,} rows repeat the previous row's item and outcome with another KC "
                "(multi-KC questions expanded into KC rows, as in pyKT/AKT files); scoring them one by one leaks answers; "
                "pass --collapse-kc-rows to score whole questions"
            )
    return data


class _ByLearners:
    """A fitted model whose ``predict`` and ``mastery`` run over groups of learners, reporting each group.

    A prediction depends only on the learner's own history, and the
    canonical frame is sorted by learner, so the groups' outputs
    concatenated in frame order equal one call on all the data (tested).
    Every other attribute is the model's.
    """

    def __init__(self, model: "Model", update: Callable[[float, float | None, str], None], parts: int = 20):
        self._model, self._update, self._parts = model, update, parts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def _run(self, fn: Callable[[Interactions], Any], data: Interactions):
        import numpy as np
        import polars as pl

        users = data.frame["user_idx"].unique(maintain_order=True).to_numpy()
        groups = [g for g in np.array_split(users, max(1, min(self._parts, len(users)))) if len(g)]
        if len(groups) <= 1:
            return fn(data)
        out, done = [], 0
        self._update(0, len(users), "learners")
        for g in groups:
            out.append(fn(data.subset(g)))
            done += len(g)
            self._update(done, len(users), "learners")
        return pl.concat(out, how="vertical_relaxed")

    def predict(self, data: Interactions):
        return self._run(self._model.predict, data)

    def mastery(self, data: Interactions):
        return self._run(self._model.mastery, data)


def predict(
    model: "Model | PathLike",
    data: DataLike,
    *,
    mastery: bool = False,
    map: ColumnMapping | None = None,
    encoding: str | None = None,
    verbose: bool = True,
    _ui: Reporter | None = None,
):
    """Per-attempt predictions, or mastery per learner and KC: what ``kt predict`` writes.

    Args:
        model: a fitted model, or a saved model directory.
        data: interactions (a path or DataFrame, loaded with the model's
            vocabulary, or :class:`Interactions` loaded with ``vocab=model.vocab``).
        mastery: the knowledge state per learner x KC instead of one
            probability per attempt.
        map, encoding: how to read ``data`` (see :func:`load`).
        verbose: print notes and progress to stderr.

    Returns:
        A Polars DataFrame: ``model.predict(data)`` (one row per attempt,
        ``prob`` from the history before it) or ``model.mastery(data)``.
    """
    ui = _reporter(_ui, verbose)
    m = _model(model)
    test = _test_data(data, m, ui, map=map, encoding=encoding, min_attempts=1)
    what = "mastery" if mastery else "predicting"
    with ui.progress(f"{what} ({test.n_users:,} learners)", total=test.n_users) as update:
        by = _ByLearners(m, update)
        return by.mastery(test) if mastery else by.predict(test)


def evaluate(
    model: "Model | PathLike",
    data: DataLike,
    protocol: EvalProtocol | str = "next",
    *,
    include_first: bool = False,
    scoring: Scoring | str = "question",
    fusion: Fusion | str = "mean",
    history: int | None = None,
    history_frac: float | None = None,
    horizon: int | None = None,
    mode: Mode | str = "nonacc",
    breakdown: bool = True,
    collapse_kc_rows: bool = False,
    eval_mode: Literal["window", "chunk", "full"] | str | None = None,
    map: ColumnMapping | None = None,
    drop_duplicates: bool = False,
    drop_nulls: bool = False,
    encoding: str | None = None,
    verbose: bool = True,
    _ui: Reporter | None = None,
) -> dict:
    """Evaluate a fitted model: what ``kt evaluate`` computes (and writes with ``--json``).

    Args:
        model: a fitted model, or a saved model directory.
        data: test interactions: a path or DataFrame (loaded with the
            model's vocabulary), or :class:`Interactions` loaded with
            ``vocab=model.vocab``.
        protocol: ``next`` (one step ahead), ``multistep`` (open loop after
            ``history``/``history_frac``, ``horizon`` steps) or
            ``psikt-window`` (observe 10, predict 11-20).
        include_first: ``next``: also score each learner's first attempt.
        scoring: ``question`` (multi-KC questions scored once) or
            ``kc-row`` (pyKT's expanded rows; leaky).
        fusion: how a question's KC-row predictions are fused.
        history: ``multistep``: observed attempts per learner.
        history_frac: ``multistep``: observed share of each learner's attempts instead.
        horizon: ``multistep``: attempts predicted after the history (default all).
        mode: ``multistep``: ``nonacc`` or ``acc`` (predictions fed back).
        breakdown: add per-KC metrics, calibration and curve data.
        collapse_kc_rows: merge consecutive rows with the same item and
            outcome into one multi-KC question first.
        eval_mode: override the model's history mode for long learners
            (models with ``eval_mode``, e.g. DKT); the given model is not changed.
        map, drop_duplicates, drop_nulls, encoding: how to read ``data`` (see :func:`load`).
        verbose: print notes to stderr.

    Returns:
        The result dict: ``auc``, ``accuracy``, ``f1``, ``rmse``,
        ``logloss``, ``brier``, ``ece``, ``n``, the protocol settings, and
        with ``breakdown`` per-KC metrics and curve data (``model_dir`` too
        when ``model`` is a path).

    Raises:
        KTError: unknown or contradictory settings (before any data is read).
    """
    import copy
    import dataclasses

    ui = _reporter(_ui, verbose)
    spec = _spec(protocol, include_first, scoring, fusion, history, history_frac, horizon, mode, breakdown)
    m = _model(model)
    if eval_mode is not None:
        if not m.capabilities.history_modes:
            raise KTError(f"--eval-mode: model {m.name!r} has no history modes; drop the option")
        m = copy.copy(m)  # the caller's model keeps its config
        m.config = dataclasses.replace(m.config, eval_mode=eval_mode)
        check = getattr(m.config, "validate", None)
        if check is not None:
            check()
    test = prepare(
        _test_data(data, m, ui, map=map, drop_duplicates=drop_duplicates, drop_nulls=drop_nulls, encoding=encoding),
        spec,
        collapse_kc_rows,
        ui,
    )
    if spec.protocol == "next":  # one prediction pass: a bar over learners
        with ui.progress(f"predicting {test.n_rows:,} attempts", total=test.n_users) as update:
            res = spec.run(_ByLearners(m, update), test)
    else:
        with ui.status(f"predicting {test.n_rows:,} attempts ({spec.protocol})"):
            res = spec.run(m, test)
    if _is_path(model):
        res["model_dir"] = str(Path(model))
    return res


def cross_validate(
    data: DataLike,
    model: ModelName | str = "bkt",
    *,
    folds: int = 5,
    seed: int = 0,
    valid_frac: float = 0.1,
    scheme: Scheme | str = "kfold",
    protocol: EvalProtocol | str = "next",
    include_first: bool = False,
    scoring: Scoring | str = "question",
    fusion: Fusion | str = "mean",
    history: int | None = None,
    history_frac: float | None = None,
    horizon: int | None = None,
    mode: Mode | str = "nonacc",
    collapse_kc_rows: bool = False,
    config: PathLike | None = None,
    sets: Sequence[str] | None = None,
    map: ColumnMapping | None = None,
    drop_duplicates: bool = False,
    drop_nulls: bool = False,
    encoding: str | None = None,
    progress: Callable[[dict], None] | None = None,
    on_fold: Callable[[int, dict], None] | None = None,
    verbose: bool = True,
    _ui: Reporter | None = None,
    **options,
) -> dict:
    """Learner-level k-fold cross-validation of one model: what ``kt cv --json`` writes.

    Args:
        data: all interactions (path, DataFrame or :class:`Interactions`).
        model: registry name.
        folds: number of learner folds (>= 2).
        seed: seed of the folds, the validation split and the model.
        valid_frac: ``kfold``: share of each fold's training learners for validation.
        scheme: ``kfold`` (each fold is the test set once) or ``pykt``
            (fixed 20% test set, seed 1024; one model per validation fold).
        protocol, include_first, scoring, fusion, history, history_frac,
            horizon, mode: the evaluation on each test set (see :func:`evaluate`).
        collapse_kc_rows: merge expanded KC rows into multi-KC questions first.
        config, sets: model options from a TOML file / ``"key=value"`` strings.
        map, drop_duplicates, drop_nulls, encoding: how to read ``data``.
        progress: per-epoch callback of gradient models (default: stderr line).
        on_fold: called with (fold index, fold record) after each fold.
        verbose: print notes and progress to stderr.
        **options: model options as Python values (``hidden=64``).

    Returns:
        JSON-ready dict: ``fold_results`` (per fold: learner ids and the
        full result) and ``summary`` (mean, sample sd, min, max per metric).
    """
    from kt.eval.cv import cross_validate as _cv
    from kt.models.base import get

    ui = _reporter(_ui, verbose)
    get(model)  # fail on an unknown name before reading data
    spec = _spec(protocol, include_first, scoring, fusion, history, history_frac, horizon, mode)
    data = prepare(
        _data(data, ui, map=map, drop_duplicates=drop_duplicates, drop_nulls=drop_nulls, encoding=encoding),
        spec,
        collapse_kc_rows,
        ui,
    )
    bars = StepBars(ui)
    with (
        ui.status(f"{folds}-fold cross-validation of {model} on {data.n_users:,} learners"),
        ui.progress("folds", total=folds) as fold_bar,
        bars,
    ):

        def fold_done(k: int, fold: dict) -> None:
            bars.close()
            fold_bar(k + 1)
            if on_fold is not None:
                on_fold(k, fold)

        return _cv(
            data,
            model,
            folds=folds,
            seed=seed,
            valid_frac=valid_frac,
            scheme=scheme,
            spec=spec,
            sets=list(sets or []),
            toml_path=config,
            progress=bars.on_epoch(_progress(progress, ui, rate=False)),
            on_fold=fold_done,
            options=options,
            on_step=bars.on_step,
        )


def compare(
    data: DataLike,
    models: Sequence[str] | str = ("kc-rate", "bkt"),
    *,
    test: DataLike | None = None,
    test_frac: float = 0.2,
    folds: int = 0,
    seed: int = 0,
    valid_frac: float = 0.1,
    protocol: EvalProtocol | str = "next",
    include_first: bool = False,
    scoring: Scoring | str = "question",
    fusion: Fusion | str = "mean",
    history: int | None = None,
    history_frac: float | None = None,
    horizon: int | None = None,
    mode: Mode | str = "nonacc",
    epochs: int | None = None,
    sets: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    config: PathLike | None = None,
    save_models: PathLike | None = None,
    collapse_kc_rows: bool = False,
    map: ColumnMapping | None = None,
    drop_duplicates: bool = False,
    drop_nulls: bool = False,
    encoding: str | None = None,
    verbose: bool = True,
    _ui: Reporter | None = None,
) -> dict:
    """Train several models on the same learners and evaluate them alike: what ``kt compare --json`` writes.

    Args:
        data: training learners, or all learners when ``test`` is not given.
        models: model names (a list, or ``"kc-rate,bkt"``).
        test: separate test data (e.g. a published split); otherwise
            ``test_frac`` of the learners of ``data`` are held out.
        test_frac: share of learners held out for testing (without ``test``).
        folds: learner-level k-fold CV with the same folds for every model
            instead of one split (0: one split).
        seed: seed of the split(s), the validation split and the models.
        valid_frac: share of training learners used for validation.
        protocol, include_first, scoring, fusion, history, history_frac,
            horizon, mode: the evaluation (see :func:`evaluate`).
        epochs: epoch cap of the gradient models.
        sets: ``"MODEL.KEY=VALUE"`` or ``"KEY=VALUE"`` strings (as ``--set``).
        options: model options as Python values per model,
            ``{"dkt": {"hidden": 64}}``.
        config: TOML file with model options (``[MODEL]`` tables).
        save_models: also save each trained model to ``save_models/MODEL`` (one split only).
        collapse_kc_rows: merge expanded KC rows into multi-KC questions first.
        map, drop_duplicates, drop_nulls, encoding: how to read the data.
        verbose: print notes and progress to stderr.

    Returns:
        JSON-ready dict: the split, the settings and ``results`` (one per
        model, in order: the result with ``train_seconds``; with ``folds``
        the cross-validation record with ``summary``).
    """
    from kt.eval.cv import cross_validate as _cv
    from kt.eval.cv import fit_and_evaluate, holdout, model_sets

    ui = _reporter(_ui, verbose)
    names = [m.strip() for m in models.split(",")] if isinstance(models, str) else [str(m).strip() for m in models]
    names = [n for n in names if n]
    if not names:
        raise KTError("--models: give at least one model name, e.g. --models kc-rate,bkt")
    if len(set(names)) != len(names):
        raise KTError(f"--models {','.join(names)!r}: a model is listed twice")
    if folds and (test is not None or save_models is not None):
        raise KTError("--folds: cross-validation splits FILE itself; drop --test/--save-models")
    if folds == 1 or folds < 0:
        raise KTError(f"--folds {folds}: use 0 (one split) or at least 2")
    per_model = model_sets(names, list(sets) if sets is not None else None, epochs)  # also checks the names
    py_opts = {k: dict(v) for k, v in (options or {}).items()}
    unknown = sorted(set(py_opts) - set(names))
    if unknown:
        raise KTError(f"options: {unknown[0]!r} is not one of the compared models ({', '.join(names)})")
    spec = _spec(protocol, include_first, scoring, fusion, history, history_frac, horizon, mode)
    load_opts: dict[str, Any] = {"map": map, "drop_duplicates": drop_duplicates, "drop_nulls": drop_nulls, "encoding": encoding}
    full = prepare(_data(data, ui, **load_opts), spec, collapse_kc_rows, ui)
    record: dict = {
        "kind": "compare",
        "models": names,
        "data": full.source,
        "seed": seed,
        "settings": spec.settings(),
        "model_options": per_model,
    }
    if folds:
        record.update({"split": "kfold", "folds": folds, "valid_frac": valid_frac})
    elif test is not None:
        test_data = prepare(_data(test, ui, vocab=full.vocab, **load_opts), spec, collapse_kc_rows, ui)
        train_data = full
        record.update({"split": "files", "test_data": test_data.source, "valid_frac": valid_frac})
    else:
        train_data, test_data = holdout(full, test_frac, seed)
        record.update(
            {
                "split": "learners",
                "test_frac": test_frac,
                "valid_frac": valid_frac,
                "test_users": sorted(test_data.frame["user_id"].unique().to_list()),
            }
        )
    results = []
    with ui.progress("models", total=len(names)) as model_bar:
        for i, name in enumerate(names):
            model_bar(i, None, name)
            bars = StepBars(ui, f"{name} ")
            # How each model is trained and evaluated, with one split or with folds.
            run: dict[str, Any] = {
                "seed": seed,
                "valid_frac": valid_frac,
                "spec": spec,
                "sets": per_model[name],
                "toml_path": config,
                "progress": bars.on_epoch(_progress(None, ui, f"{name} ", rate=False)),
                "options": py_opts.get(name),
                "on_step": bars.on_step,
            }
            with ui.status(f"{name}: training and evaluating"), bars:
                if folds:
                    with ui.progress(f"{name} folds", total=folds) as fold_bar:

                        def on_fold(k: int, _fold: dict, bar=fold_bar, b=bars) -> None:
                            b.close()
                            bar(k + 1)

                        r = _cv(full, name, folds=folds, on_fold=on_fold, **run)
                else:
                    save_to = (Path(save_models) / name) if save_models is not None else None
                    r = fit_and_evaluate(name, train_data, test_data, save_to=save_to, **run)
            results.append(r)
            model_bar(i + 1, None, name)
            done = r["summary"]["auc"]["mean"] if folds else r["auc"]
            ui.line(f"  {name}: AUC {_fmt(done)}")
    record["results"] = results
    return record


def _fmt(v) -> str:
    import math

    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


# -- synthetic data -------------------------------------------------------
def simulate(
    kind: SimKind = "bkt",
    *,
    learners: int = 1000,
    kcs: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    **options,
) -> "tuple[pl.DataFrame, dict]":
    """Synthetic interactions with known parameters (``kt simulate``).

    Args:
        kind: ``bkt`` (BKT learners, every KC practised ``steps`` times),
            ``ou-graph`` (PSI-KT's generative model with a known
            prerequisite DAG) or ``gated`` (BKT learners gated by a known
            prerequisite DAG).
        learners: number of learners.
        kcs: number of KCs (default 5 for bkt, 10 otherwise).
        steps: bkt: attempts per learner and KC (default 20); ou-graph:
            attempts per learner (default 50); gated: attempts per learner
            (default 100).
        seed: random seed (same seed, same data).
        **options: the generator's other options, e.g. ``forgets=True``,
            ``items_per_kc=3`` (bkt), ``edge_prob=0.3``, ``effect=0.8``,
            ``schedule="curriculum"`` (gated); see
            :func:`kt.data.synthetic.simulate_bkt`,
            :func:`kt.data.synthetic.simulate_ou_graph` and
            :func:`kt.data.synthetic_gated.simulate_gated`.

    Returns:
        ``(frame, truth)``: a Polars frame with ``user_id``, ``skill_id``,
        ``item_id``, ``timestamp``, ``correct`` (pass it to :func:`train`,
        :func:`load` or :func:`from_frame`) and the true parameters.
    """
    if kind == "bkt":
        from kt.data.synthetic import simulate_bkt

        return simulate_bkt(learners, kcs or 5, steps or 20, seed=seed, **options)
    if kind == "gated":
        from kt.data.synthetic_gated import simulate_gated

        return simulate_gated(learners, kcs or 10, steps or 100, seed=seed, **options)
    if kind == "ou-graph":
        from kt.data.synthetic import simulate_ou_graph

        return simulate_ou_graph(learners, kcs or 10, steps or 50, seed=seed, **options)
    raise KTError(f"--kind {kind!r}: available generators: bkt, ou-graph, gated")


# -- prerequisite graphs --------------------------------------------------
GraphMethod = Literal["learned", "influence", "mastery", "gated", "transition", "causal-support"]
#: Graphs a model has of its own (``--method learned|influence``) and their names in graph.json.
MODEL_GRAPH_METHODS = {"learned": "learned", "influence": "conditional-influence"}
GRAPH_METHODS = ("learned", "influence", "mastery", "gated", "transition", "causal-support")


def _saved_graph(model: "Model | PathLike", method: str | None = None) -> "PrerequisiteGraph":
    """The graph saved with a model directory (graph.json), else the model's own graph.

    Args:
        model: a fitted model or a saved model directory.
        method: ``learned`` or ``influence`` to insist on that graph; None: whatever is saved.
    """
    from kt.graph.build import graph_for
    from kt.graph.graph import read_graph

    want = None if method is None else MODEL_GRAPH_METHODS[method]
    if _is_path(model) and (Path(model) / "graph.json").is_file():
        saved = read_graph(Path(model))
        if want is None or saved.method == want:
            return saved
    m = _model(model)
    where = str(model) if _is_path(model) else f"model {m.name!r}"
    g = graph_for(m) if want in (None, m.capabilities.graph) else None  # the model's own graph, if it is the one asked for
    if g is None:
        if want is not None:
            raise KTError(
                f"{where}: model {m.name!r} has no {want} graph; --method learned is PSI-KT's, influence DKT's "
                "and CAKT's; any model takes mastery, gated, transition or causal-support (with its training data)"
            )
        raise KTError(
            f"{where}: model {m.name!r} has no prerequisite graph (no graph.json); "
            "pass its training data for the mastery graph, or retrain with this kt version"
        )
    return g


def _training_data(header: dict, data: DataLike | None, ui: Reporter, map, encoding) -> tuple[Interactions | None, str | None]:
    """A model's training interactions: ``data``, else the file model.json records; ``(data or None, why not)``."""
    meta = header.get("meta") or {}
    if data is None:
        rec = meta.get("train_file")
        if not rec:
            return None, "the model does not record its training file"
        if not Path(rec).exists():
            return None, f"its training file {rec} (recorded in model.json) is not found"
        data = Path(rec)
    elif _is_path(data) and not Path(data).exists():
        raise KTError(f"--data {data}: no such file")
    out = _data(data, ui, map=map, encoding=encoding)
    fp = meta.get("data_fingerprint")
    if fp and not isinstance(data, Interactions) and out.fingerprint() != fp:
        ui.note(
            f"{data}: not the data the model was trained on (fingerprint {out.fingerprint()} != {fp}); the graph describes this data"
        )
    return out, None


def check_graph_method(method: str | None, bootstrap: int | None = None) -> None:
    """One-line errors for a graph ``method`` (and ``bootstrap``) before any work.

    Raises:
        KTError: an unknown method, or ``bootstrap`` with a model's own graph (it would need retrainings).
    """
    if method is not None and method not in GRAPH_METHODS:
        raise KTError(f"--method {method!r}: unknown graph method; choose one of {', '.join(GRAPH_METHODS)}")
    if bootstrap is not None and method in MODEL_GRAPH_METHODS:
        raise KTError(
            f"--bootstrap refits a data method (mastery, gated, transition, causal-support) on resampled learners; the "
            f"{method} graph would need {bootstrap} retrainings: use --method mastery, or drop --bootstrap"
        )


def bootstrap_with_status(data: Interactions, method: str, kcs, ui: Reporter, **kwargs) -> "PrerequisiteGraph":
    """:func:`kt.graph.bootstrap.bootstrap_graph` with a status line counting the refits.

    Args:
        data, method, kcs: as for :func:`~kt.graph.bootstrap.bootstrap_graph`.
        ui: where the status goes.
        **kwargs: ``n``, ``seed``, ``threshold``, ``top_k``, ``graph``.
    """
    from kt.graph.bootstrap import bootstrap_graph

    with ui.status(f"bootstrap: refitting the {method} graph on {kwargs['n']} learner resamples") as st:
        return bootstrap_graph(
            data, method, kcs, progress=(lambda b, n_: st.update(f"bootstrap: {method} refit {b}/{n_}")) if st else None, **kwargs
        )


def data_graph_with_status(data: Interactions, method: str | None, kcs: list[str] | None, ui: Reporter) -> "PrerequisiteGraph":
    """:func:`kt.graph.build.data_graph` under a status line (``gated``: a progress bar over its fitting steps).

    Args:
        data: interactions.
        method: a data method; None: the default for this data
            (:func:`kt.graph.build.default_data_method`, with a note when it is not ``gated``).
        kcs: KC names of the graph; default the data's.
        ui: where the status line goes.

    Returns:
        The graph (its ``method`` names the method used).
    """
    from kt.graph.build import data_graph, default_data_method

    if method is None:
        method, why_not_gated = default_data_method(data)
        if why_not_gated:
            ui.note(why_not_gated)

    what = f"learning the {method} graph from {data.n_rows:,} attempts"
    if method != "gated":
        with ui.status(what):
            return data_graph(data, method, kcs)
    with ui.progress(f"{what}: fitting step", total=None) as update:  # a bar with time left: the fit takes minutes
        return data_graph(data, method, kcs, on_step=lambda i, n: update(i, n))


def prerequisite_graph(
    model: "Model | PathLike",
    data: DataLike | None = None,
    *,
    method: GraphMethod | str | None = None,
    bootstrap: int | None = None,
    seed: int = 0,
    threshold: float = 0.5,
    top_k: int | None = None,
    map: ColumnMapping | None = None,
    encoding: str | None = None,
    verbose: bool = True,
    _ui: Reporter | None = None,
) -> "PrerequisiteGraph":
    """The prerequisite graph ``kt export-graph`` writes for a model, with its method named.

    The default is the best method measured across the generator families
    of ``bench/results/graphs.json``, for every model on its training data
    (``data``, else the file its model.json records): the ``gated``
    structure learner where its cost allows
    (:func:`kt.graph.build.default_data_method`: learners x longest
    sequence x K² up to 3e8), else the ``mastery`` one, with a note. When
    the data is not at hand it falls back, with a note, to the graph saved
    with the model (PSI-KT's learned graph, DKT/CAKT conditional influence,
    causal support). PSI-KT's ``learned`` graph beats them only where the
    data follow PSI-KT's own dynamics.

    Args:
        model: a fitted model or a saved model directory.
        data: the training interactions (path, DataFrame or :class:`Interactions`).
        method: ``learned`` (PSI-KT), ``influence`` (DKT/CAKT), or a data
            method (``mastery``, ``gated``, ``transition``, ``causal-support``; needs the data).
        bootstrap: refit the data method on this many learner resamples and
            store each edge's stability and strength interval
            (:func:`kt.graph.bootstrap.bootstrap_graph`).
        seed: seed of the resampling.
        threshold, top_k: the export rule under which a refit keeps an edge.
        map, encoding: how to read ``data`` when it is a file.
        verbose: print notes on stderr.

    Returns:
        The :class:`~kt.graph.graph.PrerequisiteGraph`.

    Raises:
        KTError: an unknown method, a model without that graph, or a data
            method / bootstrap without training data.
    """
    from kt.models.base import read_header

    ui = _reporter(_ui, verbose)
    check_graph_method(method, bootstrap)
    if _is_path(model):
        d = Path(model)
        header = read_header(d) if (d / "model.json").is_file() else {}
        if not header and not (d / "graph.json").is_file():
            raise KTError(f"{d}: not a kt model directory (no model.json); train one with `kt train ... --out {d}`")
    else:
        header = {"model": model.name, "meta": dict(model.meta), "vocab": {"skill_id": list(model._fitted_vocab.skill_id)}}
    explicit = method is not None
    if method is not None and method in MODEL_GRAPH_METHODS:
        return _saved_graph(model, method)
    try:
        train_data, why = _training_data(header, data, ui, map, encoding)
    except KTError:
        if explicit or bootstrap is not None or data is not None:
            raise
        train_data, why = None, "its training file could not be read"
    if train_data is None:
        if method is not None or bootstrap is not None:
            what = f"--bootstrap ({method or 'the default method'} refits)" if bootstrap is not None else f"the {method} graph"
            raise KTError(f"{model}: {what} needs the training data and {why}; pass --data FILE")
        g = _saved_graph(model)
        ui.note(
            f"{why}: showing the graph saved with the model ({g.method}); pass --data FILE for the gated or mastery "
            "graph, which recover known graphs better (bench/results/graphs.json)"
        )
        return g
    kcs = list(header["vocab"]["skill_id"]) if header.get("vocab", {}).get("skill_id") else None
    try:
        g = data_graph_with_status(train_data, method, kcs, ui)
    except KTError as exc:
        if explicit or bootstrap is not None:
            raise
        g = _saved_graph(model)  # the default could not be computed (e.g. too large): the saved graph
        ui.note(f"no default graph ({exc}); showing the graph saved with the model ({g.method})")
        return g
    if bootstrap is not None:
        g = bootstrap_with_status(
            train_data, g.method, kcs, ui, n=bootstrap, seed=seed, threshold=threshold, top_k=top_k, graph=g
        )
    return g


def export_graph(
    graph: "PrerequisiteGraph | Model | PathLike",
    path: PathLike,
    fmt: GraphFormat | None = None,
    *,
    threshold: float = 0.5,
    top_k: int | None = None,
    reduce: bool = False,
) -> "GraphView":
    """Write a prerequisite graph to a file; an existing file is replaced.

    This is the writing step of ``kt export-graph`` for a graph you hold;
    the command's choice of method for a model directory (``--method``,
    ``--data``, ``--bootstrap``) is not mirrored here yet: a model or
    directory given here exports its saved ``graph.json`` or its own graph.

    Args:
        graph: a graph, a fitted model (:func:`prerequisite_graph` without
            data), or a saved model directory.
        path: output file (missing parents are created).
        fmt: ``json``, ``dot``, ``graphml``, ``mermaid`` or ``html``
            (default: from the suffix, ``.mmd`` is mermaid; else JSON).
        threshold: keep edges with probability >= this (0.5: no evidence either way).
        top_k: keep only the strongest edges.
        reduce: transitive reduction.

    Returns:
        The exported view: ``edges``, ``cycles`` and ``order`` (a learning
        order: prerequisites first, easier KCs first among those ready).
    """
    from kt.graph.export import export
    from kt.graph.graph import PrerequisiteGraph

    g = graph if isinstance(graph, PrerequisiteGraph) else prerequisite_graph(graph)
    return export(g, path, fmt, threshold=threshold, top_k=top_k, reduce=reduce)


__all__ = [
    "compare",
    "create",
    "cross_validate",
    "evaluate",
    "export_graph",
    "from_frame",
    "list_models",
    "load",
    "load_model",
    "predict",
    "prerequisite_graph",
    "simulate",
    "train",
]
