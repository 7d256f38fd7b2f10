"""`kt export-graph` and `kt graph-eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from kt.cli.common import app, err, out, EncodingOpt, MapOpt, OverwriteOpt, handle_errors, _fmt, _json_dump, _notes
from kt.errors import KTError

# --method of export-graph: the model's own graphs, then the data methods (kt.graph.build.DATA_METHODS).
MODEL_METHODS = {"learned": "learned", "influence": "conditional-influence"}
EXPORT_METHODS = ("learned", "influence", "mastery", "transition", "causal-support")

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


def check_bootstrap(bootstrap: int | None, min_stability: float | None) -> None:
    """One-line errors for --bootstrap / --min-stability before any work."""
    if bootstrap is not None and bootstrap < 2:
        raise KTError(f"--bootstrap {bootstrap}: needs at least 2 refits (20 or more for stable shares)")
    if min_stability is not None:
        if not 0 <= min_stability <= 1:  # also rejects NaN
            raise KTError(f"--min-stability {min_stability}: must be in [0, 1]")
        if bootstrap is None:
            raise KTError("--min-stability needs per-edge stability: add --bootstrap N (e.g. 20)")


def run_bootstrap(data, method: str, kcs, *, n: int, seed: int, threshold: float, top_k: int | None, graph=None):
    """kt.graph.bootstrap.bootstrap_graph with a progress line on stderr."""
    from kt.graph.bootstrap import bootstrap_graph

    with err.status(f"bootstrap: refitting the {method} graph on {n} learner resamples") as st:
        return bootstrap_graph(
            data,
            method,
            kcs,
            n=n,
            seed=seed,
            threshold=threshold,
            top_k=top_k,
            graph=graph,
            progress=lambda b, n_: st.update(f"bootstrap: {method} refit {b}/{n_}"),
        )


def _check_threshold(threshold: float) -> None:
    if not 0 <= threshold <= 1:  # also rejects NaN
        raise KTError(f"--threshold {threshold}: must be in [0, 1]")


def _model_graph(model_dir: Path, method: str | None = None):
    """DIR/graph.json (saved by `kt train`), else the model's own graph.

    Args:
        model_dir: saved model directory.
        method: ``learned`` or ``influence`` to insist on that graph (from
            graph.json when it holds it, else computed from the model);
            None: whatever graph.json holds.
    """
    from kt.graph.build import graph_for
    from kt.graph.graph import read_graph
    from kt.graph.influence import influence_graph
    from kt.models.base import load

    want = None if method is None else MODEL_METHODS[method]
    if (model_dir / "graph.json").is_file():
        g = read_graph(model_dir)
        if want is None or g.method == want:
            return g
    m = load(model_dir)
    if want is None:
        g = graph_for(m)
    elif want == "learned":
        g = m.graph() if callable(getattr(m, "graph", None)) else None
    else:
        g = (
            influence_graph(list(m.vocab.skill_id), m.influence_matrix())
            if callable(getattr(m, "influence_matrix", None))
            else None
        )
    if g is None:
        if want is not None:
            raise KTError(
                f"{model_dir}: model {m.name!r} has no {want} graph; --method learned is PSI-KT's, influence DKT's "
                "and CAKT's; any model takes mastery, transition or causal-support (with its training data)"
            )
        raise KTError(
            f"{model_dir}: model {m.name!r} has no prerequisite graph (no graph.json); "
            "pass --data FILE (its training data) for the mastery graph, or retrain with this kt version"
        )
    return g


def _has_own_graph(model_dir: Path, header: dict) -> bool:
    """True for models that learn a graph of their own (PSI-KT's ``learned``)."""
    from kt.models.base import Model, get

    try:
        cls = get(str(header.get("model", "?")))
    except KTError:
        return False
    return getattr(cls, "graph", None) is not Model.graph


def _training_data(model_dir: Path, header: dict, data_path: Path | None, map_, encoding):
    """The training interactions of a model: --data FILE, else the file model.json records.

    Returns:
        ``(data or None, why not)``.
    """
    from kt.cli.common import _load_data

    meta = header.get("meta") or {}
    if data_path is None:
        rec = meta.get("train_file")
        if not rec:
            return None, "the model does not record its training file"
        data_path = Path(rec)
        if not data_path.exists():
            return None, f"its training file {rec} (recorded in model.json) is not found"
    elif not data_path.exists():
        raise KTError(f"--data {data_path}: no such file")
    data = _load_data(data_path, map_, False, False, encoding)
    fp = meta.get("data_fingerprint")
    if fp and data.fingerprint() != fp:
        _notes(
            [
                f"{data_path}: not the data the model was trained on (fingerprint {data.fingerprint()} != {fp}); "
                "the graph describes this file"
            ]
        )
    return data, None


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
    """The graph ``kt export-graph`` shows for a model directory (and ``kt graph-eval`` scores), with notes.

    Args:
        model_dir: a saved model directory (or a directory holding only graph.json).
        method: an export method, or None for the default (PSI-KT: learned; else mastery on the training data).
        data_path, map_, encoding: the training data when not the file model.json records.
        bootstrap, seed, threshold, top_k: --bootstrap refits and the keep rule of their stability.

    Returns:
        ``(graph, notes)``.
    """
    from kt.graph.build import data_graph
    from kt.models.base import read_header

    header = read_header(model_dir) if (model_dir / "model.json").is_file() else {}
    if not header and not (model_dir / "graph.json").is_file():
        raise KTError(f"{model_dir}: not a kt model directory (no model.json); train one with `kt train ... --out {model_dir}`")
    notes = []
    own = bool(header) and _has_own_graph(model_dir, header)
    explicit = method is not None
    if method is None and own and bootstrap is None:
        method = "learned"
    if method is None or method not in MODEL_METHODS:
        try:
            data, why = _training_data(model_dir, header, data_path, map_, encoding)
        except KTError as exc:
            if explicit or bootstrap is not None or data_path is not None:
                raise
            data, why = None, f"its training file could not be read ({exc})"
        if data is None and (method is not None or bootstrap is not None):
            what = f"--bootstrap ({method or 'mastery'} refits)" if bootstrap is not None else f"the {method} graph"
            raise KTError(f"{model_dir}: {what} needs the training data and {why}; pass --data FILE")
        if data is None:
            g = _model_graph(model_dir)
            notes.append(
                f"{why}: showing the graph saved with the model ({g.method}); pass --data FILE for the mastery "
                "graph, which recovers known graphs better (bench/results/graphs.json)"
            )
        else:
            method = method or "mastery"
            if own and bootstrap is not None:
                notes.append(
                    "--bootstrap: PSI-KT's learned graph is not refitted; showing the mastery graph of the "
                    "training data with its stability (--method mastery)"
                )
            kcs = list(header["vocab"]["skill_id"]) if header.get("vocab", {}).get("skill_id") else None
            try:
                with err.status(f"learning the {method} graph from {data.n_rows:,} attempts"):
                    g = data_graph(data, method, kcs)
            except KTError as exc:
                if explicit or bootstrap is not None:
                    raise
                g = _model_graph(model_dir)  # the default could not be computed (e.g. too large): the saved graph
                notes.append(f"no mastery graph ({exc}); showing the graph saved with the model ({g.method})")
                kcs = None
            if bootstrap is not None:
                g = run_bootstrap(data, method, kcs, n=bootstrap, seed=seed, threshold=threshold, top_k=top_k, graph=g)
    else:
        g = _model_graph(model_dir, method)
    return g, notes


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
            help="Keep edges with probability >= this (0.5: mastery, two null sds above a typical pair; other methods, no evidence either way).",
        ),
    ] = 0.5,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="Keep only the N strongest edges.")] = None,
    reduce: Annotated[bool, typer.Option("--reduce", help="Transitive reduction: drop edges implied by longer paths.")] = False,
    method: Annotated[
        Optional[str],
        typer.Option(
            "--method",
            help="learned (PSI-KT), influence (DKT/CAKT), mastery, transition or causal-support (from the "
            "training data). Default: learned for PSI-KT, else mastery when the training data is at hand, "
            "else the graph saved with the model.",
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
    method measured (bench/results/graphs.json): PSI-KT's learned graph;
    for the other models the mastery structure learner on the training data
    (the file model.json records, or --data FILE), falling back to the graph
    saved with the model (DKT/CAKT conditional influence, causal support)
    with a note when the data is not at hand. --bootstrap N adds each
    edge's stability (a data method refitted on N learner resamples; neural
    models are not retrained). Cycles among the kept edges are reported;
    JSON and HTML include a suggested learning order. An existing --out
    file is replaced only with --overwrite.
    """
    from kt.atomic import check_output
    from kt.graph.export import export, format_for

    _check_threshold(threshold)
    if top_k is not None and top_k < 1:
        raise KTError(f"--top-k {top_k}: must be >= 1")
    if method is not None and method not in EXPORT_METHODS:
        raise KTError(f"--method {method!r}: unknown graph method; choose one of {', '.join(EXPORT_METHODS)}")
    check_bootstrap(bootstrap, min_stability)
    if bootstrap is not None and method in MODEL_METHODS:
        raise KTError(
            f"--bootstrap refits a data method (mastery, transition, causal-support) on resampled learners; the "
            f"{method} graph would need {bootstrap} retrainings: use --method mastery, or drop --bootstrap"
        )
    check_output(out_path, overwrite=overwrite, what="graph file")
    f = format_for(out_path, fmt)
    g, notes = _default_graph(
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
    writes for it by default (PSI-KT: its learned graph; other models: the
    mastery graph of their training data), or the one --method names.
    """
    from kt.atomic import write_text
    from kt.graph.evaluate import graph_metrics
    from kt.graph.graph import read_graph
    from kt.graph.truth import read_truth

    _check_threshold(threshold)
    if method is not None and method not in EXPORT_METHODS:
        raise KTError(f"--method {method!r}: unknown graph method; choose one of {', '.join(EXPORT_METHODS)}")
    notes = []
    if graph_path.is_dir() and (graph_path / "model.json").is_file():
        g, notes = _default_graph(graph_path, method, data_path, map_, encoding)
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
    if json_out is not None:
        write_text(json_out, _json_dump(res))
        out.print(f"wrote {json_out}")
