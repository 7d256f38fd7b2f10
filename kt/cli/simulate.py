"""`kt simulate`: synthetic data with known parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kt.cli.common import app, out, handle_errors, _json_dump
from kt.errors import KTError

KINDS = ("bkt", "ou-graph")


@app.command()
@handle_errors
def simulate(
    kind: Annotated[str, typer.Option("--kind", help="Generator: bkt (BKT learners) or ou-graph (PSI-KT's model with a known prerequisite DAG).")],
    out_path: Annotated[Path, typer.Option("--out", help="Interactions CSV to write.")],
    learners: Annotated[int, typer.Option("--learners", help="Number of learners.")] = 1000,
    kcs: Annotated[Optional[int], typer.Option("--kcs", help="Number of KCs (default: 5 for bkt, 10 for ou-graph).")] = None,
    steps: Annotated[
        Optional[int], typer.Option("--steps", help="bkt: attempts per learner and KC (default 20); ou-graph: attempts per learner (default 50).")
    ] = None,
    items_per_kc: Annotated[int, typer.Option("--items-per-kc", help="bkt: distinct items per KC.")] = 1,
    forgets: Annotated[bool, typer.Option("--forgets", help="bkt: sample a non-zero forget probability.")] = False,
    multigs: Annotated[bool, typer.Option("--multigs", help="bkt: guess/slip per item.")] = False,
    edge_prob: Annotated[float, typer.Option("--edge-prob", help="ou-graph: probability of each forward edge of the random DAG.")] = 0.3,
    decoupled: Annotated[float, typer.Option("--decoupled", help="ou-graph: share of attempts on uniformly drawn KCs (identifiability).")] = 0.3,
    revisit: Annotated[float, typer.Option("--revisit", help="ou-graph: share of the other attempts that revisit a KC already reached.")] = 0.2,
    drift: Annotated[float, typer.Option("--drift", help="ou-graph: std of the per-step random walk of the raw traits (0 = constant traits).")] = 0.0,
    realisable: Annotated[
        bool, typer.Option("--realisable", help="ou-graph: draw the graph as 1[p > 0.5] from PSI-KT's own u/M parameterisation (may have cycles).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    truth: Annotated[Optional[Path], typer.Option("--truth", help="Write the true parameters (ou-graph: graph and traits) as JSON here.")] = None,
):
    """Generate synthetic interactions with known parameters (for recovery checks)."""
    from kt.atomic import atomic_path, write_text

    if kind not in KINDS:
        raise KTError(f"--kind {kind!r}: available generators: {', '.join(KINDS)}")
    if kind == "bkt":
        from kt.data.synthetic import simulate_bkt

        kcs, steps = kcs or 5, steps or 20
        frame, true = simulate_bkt(learners, kcs, steps, seed=seed, forgets=forgets, items_per_kc=items_per_kc, multigs=multigs)
        what = f"{learners} learners x {kcs} KCs x {steps} steps"
    else:
        from kt.data.synthetic import simulate_ou_graph

        kcs, steps = kcs or 10, steps or 50
        frame, true = simulate_ou_graph(learners, kcs, steps, seed=seed, edge_prob=edge_prob, decoupled=decoupled,
                                        revisit=revisit, drift=drift, realisable=realisable)
        what = f"{learners} learners x {steps} attempts, {kcs} KCs, {len(true['edges'])} prerequisite edges"
    with atomic_path(out_path) as tmp:
        frame.write_csv(tmp)
    if truth is not None:
        write_text(truth, _json_dump(true))
    out.print(f"wrote {frame.height:,} rows ({what}) to {out_path}" + (f"; truth in {truth}" if truth is not None else ""))
