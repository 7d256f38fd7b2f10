"""`kt export-graph` and `kt graph-eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from kt.api import bootstrap_with_status, check_graph_method
from kt.cli.common import UI, app, out, EncodingOpt, MapOpt, OverwriteOpt, handle_errors, _fmt, _notes, _write_json
from kt.errors import KTError

BootstrapOpt = Annotated[
    Optional[int],
    typer.Option(
        "--bootstrap",
        help="Refit the graph on N learner resamples (e.g. 20) and store each edge's stability "
        "(share of refits keeping it) and a 95% interval of its strength.",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the --bootstrap resampling (same seed, same stability).")]
MinStabilityOpt = Annotated[
    Optional[float], typer.Option("--min-stability", help="Keep only edges with bootstrap stability >= this (needs --bootstrap).")
]


def check_bootstrap(bootstrap: int | None, min_stability: float | None, stability_elsewhere: bool = False) -> None:
    """One-line errors for --bootstrap / --min-stability before any work.

    ``stability_elsewhere``: the graph may carry its own stability (a PSI-KT
    model trained with ``fit_resample``), so --min-stability without
    --bootstrap is checked on the graph instead.
    """
    if bootstrap is not None and bootstrap < 2:
        raise KTError(f"--bootstrap {bootstrap}: needs at least 2 refits (20 or more for stable shares)")
    if min_stability is not None:
        if not 0 <= min_stability <= 1:  # also rejects NaN
            raise KTError(f"--min-stability {min_stability}: must be in [0, 1]")
        if bootstrap is None and not stability_elsewhere:
            raise KTError("--min-stability needs per-edge stability: add --bootstrap N (e.g. 20)")


def run_bootstrap(data, method: str, kcs, *, n: int, seed: int, threshold: float, top_k: int | None, graph=None):
    """kt.graph.bootstrap.bootstrap_graph with a progress line on stderr."""
    return bootstrap_with_status(data, method, kcs, UI, n=n, seed=seed, threshold=threshold, top_k=top_k, graph=graph)


def _check_threshold(threshold: float) -> None:
    if not 0 <= threshold <= 1:  # also rejects NaN
        raise KTError(f"--threshold {threshold}: must be in [0, 1]")


def _default_graph(
    model_dir: Path,
    method: str | None,
    data_path: Path | None,
    map_,
    encoding,
    *,
    bootstrap: int | None = None,
    seed: int = 0,
    threshold: float = 0.5,
    top_k: int | None = None,
):
    """The graph ``kt export-graph`` shows for a model directory (and ``kt graph-eval`` scores): kt.prerequisite_graph.

    Returns:
        The graph; the API prints its notes.
    """
    from kt.api import prerequisite_graph

    return prerequisite_graph(
        model_dir,
        data_path,
        method=method,
        bootstrap=bootstrap,
        seed=seed,
        threshold=threshold,
        top_k=top_k,
        map=map_ or None,
        encoding=encoding,
        _ui=UI,
    )


@app.command("export-graph")
@handle_errors
def export_graph(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory.")],
    out_path: Annotated[
        Path, typer.Option("--out", help="Output file; missing parents are created; an existing file needs --overwrite.")
    ],
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", help="json, dot, graphml, mermaid or html (default: from the --out suffix, else json)."),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            help="Keep edges with probability >= this (0.5: gated, the fitted edge probability; mastery, two null sds above a typical pair; other methods, no evidence either way).",
        ),
    ] = 0.5,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="Keep only the N strongest edges.")] = None,
    reduce: Annotated[bool, typer.Option("--reduce", help="Transitive reduction: drop edges implied by longer paths.")] = False,
    method: Annotated[
        Optional[str],
        typer.Option(
            "--method",
            help="learned (PSI-KT), influence (DKT/CAKT), mastery, gated, transition or causal-support (from the "
            "training data). Default with the training data at hand: gated where learners x longest sequence x "
            "KCs^2 is at most 3e8 (minutes), else mastery (seconds); without it, the graph saved with the model.",
        ),
    ] = None,
    data_path: Annotated[
        Optional[Path],
        typer.Option("--data", help="Training data for the data methods and --bootstrap (default: the file model.json records)."),
    ] = None,
    bootstrap: BootstrapOpt = None,
    seed: SeedOpt = 0,
    min_stability: MinStabilityOpt = None,
    map_: MapOpt = None,
    encoding: EncodingOpt = None,
    overwrite: OverwriteOpt = False,
):
    """Write the model's prerequisite graph for curriculum designers.

    Every model has one, with the method named. The default is the best
    method measured across generator families (bench/results/graphs.json):
    the gated structure learner on the training data (the file model.json
    records, or --data FILE) where its cost allows, else the mastery one
    (a note says so), falling back to the graph saved with the model
    (PSI-KT's learned graph, DKT/CAKT conditional influence, causal
    support) with a note when the data is not at hand. --bootstrap N adds each
    edge's stability (a data method refitted on N learner resamples; neural
    models are not retrained). A PSI-KT model trained with --set num_fits=N
    --set fit_resample=true carries the stability of its own graph. Cycles among the kept edges are reported;
    JSON and HTML include a suggested learning order. An existing --out
    file is replaced only with --overwrite.
    """
    from kt.atomic import check_output
    from kt.graph.export import export, format_for

    _check_threshold(threshold)
    if top_k is not None and top_k < 1:
        raise KTError(f"--top-k {top_k}: must be >= 1")
    check_graph_method(method, bootstrap)
    check_bootstrap(bootstrap, min_stability, stability_elsewhere=True)
    check_output(out_path, overwrite=overwrite, what="graph file")
    f = format_for(out_path, fmt)
    notes = []
    g = _default_graph(
        model_dir, method, data_path, map_, encoding, bootstrap=bootstrap, seed=seed, threshold=threshold, top_k=top_k
    )
    v = export(g, out_path, f, threshold=threshold, top_k=top_k, reduce=reduce, min_stability=min_stability)
    if v.cycles:
        shown = "; ".join(" <-> ".join(g.kcs[i] for i in c[:4]) + (" ..." if len(c) > 4 else "") for c in v.cycles[:3])
        notes.append(
            f"{len(v.cycles)} cycle(s) among edges >= {threshold}: {shown}; the weakest edge of each cycle "
            f"({len(v.dropped)} in all) is left out of the learning order"
        )
    if not v.edges:
        notes.append(f"no edge reaches --threshold {threshold}; lower it or use --top-k")
    _notes(notes)
    stab = "" if g.stability is None else f", stability from {g.meta['bootstrap']['refits']} learner resamples"
    out.print(f"wrote {len(v.edges)} edges among {g.n_kcs} KCs ({g.method}{stab}) to {out_path} ({f})", highlight=False)


@app.command("graph-eval")
@handle_errors
def graph_eval(
    graph_path: Annotated[Path, typer.Argument(help="Graph JSON (kt export-graph --format json) or a saved model directory.")],
    truth_path: Annotated[
        Path, typer.Argument(help="True graph: kt simulate --truth JSON, an edge-list CSV, or a node table with prerequisites.")
    ],
    threshold: Annotated[float, typer.Option("--threshold", help="Edge threshold for precision/recall/F1.")] = 0.5,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the metrics as JSON here.")] = None,
    method: Annotated[
        Optional[str],
        typer.Option(
            "--method",
            help="For a model directory: the graph to score, as in kt export-graph (default: the one "
            "kt export-graph writes by default).",
        ),
    ] = None,
    data_path: Annotated[
        Optional[Path],
        typer.Option("--data", help="For a model directory: its training data (default: the file model.json records)."),
    ] = None,
    map_: MapOpt = None,
    encoding: EncodingOpt = None,
):
    """Score a prerequisite graph against a known or expert graph.

    Reports edge AUROC and AUPRC (with the base rate), F1 at the threshold
    and at the top-|E_true| pairs, orientation accuracy and the MRR of the
    true edges. Given a model directory, it scores the graph kt export-graph
    writes for it by default (the gated or mastery graph of its training data, else
    the graph saved with it), or the one --method names.
    """
    from kt.graph.evaluate import graph_metrics
    from kt.graph.graph import read_graph
    from kt.graph.truth import read_truth

    _check_threshold(threshold)
    check_graph_method(method)
    notes = []
    if graph_path.is_dir() and (graph_path / "model.json").is_file():
        g = _default_graph(graph_path, method, data_path, map_, encoding)
    else:
        if method is not None or data_path is not None:
            raise KTError(f"{graph_path}: --method and --data apply to a saved model directory, not to a graph file")
        g = read_graph(graph_path)
    truth = read_truth(truth_path)
    res = graph_metrics(g, truth, threshold)
    res.update({"graph": str(graph_path), "truth": str(truth_path), "truth_layout": truth.layout})
    if res["truth_edges_outside_graph"]:
        notes.append(
            f"{res['truth_edges_outside_graph']} of {res['truth_edges']} truth edges name a KC the graph does not have; not scored"
        )
    if res["graph_kcs_not_in_truth"]:
        notes.append(f"{res['graph_kcs_not_in_truth']} graph KCs are not in the truth; not scored")
    _notes(notes)
    t = Table(title=f"{g.method} graph vs {truth_path.name} ({res['n_kcs']} KCs, {res['n_true_edges']} true edges)")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key in (
        "auroc",
        "auprc",
        "base_rate",
        "f1_at_threshold",
        "precision_at_threshold",
        "recall_at_threshold",
        "f1_at_top_true",
        "jaccard_at_threshold",
        "orientation_accuracy",
        "mrr",
    ):
        t.add_row(key.replace("_at_threshold", f" @{threshold:g}").replace("_at_top_true", " @top-|E|"), _fmt(float(res[key])))
    out.print(t)
    _write_json(json_out, res)
