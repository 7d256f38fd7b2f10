"""A self-contained HTML report of evaluations and training runs.

Everything is inline: plots are SVG written here, styles are one <style>
block, and nothing is fetched when the page is viewed (no scripts, fonts or
CDNs), so the file can be mailed or archived as is.

Inputs are what kt writes: model directories (``model.json``,
``history.jsonl``) and the JSON of ``kt evaluate``, ``kt cv`` and
``kt compare``; the curve data (ROC points, reliability bins, learning
curves, metrics per horizon step) comes from those files.
"""

from __future__ import annotations

import datetime as _dt
import html
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from kt.errors import KTError

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
TABLE_METRICS = ("auc", "accuracy", "f1", "rmse", "logloss", "ece", "n")
MAX_CURVE_RUNS = 6  # learning-curve grids drawn (one grid per evaluation)
_CLIP_IDS = itertools.count()
MIN_CURVE_N = 10  # learning-curve points drawn need this many attempts


@dataclass
class Run:
    """One evaluation result to show."""

    label: str
    result: dict
    source: str
    summary: dict | None = None  # cv: mean/std per metric


@dataclass
class Training:
    """One training run: per-epoch history and model metadata."""

    label: str
    history: list[dict]
    meta: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    source: str = ""


# -- inputs ---------------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KTError(
            f"{path}: cannot read JSON ({exc}); give a kt evaluate/cv/compare --json file or a model directory"
        ) from None
    if not isinstance(obj, dict):
        raise KTError(f"{path}: not a kt result (expected a JSON object)")
    return obj


def _training_from_dir(d: Path) -> Training:
    from kt.models.base import HISTORY_FILE, read_header

    header = read_header(d)
    meta = header.get("meta") or {}
    history: list[dict] = []
    hf = d / HISTORY_FILE
    if hf.exists():
        for line in hf.read_text().splitlines():
            if line.strip():
                try:
                    history.append(json.loads(line))
                except json.JSONDecodeError:
                    raise KTError(f"{hf}: corrupt line {line[:40]!r}; retrain the model or remove the file") from None
    elif isinstance(meta.get("history"), list):
        history = meta["history"]
    meta = {k: v for k, v in meta.items() if k != "history"}
    return Training(f"{header.get('model', '?')} ({d.name})", history, meta, header.get("config") or {}, str(d))


def collect(paths: list[Path]) -> tuple[list[Run], list[Training]]:
    """Read model directories and result JSON files.

    Args:
        paths: model directories and/or JSON files written by
            ``kt evaluate``, ``kt cv`` or ``kt compare`` (``--json``).

    Returns:
        (evaluation runs, training runs). An evaluation that names its
        ``model_dir`` also brings that model's training history.

    Raises:
        KTError: a path that is neither.
    """
    runs: list[Run] = []
    trainings: list[Training] = []
    seen_dirs: set[str] = set()

    def add_dir(d: Path) -> None:
        key = str(d.resolve())
        if key not in seen_dirs:
            seen_dirs.add(key)
            trainings.append(_training_from_dir(d))

    def add_result(res: dict, label: str, source: str, summary: dict | None = None) -> None:
        runs.append(Run(label, res, source, summary))
        md = res.get("model_dir")
        if md and (Path(md) / "model.json").exists():
            add_dir(Path(md))
        elif res.get("training_history"):
            trainings.append(Training(label, res["training_history"], {}, res.get("config") or {}, source))

    for p in paths:
        p = Path(p)
        if p.is_dir():
            if not (p / "model.json").exists():
                raise KTError(f"{p}: not a kt model directory (no model.json); give model directories or result JSON files")
            add_dir(p)
            continue
        if not p.exists():
            raise KTError(f"{p}: no such file or directory")
        obj = _read_json(p)
        if "fold_results" in obj:  # kt cv
            for f in obj["fold_results"]:
                add_result(f["result"], f"{obj.get('model', '?')} fold {f['fold']}", str(p))
            runs.append(
                Run(
                    f"{obj.get('model', '?')} ({obj.get('scheme', 'cv')} {obj.get('folds')} folds, mean ± sd)",
                    {
                        "protocol": obj.get("settings", {}).get("protocol"),
                        "model": obj.get("model"),
                        "scoring": (obj["fold_results"][0]["result"].get("scoring") if obj["fold_results"] else None),
                    },
                    str(p),
                    obj.get("summary") or {},
                )
            )
        elif obj.get("kind") == "compare":
            for r in obj.get("results", []):
                if "summary" in r and "fold_results" in r:
                    for f in r["fold_results"]:
                        add_result(f["result"], f"{r.get('model', '?')} fold {f['fold']}", str(p))
                    runs.append(
                        Run(
                            f"{r.get('model', '?')} (mean ± sd)",
                            {"protocol": obj.get("settings", {}).get("protocol"), "model": r.get("model")},
                            str(p),
                            r["summary"],
                        )
                    )
                else:
                    add_result(r, r.get("label") or r.get("model", "?"), str(p))
        elif "protocol" in obj:
            add_result(obj, f"{obj.get('model', '?')} ({p.stem})", str(p))
        else:
            raise KTError(f"{p}: not a kt evaluate/cv/compare result (no 'protocol' or 'fold_results')")
    if not runs and not trainings:
        raise KTError("kt report: nothing to report; give model directories or result JSON files")
    return runs, trainings


