"""Render ``bench/RESULTS.md`` from the benchmark scripts' result JSON.

The table of benchmark scripts (``SCRIPTS``) lives here rather than in
``run_all.py`` because the report needs it too and ``run_all`` imports this
module, never the other way round. Nothing here runs a benchmark.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import math
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MANIFEST = "run_all.json"


@dataclasses.dataclass(frozen=True)
class Script:
    """One benchmark script as run_all drives it.

    Attributes:
        name: file stem under ``bench/`` (``--only``/``--skip`` use it).
        json: result file name in the results directory.
        title: section title in RESULTS.md.
        full: argument lists of a normal run, one per invocation; several
            invocations (parts) have their rows merged into one JSON.
        quick: the same for ``--quick``; ``None`` = no small setting (skipped).
        repeats: the script takes ``--repeats``.
        note: what the numbers are and what run_all caps (shown under the table).
        optional: the script may be absent (skipped silently then).
        file: the script's path when it is not ``bench/<name>.py`` (tests).
    """

    name: str
    json: str
    title: str
    full: tuple[tuple[str, ...], ...]
    quick: tuple[tuple[str, ...], ...] | None
    repeats: bool = False
    note: str = ""
    optional: bool = False
    file: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.file) if self.file else HERE / f"{self.name}.py"


SCRIPTS: tuple[Script, ...] = (
    Script(
        "ingest",
        "ingest.json",
        "Ingestion (kt.load + build_sequences)",
        full=((),),
        quick=(("--rows", "20000", "--no-breakdown"),),
        repeats=True,
        note="1M-row seeded synthetic CSV in a fresh subprocess; rows/s and seconds are medians of the repeats.",
    ),
    Script(
        "bkt_vs_pybkt",
        "bkt.json",
        "BKT vs pyBKT 1.4.1",
        full=((),),
        quick=(("--skip-a2012", "--no-cpp-rule", "--wait-quiet", "0"),),
        repeats=True,
        note="Test AUC/accuracy over every test row (pyBKT convention). pyBKT train s = `model.fit` only, median of "
        "the repeats; kt train s = the whole `kt train` process (import, load, compile, EM, save), cold (fresh "
        "compile cache); the second run with a warm cache and the compiled in-process refit are in the ratios. "
        "Speed ratio = pyBKT fit seconds / kt seconds (> 1: kt faster).",
    ),
    Script(
        "bkt_same_init",
        "bkt_same_init.json",
        "BKT parameters from identical initial values (kt vs pyBKT 1.4.1)",
        full=((),),
        quick=((),),
        note="Per-KC parameters of kt and pyBKT started from the same initial values (num_fits = 1), KCs with >= 100 "
        "learners; acceptance max |difference| <= 0.02 with pyBKT's stopping rule in float64.",
    ),
    Script(
        "dkt_vs_pykt",
        "dkt_vs_pykt.json",
        "DKT vs pyKT 0.0.38",
        full=((),),
        quick=(("--max-learners", "100", "--epochs", "1", "--skip-memory", "--acc-epochs", "1", "--wait-quiet", "0"),),
        repeats=True,
        note="interactions/s = steady-state scored training positions per second on assist2009/gervet train (batch "
        "256, hidden 200, dropout 0.1, Adam 1e-3, chunks of 200, 2 threads), median of the repeats per side "
        "(fresh processes, alternating); train s = the timed epochs of the median run. AUC/accuracy: a separate "
        "run per side trains a fixed number of epochs on the whole train file and scores the test file under "
        "pyKT's test protocol (chunks of 200, first step of each chunk unscored; the same positions on both "
        "sides). The assist2015 row is the memory check (1 epoch, peak RSS < 4 GB).",
    ),
    Script(
        "stream",
        "stream.json",
        "Streaming ingestion",
        full=((),),
        quick=(("--rows", "1000000", "--learners", "5000", "--partitions", "4"),),
        repeats=False,
        optional=True,
        note="bench/stream.py: 20M-row generated CSV -> learner-hash Parquet partitions -> one streamed DKT epoch.",
    ),
    Script(
        "dkt",
        "dkt.json",
        "DKT accuracy on the issue's splits",
        full=(
            ("--datasets", "assist2009"),
            ("--datasets", "statics2011", "--kc", "item", "--epochs", "30"),
            ("--datasets", "assist2015", "--epochs", "20"),
        ),
        quick=(("--datasets", "assist2009", "--epochs", "1"),),
        note="pyKT defaults, early stopping on 10% of the training learners (patience 10), window-mode test scoring, "
        "first attempts unscored; the epochs column shows any cap. run_all runs three invocations (rows merged): "
        "assist2009 to early stopping, statics2011 with KC = problem step capped at 30 epochs, assist2015 capped "
        "at 20. interactions/s = median over epochs 2.. of one training run (indicative only when other jobs "
        "shared the cores).",
    ),
    Script(
        "dkt_select",
        "dkt_select.json",
        "DKT settings selected on validation AUC",
        full=((),),
        quick=None,
        note="Six configurations trained as bench/dkt.py (early stopping), the selected one has the best validation "
        "AUC; test AUCs of all are shown. Not capped (no epoch option): six DKT trainings to early stopping "
        "(the lr 1e-4 one runs about 90 epochs).",
    ),
    Script(
        "psikt",
        "psikt.json",
        "PSI-KT on simulated OU-graph data (+ EdNet rows, training-cohort comparison)",
        full=(("--ablation",),),
        quick=(("--seeds", "0", "--learners", "200", "--steps", "20", "--no-real"),),
        note="Edge AUROC/AUPRC against the true prerequisite DAG and Spearman correlations of inferred vs true traits; "
        "seconds per continual update of all learners (compiled). The EdNet row uses the within-learner protocol "
        "(observe 10, predict 11-20).",
    ),
    Script(
        "cakt",
        "cakt.json",
        "CAKT vs DKT (and the no-3D-CNN ablation)",
        full=(("--datasets", "assist2009", "--models", "dkt,cakt-nocnn", "--epochs", "5"),),
        quick=(("--datasets", "assist2009", "--models", "cakt-nocnn", "--epochs", "1"),),
        note="Same split, seed and validation protocol for every model; DKT trains to early stopping, cakt and "
        "cakt-nocnn up to the epoch cap (config column). run_all's default is capped for CPU: assist2009 only, "
        "DKT and the no-3D-CNN ablation at 5 epochs; the full CAKT (3D-CNN) is left out because its run to "
        "convergence takes hours on 2 CPU cores (about 4 minutes per assist2009 epoch, up to 30 epochs, plus "
        "window-mode test scoring). `python bench/cakt.py --datasets assist2009,statics2011` runs all three "
        "models to convergence and is resumable (per-epoch checkpoints; rerun the same command to continue).",
    ),
)


def load_manifest(results_dir: Path) -> dict:
    """run_all's record of what it last ran (``MANIFEST`` in the results directory).

    Args:
        results_dir: the results directory.

    Returns:
        The manifest, or ``{}`` when it is missing or unreadable.
    """
    try:
        return json.loads((results_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- rendering helpers
def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def fixed(v, digits: int, *, grouping: bool = False) -> str:
    """A number with a fixed count of decimals.

    Args:
        v: the value; only finite numbers (not bools) are shown.
        digits: decimals after the point.
        grouping: separate thousands with commas.

    Returns:
        The formatted number, or ``""`` for anything else.
    """
    x = _num(v)
    return "" if x is None else f"{x:{',' if grouping else ''}.{digits}f}"


# Counts and seconds are grouped by thousands, scores and ratios are not: the report has always printed them so.
f0 = functools.partial(fixed, digits=0, grouping=True)
f1 = functools.partial(fixed, digits=1, grouping=True)
f2 = functools.partial(fixed, digits=2)
f4 = functools.partial(fixed, digits=4)


def signed(v, digits: int = 4) -> str:
    """A signed difference; one more digit when it would round to zero.

    Args:
        v: the difference.
        digits: decimals after the point.

    Returns:
        The formatted difference, or ``"n/a"`` when ``v`` is not a finite number.
    """
    x = _num(v)
    if x is None:
        return "n/a"
    if x != 0 and abs(x) < 0.5 * 10**-digits:
        digits += 1
    return f"{x:+.{digits}f}"


def cell(v) -> str:
    """A value as the text of one Markdown table cell.

    Args:
        v: any JSON value; a dict becomes ``k=v, ...``.

    Returns:
        The text, with ``|`` escaped and newlines flattened so the table stays one row per line.
    """
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, dict):
        v = ", ".join(f"{k}={x}" for k, x in v.items()) or "defaults"
    return str(v).replace("|", "\\|").replace("\n", " ")


def md_table(rows: list[dict], cols: list[tuple[str, object]]) -> list[str]:
    """A Markdown table; columns empty in every row are dropped, numeric ones right-aligned.

    Args:
        rows: one dict per row.
        cols: (header, key of the row or callable(row) -> value) per column.

    Returns:
        The table's lines (none when every column is empty).
    """

    def get(r, g):
        return cell(g(r)) if callable(g) else cell(r.get(g))

    body = [[get(r, g) for _, g in cols] for r in rows]
    keep = [i for i in range(len(cols)) if any(b[i] for b in body)]
    if not keep:
        return []
    numeric = [all(_looks_numeric(b[i]) for b in body if b[i]) for i in range(len(cols))]
    out = [
        "| " + " | ".join(cols[i][0] for i in keep) + " |",
        "|" + "|".join("---:" if numeric[i] else "---" for i in keep) + "|",
    ]
    out += ["| " + " | ".join(b[i] for i in keep) + " |" for b in body]
    return out


def _looks_numeric(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("x"))
    except ValueError:
        return False
    return True


BASE_COLS: list[tuple[str, object]] = [
    ("dataset", "dataset"),
    ("split", "split"),
    ("model", "model"),
    ("impl", "impl"),
    ("AUC", lambda r: f4(r.get("auc"))),
    ("accuracy", lambda r: f4(r.get("accuracy"))),
    ("train s", lambda r: f1(r.get("train_seconds"))),
    ("interactions/s", lambda r: f0(r.get("interactions_per_second"))),
    ("peak RSS MB", lambda r: f0(r.get("peak_rss_mb"))),
]


def _cols(*extra: tuple[str, object], base: list | None = None) -> list[tuple[str, object]]:
    return [*(BASE_COLS if base is None else base), *extra]


def _versions(d: dict) -> str:
    v = d.get("versions") or {}
    flat = {k: x for k, x in v.items() if isinstance(x, (str, int, float)) and k != "peer"}
    parts = [", ".join(f"{k} {x}" for k, x in flat.items())]
    peer = v.get("peer") if isinstance(v, dict) else None
    if not peer and isinstance(d.get("peer"), dict):  # bkt_same_init keeps its peer versions here
        peer = "pyBKT " + str(d["peer"].get("pyBKT", "?"))
    parts.append(f"peer {peer}" if peer else "")
    return "; ".join(x for x in parts if x)


def _busy_cores(d: dict) -> list[str]:
    """A warning line when other processes used more than a fifth of a core during a timed step."""
    busy = {k: v for k, v in (d.get("other_processes_cores") or {}).items() if isinstance(v, (int, float)) and v > 0.2}
    if not busy:
        return []
    return [
        "- Other processes shared the cores while timed ("
        + ", ".join(f"{k} {v:.2f}" for k, v in busy.items())
        + " cores): timings inflated."
    ]


# --------------------------------------------------------------------------- per-script sections
# The section functions (SECTIONS) share one contract. Args: d, a script's result JSON. Returns: (the table's lines,
# the lines under the table, its row of the "kt against its peers" summary or None where the script has no peer).
def sec_bkt(d: dict) -> tuple[list[str], list[str], dict | None]:
    """BKT vs pyBKT (``d`` = bkt.json): rows with RMSE, speed ratios, accuracy deltas; summary row when measured."""
    lines = md_table(d.get("rows", []), _cols(("RMSE", lambda r: f4(r.get("rmse")))))
    r, p = d.get("ratios") or {}, d.get("parity") or {}
    cmp_lines, summary = [], None
    if r or p:
        cold, warm = r.get("speed_pybkt_fit_over_kt_process_cold"), r.get("speed_pybkt_fit_over_kt_process_second")
        steady = r.get("speed_pybkt_fit_over_kt_steady_fit")
        cmp_lines.append(
            f"- **Speed ratio** (same run; pyBKT `fit` seconds / kt seconds, > 1 = kt faster): whole `kt train` "
            f"process cold {f2(cold)}x, second run with a warm compile cache {f2(warm)}x; compiled in-process refit "
            f"{f2(steady)}x."
        )
        cmp_lines.append(
            f"- **Accuracy delta** (kt − pyBKT, same {f0(p.get('n_test_kt'))} test rows): AUC "
            f"{signed(p.get('auc_delta_kt_minus_pybkt'), 5)}, accuracy {signed(p.get('accuracy_delta'), 5)}, RMSE "
            f"{signed(p.get('rmse_delta'), 5)} (target |ΔAUC| <= {p.get('auc_target_abs_delta', '?')}: "
            f"{'ok' if p.get('auc_ok') else 'not met'})."
        )
        summary = {
            "speed": f"pyBKT fit / kt process: cold {f2(cold)}x, warm {f2(warm)}x (compiled refit {f2(steady)}x)",
            "kt_auc": p.get("auc_kt"),
            "peer_auc": p.get("auc_pybkt"),
            "auc_delta": p.get("auc_delta_kt_minus_pybkt"),
            "acc_delta": p.get("accuracy_delta"),
            "peer": (d.get("versions") or {}).get("peer", "pyBKT"),
            "model": "BKT",
            "dataset": next((x["dataset"] for x in d.get("rows", []) if x.get("impl") != "kt"), ""),
        }
    return lines, cmp_lines + _busy_cores(d), summary


def sec_dkt_vs_pykt(d: dict) -> tuple[list[str], list[str], dict | None]:
    """DKT vs pyKT (``d`` = dkt_vs_pykt.json): rows, throughput ratio, accuracy deltas, memory; summary row."""
    lines = md_table(
        d.get("rows", []),
        _cols(
            ("RMSE", lambda r: f4(r.get("rmse"))),
            ("test positions scored", lambda r: f0(r.get("n_scored_test"))),
            ("accuracy-run epochs", "acc_epochs"),
        ),
    )
    r, dl, acc = d.get("ratios") or {}, d.get("deltas") or {}, d.get("accuracy") or {}
    reps = d.get("repeats") or {}
    cmp_lines, summary = [], None
    if r:
        n = len(reps.get("kt", []))
        cmp_lines.append(
            f"- **Speed ratio** (same run): kt / pyKT steady-state scored interactions/s = "
            f"**{f2(r.get('kt_over_pykt'))}x**, medians of {n} fresh processes per side (per repeat "
            f"{f2(r.get('min_over_repeats'))}-{f2(r.get('max_over_repeats'))}x; target >= "
            f"{r.get('target', 2)}x: {'ok' if r.get('ok') else 'not met'}; same scored positions per epoch: "
            f"{cell(r.get('scored_positions_agree'))})."
        )
    if dl:
        cmp_lines.append(
            f"- **Accuracy delta** (kt − pyKT, same run, {dl.get('epochs')} epochs each on the whole train file, "
            f"test scored under pyKT's protocol): AUC **{signed(dl.get('auc_kt_minus_pykt'))}**, accuracy "
            f"**{signed(dl.get('accuracy_kt_minus_pykt'))}**, RMSE {signed(dl.get('rmse_kt_minus_pykt'))}; scored "
            f"test positions kt {f0((dl.get('n_scored_test') or {}).get('kt'))}, pyKT "
            f"{f0((dl.get('n_scored_test') or {}).get('pykt'))} (same positions: "
            f"{cell(dl.get('scored_positions_agree'))})."
        )
    elif r:
        cmp_lines.append(
            "- **Accuracy delta**: not in this JSON (written before dkt_vs_pykt.py compared accuracy, "
            "or run with `--skip-accuracy`/`--skip-peer`); rerun the script."
        )
    if d.get("memory"):
        m = d["memory"]
        cmp_lines.append(
            f"- Memory check: kt DKT on the full assist2015 file, peak RSS {f0(m.get('assist2015_peak_rss_mb'))} "
            f"MB (target < {m.get('target_mb')} MB: {'ok' if m.get('ok') else 'not met'})."
        )
    cmp_lines += _busy_cores(d)
    if r:
        kt_row = next((x for x in d.get("rows", []) if x.get("impl") == "kt"), {})
        summary = {
            "speed": f"kt / pyKT throughput {f2(r.get('kt_over_pykt'))}x",
            "kt_auc": (acc.get("kt") or {}).get("auc"),
            "peer_auc": (acc.get("pykt") or {}).get("auc"),
            "auc_delta": dl.get("auc_kt_minus_pykt"),
            "acc_delta": dl.get("accuracy_kt_minus_pykt"),
            "peer": (d.get("versions") or {}).get("peer") or "pyKT",
            "model": "DKT",
            "dataset": kt_row.get("dataset", "")
            + (f" ({dl['epochs']} epoch{'s' if dl.get('epochs') != 1 else ''} each)" if dl else ""),
        }
    return lines, cmp_lines, summary


def sec_dkt(d: dict) -> tuple[list[str], list[str], None]:
    """DKT accuracy (``d`` = dkt.json): rows with KC, epochs (best, cap) and scored test positions."""

    def epochs(r):
        cap = r.get("epoch_cap")
        return f"{r.get('epochs_run', '')} (best {r.get('best_epoch', '')}{f', cap {cap}' if cap else ''})"

    return (
        md_table(
            d.get("rows", []),
            _cols(
                ("KC", "kc"),
                ("epochs", epochs),
                ("test positions scored", lambda r: f0(r.get("n_scored"))),
                ("eval", "eval_window"),
            ),
        ),
        [],
        None,
    )


def sec_dkt_select(d: dict) -> tuple[list[str], list[str], None]:
    """DKT selection (``d`` = dkt_select.json): one row per configuration, the selected one marked."""
    rows = d.get("rows", [])
    cols = [
        ("config", lambda r: cell(r.get("config") or {}) or "defaults"),
        ("valid AUC", lambda r: f4(r.get("best_valid_auc"))),
        ("selected", lambda r: "**selected**" if r.get("selected") else ""),
        *BASE_COLS[4:],
        ("epochs", lambda r: f"{r.get('epochs_run', '')} (best {r.get('best_epoch', '')})"),
    ]
    extra = [f"- Selection: {cell(d.get('selection'))}"] if d.get("selection") else []
    return md_table(rows, [("dataset", "dataset"), *cols]), extra, None


def sec_cakt(d: dict) -> tuple[list[str], list[str], None]:
    """CAKT vs DKT (``d`` = cakt.json): rows with configuration and epoch timings, then the ratios."""
    rows = [r for r in d.get("rows", [])]

    def config(r):
        timing = f"timing estimate from {r['timing_learners']} learners; " if r.get("kind") == "timing" else ""
        return timing + (cell(r.get("config")) if r.get("config") else "")

    lines = md_table(
        rows,
        _cols(
            ("config", config),
            ("epochs", lambda r: f"{r.get('epochs_run', '')}" + (f" (best {r['best_epoch']})" if "best_epoch" in r else "")),
            ("s/epoch", lambda r: f1(r.get("seconds_per_epoch"))),
            ("test s", lambda r: f1(r.get("test_seconds"))),
            ("error", lambda r: (r.get("error") or "")[-120:]),
        ),
    )
    extra = [f"- {k}: {signed(v, 2)}" for k, v in (d.get("ratios") or {}).items()]
    if d.get("epoch_cap") is not None:
        extra.append(f"- Epoch cap of cakt / cakt-nocnn in this JSON: {d['epoch_cap']}.")
    return lines, extra, None


def sec_psikt(d: dict) -> tuple[list[str], list[str], None]:
    """PSI-KT (``d`` = psikt.json): graph and trait recovery, EdNet prediction rows, acceptance lines."""

    def g(key):
        return lambda r: f4(r.get(key, r.get("mean_" + key)))

    cols = [
        ("dataset", "dataset"),
        ("model", "model"),
        ("edge AUROC", g("edge_auroc")),
        ("edge AUPRC", g("edge_auprc")),
        ("Spearman mu", g("spearman_mu")),
        ("Spearman alpha", g("spearman_alpha")),
        ("s/update", lambda r: f4(r.get("seconds_per_update", r.get("mean_seconds_per_update")))),
        ("AUC", lambda r: f4(r.get("auc"))),
        ("accuracy", lambda r: f4(r.get("accuracy"))),
        ("F1", lambda r: f4(r.get("f1"))),
        ("train s", lambda r: f1(r.get("train_seconds", r.get("mean_train_seconds")))),
        ("interactions/s", lambda r: f0(r.get("interactions_per_second"))),
        ("peak RSS MB", lambda r: f0(r.get("peak_rss_mb"))),
    ]
    extra = []
    rows = [r for r in d.get("rows", []) if r.get("experiment") != "cohorts"]
    for r in rows:
        if isinstance(r.get("acceptance"), dict):
            extra.append("- Acceptance: " + ", ".join(f"{k}: {'met' if v else 'not met'}" for k, v in r["acceptance"].items()))
    lines = md_table(rows, cols)
    summ = [r for r in d.get("rows", []) if r.get("experiment") == "cohorts" and r.get("summary")]
    if summ:

        def pm(key, digits=3):
            def cell(r):
                m, s = _num(r.get(key)), _num(r.get(key + "_sd"))
                if m is None:
                    return ""
                return f"{m:.{digits}f} ± {s:.{digits}f}" if s is not None else f"{m:.{digits}f}"

            return cell

        ccols = [
            ("dataset", "dataset"),
            ("cohort", "cohort"),
            ("model", "model"),
            ("seeds", lambda r: len(r.get("seeds") or [])),
            ("window acc", pm("accuracy")),
            ("window F1", pm("f1")),
            ("window AUC", pm("auc")),
            ("next-step AUC", pm("next_auc")),
            ("prob > 0.5 at step 10", pm("positive_share_h10", 2)),
            ("observed at step 10", pm("observed_correct_h10", 2)),
            ("train s", pm("train_seconds", 1)),
        ]
        lines += [
            "",
            "Training-cohort comparison (part `cohorts`; mean ± sd over seeds; test learners, observe 1-10, "
            "predict 11-20 open loop):",
            "",
        ] + md_table(summ, ccols)
        for r in summ:
            a = r.get("acceptance")
            if isinstance(a, dict) and _num(a.get("mean_difference")) is not None:
                miss = (
                    ""
                    if a.get("met") or _num(a.get("miss_in_sd")) is None
                    else f", short by {a['miss_in_sd']:.1f} sd of the paired difference"
                )
                extra.append(
                    f"- Acceptance ({r['dataset']}, cohort {r['cohort']}): psikt-filter window accuracy minus "
                    f"{a.get('best_baseline')} {signed(a['mean_difference'], 3)} over seeds {a.get('paired_seeds')}: "
                    f"{'met' if a.get('met') else 'not met'}{miss}."
                )
    if _num(d.get("peak_rss_mb")) is not None:
        extra.append(f"- Peak RSS of the whole run: {f0(d['peak_rss_mb'])} MB.")
    return lines, extra, None


def sec_ingest(d: dict) -> tuple[list[str], list[str], None]:
    """Ingestion (``d`` = ingest.json): rows/s and the seconds of each stage."""
    cols = [
        ("dataset", "dataset"),
        ("rows", lambda r: f0(r.get("n_rows"))),
        ("learners", lambda r: f0(r.get("learners"))),
        ("rows/s", lambda r: f0(r.get("rows_per_second"))),
        ("total s", lambda r: f"{_num(r.get('total_seconds')) or 0:.3f}"),
        ("kt.load s", lambda r: f"{_num(r.get('load_seconds')) or 0:.3f}"),
        ("build_sequences s", lambda r: f"{_num(r.get('sequences_seconds')) or 0:.3f}"),
        ("peak RSS MB", lambda r: f0(r.get("peak_rss_mb"))),
        ("target met", "target_met"),
    ]
    return md_table(d.get("rows", []), cols), [], None


def sec_bkt_same_init(d: dict) -> tuple[list[str], list[str], None]:
    """BKT from identical initial values (``d`` = bkt_same_init.json): one row per kt fit setting."""
    rows = []
    for key, label in (
        ("kt_pybkt_stop_rule_float64", "pyBKT's stopping rule, float64 (EM equivalence)"),
        ("kt_exact_rule_float32", "kt's default exact rule, float32"),
    ):
        v = d.get(key)
        if isinstance(v, dict):
            rows.append(
                {
                    "kt fit": label,
                    "settings": ", ".join(v.get("settings") or []) or "defaults",
                    "KCs compared": v.get("kcs_with_min_learners"),
                    "max abs diff": f"{_num(v.get('max_abs_diff')) or 0:.2g}",
                    "median max abs diff": f"{_num(v.get('median_max_abs_diff')) or 0:.2g}",
                    "KCs > 0.02": v.get("kcs_exceeding_0.02"),
                    "within 0.02": v.get("ok"),
                }
            )
    cols = [
        (k, k) for k in ("kt fit", "settings", "KCs compared", "max abs diff", "median max abs diff", "KCs > 0.02", "within 0.02")
    ]
    extra = (
        [
            f"- Data: {d['data']}; init: {d.get('init', '')}; pyBKT EM iterations (median): "
            f"{d.get('pybkt_em_iterations_median', '?')}."
        ]
        if d.get("data")
        else []
    )
    return md_table(rows, cols), extra, None


def sec_generic(d: dict) -> tuple[list[str], list[str], None]:
    """Rows of an unknown script (``d`` = its JSON): the base columns plus up to six other numeric fields."""
    rows = d.get("rows", [])
    base_keys = {
        "dataset",
        "split",
        "model",
        "impl",
        "auc",
        "accuracy",
        "train_seconds",
        "interactions_per_second",
        "peak_rss_mb",
        "rmse",
    }
    counts: dict[str, int] = {}
    for r in rows:
        for k, v in r.items():
            if k not in base_keys and _num(v) is not None:
                counts[k] = counts.get(k, 0) + 1
    extra_keys = sorted(counts, key=lambda k: -counts[k])[:6]
    cols = _cols(*((k.replace("_", " "), (lambda kk: lambda r: _fmt_any(r.get(kk)))(k)) for k in extra_keys))
    return md_table(rows, cols), [], None


def _fmt_any(v) -> str:
    x = _num(v)
    if x is None:
        return ""
    return f"{x:,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:.4g}"


SECTIONS = {
    "bkt_vs_pybkt": sec_bkt,
    "dkt_vs_pykt": sec_dkt_vs_pykt,
    "dkt": sec_dkt,
    "dkt_select": sec_dkt_select,
    "cakt": sec_cakt,
    "psikt": sec_psikt,
    "ingest": sec_ingest,
    "bkt_same_init": sec_bkt_same_init,
}


# --------------------------------------------------------------------------- render
def render(
    results_dir: Path,
    *,
    env: dict,
    ran: dict[str, dict] | None = None,
    now: dt.datetime | None = None,
    scripts: tuple[Script, ...] = SCRIPTS,
    invocation: str = "",
) -> str:
    """The Markdown report of every result JSON in ``results_dir``.

    Args:
        results_dir: directory with the scripts' ``<name>.json`` (and run_all's manifest).
        env: machine, platform, versions and commit for the header (run_all's ``environment()``).
        ran: records of the scripts run in this invocation (name -> ``run_script`` record);
            ``None`` or empty = nothing ran (render only): every table is flagged.
        now: the time written in the header.
        scripts: the scripts to report on, in order.
        invocation: the run_all command line, for the header.

    Returns:
        The Markdown text.
    """
    now = now or dt.datetime.now()
    ran = ran or {}
    full_manifest = load_manifest(results_dir)
    manifest = full_manifest.get("scripts", {})
    quick = any(r.get("mode") == "quick" for r in ran.values()) or (
        not ran and (full_manifest.get("last_invocation") or {}).get("mode") == "quick"
    )
    v = env.get("versions", {})
    out = [
        "# Benchmark results",
        "",
        "<!-- Generated by bench/run_all.py from " + _rel(results_dir) + "/*.json; edit the scripts, not this file. -->",
        "",
        f"- Rendered: {now.strftime('%Y-%m-%d %H:%M')} by `{invocation or 'bench/run_all.py'}`"
        + ("" if ran else " (render only: no benchmark ran in this invocation; each table shows its JSON as found)"),
        *(
            [
                "- **Smoke run (`--quick`)**: tiny settings (subsets, one epoch, one repeat); the numbers only show that "
                "the scripts run."
            ]
            if quick
            else []
        ),
        f"- Machine (where run_all ran): {env.get('machine', '?')}; {env.get('platform', '')}; each table "
        "also gives the machine its JSON records",
        "- Versions (this environment): "
        + ", ".join(f"{k} {x}" for k, x in v.items())
        + (f"; commit {env['commit']}" if env.get("commit") else ""),
        "- Peers run in their own virtual environments (`/tmp/kt-peer-pybkt`, `/tmp/kt-peer-pykt`); their versions "
        "are in each table's line.",
        "- Conventions: `../shared/BENCHMARKS.md`. Timed comparisons are medians of repeated fresh processes where "
        "the script says so; ratios and deltas come from the same run of one script on one split. Times are only "
        "comparable on a quiet machine: each script records how busy the cores were.",
        "",
    ]
    loaded: dict[str, dict | None] = {}
    errors: dict[str, str] = {}
    for s in scripts:
        p = results_dir / s.json
        if p.exists():
            try:
                loaded[s.name] = json.loads(p.read_text())
            except ValueError as exc:
                loaded[s.name], errors[s.name] = None, f"unreadable JSON ({exc})"
        else:
            loaded[s.name] = None

    sections: list[str] = []
    summaries: list[tuple[Script, dict, dict]] = []
    for s in scripts:
        d = loaded[s.name]
        if d is None and s.optional and not s.path.exists() and s.name not in ran:
            continue
        sections += [f"## {s.title} (`bench/{s.name}.py`)", ""]
        sections.append(_status(s, d, ran.get(s.name), manifest.get(s.name), errors.get(s.name), results_dir))
        sections.append("")
        if d is None:
            continue
        table, extra, summary = SECTIONS.get(s.name, sec_generic)(d)
        if summary:
            summaries.append((s, d, summary))
        sections += table + ([""] if table else [])
        if extra:
            sections += extra + [""]
        if s.note:
            sections += [f"*Note:* {s.note}", ""]
        sections += [_commands_line(s, ran.get(s.name), manifest.get(s.name)), ""]
        notes = [
            (r.get("dataset", ""), r.get("impl", ""), r.get("model", ""), r["notes"])
            for r in d.get("rows", [])
            if isinstance(r.get("notes"), str) and r["notes"]
        ]
        if notes:
            sections += ["<details><summary>Row notes (from the JSON)</summary>", ""]
            sections += [f"- **{ds} / {m} / {im}**: {cell(n)}" for ds, im, m, n in notes]
            sections += ["", "</details>", ""]

    out += ["## kt against its peers", ""]
    if summaries:

        def delta(v) -> str:
            # "n/a" (signed's fallback) would read as "does not apply"; the peer row exists, the delta was not taken.
            return signed(v) if _num(v) is not None else "not measured"

        rows = [
            {
                "comparison": f"{x['model']}: kt vs {x['peer']}",
                "dataset": x["dataset"],
                "kt AUC": f4(x["kt_auc"]),
                "peer AUC": f4(x["peer_auc"]),
                "AUC delta (kt − peer)": delta(x["auc_delta"]),
                "accuracy delta": delta(x["acc_delta"]),
                "speed ratio": x["speed"],
                "JSON date": d.get("date", "?"),
                "run in this invocation": _ran_word(ran.get(s.name)),
            }
            for s, d, x in summaries
        ]
        out += md_table(rows, [(k, k) for k in rows[0]])
        out += [
            "",
            "Ratios and deltas are each measured within one run of the script (both sides on the same split, "
            "alternating fresh processes); details in the sections below.",
            "",
        ]
    else:
        out += ["No peer comparison JSON found.", ""]
    return "\n".join(out + sections).rstrip() + "\n"


def _short(cmd: str) -> str:
    """A command line as a reader would type it (interpreter and repository paths shortened)."""
    return cmd.replace(sys.executable, "python").replace(str(REPO) + "/", "")


def _commands_line(s: Script, rec: dict | None, prev: dict | None) -> str:
    if rec or prev:
        r = rec or prev
        which = "this invocation ran" if rec else f"the last run_all run ({r.get('finished', '?')}, {r.get('mode', '?')}) was"
        return f"*Commands:* {which} " + "; ".join(f"`{_short(c)}`" for c in r.get("commands", [])) + "."
    parts = [[*p, "--repeats", "3"] if s.repeats and "--repeats" not in p else list(p) for p in s.full]
    return (
        "*Commands:* not run by run_all yet; it runs "
        + "; ".join(f"`{shlex.join(['python', f'bench/{s.name}.py', *p])}`" for p in parts)
        + "."
    )


def _ran_word(rec: dict | None) -> str:
    if rec is None:
        return "no"
    return "yes" if rec.get("rc") == 0 else f"FAILED (exit {rec.get('rc')})"


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def _status(s: Script, d: dict | None, rec: dict | None, prev: dict | None, error: str | None, results_dir: Path) -> str:
    """The line under a section title: JSON date and machine, and whether this invocation ran the script."""
    where = f"`{_rel(results_dir / s.json)}`"
    if d is None:
        head = f"**No result**: {where} {error or 'does not exist'}."
    else:
        head = f"Result {where} dated **{d.get('date', '?')}**; machine: {cell(d.get('machine', '?'))}"
        vs = _versions(d)
        head += f"; versions: {vs}." if vs else "."
    if rec is not None:
        if rec.get("rc") == 0:
            flag = f"Run in this invocation ({rec.get('seconds', 0):,.0f} s)."
        else:
            flag = f"**FAILED in this invocation** (exit {rec.get('rc')}, log `{_rel(Path(rec.get('log', '')))}`)" + (
                "; the table shows the earlier JSON." if d is not None else "."
            )
    else:
        last = (
            f"last run by run_all at {prev.get('finished', '?')}, {prev.get('mode', '?')}, exit {prev.get('rc')}"
            if prev
            else "not produced by run_all"
        )
        flag = f"**Not run in this invocation** ({last})."
    return head + " " + flag
