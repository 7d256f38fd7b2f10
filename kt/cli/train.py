"""`kt train`, `kt evaluate`, `kt predict`, `kt models`, `kt export-params`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from kt.cli.common import (
    app, out, err, MapOpt, DropDupOpt, DropNullOpt, EncodingOpt, OverwriteOpt, handle_errors, _json_dump, _load_data, _metrics_table,
    _notes,
    HistoryOpt, HistoryFracOpt, HorizonOpt, ModeOpt, ScoringOpt, FusionOpt, IncludeFirstOpt, CollapseOpt, SetOpt, ConfigOpt,
)
from kt.errors import KTError


@app.command()
@handle_errors
def train(
    file: Annotated[Path, typer.Argument(help="Training interactions: a file, or a directory from `kt data convert --partitions` (dkt streams it).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (see `kt models`).")],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Directory to write the model to (missing parents are created; an existing model needs --overwrite).")
    ],
    valid_frac: Annotated[float, typer.Option("--valid-frac", help="Share of learners held out for validation.")] = 0.1,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Training epochs (gradient models).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (split, init, shuffling).")] = 0,
    set_: SetOpt = None,
    config: ConfigOpt = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run from OUT.ckpt (gradient models; same data, options and seed).")
    ] = False,
    devices: Annotated[
        Optional[int],
        typer.Option("--devices", help="Gradient models: split each batch over this many devices (default: all; parameters replicated)."),
    ] = None,
    distributed: Annotated[
        bool,
        typer.Option("--distributed", help="Multi-host: join a JAX cluster first (KT_COORDINATOR_ADDRESS, KT_NUM_PROCESSES, KT_PROCESS_ID, or Slurm/Open MPI)."),
    ] = False,
    map_: MapOpt = None,
    drop_duplicates: DropDupOpt = False,
    drop_nulls: DropNullOpt = False,
    encoding: EncodingOpt = None,
    overwrite: OverwriteOpt = False,
):
    """Train a model on a file and save it to a directory (model.json, params.eqx, graph.json).

    An existing model directory at --out is replaced only with --overwrite
    (checked before training starts; the old model stays until the new one
    is complete).

    Gradient models checkpoint every epoch to OUT.ckpt (removed after a
    successful save), so an interrupted run continues with --resume. They
    train data-parallel on every visible device unless --devices says
    otherwise; the result matches one-device training up to float rounding.
    """
    import inspect
    import time

    from kt.atomic import check_output
    from kt.data.partitioned import PartitionedData, is_partitioned, open_for_training
    from kt.data.splits import train_valid
    from kt.models.base import create

    if distributed:
        from kt.train.shard import init_distributed

        init_distributed()
    sets = list(set_ or [])
    if epochs is not None:
        sets.append(f"epochs={epochs}")
    m = create(model, toml_path=config, sets=sets)
    # After the cheap option checks (so a bad --set is reported as such), before any data is read.
    check_output(out_dir, overwrite=overwrite, what="model directory", kind="dir")
    if is_partitioned(file):  # `kt data convert --partitions`: DKT streams it, other models load it whole
        data, tr, va, notes = open_for_training(file, m, valid_frac, seed, map_=map_, encoding=encoding,
                                                drop_duplicates=drop_duplicates)
        _notes(notes)
    else:
        data = _load_data(file, map_, drop_duplicates, drop_nulls, encoding)
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
    rank = 0
    if distributed:
        import jax

        rank = jax.process_index()
        if rank:  # every process checkpoints its own copy; only process 0 writes the model
            ckpt = out_dir.with_name(f"{out_dir.name}.ckpt.p{rank}")
    extra = {}
    if m.resumable:
        extra = {"checkpoint": ckpt, "resume": resume}
    elif resume:
        raise KTError(f"--resume: model {model!r} trains in one pass and has no checkpoints")
    if "devices" in inspect.signature(m.fit).parameters:
        from kt.train.shard import data_mesh

        data_mesh(devices)  # a bad --devices fails here, before any training
        extra["devices"] = devices
    elif devices not in (None, 1) or distributed:
        raise KTError(f"--devices/--distributed: model {model!r} trains on one device; drop the option")
    with err.status(f"training {model} on {tr.n_rows:,} attempts of {tr.n_users:,} learners"):
        m.fit(tr, valid=va, key=seed, progress=progress, **extra)
    seconds = time.perf_counter() - t0
    _notes(m.meta.get("warnings", []))
    rows = {}
    m.meta.update({"train_seconds": seconds, "train_file": str(file), "seed": seed, "valid_frac": valid_frac,
                   "data_fingerprint": data.fingerprint(), "train_attempts": tr.n_rows, "train_learners": tr.n_users})
    if va is not None:
        from kt.eval.protocols import next_step  # only with a validation split (import costs ~40 ms)

        res = va.next_step(m) if isinstance(va, PartitionedData) else next_step(m, va, breakdown=False)
        m.meta["valid_metrics"] = {k: res[k] for k in ("auc", "accuracy", "rmse", "logloss", "n")}
        rows["valid"] = res
    files = {}
    try:
        from kt.graph.build import graph_for

        g = tr.graph(m) if isinstance(tr, PartitionedData) else graph_for(m, tr)
        if g is not None:
            files["graph.json"] = g.to_json()
    except Exception as exc:  # noqa: BLE001 - the graph is a by-product; never lose a trained model to it
        _notes([f"no prerequisite graph saved ({type(exc).__name__}: {' '.join(str(exc).split())})"])
    if rank:
        if m.resumable:
            shutil.rmtree(ckpt, ignore_errors=True)
        out.print(f"process {rank}: training done; process 0 saves the model")
        return
    m.save(out_dir, extra_files=files)
    if m.resumable:
        shutil.rmtree(ckpt, ignore_errors=True)
    if rows:
        out.print(_metrics_table(f"{model} ({seconds:.1f}s)", rows))
    out.print(f"saved {model} to {out_dir}")


@app.command()
@handle_errors
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory.")],
    file: Annotated[Path, typer.Argument(help="Test interactions (a file, or a `kt data convert --partitions` directory).")],
    protocol: Annotated[
        str, typer.Option("--protocol", help="next (one step ahead), multistep (--history/--horizon, open loop) or psikt-window (observe 10, predict 11-20).")
    ] = "next",
    history: HistoryOpt = None,
    history_frac: HistoryFracOpt = None,
    horizon: HorizonOpt = None,
    mode: ModeOpt = "nonacc",
    scoring: ScoringOpt = "question",
    fusion: FusionOpt = "mean",
    include_first: IncludeFirstOpt = False,
    eval_mode: Annotated[
        Optional[str], typer.Option("--eval-mode", help="Override the model's history mode for long learners: window, chunk or full (models with eval_mode, e.g. dkt).")
    ] = None,
    collapse: CollapseOpt = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the full result (settings, metrics, per-KC, calibration, curve data) as JSON here.")] = None,
    map_: MapOpt = None,
    drop_duplicates: DropDupOpt = False,
    drop_nulls: DropNullOpt = False,
    encoding: EncodingOpt = None,
):
    """Evaluate a saved model on a file; print the metrics and optionally write JSON.

    Multi-KC questions are scored once per question (every KC row predicted
    from the history before the question, then fused); --scoring kc-row
    scores pyKT's expanded rows instead and is leaky.
    """
    import dataclasses

    from kt.atomic import write_text
    from kt.cli.eval import make_spec, prepare_data, print_result
    from kt.models.base import load

    spec = make_spec(protocol, include_first, scoring, fusion, history, history_frac, horizon, mode)
    m = load(model_dir)
    if eval_mode is not None:
        if not hasattr(m.config, "eval_mode"):
            raise KTError(f"--eval-mode: model {m.name!r} has no history modes; drop the option")
        m.config = dataclasses.replace(m.config, eval_mode=eval_mode)
        check = getattr(m.config, "validate", None)
        if check is not None:
            check()
    data = prepare_data(_load_data(file, map_, drop_duplicates, drop_nulls, encoding, vocab=m.vocab), spec, collapse)
    with err.status(f"predicting {data.n_rows:,} attempts ({spec.protocol})"):
        res = spec.run(m, data)
    res["model_dir"] = str(model_dir)
    print_result(res, f"{m.name} on {file}")
    if json_out is not None:
        write_text(json_out, _json_dump(res))
        out.print(f"wrote {json_out}")


@app.command()
@handle_errors
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory.")],
    file: Annotated[Path, typer.Argument(help="Interactions to predict (a file, or a `kt data convert --partitions` directory).")],
    out_path: Annotated[
        Path, typer.Option("--out", help="Output CSV (or .parquet); missing parents are created; an existing file needs --overwrite.")
    ],
    mastery: Annotated[bool, typer.Option("--mastery", help="Write per learner x KC knowledge state instead of per-attempt predictions.")] = False,
    map_: MapOpt = None,
    encoding: EncodingOpt = None,
    overwrite: OverwriteOpt = False,
):
    """Per-attempt P(correct) from each learner's history, or mastery per learner x KC.

    An existing --out file is replaced only with --overwrite, and never when
    it is the input file.
    """
    from kt.atomic import atomic_path, check_output
    from kt.models.base import load

    if out_path.exists() and file.exists() and out_path.resolve() == file.resolve():
        raise KTError(f"{out_path}: --out is the input file; choose another --out")
    check_output(out_path, overwrite=overwrite, what="prediction file")
    m = load(model_dir)
    data = _load_data(file, map_, False, False, encoding, vocab=m.vocab, min_attempts=1)
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
