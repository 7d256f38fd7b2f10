"""`kt simulate`: synthetic data with known parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kt.cli.common import app, out, handle_errors, _json_dump
from kt.errors import KTError


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
