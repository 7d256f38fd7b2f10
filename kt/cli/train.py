"""`kt train`, `kt evaluate`, `kt predict`, `kt models`, `kt export-params`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from kt.cli.common import app, out, err, MapOpt, DropDupOpt, DropNullOpt, EncodingOpt, handle_errors, _json_dump, _load_train, _metrics_table, _notes, _overrides
from kt.errors import KTError


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