# -- SVG ---------------------------------------------------------------------------------


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _num(v) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    out, t = [], start
    while t <= hi + 1e-9 * step:
        out.append(round(t, 10))
        t += step
    return out


def _fmt_tick(t: float) -> str:
    return f"{t:g}" if abs(t) < 1e5 else f"{t:.2g}"


def chart(
    series: list[dict],
    *,
    plot: str,
    title: str,
    xlabel: str,
    ylabel: str,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    diagonal: bool = False,
    width: int = 440,
    height: int = 320,
) -> str:
    """An inline SVG line chart.

    Args:
        series: dicts with ``label``, ``x``, ``y`` and optional ``color``,
            ``dash`` (bool) and ``markers`` (bool). Missing or non-finite
            points are skipped.
        plot: kind of plot, written to ``data-plot`` (tests and styling).
        title: chart title.
        xlabel: x-axis label.
        ylabel: y-axis label.
        xlim: x range (default: the data's).
        ylim: y range (default: the data's).
        diagonal: draw the y = x reference line.
        width: SVG width in px.
        height: SVG height in px.

    Returns:
        ``<figure>`` with the ``<svg>`` and an HTML legend.
    """
    pts = []
    for s in series:
        xy = [(x, y) for x, y in zip(map(_num, s.get("x", [])), map(_num, s.get("y", []))) if x is not None and y is not None]
        pts.append(xy)
    xs = [x for xy in pts for x, _ in xy]
    ys = [y for xy in pts for _, y in xy]
    if xlim is None:
        xlim = (min(xs), max(xs)) if xs else (0.0, 1.0)
        pad = (xlim[1] - xlim[0]) * 0.03  # markers at the ends stay whole
        xlim = (xlim[0] - pad, xlim[1] + pad)
    if ylim is None:
        ylim = (min(ys), max(ys)) if ys else (0.0, 1.0)
        pad = (ylim[1] - ylim[0]) * 0.05 or 0.05
        ylim = (ylim[0] - pad, ylim[1] + pad)
    if xlim[1] <= xlim[0]:
        xlim = (xlim[0] - 0.5, xlim[0] + 0.5)
    ml, mr, mt, mb = 56, 12, 28, 44
    pw, ph = width - ml - mr, height - mt - mb

    def sx(x: float) -> float:
        return ml + (x - xlim[0]) / (xlim[1] - xlim[0]) * pw

    def sy(y: float) -> float:
        return mt + ph - (y - ylim[0]) / (ylim[1] - ylim[0]) * ph

    parts = [
        f'<svg class="kt-plot" data-plot="{_esc(plot)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_esc(title)}"><title>{_esc(title)}</title>',
        f'<rect class="frame" x="{ml}" y="{mt}" width="{pw}" height="{ph}"/>',
    ]
    for t in _ticks(*xlim):
        x = sx(t)
        parts.append(
            f'<line class="gridline" x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{mt + ph}"/>'
            f'<text class="tick" x="{x:.1f}" y="{mt + ph + 14}" text-anchor="middle">{_fmt_tick(t)}</text>'
        )
    for t in _ticks(*ylim):
        y = sy(t)
        parts.append(
            f'<line class="gridline" x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{ml - 5}" y="{y + 3:.1f}" text-anchor="end">{_fmt_tick(t)}</text>'
        )
    if diagonal:
        lo, hi = max(xlim[0], ylim[0]), min(xlim[1], ylim[1])
        parts.append(f'<line class="diagonal" x1="{sx(lo):.1f}" y1="{sy(lo):.1f}" x2="{sx(hi):.1f}" y2="{sy(hi):.1f}"/>')
    uid = f"clip{next(_CLIP_IDS)}"  # unique within the page
    parts.append(
        f'<clipPath id="{uid}"><rect x="{ml}" y="{mt}" width="{pw}" height="{ph}"/></clipPath><g clip-path="url(#{uid})">'
    )
    legend = []
    for i, (s, xy) in enumerate(zip(series, pts)):
        color = s.get("color") or PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if s.get("dash") else ""
        label = _esc(s.get("label", f"series {i + 1}"))
        if len(xy) > 1:
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in xy)
            parts.append(f'<polyline class="series" points="{coords}" stroke="{color}"{dash}><title>{label}</title></polyline>')
        if s.get("markers") or len(xy) == 1:
            for x, y in xy:
                parts.append(
                    f'<circle class="marker" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}">'
                    f"<title>{label}: ({x:.3g}, {y:.3g})</title></circle>"
                )
        style = "dashed" if s.get("dash") else "solid"
        legend.append(f'<span class="key"><span class="swatch {style}" style="border-color:{color}"></span>{label}</span>')
    parts.append("</g>")
    parts.append(f'<text class="title" x="{ml + pw / 2:.1f}" y="17" text-anchor="middle">{_esc(title)}</text>')
    parts.append(f'<text class="axis" x="{ml + pw / 2:.1f}" y="{height - 6}" text-anchor="middle">{_esc(xlabel)}</text>')
    parts.append(
        f'<text class="axis" x="14" y="{mt + ph / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {mt + ph / 2:.1f})">{_esc(ylabel)}</text>'
    )
    parts.append("</svg>")
    return f'<figure class="chart">{"".join(parts)}<figcaption>{"".join(legend)}</figcaption></figure>'


