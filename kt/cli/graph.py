"""`kt export-graph`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kt.cli.common import app, out, handle_errors, _json_dump
from kt.errors import KTError


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
