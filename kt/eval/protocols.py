"""Evaluation protocols; each result names its protocol and all its settings.

* ``next``: one step ahead over all attempts, metrics computed once over all
  scored positions (EVALUATION.md §1-2).
* ``multistep``: after a history of h attempts (or a fraction of each
  learner's attempts), predict the next N open loop, accumulative or not
  (EVALUATION.md §7).
* ``psikt-window``: the PSI-KT within-learner window as a preset: observe
  the first 10 attempts, predict attempts 11-20 without feedback, learners
  with at least 20 attempts (EVALUATION.md §8, evaluation side only).

Multi-KC questions are scored once per question by default: every KC row is
predicted from the history before the question and the rows are fused
(mean, or pyKT's vote/all). ``scoring="kc-row"`` scores pyKT's expanded
rows instead, which leaks the answer of a question into its later KC rows
(EVALUATION.md §3); it exists only to measure that effect.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TypedDict

import numpy as np
import polars as pl

from kt.data.partitioned import PartitionedData
from kt.data.schema import Interactions
from kt.errors import KTError, check_choice
from kt import metrics
from kt.eval.expand import kc_rows
from kt.eval.fusion import FUSIONS, fuse
from kt.eval.multistep import MODE_NAMES, canonical_mode, split_history

PROTOCOLS = ("next", "multistep", "psikt-window")
SCORINGS = ("question", "kc-row")


class _Window(TypedDict):
    history: int
    horizon: int
    mode: str


PSIKT_WINDOW: _Window = {"history": 10, "horizon": 10, "mode": "nonacc"}
LEAK_WARNING = (
    "--scoring kc-row scores every KC row of a multi-KC question as its own attempt: rows after the first "
    "see the question's own answer (leakage, EVALUATION.md §3), so AUC is inflated and not comparable "
    "with question-level results"
)
# Curve data kept in the JSON for `kt report`.
ROC_POINTS = 200
CURVE_KCS = 8
CURVE_OPPORTUNITIES = 30


def scored(preds: pl.DataFrame, *, include_first: bool = False) -> pl.DataFrame:
    """Rows of a predictions frame that count toward metrics.

    Args:
        preds: output of ``model.predict``.
        include_first: score each learner's first attempt too (pyBKT does;
            cross-model tables do not, following pyKT).

    Returns:
        The scored subset.
    """
    return preds if include_first else preds.filter(pl.col("position") > 0)


def per_kc(preds: pl.DataFrame) -> list[dict]:
    """AUC, accuracy and count per KC (multi-KC attempts count for each KC).

    Args:
        preds: scored prediction rows (``skill_id``, ``correct``, ``prob``).

    Returns:
        One dict per KC (``skill_id``, ``n``, ``auc``, ``accuracy``), most
        attempts first.
    """
    f = preds.explode("skill_id") if isinstance(preds.schema["skill_id"], pl.List) else preds
    out = []
    for (kc,), g in f.group_by("skill_id", maintain_order=True):
        y, p = g["correct"].to_numpy(), g["prob"].to_numpy()
        out.append({"skill_id": kc, "n": len(y), "auc": metrics.auc(y, p), "accuracy": metrics.accuracy(y, p)})
    return sorted(out, key=lambda r: (-r["n"], str(r["skill_id"])))  # deterministic order for equal counts


def learning_curves(
    preds: pl.DataFrame, *, include_first: bool = False, top: int = CURVE_KCS, max_opportunity: int = CURVE_OPPORTUNITIES
) -> dict:
    """Observed vs predicted correctness by opportunity (attempt number on a KC).

    Args:
        preds: all prediction rows of a next-step run (with ``position``).
        include_first: also use each learner's first attempt.
        top: number of KCs (most scored attempts) with their own curve.
        max_opportunity: curves stop at this opportunity.

    Returns:
        ``{"all": [...], "per_kc": [{"skill_id", "n", "points": [...]}, ...]}``;
        each point has ``opportunity`` (1-based), ``n``, ``observed`` and
        ``predicted``.
    """
    f = preds.select("user_id", "skill_id", "position", "correct", "prob")
    if isinstance(f.schema["skill_id"], pl.List):
        f = f.explode("skill_id")
    f = f.with_columns((pl.int_range(pl.len()).over("user_id", "skill_id") + 1).alias("opportunity"))
    f = scored(f, include_first=include_first).filter(pl.col("opportunity") <= max_opportunity)

    def curve(g: pl.DataFrame) -> list[dict]:
        c = (
            g.group_by("opportunity")
            .agg(pl.len().alias("n"), pl.col("correct").mean().alias("observed"), pl.col("prob").mean().alias("predicted"))
            .sort("opportunity")
        )
        return [
            {"opportunity": int(o), "n": int(n), "observed": round(float(a), 5), "predicted": round(float(b), 5)}
            for o, n, a, b in c.iter_rows()
        ]

    counts = f.group_by("skill_id").len().sort(["len", "skill_id"], descending=[True, False]).head(top)
    per = [{"skill_id": kc, "n": int(n), "points": curve(f.filter(pl.col("skill_id") == kc))} for kc, n in counts.iter_rows()]
    return {"all": curve(f), "per_kc": per}


def by_step(preds: pl.DataFrame) -> list[dict]:
    """Metrics per horizon step of a multi-step run.

    Args:
        preds: scored rows with ``step``, ``correct`` and ``prob``.

    Returns:
        One dict per step (1-based): ``step``, ``n``, ``accuracy``, ``auc``,
        ``f1``, ``mean_pred``, ``frac_correct``.
    """
    out = []
    for (s,), g in preds.group_by("step", maintain_order=False):
        y, p = g["correct"].to_numpy(), g["prob"].to_numpy()
        out.append(
            {
                "step": int(s),
                "n": len(y),
                "accuracy": metrics.accuracy(y, p),
                "auc": metrics.auc(y, p),
                "f1": metrics.f1(y, p),
                "mean_pred": float(p.mean()),
                "frac_correct": float(y.mean()),
            }
        )
    return sorted(out, key=lambda r: r["step"])


def _scores(y: np.ndarray, p: np.ndarray) -> dict:
    return {**metrics.summary(y, p), "f1": metrics.f1(y, p)}


def _data_fields(data: Interactions) -> dict:
    n_multi = int((data.frame["skill_id"].list.len() > 1).sum()) if data.multi_kc else 0
    return {
        "data": data.source,
        "data_format": data.fmt,
        "kc_column": data.colmap.get("skill_id") if data.colmap else None,
        "multi_kc_questions": n_multi,
        "learners": data.n_users,
        "attempts": data.n_rows,
    }


def _level(data: Interactions, scoring: str) -> tuple[Interactions, str]:
    """The data to predict and the scoring level actually used."""
    if not data.multi_kc:
        return data, "attempt"  # one KC per attempt: question = KC row = attempt
    if scoring == "kc-row":
        return kc_rows(data), "kc-row"
    return data, "question"


def _fused(preds: pl.DataFrame, level: str, fusion: str, model) -> pl.DataFrame:
    """Replace ``prob`` by the requested fusion of the KC-row probabilities."""
    if level != "question" or fusion == "mean":
        return preds  # models return the mean of a question's KC rows as ``prob``
    if "prob_kc" not in preds.columns:
        raise KTError(
            f"--fusion {fusion}: model {model.name!r} does not report per-KC-row probabilities (prob_kc); use --fusion mean"
        )
    return preds.with_columns(pl.Series("prob", fuse(preds["prob_kc"], fusion)))


@dataclass(frozen=True)
class EvalSpec:
    """One evaluation protocol with all its settings.

    Attributes:
        protocol: ``next``, ``multistep`` or ``psikt-window``.
        include_first: score each learner's first attempt (``next`` only).
        scoring: ``question`` (default; leak-free for multi-KC items) or
            ``kc-row`` (pyKT's expanded rows; leaky, for comparison only).
        fusion: ``mean``, ``vote`` or ``all`` (question level).
        history: observed attempts per learner (``multistep``).
        history_frac: observed share of each learner's attempts instead
            (pyKT ``train_ratio``).
        horizon: attempts predicted after the history (``None``: all).
        mode: ``nonacc`` or ``acc`` (``multistep``).
        breakdown: add per-KC metrics, reliability bins and curve data.
    """

    protocol: str = "next"
    include_first: bool = False
    scoring: str = "question"
    fusion: str = "mean"
    history: int | None = None
    history_frac: float | None = None
    horizon: int | None = None
    mode: str = "nonacc"
    breakdown: bool = True

    def checked(self) -> "EvalSpec":
        """Validate the settings (before any training) and fill in presets.

        Returns:
            The spec with ``psikt-window`` expanded and ``mode`` canonical.

        Raises:
            KTError: unknown or contradictory settings.
        """
        check_choice("--protocol ", self.protocol, PROTOCOLS)
        check_choice("--scoring ", self.scoring, SCORINGS)
        check_choice("--fusion ", self.fusion, FUSIONS)
        if self.fusion != "mean" and self.scoring == "kc-row":
            raise KTError("--fusion applies to question-level scoring; drop it with --scoring kc-row")
        multi = (self.history, self.history_frac, self.horizon)
        if self.protocol == "next":
            if any(v is not None for v in multi) or self.mode != "nonacc":
                raise KTError("--history/--history-frac/--horizon/--mode need --protocol multistep")
            return self
        if self.include_first:
            raise KTError("--include-first applies to --protocol next only")
        if self.protocol == "psikt-window":
            if any(v is not None for v in multi) or self.mode != "nonacc":
                raise KTError(
                    "--protocol psikt-window fixes history 10, horizon 10, non-accumulative; drop --history/--horizon/--mode"
                )
            return self
        mode = canonical_mode(self.mode)
        if (self.history is None) == (self.history_frac is None):
            raise KTError("--protocol multistep: give --history H or --history-frac F (one of them)")
        spec = EvalSpec(**{**asdict(self), "mode": mode})
        split_history_check(spec)
        return spec

    def run(self, model, data: Interactions) -> dict:
        """Evaluate a fitted model on ``data`` with this protocol.

        Args:
            model: fitted kt model.
            data: test interactions encoded with the model's vocabulary.

        Returns:
            The result dict (see :func:`next_step` and :func:`multistep`).
        """
        spec = self.checked()
        if spec.protocol == "next":
            return next_step(
                model, data, include_first=spec.include_first, breakdown=spec.breakdown, scoring=spec.scoring, fusion=spec.fusion
            )
        if spec.protocol == "psikt-window":
            return multistep(
                model,
                data,
                **PSIKT_WINDOW,
                require_full=True,
                scoring=spec.scoring,
                fusion=spec.fusion,
                breakdown=spec.breakdown,
                preset="psikt-window",
            )
        return multistep(
            model,
            data,
            history=spec.history,
            history_frac=spec.history_frac,
            horizon=spec.horizon,
            mode=spec.mode,
            scoring=spec.scoring,
            fusion=spec.fusion,
            breakdown=spec.breakdown,
        )

    def settings(self) -> dict:
        """JSON-ready settings (after presets are expanded)."""
        d = asdict(self.checked())
        if d["protocol"] == "psikt-window":
            d.update(PSIKT_WINDOW)
        return d


def split_history_check(spec: EvalSpec) -> None:
    """Range checks of the multi-step settings, without data."""
    if spec.history is not None and spec.history < 1:
        raise KTError(f"--history {spec.history}: must be >= 1")
    if spec.history_frac is not None and not 0 < spec.history_frac < 1:
        raise KTError(f"--history-frac {spec.history_frac}: must be in (0, 1)")
    if spec.horizon is not None and spec.horizon < 1:
        raise KTError(f"--horizon {spec.horizon}: must be >= 1")


def next_step(
    model,
    data: Interactions,
    *,
    include_first: bool = False,
    breakdown: bool = True,
    scoring: str = "question",
    fusion: str = "mean",
) -> dict:
    """One-step-ahead evaluation over all attempts of ``data``.

    Each attempt is predicted from the learner's attempts before it; metrics
    are computed once over all scored attempts. Multi-KC questions are
    scored once per question: all their KC rows are predicted from the
    history before the question and fused (``fusion``).

    Args:
        model: a fitted kt model.
        data: test interactions encoded with the model's vocabulary.
        include_first: also score each learner's first attempt.
        breakdown: add per-KC metrics, reliability bins and curve data
            (ROC points, learning curves).
        scoring: ``question`` or ``kc-row`` (pyKT's expanded rows; leaky).
        fusion: ``mean``, ``vote`` or ``all`` (question level; ``vote`` and
            ``all`` need a model that reports ``prob_kc``).

    Returns:
        Dict with ``protocol``, the settings (``scoring``: ``attempt`` for
        single-KC data, ``question`` or ``kc-row``; ``fusion``, ``window``,
        ``include_first``...), the metrics (``auc``, ``accuracy``, ``f1``,
        ``rmse``, ``logloss``, ``brier``, ``ece``, ``n``) and, with
        ``breakdown``, ``per_kc``, ``reliability``, ``roc`` and
        ``learning_curves``.
    """
    spec = EvalSpec("next", include_first, scoring, fusion).checked()
    used, level = _level(data, spec.scoring)
    preds = _fused(model.predict(used), level, spec.fusion, model)
    s = scored(preds, include_first=include_first)
    y = s["correct"].to_numpy()
    p = s["prob"].to_numpy()
    result = {
        "protocol": "next",
        "model": model.name,
        **_data_fields(data),
        "include_first": include_first,
        "first_position": "scored" if include_first else "unscored (each learner's first attempt)",
        "scoring": level,
        "fusion": spec.fusion if level == "question" else None,
        "leaky": level == "kc-row",
        "window": getattr(model.config, "eval_mode", "full"),
        "window_length": getattr(model.config, "window", None),
        "scored_rows": int(len(y)),
        **_scores(y, p),
    }
    if level == "kc-row":
        result["warning"] = LEAK_WARNING
    unknown = data.stats.get("unknown_kcs", 0)
    if unknown:
        result["unknown_kcs"] = unknown
    if breakdown:
        result["per_kc"] = per_kc(s)
        result["reliability"] = metrics.reliability(y, p)
        result["roc"] = metrics.roc_points(y, p, ROC_POINTS)
        result["learning_curves"] = learning_curves(preds, include_first=include_first)
    return result


def multistep(
    model,
    data: Interactions,
    *,
    history: int | None = None,
    history_frac: float | None = None,
    horizon: int | None = None,
    mode: str = "nonacc",
    require_full: bool = False,
    scoring: str = "question",
    fusion: str = "mean",
    breakdown: bool = True,
    preset: str | None = None,
) -> dict:
    """Multi-step open-loop evaluation (pyKT "predict future", PSI-KT window).

    Each learner's first ``history`` attempts (or ``int(n * history_frac)``,
    clamped to [1, n - 1]) are observed; the next ``horizon`` attempts (all
    remaining ones when ``None``) are predicted through
    ``model.predict_ahead``. Learners without an attempt after the history
    (or, with ``require_full``, without the full horizon) are skipped and
    counted.

    Args:
        model: a fitted kt model.
        data: test interactions encoded with the model's vocabulary.
        history: observed attempts per learner.
        history_frac: observed share per learner instead of ``history``.
        horizon: attempts to predict after the history.
        mode: ``nonacc`` (from the history only) or ``acc`` (earlier
            predictions fed back as outcomes 1[p >= 0.5]).
        require_full: only learners with ``history + horizon`` attempts.
        scoring: ``question`` or ``kc-row`` (history and horizon then count
            KC rows).
        fusion: ``mean``, ``vote`` or ``all``.
        breakdown: add per-KC metrics, reliability bins and ROC points.
        preset: name recorded as ``protocol`` (e.g. ``psikt-window``).

    Returns:
        Dict with the protocol and its settings, pooled metrics (``auc``,
        ``accuracy``, ``f1``, ...), ``by_step`` (metrics per horizon step),
        ``sample_accuracy``/``sample_f1`` when the model reports
        ``sample_positive_rate`` (PSI-KT's per-sample decisions) and, with
        ``breakdown``, ``per_kc``, ``reliability`` and ``roc``.
    """
    spec = EvalSpec("multistep", False, scoring, fusion, history, history_frac, horizon, mode).checked()
    used, level = _level(data, spec.scoring)
    hist, fut, info = split_history(used, history=history, history_frac=history_frac, horizon=horizon, require_full=require_full)
    if fut.n_rows == 0:
        if require_full:
            assert history is not None and horizon is not None  # split_history refuses a full horizon without both
            need = f"{history + horizon} attempts"
        else:
            need = f"more than {history} attempts" if history else "2 attempts"
        raise KTError(f"{data.source}: no learner has {need}; lower --history/--horizon")
    preds = _fused(model.predict_ahead(hist, fut, spec.mode), level, spec.fusion, model)
    y = preds["correct"].to_numpy()
    p = preds["prob"].to_numpy()
    result = {
        "protocol": preset or "multistep",
        "model": model.name,
        **_data_fields(data),
        "history": history,
        "history_frac": history_frac,
        "horizon": horizon,
        "mode": MODE_NAMES[spec.mode],
        "feedback": "1[p >= 0.5]" if spec.mode == "acc" else None,
        "require_full_horizon": require_full,
        "scoring": level,
        "fusion": spec.fusion if level == "question" else None,
        "leaky": False,  # no future outcome is ever seen in open-loop prediction
        "threshold": 0.5,
        "window": getattr(model.config, "eval_mode", "full"),
        "window_length": getattr(model.config, "window", None),
        "predict_ahead": "generic" if type(model).predict_ahead is _base_predict_ahead() else type(model).__name__,
        **{f"split_{k}": v for k, v in info.items()},
        "scored_rows": int(len(y)),
        **_scores(y, p),
        "by_step": by_step(preds),
    }
    if "sample_positive_rate" in preds.columns:
        # Models that sample (PSI-KT) also report per-sample decisions, which the
        # PSI-KT paper's accuracy/F1 use: q = share of samples predicting correct.
        q = preds["sample_positive_rate"].to_numpy().astype(np.float64)
        tp, fp, fn = float(np.sum(y * q)), float(np.sum((1 - y) * q)), float(np.sum(y * (1 - q)))
        result["sample_accuracy"] = float(np.mean(np.where(y > 0, q, 1 - q)))
        result["sample_f1"] = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else float("nan")
    if preset == "psikt-window":
        result["note"] = (
            "PSI-KT within-learner window (EVALUATION.md §8, evaluation side): first 10 attempts observed, "
            "11-20 predicted without feedback; accuracy/F1 at 0.5, AUC from the probabilities; "
            "not comparable with next-step AUC"
        )
    if breakdown:
        result["per_kc"] = per_kc(preds)
        result["reliability"] = metrics.reliability(y, p)
        result["roc"] = metrics.roc_points(y, p, ROC_POINTS)
    return result


def _base_predict_ahead():
    from kt.models.base import Model

    return Model.predict_ahead


def evaluate(model, data: Interactions, spec: EvalSpec | None = None) -> dict:
    """Run ``spec`` (default: next-step, question level) on a fitted model.

    Args:
        model: fitted kt model.
        data: test interactions encoded with the model's vocabulary.
        spec: protocol and settings.

    Returns:
        The protocol's result dict.
    """
    return (spec or EvalSpec()).run(model, data)


def next_step_partitioned(model, data: PartitionedData) -> dict:
    """Next-step validation metrics of ``model`` on a partitioned dataset, one partition at a time.

    Same protocol as :func:`next_step` without the breakdown (question-level
    scoring, mean fusion, each learner's first attempt unscored), with the
    metrics computed once over all partitions' predictions.

    Args:
        model: a fitted model.
        data: the partitioned dataset (``kt partition`` output).

    Returns:
        The metrics dict (``protocol``, ``model``, ``data``, counts, ``auc``, ...).
    """
    ys, ps = [], []
    for part in data.partitions():
        s = scored(model.predict(part))
        ys.append(s["correct"].to_numpy())
        ps.append(s["prob"].to_numpy())
    y = np.concatenate(ys) if ys else np.zeros(0)
    p = np.concatenate(ps) if ps else np.zeros(0)
    return {
        "protocol": "next",
        "model": model.name,
        "data": data.source,
        "data_format": "partitioned",
        "learners": data.n_users,
        "attempts": data.n_rows,
        "scoring": "question" if data.multi_kc else "attempt",
        "window": getattr(model.config, "eval_mode", "full"),
        "scored_rows": int(len(y)),
        **_scores(y, p),
    }