# -- sections -------------------------------------------------------------------------------


def _cell(v) -> str:
    if isinstance(v, bool) or isinstance(v, str):
        return _esc(v)
    if isinstance(v, int):
        return f"{v:,}"
    f = _num(v)
    return "–" if f is None else f"{f:.4f}"


def _summary_table(runs: list[Run]) -> str:
    head = "".join(f"<th>{m}</th>" for m in TABLE_METRICS)
    rows = []
    for i, r in enumerate(runs):
        res = r.result
        if r.summary is not None:
            cells = []
            for m in TABLE_METRICS:
                s = r.summary.get(m)
                cells.append(
                    f"<td>{s['mean']:.4f} ± {s['std']:.4f}</td>"
                    if s and _num(s.get("std")) is not None
                    else (f"<td>{s['mean']:.4f}</td>" if s else "<td>–</td>")
                )
        else:
            cells = [f"<td>{_cell(res.get(m))}</td>" for m in TABLE_METRICS]
        proto = res.get("protocol") or "–"
        extra = []
        if isinstance(res.get("history"), int):
            extra.append(f"h={res['history']}")
        if res.get("history_frac") is not None:
            extra.append(f"h={res['history_frac']:g}·n")
        if res.get("horizon") is not None:
            extra.append(f"N={res['horizon']}")
        if res.get("mode") and proto != "next":
            extra.append(str(res["mode"]))
        proto_txt = _esc(proto) + (f" <small>({_esc(', '.join(extra))})</small>" if extra else "")
        leak = ' <span class="warn" title="per-KC-row scoring leaks answers">leaky</span>' if res.get("leaky") else ""
        rows.append(
            f"<tr><td>{_esc(r.label)}</td><td>{_esc(res.get('model', '–'))}</td><td>{proto_txt}</td>"
            f"<td>{_esc(res.get('scoring') or '–')}{leak}</td>{''.join(cells)}</tr>"
        )
    return (
        f'<table class="summary"><thead><tr><th>run</th><th>model</th><th>protocol</th><th>scoring</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _field_series(runs: list[Run], key: str, x: str, y: str) -> list[dict]:
    """One :func:`chart` series (with markers) per run whose result has records under ``key``.

    Args:
        runs: the evaluation runs.
        key: the result's list of records (``reliability``, ``by_step``).
        x, y: the records' fields plotted against each other.

    Returns:
        The series, in the order of ``runs``.
    """
    return [
        {"label": r.label, "x": [b[x] for b in r.result[key]], "y": [b[y] for b in r.result[key]], "markers": True}
        for r in runs
        if r.result.get(key)
    ]


def _unit_square_chart(series: list[dict], plot: str, title: str, xlabel: str, ylabel: str) -> str:
    """A :func:`chart` of one share against another: both axes [0, 1], the diagonal drawn, near square.

    Args:
        series, plot, title, xlabel, ylabel: as for :func:`chart`.

    Returns:
        The SVG.
    """
    return chart(
        series,
        plot=plot,
        title=title,
        xlabel=xlabel,
        ylabel=ylabel,
        xlim=(0, 1),
        ylim=(0, 1),
        diagonal=True,
        width=480,
        height=420,
    )


def _roc_section(runs: list[Run]) -> str:
    series = [
        {
            "label": f"{r.label} (AUC {r.result['auc']:.3f})" if _num(r.result.get("auc")) is not None else r.label,
            "x": r.result["roc"]["fpr"],
            "y": r.result["roc"]["tpr"],
        }
        for r in runs
        if r.result.get("roc", {}).get("fpr")
    ]
    if not series:
        return ""
    return (
        '<section id="roc"><h2>ROC curves</h2>'
        + _unit_square_chart(series, "roc", "ROC", "false positive rate", "true positive rate")
        + "</section>"
    )


def _reliability_section(runs: list[Run]) -> str:
    series = _field_series(runs, "reliability", "mean_pred", "frac_correct")
    if not series:
        return ""
    return (
        '<section id="reliability"><h2>Reliability diagram</h2><p>Mean predicted probability against the observed '
        "share correct, per probability bin (diagonal: perfect calibration).</p>"
        + _unit_square_chart(series, "reliability", "Reliability", "mean predicted P(correct)", "observed share correct")
        + "</section>"
    )


def _horizon_section(runs: list[Run]) -> str:
    ms = [r for r in runs if r.result.get("by_step")]
    if not ms:
        return ""
    acc = _field_series(ms, "by_step", "step", "accuracy")
    auc = _field_series(ms, "by_step", "step", "auc")
    return (
        '<section id="horizon"><h2>Multi-step prediction by horizon step</h2><div class="charts">'
        + chart(
            acc, plot="horizon-accuracy", title="Accuracy by horizon step", xlabel="steps after the history", ylabel="accuracy"
        )
        + chart(auc, plot="horizon-auc", title="AUC by horizon step", xlabel="steps after the history", ylabel="AUC")
        + "</div></section>"
    )


def _learning_section(runs: list[Run]) -> str:
    lc = [r for r in runs if r.result.get("learning_curves")][:MAX_CURVE_RUNS]
    if not lc:
        return ""
    out = [
        '<section id="learning-curves"><h2>Learning curves</h2><p>Observed (solid) and predicted (dashed) '
        "share correct by the learner's attempt number on the KC, for all KCs and the KCs with most scored attempts "
        f"(points with at least {MIN_CURVE_N} attempts).</p>"
    ]
    for i, r in enumerate(lc):
        color = PALETTE[i % len(PALETTE)]
        curves = r.result["learning_curves"]
        panels = [("all KCs", curves.get("all") or [], sum(p["n"] for p in curves.get("all") or []))]
        panels += [(f"KC {c['skill_id']}", c["points"], c["n"]) for c in curves.get("per_kc", [])]
        figs = []
        for name, points, n in panels:
            points = [p for p in points if p["n"] >= MIN_CURVE_N]  # few attempts: noise, not a curve
            if len(points) < 2:
                continue
            x = [p["opportunity"] for p in points]
            figs.append(
                chart(
                    [
                        {"label": "observed", "x": x, "y": [p["observed"] for p in points], "color": color},
                        {"label": "predicted", "x": x, "y": [p["predicted"] for p in points], "color": color, "dash": True},
                    ],
                    plot="learning-curve",
                    title=f"{name} (n={n:,})",
                    xlabel="attempt number on the KC",
                    ylabel="share correct",
                    ylim=(0, 1),
                    width=300,
                    height=230,
                )
            )
        body = f'<div class="charts">{"".join(figs)}</div>' if figs else f"<p>Fewer than {MIN_CURVE_N} attempts per point.</p>"
        out.append(f"<h3>{_esc(r.label)}</h3>{body}")
    out.append("</section>")
    return "".join(out)


def _epoch_chart(hist: list[dict], field: str, color: str, *, label: str, plot: str, title: str, ylabel: str) -> str:
    """A :func:`chart` of one field of a training history by epoch.

    Args:
        hist: the history's epoch records.
        field: the record field plotted (``train_loss``, ``valid_auc``).
        color: the run's line colour.
        label: the series label.
        plot, title, ylabel: as for :func:`chart`.

    Returns:
        The SVG.
    """
    series = {"label": label, "x": [h["epoch"] for h in hist], "y": [h.get(field) for h in hist], "color": color, "markers": True}
    return chart([series], plot=plot, title=title, xlabel="epoch", ylabel=ylabel, width=360, height=260)


def _training_section(trainings: list[Training]) -> str:
    if not trainings:
        return ""
    out = ['<section id="training"><h2>Training</h2>']
    for i, t in enumerate(trainings):
        color = PALETTE[i % len(PALETTE)]
        out.append(f"<h3>{_esc(t.label)}</h3>")
        hist = [h for h in t.history if isinstance(h, dict) and "epoch" in h]
        if hist:
            figs = [
                _epoch_chart(
                    hist, "train_loss", color, label="train loss", plot="training-loss", title="training loss", ylabel="loss"
                )
            ]
            if any(_num(h.get("valid_auc")) is not None for h in hist):
                figs.append(
                    _epoch_chart(
                        hist, "valid_auc", color, label="valid AUC", plot="training-auc", title="validation AUC", ylabel="AUC"
                    )
                )
            out.append(f'<div class="charts">{"".join(figs)}</div>')
        else:
            out.append("<p>No per-epoch history (the model trains in one pass).</p>")
        rows = []
        for k in (
            "train_seconds",
            "train_attempts",
            "train_learners",
            "best_epoch",
            "stopped",
            "seed",
            "valid_frac",
            "train_file",
        ):
            if k in t.meta:
                rows.append(f"<tr><th>{_esc(k)}</th><td>{_cell(t.meta[k])}</td></tr>")
        for k, v in (t.meta.get("valid_metrics") or {}).items():
            rows.append(f"<tr><th>valid {_esc(k)}</th><td>{_cell(v)}</td></tr>")
        if t.config:
            rows.append(f"<tr><th>config</th><td><code>{_esc(json.dumps(t.config))}</code></td></tr>")
        if rows:
            out.append(f'<table class="meta">{"".join(rows)}</table>')
    out.append("</section>")
    return "".join(out)


def _details_section(runs: list[Run]) -> str:
    out = ['<section id="details"><h2>Per-KC metrics and settings</h2>']
    for r in runs:
        res = r.result
        settings = {k: v for k, v in res.items() if not isinstance(v, (list, dict)) and k not in TABLE_METRICS}
        body = [
            f"<p>source: <code>{_esc(r.source)}</code></p>",
            f"<pre>{_esc(json.dumps(settings, indent=1, default=str))}</pre>",
        ]
        kcs = res.get("per_kc") or []
        if kcs:
            trs = "".join(
                f"<tr><td>{_esc(k['skill_id'])}</td><td>{_cell(k['n'])}</td><td>{_cell(k.get('auc'))}</td>"
                f"<td>{_cell(k.get('accuracy'))}</td></tr>"
                for k in kcs[:50]
            )
            more = f"<p>{len(kcs) - 50} more KCs in the JSON.</p>" if len(kcs) > 50 else ""
            body.append(
                f'<table class="perkc"><thead><tr><th>KC</th><th>n</th><th>AUC</th><th>accuracy</th></tr></thead>'
                f"<tbody>{trs}</tbody></table>{more}"
            )
        out.append(f"<details><summary>{_esc(r.label)}</summary>{''.join(body)}</details>")
    out.append("</section>")
    return "".join(out)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}thead th{background:#f4f4f4}
.charts{display:flex;flex-wrap:wrap;gap:8px}figure.chart{margin:4px}
figcaption{font-size:12px;max-width:480px}.key{margin-right:10px;white-space:nowrap}
.swatch{display:inline-block;width:18px;margin-right:4px;vertical-align:middle;border-top:2px solid}
.swatch.dashed{border-top-style:dashed}
svg.kt-plot{background:#fff;font-size:11px}.frame{fill:none;stroke:#999}.gridline{stroke:#eee}.diagonal{stroke:#aaa;stroke-dasharray:4 4}.series{fill:none;stroke-width:1.8}
.tick{fill:#555}.title{font-weight:600;font-size:12px}.axis{fill:#333}
.warn{color:#b00;font-weight:600}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}
"""


def build_html(runs: list[Run], trainings: list[Training], *, title: str = "kt report") -> str:
    """Render the report page.

    Args:
        runs: evaluation results (see :func:`collect`).
        trainings: training runs.
        title: page title.

    Returns:
        The HTML document (UTF-8 text, no external references).
    """
    from kt import __version__

    global _CLIP_IDS
    _CLIP_IDS = itertools.count()  # the same inputs give the same page (apart from the time stamp)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head><body>',
        f"<h1>{_esc(title)}</h1><p>kt {_esc(__version__)}, generated {stamp}. "
        f"{len(runs)} evaluation(s), {len(trainings)} training run(s).</p>",
    ]
    if any(r.result.get("leaky") for r in runs):
        parts.append(
            '<p class="warn">Some results use per-KC-row scoring (--scoring kc-row): later KC rows of a question see '
            "its answer, so their AUC is inflated and not comparable with question-level results.</p>"
        )
    if runs:
        parts.append(f'<section id="summary"><h2>Results</h2>{_summary_table(runs)}</section>')
    parts += [
        _roc_section(runs),
        _reliability_section(runs),
        _horizon_section(runs),
        _learning_section(runs),
        _training_section(trainings),
    ]
    if runs:
        parts.append(_details_section(runs))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)
