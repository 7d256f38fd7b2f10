"""`kt train`, `kt evaluate`, `kt predict`, `kt models`, `kt export-params`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional, cast

import typer
from rich.table import Table

from kt.cli.common import UI, app, out, eval_options, handle_errors, read_options, _load_data, _metrics_table, _write_json
from kt.cli.common import MapOpt, DropDupOpt, DropNullOpt, EncodingOpt, OverwriteOpt, SetOpt, ConfigOpt
from kt.cli.common import HistoryOpt, HistoryFracOpt, HorizonOpt, ModeOpt, ScoringOpt, FusionOpt, IncludeFirstOpt, CollapseOpt
from kt.errors import KTError


@app.command()
@handle_errors
def train(
    file: Annotated[
        Path,
        typer.Argument(
            help="Training interactions: a file, or a directory from `kt data convert --partitions` (dkt streams it)."
        ),
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (see `kt models`).")],
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Directory to write the model to (missing parents are created; an existing model needs --overwrite).",
        ),
    ],
    valid_frac: Annotated[float, typer.Option("--valid-frac", help="Share of learners held out for validation.")] = 0.1,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Training epochs (gradient models).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (split, init, shuffling).")] = 0,
    set_: SetOpt = None,
    config: ConfigOpt = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue an interrupted run from OUT.ckpt (gradient models; same data, options and seed)."
        ),
    ] = False,
    devices: Annotated[
        Optional[int],
        typer.Option(
            "--devices", help="Gradient models: split each batch over this many devices (default: all; parameters replicated)."
        ),
    ] = None,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Multi-host: join a JAX cluster first (KT_COORDINATOR_ADDRESS, KT_NUM_PROCESSES, KT_PROCESS_ID, or Slurm/Open MPI).",
        ),
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
    from kt.api import train as train_model

    sets = list(set_ or [])
    if epochs is not None:
        sets.append(f"epochs={epochs}")
    m = train_model(
        file,
        model,
        valid_frac=valid_frac,
        seed=seed,
        out=out_dir,
        overwrite=overwrite,
        config=config,
        sets=sets,
        resume=resume,
        devices=devices,
        distributed=distributed,
        **read_options(map_, drop_duplicates, drop_nulls, encoding),
        _ui=UI,
    )
    if distributed:
        import jax

        rank = jax.process_index()
        if rank:  # only process 0 writes the model
            out.print(f"process {rank}: training done; process 0 saves the model")
            return
    if m.meta.get("valid_metrics"):
        out.print(_metrics_table(f"{model} ({m.meta['train_seconds']:.1f}s)", {"valid": m.meta["valid_metrics"]}))
    out.print(f"saved {model} to {out_dir}")


@app.command()
@handle_errors
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory.")],
    file: Annotated[Path, typer.Argument(help="Test interactions (a file, or a `kt data convert --partitions` directory).")],
    protocol: Annotated[
        str,
        typer.Option(
            "--protocol",
            help="next (one step ahead), multistep (--history/--horizon, open loop) or psikt-window (observe 10, predict 11-20).",
        ),
    ] = "next",
    history: HistoryOpt = None,
    history_frac: HistoryFracOpt = None,
    horizon: HorizonOpt = None,
    mode: ModeOpt = "nonacc",
    scoring: ScoringOpt = "question",
    fusion: FusionOpt = "mean",
    include_first: IncludeFirstOpt = False,
    eval_mode: Annotated[
        Optional[str],
        typer.Option(
            "--eval-mode",
            help="Override the model's history mode for long learners: window, chunk or full (models with eval_mode, e.g. dkt).",
        ),
    ] = None,
    collapse: CollapseOpt = False,
    json_out: Annotated[
        Optional[Path],
        typer.Option("--json", help="Write the full result (settings, metrics, per-KC, calibration, curve data) as JSON here."),
    ] = None,
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
    from kt.api import evaluate as evaluate_model
    from kt.cli.eval import print_result

    res = evaluate_model(
        model_dir,
        file,
        protocol,
        **eval_options(history, history_frac, horizon, mode, scoring, fusion, include_first, collapse),
        eval_mode=eval_mode,
        **read_options(map_, drop_duplicates, drop_nulls, encoding),
        _ui=UI,
    )
    print_result(res, f"{res['model']} on {file}")
    _write_json(json_out, res)


@app.command()
@handle_errors
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory.")],
    file: Annotated[
        Path, typer.Argument(help="Interactions to predict (a file, or a `kt data convert --partitions` directory).")
    ],
    out_path: Annotated[
        Path,
        typer.Option("--out", help="Output CSV (or .parquet); missing parents are created; an existing file needs --overwrite."),
    ],
    mastery: Annotated[
        bool, typer.Option("--mastery", help="Write per learner x KC knowledge state instead of per-attempt predictions.")
    ] = False,
    map_: MapOpt = None,
    encoding: EncodingOpt = None,
    overwrite: OverwriteOpt = False,
):
    """Per-attempt P(correct) from each learner's history, or mastery per learner x KC.

    An existing --out file is replaced only with --overwrite, and never when
    it is the input file.
    """
    from kt.api import predict as predict_api
    from kt.atomic import atomic_path, check_output
    from kt.models.base import load

    if out_path.exists() and file.exists() and out_path.resolve() == file.resolve():
        raise KTError(f"{out_path}: --out is the input file; choose another --out")
    check_output(out_path, overwrite=overwrite, what="prediction file")
    m = load(model_dir)
    data = _load_data(file, map_, False, False, encoding, vocab=m.vocab, min_attempts=1)
    frame = predict_api(m, data, mastery=mastery, _ui=UI)
    if "skill_id" in frame.columns and str(frame.schema["skill_id"]).startswith("List"):
        frame = frame.with_columns(frame["skill_id"].list.join("~~"))
    with atomic_path(out_path) as tmp:
        frame.write_parquet(tmp) if out_path.suffix.lower() == ".parquet" else frame.write_csv(tmp)
    out.print(f"wrote {frame.height:,} rows to {out_path}")


@app.command()
@handle_errors
def models():
    """List the available models and their options."""
    from kt.api import list_models

    t = Table(title="kt models")
    t.add_column("name")
    t.add_column("description")
    t.add_column("options (--set key=value)")
    for name, info in list_models().items():
        opts = ", ".join(f"{k}={v}" for k, v in info["options"].items()) or "-"
        t.add_row(name, info["summary"], opts)
    out.print(t)


@app.command("export-params")
@handle_errors
def export_params(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output CSV (or .parquet, .json).")],
):
    """Write a model's fitted parameters as a tidy table (BKT: KC, param, class, value)."""
    from kt.atomic import atomic_path
    from kt.models.base import HasParamsTable, load

    m = load(model_dir)
    if not m.capabilities.params_table:
        raise KTError(f"{model_dir}: model {m.name!r} has no parameter table to export")
    table = cast(HasParamsTable, m).params_table()
    suffix = out_path.suffix.lower()
    with atomic_path(out_path) as tmp:
        if suffix == ".parquet":
            table.write_parquet(tmp)
        elif suffix == ".json":
            table.write_json(tmp)
        else:
            table.write_csv(tmp)
    out.print(f"wrote {table.height:,} parameters to {out_path}")
