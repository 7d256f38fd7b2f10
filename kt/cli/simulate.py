"""`kt simulate`: synthetic data with known parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kt.cli.common import app, out, handle_errors, _json_dump
from kt.errors import KTError

KINDS = ("bkt", "ou-graph", "gated")


@app.command()
@handle_errors
def simulate(
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="Generator: bkt (BKT learners), ou-graph (PSI-KT's model with a known prerequisite DAG) or gated "
            "(BKT learners whose learning and success are gated by a known prerequisite DAG).",
        ),
    ],
    out_path: Annotated[Path, typer.Option("--out", help="Interactions CSV to write.")],
    learners: Annotated[int, typer.Option("--learners", help="Number of learners.")] = 1000,
    kcs: Annotated[
        Optional[int], typer.Option("--kcs", help="Number of KCs (default: 5 for bkt, 10 for ou-graph and gated).")
    ] = None,
    steps: Annotated[
        Optional[int],
        typer.Option(
            "--steps",
            help="bkt: attempts per learner and KC (default 20); ou-graph: attempts per learner (default 50); gated: "
            "attempts per learner (default 100).",
        ),
    ] = None,
    items_per_kc: Annotated[
        Optional[int],
        typer.Option("--items-per-kc", help="bkt: distinct items per KC (default 1); gated: items per primary KC (default 3)."),
    ] = None,
    forgets: Annotated[bool, typer.Option("--forgets", help="bkt: sample a non-zero forget probability.")] = False,
    multigs: Annotated[bool, typer.Option("--multigs", help="bkt: guess/slip per item.")] = False,
    edge_prob: Annotated[
        Optional[float],
        typer.Option(
            "--edge-prob",
            help="ou-graph, gated: probability of each forward edge of the random DAG (ou-graph: default 0.3, the "
            "spec's; gated: default 2.7 / (K - 1), i.e. 1.35 prerequisites per KC on average whatever K: 0.3 at K = 10).",
        ),
    ] = None,
    decoupled: Annotated[
        float, typer.Option("--decoupled", help="ou-graph: share of attempts on uniformly drawn KCs (identifiability).")
    ] = 0.3,
    revisit: Annotated[
        float, typer.Option("--revisit", help="ou-graph: share of the other attempts that revisit a KC already reached.")
    ] = 0.2,
    drift: Annotated[
        float, typer.Option("--drift", help="ou-graph: std of the per-step random walk of the raw traits (0 = constant traits).")
    ] = 0.0,
    realisable: Annotated[
        bool,
        typer.Option(
            "--realisable",
            help="ou-graph: draw the graph as 1[p > 0.5] from PSI-KT's own u/M parameterisation (may have cycles).",
        ),
    ] = False,
    effect: Annotated[
        Optional[float],
        typer.Option(
            "--effect",
            help="Strength of the graph: ou-graph: scale of the graph term (default 1 = the spec's model); "
            "gated: gate strength in [0, 1] (default 0.8; 0 = the graph does nothing).",
        ),
    ] = None,
    schedule: Annotated[
        str,
        typer.Option(
            "--schedule", help="gated: random (items drawn uniformly) or curriculum (prerequisite order with revisits and skips)."
        ),
    ] = "random",
    withheld: Annotated[
        float, typer.Option("--withheld", help="gated: share of learners who never practise one random KC.")
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    truth: Annotated[
        Optional[Path],
        typer.Option(
            "--truth",
            help="Write the true parameters (ou-graph: graph and traits; gated: graph, item KCs, learner parameters) as JSON here.",
        ),
    ] = None,
):
    """Generate synthetic interactions with known parameters (for recovery checks)."""
    from kt.atomic import atomic_path, write_text

    if kind not in KINDS:
        raise KTError(f"--kind {kind!r}: available generators: {', '.join(KINDS)}")
    if kind == "bkt":
        from kt.data.synthetic import simulate_bkt

        kcs, steps = kcs or 5, steps or 20
        frame, true = simulate_bkt(
            learners, kcs, steps, seed=seed, forgets=forgets, items_per_kc=items_per_kc or 1, multigs=multigs
        )
        what = f"{learners} learners x {kcs} KCs x {steps} steps"
    elif kind == "gated":
        from kt.data.synthetic_gated import simulate_gated

        kcs, steps = kcs or 10, steps or 100
        frame, true = simulate_gated(
            learners,
            kcs,
            steps,
            seed=seed,
            edge_prob=edge_prob,
            effect=0.8 if effect is None else effect,
            schedule=schedule,
            items_per_kc=items_per_kc or 3,
            withheld=withheld,
        )
        what = f"{learners} learners x {steps} attempts, {kcs} KCs, {len(true['edges'])} prerequisite edges, {schedule} schedule"
    else:
        from kt.data.synthetic import simulate_ou_graph

        kcs, steps = kcs or 10, steps or 50
        frame, true = simulate_ou_graph(
            learners,
            kcs,
            steps,
            seed=seed,
            edge_prob=0.3 if edge_prob is None else edge_prob,
            decoupled=decoupled,
            revisit=revisit,
            drift=drift,
            realisable=realisable,
            effect=1.0 if effect is None else effect,
        )
        what = f"{learners} learners x {steps} attempts, {kcs} KCs, {len(true['edges'])} prerequisite edges"
    with atomic_path(out_path) as tmp:
        frame.write_csv(tmp)
    if truth is not None:
        write_text(truth, _json_dump(true))
    out.print(f"wrote {frame.height:,} rows ({what}) to {out_path}" + (f"; truth in {truth}" if truth is not None else ""))
