"""`kt export-graph` and `kt graph-eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from kt.cli.common import app, out, OverwriteOpt, handle_errors, _fmt, _json_dump, _notes
from kt.errors import KTError


def _check_threshold(threshold: float) -> None:
    if not 0 <= threshold <= 1:  # also rejects NaN
        raise KTError(f"--threshold {threshold}: must be in [0, 1]")


def _model_graph(model_dir: Path):
    """DIR/graph.json (saved by `kt train`), else the model's own graph."""
    from kt.graph.build import graph_for
    from kt.graph.graph import read_graph
    from kt.models.base import load

    if (model_dir / "graph.json").is_file():
        return read_graph(model_dir)
    m = load(model_dir)
    g = graph_for(m)
    if g is None:
        raise KTError(f"{model_dir}: model {m.name!r} has no prerequisite graph (no graph.json); "
                      "retrain with this kt version, which saves one with every model")
    return g


@app.command("export-graph")
@handle_errors
def export_graph(
    model_dir: Annotated[Path, typer.Argument(help="Saved model directory.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output file; missing parents are created; an existing file needs --overwrite.")],
    fmt: Annotated[
        Optional[str], typer.Option("--format", help="json, dot, graphml, mermaid or html (default: from the --out suffix, else json).")
    ] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Keep edges with probability >= this (0.5 = no evidence either way).")] = 0.5,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="Keep only the N strongest edges.")] = None,
    reduce: Annotated[bool, typer.Option("--reduce", help="Transitive reduction: drop edges implied by longer paths.")] = False,
    overwrite: OverwriteOpt = False,
):
    """Write the model's prerequisite graph for curriculum designers.

    Every model has one, with the method named: PSI-KT's learned graph,
    DKT/CAKT's conditional influence, or the causal support of the training
    data. Cycles among the kept edges are reported; JSON and HTML include a
    suggested learning order. An existing --out file is replaced only with
    --overwrite.
    """
    from kt.atomic import check_output
    from kt.graph.export import export, format_for

    _check_threshold(threshold)
    if top_k is not None and top_k < 1:
        raise KTError(f"--top-k {top_k}: must be >= 1")
    check_output(out_path, overwrite=overwrite, what="graph file")
    f = format_for(out_path, fmt)
    g = _model_graph(model_dir)
    v = export(g, out_path, f, threshold=threshold, top_k=top_k, reduce=reduce)
    notes = []
    if v.cycles:
        shown = "; ".join(" <-> ".join(g.kcs[i] for i in c[:4]) + (" ..." if len(c) > 4 else "") for c in v.cycles[:3])
        notes.append(f"{len(v.cycles)} cycle(s) among edges >= {threshold}: {shown}; the weakest edge of each cycle "
                     f"({len(v.dropped)} in all) is left out of the learning order")
    if not v.edges:
        notes.append(f"no edge reaches --threshold {threshold}; lower it or use --top-k")
    _notes(notes)
    out.print(f"wrote {len(v.edges)} edges among {g.n_kcs} KCs ({g.method}) to {out_path} ({f})", highlight=False)


@app.command("graph-eval")
@handle_errors
def graph_eval(
    graph_path: Annotated[Path, typer.Argument(help="Graph JSON (kt export-graph --format json, or a model directory's graph.json).")],
    truth_path: Annotated[Path, typer.Argument(help="True graph: kt simulate --truth JSON, an edge-list CSV, or a node table with prerequisites.")],
    threshold: Annotated[float, typer.Option("--threshold", help="Edge threshold for precision/recall/F1.")] = 0.5,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the metrics as JSON here.")] = None,
):
    """Score a prerequisite graph against a known or expert graph.

    Reports edge AUROC and AUPRC (with the base rate), F1 at the threshold
    and at the top-|E_true| pairs, orientation accuracy and the MRR of the
    true edges.
    """
    from kt.atomic import write_text
    from kt.graph.evaluate import graph_metrics
    from kt.graph.graph import read_graph
    from kt.graph.truth import read_truth

    _check_threshold(threshold)
    g = read_graph(graph_path)
    truth = read_truth(truth_path)
    res = graph_metrics(g, truth, threshold)
    res.update({"graph": str(graph_path), "truth": str(truth_path), "truth_layout": truth.layout})
    notes = []
    if res["truth_edges_outside_graph"]:
        notes.append(f"{res['truth_edges_outside_graph']} of {res['truth_edges']} truth edges name a KC the graph does not have; not scored")
    if res["graph_kcs_not_in_truth"]:
        notes.append(f"{res['graph_kcs_not_in_truth']} graph KCs are not in the truth; not scored")
    _notes(notes)
    t = Table(title=f"{g.method} graph vs {truth_path.name} ({res['n_kcs']} KCs, {res['n_true_edges']} true edges)")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key in ("auroc", "auprc", "base_rate", "f1_at_threshold", "precision_at_threshold", "recall_at_threshold",
                "f1_at_top_true", "jaccard_at_threshold", "orientation_accuracy", "mrr"):
        t.add_row(key.replace("_at_threshold", f" @{threshold:g}").replace("_at_top_true", " @top-|E|"), _fmt(float(res[key])))
    out.print(t)
    if json_out is not None:
        write_text(json_out, _json_dump(res))
        out.print(f"wrote {json_out}")
