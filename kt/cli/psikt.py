"""`kt update`: continual learning for models with per-learner state (PSI-KT)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional, cast

import typer
from rich.table import Table

from kt.cli.common import app, out, err, MapOpt, EncodingOpt, OverwriteOpt, handle_errors, _notes, _overrides, _write_json
from kt.errors import KTError


@app.command()
@handle_errors
def update(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory (psikt).")],
    file: Annotated[Path, typer.Argument(help="New interactions (appended to each learner's history, in time order).")],
    out_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            help="Write the updated model here (default: update MODEL_DIR in place); an existing model here other than MODEL_DIR needs --overwrite.",
        ),
    ] = None,
    steps: Annotated[
        Optional[int], typer.Option("--steps", help="Optimisation steps per arrival (default: the model's update_steps).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the Monte-Carlo samples.")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the update report as JSON here.")] = None,
    map_: MapOpt = None,
    encoding: EncodingOpt = None,
    overwrite: OverwriteOpt = False,
):
    """Refine learners' posteriors with new interactions (posterior becomes prior); no retraining.

    The network, graph and trait dynamics stay frozen; each new interaction
    updates its learner's stored state. Learners new to the model start
    from the prior. Prints the seconds per update.

    Without --out, MODEL_DIR itself is updated (atomically; that is the
    point of the command, so no --overwrite is needed). An --out naming
    another existing model directory is replaced only with --overwrite.
    """
    from kt.atomic import check_output
    from kt.data.schema import load as load_data
    from kt.models.base import Updatable, load

    in_place = out_dir is None or (out_dir.exists() and model_dir.exists() and out_dir.resolve() == model_dir.resolve())
    check_output(
        out_dir if out_dir is not None and not in_place else model_dir,
        overwrite=overwrite or in_place,
        what="model directory",
        kind="dir",
    )
    m = load(model_dir)
    if not m.capabilities.update:
        raise KTError(f"{model_dir}: model {m.name!r} has no per-learner state to update; continual updates need psikt")
    if steps is not None and steps < 0:
        raise KTError(f"--steps {steps}: must be >= 0")
    data = load_data(str(file), overrides=_overrides(map_), vocab=m.vocab, min_attempts=1, encoding=encoding)
    _notes(data.notes)
    if data.stats.get("unknown_kcs"):
        err.print(
            "[yellow]note:[/] rows with KCs unknown to the model update the learner's state without an outcome term",
            highlight=False,
        )
    n_before = len(m.meta.get("warnings", []))
    with err.status(f"updating {data.n_users:,} learners with {data.n_rows:,} interactions"):
        report = cast(Updatable, m).update(data, steps=steps, key=seed)  # capabilities.update, checked above
    _notes(m.meta.get("warnings", [])[n_before:])
    target = out_dir or model_dir
    m.save(target)
    t = Table(title=f"{m.name} continual update")
    for col in ("interactions", "learners", "new learners", "arrivals", "steps", "s / update", "first (compile) s", "total s"):
        t.add_column(col, justify="right")
    t.add_row(
        f"{report['interactions']:,}",
        f"{report['learners']:,}",
        f"{report['new_learners']:,}",
        str(report["arrivals"]),
        str(report["steps"]),
        f"{report['seconds_per_update']:.4f}",
        f"{report['first_update_seconds']:.2f}",
        f"{report['seconds']:.2f}",
    )
    out.print(t)
    report["model_dir"] = str(target)
    _write_json(json_out, report)
    out.print(f"saved updated {m.name} to {target}")
