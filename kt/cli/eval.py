"""`kt cv`, `kt compare`, `kt report`, and the option helpers `kt evaluate` shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from kt.cli.common import UI, app, err, out, eval_options, handle_errors, read_options, _fmt, _write_json
from kt.cli.common import MapOpt, DropDupOpt, DropNullOpt, EncodingOpt, SetOpt, ConfigOpt
from kt.cli.common import HistoryOpt, HistoryFracOpt, HorizonOpt, ModeOpt, ScoringOpt, FusionOpt, IncludeFirstOpt, CollapseOpt
from kt.errors import KTError

RESULT_COLS = ("auc", "accuracy", "f1", "rmse", "logloss", "n")


def make_spec(protocol, include_first, scoring, fusion, history, history_frac, horizon, mode):
    """Validated :class:`~kt.eval.protocols.EvalSpec` from command-line options."""
    from kt.eval.protocols import EvalSpec

    return EvalSpec(protocol, include_first, scoring, fusion, history, history_frac, horizon, mode).checked()


def prepare_data(data, spec, collapse: bool):
    """Apply ``--collapse-kc-rows`` and print scoring warnings; returns the data to evaluate."""
    from kt.api import prepare

    return prepare(data, spec, collapse, UI)


def result_table(title: str, rows: dict[str, dict]) -> Table:
    """Metrics of several results, one row each."""
    t = Table(title=title)
    t.add_column("")
    for m in RESULT_COLS:
        t.add_column(m, justify="right")
    for name, r in rows.items():
        t.add_row(name, *(_fmt(r.get(m, float("nan"))) for m in RESULT_COLS))
    return t


def step_table(res: dict) -> Table:
    """Metrics per horizon step of a multi-step result."""
    t = Table(title="by horizon step")
    for c in ("step", "n", "accuracy", "auc", "f1"):
        t.add_column(c, justify="right")
    for s in res["by_step"]:
        t.add_row(*(_fmt(s[c]) for c in ("step", "n", "accuracy", "auc", "f1")))
    return t


def describe(res: dict) -> str:
    """Short protocol description for table titles."""
    p = res["protocol"]
    if p == "next":
        return f"protocol next, {res['scoring']}-level"
    h = f"history {res['history']}" if res.get("history") is not None else f"history {res.get('history_frac')} of each learner"
    n = f"horizon {res['horizon']}" if res.get("horizon") is not None else "all remaining"
    return f"protocol {p}, {h}, {n}, {res['mode']}, {res['scoring']}-level"


def print_result(res: dict, title: str) -> None:
    """Print a protocol result (and its per-step table for multi-step runs)."""
    out.print(result_table(f"{title} ({describe(res)})", {"test": res}))
    if res.get("by_step"):
        out.print(step_table(res))
    if res.get("split_skipped_learners"):
        err.print(
            f"[yellow]note:[/] {res['split_skipped_learners']:,} learners have too few attempts for the history/horizon "
            "and were skipped",
            highlight=False,
        )


@app.command()
@handle_errors
def cv(
    file: Annotated[Path, typer.Argument(help="Interactions to cross-validate on.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (see `kt models`).")],
    folds: Annotated[int, typer.Option("--folds", help="Number of learner folds.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the folds, the validation split and the model.")] = 0,
    valid_frac: Annotated[
        float, typer.Option("--valid-frac", help="kfold: share of each fold's training learners used for validation.")
    ] = 0.1,
    scheme: Annotated[
        str,
        typer.Option(
            "--protocol",
            help="kfold (each fold is the test set once) or pykt (fixed 20% test set, seed 1024; 5 models early-stopped on one fold each).",
        ),
    ] = "kfold",
    eval_protocol: Annotated[
        str, typer.Option("--eval", help="Evaluation protocol on each test set: next, multistep or psikt-window.")
    ] = "next",
    history: HistoryOpt = None,
    history_frac: HistoryFracOpt = None,
    horizon: HorizonOpt = None,
    mode: ModeOpt = "nonacc",
    scoring: ScoringOpt = "question",
    fusion: FusionOpt = "mean",
    include_first: IncludeFirstOpt = False,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Training epochs (gradient models).")] = None,
    set_: SetOpt = None,
    config: ConfigOpt = None,
    collapse: CollapseOpt = False,
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="Write per-fold results and the summary as JSON here.")
    ] = None,
    map_: MapOpt = None,
    drop_duplicates: DropDupOpt = False,
    drop_nulls: DropNullOpt = False,
    encoding: EncodingOpt = None,
):
    """Learner-level k-fold cross-validation: mean ± sd per metric, per-fold JSON.

    The same --seed gives the same folds and (for deterministic models)
    the same metrics.
    """
    from kt.api import cross_validate

    sets = list(set_ or []) + ([f"epochs={epochs}"] if epochs is not None else [])

    def on_fold(k: int, fold: dict) -> None:
        r = fold["result"]
        UI.line(
            f"  fold {k + 1}/{folds}: AUC {_fmt(r['auc'])}, accuracy {_fmt(r['accuracy'])} ({r['train_seconds']:.1f}s training)"
        )

    rec = cross_validate(
        file,
        model,
        folds=folds,
        seed=seed,
        valid_frac=valid_frac,
        scheme=scheme,
        protocol=eval_protocol,
        **eval_options(history, history_frac, horizon, mode, scoring, fusion, include_first, collapse),
        config=config,
        sets=sets,
        **read_options(map_, drop_duplicates, drop_nulls, encoding),
        on_fold=on_fold,
        _ui=UI,
    )
    t = Table(title=f"{model}: {scheme} {folds} folds, seed {seed} ({describe(rec['fold_results'][0]['result'])})")
    t.add_column("fold")
    t.add_column("learners", justify="right")
    for m in RESULT_COLS:
        t.add_column(m, justify="right")
    for f in rec["fold_results"]:
        n_users = len(f.get("test_users") or rec.get("test_users") or [])
        t.add_row(str(f["fold"] + 1), f"{n_users:,}", *(_fmt(f["result"].get(m, float("nan"))) for m in RESULT_COLS))
    for stat in ("mean", "std"):
        vals = [rec["summary"].get(m, {}).get(stat) for m in RESULT_COLS[:-1]]
        t.add_row("sd" if stat == "std" else stat, "", *(_fmt(v) if v is not None else "-" for v in vals), "")
    out.print(t)
    _write_json(json_out, rec)


@app.command()
@handle_errors
def compare(
    file: Annotated[Path, typer.Argument(help="Interactions (training learners, or all learners when no --test is given).")],
    models: Annotated[str, typer.Option("--models", help="Comma-separated model names, e.g. kc-rate,bkt,dkt.")],
    test_file: Annotated[
        Optional[Path],
        typer.Option("--test", help="Separate test file (e.g. a published split); otherwise --test-frac of the learners."),
    ] = None,
    test_frac: Annotated[
        float, typer.Option("--test-frac", help="Share of learners held out for testing (without --test).")
    ] = 0.2,
    folds: Annotated[
        int,
        typer.Option(
            "--folds", help="Use learner-level k-fold CV (same folds for every model) instead of one split; 0 = one split."
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split(s), validation split and models.")] = 0,
    valid_frac: Annotated[float, typer.Option("--valid-frac", help="Share of training learners used for validation.")] = 0.1,
    protocol: Annotated[str, typer.Option("--protocol", help="Evaluation protocol: next, multistep or psikt-window.")] = "next",
    history: HistoryOpt = None,
    history_frac: HistoryFracOpt = None,
    horizon: HorizonOpt = None,
    mode: ModeOpt = "nonacc",
    scoring: ScoringOpt = "question",
    fusion: FusionOpt = "mean",
    include_first: IncludeFirstOpt = False,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Training epochs of the gradient models.")] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option(
            "--set", help="MODEL.KEY=VALUE for one model (dkt.hidden=64), or KEY=VALUE for every model that has KEY; repeatable."
        ),
    ] = None,
    config: ConfigOpt = None,
    save_models: Annotated[
        Optional[Path], typer.Option("--save-models", help="Also save each trained model to DIR/MODEL (one split only).")
    ] = None,
    collapse: CollapseOpt = False,
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="Write all results as JSON here (input for kt report).")
    ] = None,
    map_: MapOpt = None,
    drop_duplicates: DropDupOpt = False,
    drop_nulls: DropNullOpt = False,
    encoding: EncodingOpt = None,
):
    """Train several models on the same learner split and compare them in one table."""
    from kt.api import compare as compare_models

    names = [m.strip() for m in models.split(",") if m.strip()]
    if len(set(names)) != len(names):
        raise KTError(f"--models {models!r}: a model is listed twice")
    record = compare_models(
        file,
        names,
        test=test_file,
        test_frac=test_frac,
        folds=folds,
        seed=seed,
        valid_frac=valid_frac,
        protocol=protocol,
        **eval_options(history, history_frac, horizon, mode, scoring, fusion, include_first, collapse),
        epochs=epochs,
        sets=set_,
        config=config,
        save_models=save_models,
        **read_options(map_, drop_duplicates, drop_nulls, encoding),
        _ui=UI,
    )
    results = record["results"]
    first = results[0]["fold_results"][0]["result"] if folds else results[0]
    split = f"{folds}-fold CV" if folds else (f"test file {test_file}" if test_file else f"{test_frac:g} of learners held out")
    t = Table(title=f"{file}: {split}, seed {seed} ({describe(first)})")
    t.add_column("model")
    for m in RESULT_COLS:
        t.add_column(m, justify="right")
    t.add_column("train s", justify="right")
    for name, r in zip(names, results):
        if folds:
            # two rows per model (mean, then sd) keep the table narrow
            secs = sum(f["result"]["train_seconds"] for f in r["fold_results"])
            n = sum(f["result"]["n"] for f in r["fold_results"])
            mean = [_fmt(r["summary"][m]["mean"]) if m in r["summary"] else "-" for m in RESULT_COLS[:-1]]
            sd = [_fmt(r["summary"][m]["std"]) if m in r["summary"] else "-" for m in RESULT_COLS[:-1]]
            t.add_row(name, *mean, _fmt(n), f"{secs:.1f}")
            t.add_row("  ± sd", *sd, "", "")
        else:
            t.add_row(name, *(_fmt(r.get(m, float("nan"))) for m in RESULT_COLS), f"{r['train_seconds']:.1f}")
    out.print(t)
    _write_json(json_out, record)


@app.command()
@handle_errors
def report(
    paths: Annotated[list[Path], typer.Argument(help="Model directories and/or JSON results of kt evaluate/cv/compare.")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
    title: Annotated[str, typer.Option("--title", help="Page title.")] = "kt report",
):
    """Write a self-contained HTML report (inline SVG plots, no network needed to view).

    ROC curves, reliability diagram, accuracy by horizon step, learning
    curves per KC, training history, and a side-by-side table of all
    results given.
    """
    from kt.atomic import write_text
    from kt.eval.report_html import build_html, collect

    runs, trainings = collect(paths)
    write_text(out_path, build_html(runs, trainings, title=title))
    out.print(f"wrote {out_path} ({len(runs)} evaluation(s), {len(trainings)} training run(s))")
