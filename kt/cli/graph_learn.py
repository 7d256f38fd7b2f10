"""`kt learn-graph`: a prerequisite graph from interaction data alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kt.cli.common import UI, app, out, handle_errors, MapOpt, DropDupOpt, DropNullOpt, EncodingOpt, OverwriteOpt, _load_data
from kt.cli.graph import BootstrapOpt, MinStabilityOpt, SeedOpt, check_bootstrap, run_bootstrap
from kt.errors import KTError


@app.command("learn-graph")
@handle_errors
def learn_graph(
    file: Annotated[Path, typer.Argument(help="Interactions (any format kt reads).")],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output file (json, dot, graphml, mermaid or html by suffix; json otherwise); an existing file needs --overwrite.",
        ),
    ],
    method: Annotated[
        Optional[str],
        typer.Option(
            "--method",
            help="gated (fits a BKT model whose learning and success on k are held back while its prerequisites are "
            "unknown, with a soft graph; minutes, best where prerequisites gate learning), "
            "mastery (structure learner: does mastery of i predict success on k beyond k's own history? seconds), "
            "transition (how often i is practised right before k; a baseline) or causal-support. "
            "Default: gated where learners x longest sequence x KCs^2 is at most 3e8 (e.g. 30 KCs, 3,000 learners "
            "x 100 attempts), else mastery.",
        ),
    ] = None,
    fmt: Annotated[
        Optional[str], typer.Option("--format", help="Output format (default: from the --out suffix, else json).")
    ] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Non-JSON formats: keep edges with probability >= this.")] = 0.5,
    top_k: Annotated[
        Optional[int], typer.Option("--top-k", help="Keep only the N strongest edges (non-JSON formats and the JSON edge list).")
    ] = None,
    bootstrap: BootstrapOpt = None,
    seed: SeedOpt = 0,
    min_stability: MinStabilityOpt = None,
    map_: MapOpt = None,
    drop_duplicates: DropDupOpt = False,
    drop_nulls: DropNullOpt = False,
    encoding: EncodingOpt = None,
    overwrite: OverwriteOpt = False,
):
    """Learn a prerequisite graph from interactions, with the method named in the output.

    The JSON output holds the full probability matrix, so `kt graph-eval`
    scores it against a known graph (e.g. `kt simulate --truth`). With
    --bootstrap N the graph is refitted on N learner resamples: each edge
    gets its stability (the share of refits keeping it at --threshold/--top-k,
    pointing the same way) and a 95% interval of its strength.
    """
    from kt.atomic import check_output
    from kt.api import data_graph_with_status
    from kt.graph.build import DATA_METHODS
    from kt.graph.export import export, format_for

    if method is not None and method not in DATA_METHODS:
        raise KTError(f"--method {method!r}: unknown graph method; choose one of {', '.join(DATA_METHODS)}")
    if not 0 <= threshold <= 1:
        raise KTError(f"--threshold {threshold}: must be in [0, 1]")
    if top_k is not None and top_k < 1:
        raise KTError(f"--top-k {top_k}: must be >= 1")
    check_bootstrap(bootstrap, min_stability)
    f = format_for(out_path, fmt)
    check_output(out_path, overwrite=overwrite, what="graph file")  # before the data is read
    data = _load_data(file, map_, drop_duplicates, drop_nulls, encoding)
    g = data_graph_with_status(data, method, None, UI)
    if bootstrap is not None:
        g = run_bootstrap(data, g.method, None, n=bootstrap, seed=seed, threshold=threshold, top_k=top_k, graph=g)
    v = export(g, out_path, f, threshold=threshold, top_k=top_k, min_stability=min_stability)
    stab = "" if bootstrap is None else f", stability from {bootstrap} learner resamples"
    out.print(
        f"wrote the {g.method} graph of {g.n_kcs} KCs ({len(v.edges)} edges >= {threshold:g}{stab}) to {out_path} ({f})",
        highlight=False,
    )
