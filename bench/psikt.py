"""PSI-KT acceptance bench: graph and trait recovery on the ou-graph generator, update speed,
an EdNet within-learner comparison with DKT/BKT/majority, training-cost scaling, and the
headline comparison over training-cohort sizes on real data (part ``cohorts``).

Usage: python bench/psikt.py [--seeds 0,1,2] [--learners 1000] [--steps 50] [--kcs 10]
                             [--set key=value ...] [--ablation] [--oracle] [--no-real] [--no-scaling]
                             [--only synthetic,oracle,ednet,scaling,cohorts] [--ednet-seed 0]
                             [--scaling-sizes 100,1000,10000] [--scaling-kcs 100] [--scaling-epochs 3]
                             [--datasets ednet_small,assist2015] [--cohorts 100,1000,all]
                             [--models psikt-filter,psikt-amortized,bkt,dkt,majority]
                             [--model-cohorts MODEL=C1,C2 ...] [--cohort-seeds-at COHORT=S1,S2 ...] [--fresh]
                             [--out PATH]

       python bench/psikt.py --only ednet,scaling    # rerun only these parts, keep the other rows of --out
       python bench/psikt.py --only cohorts          # the cohorts comparison (seeds 0-4; resumable, see below)
       python bench/psikt.py --only cohorts --datasets ednet_small --cohorts 100 --seeds 0 --models bkt,majority  # smoke
       python bench/psikt.py --only cohorts --model-cohorts psikt-amortized=100 --cohort-seeds-at 1000=0,1,2

``--seeds`` defaults to 0,1,2 for the synthetic/oracle parts and to 0,1,2,3,4 for ``cohorts``.

Synthetic protocol (issue 6; shared/spec/PSIKT.md "Tests that prove it" 13):
for each seed, ``simulate_ou_graph(learners, kcs, steps, seed)`` with the
generator defaults (random DAG, edge probability 0.3, 30% decoupled
practice, session-mixture gaps in days); the learners are split 90/10 with
the same seed, the 10% only for early stopping (model selection never sees
the truth); psikt is trained with the options given by ``--set`` (the
defaults of this script are the model's defaults plus ``BENCH_SETS``).
Scored against the truth:

* edge recovery over the K(K-1) ordered pairs: AUROC (tie-aware), AUPRC
  (average precision) with the base rate, F1 of the top-|E| pairs,
  orientation accuracy (share of true edges with p_ik > p_ki);
* Spearman correlation of each learner's inferred trait (posterior after
  its whole history, training and validation learners) with the true
  alpha, mu, sigma, gamma.

Continual update: a continuation of every learner (the same seed's learners
simulated for ``steps + 10`` attempts; the last 10, shifted to start after the
learner's last training attempt) arrives one interaction per learner at a
time; ``update`` runs ``update_steps`` optimisation steps per arrival.
Reported: seconds per update round (all learners, compiled), the first
round (with compilation) and the training time for comparison.

EdNet comparison (part ``ednet``; issue 6 acceptance): EdNet-small
(shared/data, timestamps, one KC per item), learners with >= 20
interactions, one seeded learner-level split 60/20/20 into train /
validation / test learners. Every model trains on the training learners'
interactions; validation learners serve early stopping and selection only.
All models are scored on the test learners with kt's own ``psikt-window``
protocol (``kt.eval.protocols``, as ``kt evaluate --protocol psikt-window``):
observe interactions 1-10, predict 11-20 open loop, no outcome fed back.
PSI-KT uses its own ``predict_ahead`` (OU propagation); DKT, BKT and the
majority baseline kt's generic ``predict_ahead`` (kt.eval.multistep).
Accuracy/F1 at 0.5 on the mean probability and AUC, identical for every
model (PSI-KT also reports the paper's per-MC-sample accuracy/F1). A few
PSI-KT candidates (``PSIKT_EDNET_CANDIDATES``) are compared on validation
window accuracy; only the chosen one is scored on test. A learner-mean
reference (accuracy on 1-10 predicts 11-20) is kept.

Scaling (part ``scaling``): ``simulate_ou_graph`` with K = 100 and
100 / 1,000 / 10,000 learners x 50 interactions; PSI-KT trained for a fixed
number of epochs (no validation, no early stopping) in a fresh child
process per size; seconds per epoch, total training seconds, child peak
RSS, and time per learner relative to the smallest size (linear cost =
constant ratio).

Cohorts (part ``cohorts``; issue 15 item 4, the headline comparison):
datasets ednet_small (real timestamps), assist2015 (DKVMN 3-line train file,
13,593 learners; no timestamps, so the step index is the time) and, on
request, assist2009 (Gervet train file, KC-set ids; no timestamps). Eligible
learners have >= 20 interactions. Per (dataset, cohort, seed) one seeded
permutation of the eligible learners gives, disjoint: 200 test learners
(100 when fewer than 320 are eligible, as on ednet_small with 298), then a
training cohort of N learners (100, 1000, or ``all`` = the largest N whose
validation set still fits) and then max(20, round(0.2 N)) validation
learners; a cohort size the dataset cannot supply is skipped. The test
learners of a seed are the same at every cohort size and the cohorts are
nested. Every learner contributes its first 200 interactions (a cap that
bounds compute; test learners too). Every model sees exactly the same
learners and positions: PSI-KT with filter inference, PSI-KT amortized
(40 epochs, patience 5), DKT (both early-stopped on the validation learners,
the models' own selection scores), BKT (EM, no validation) and majority.
Scored on the test learners: kt's psikt-window protocol (observe 1-10,
predict 11-20 open loop; accuracy/F1 at 0.5 and AUC, the same code for every
model), the share of predictions with prob > 0.5 at horizon step 10 (and
over the window) next to the observed correct rate there (open-loop
forecasts must not collapse to one class), next-step AUC/accuracy on the
test learners' capped sequences, training seconds, epochs run / best epoch.
One row per (dataset, cohort, seed, model), written to --out as soon as it
finishes; a rerun skips the rows already there (``--fresh`` recomputes the
selected ones), so a partial run keeps its rows. Each row records the model
class, its effective config and the git revision of the working tree when
the invocation started (kt is imported once per invocation). Summary rows per (dataset, cohort, model) hold
mean and sd over seeds; psikt-filter's carries ``acceptance``: its mean
window accuracy against the better of BKT and DKT, and when it misses, by
how many sds of the seed-paired difference.

Writes bench/results/psikt.json (rows per shared/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KT_SHARED_DATA") or REPO.parent / "shared" / "data")
DAY = 86400.0

NOTE_MEAN = (
    "Acceptance not met for edge AUROC and alpha (see the per-seed rows). Seed 0 was used while developing the objective fixes "
    "(diagnostics only; no setting was chosen by its truth scores). The generator follows the spec equation by equation, and the "
    "targets are beyond what the generated outcomes contain: see the 'identifiability' rows (true parameters, particle filter). "
    "Removing the whole true graph changes the log-likelihood by only a few nats out of ~32,000 (the shift is gamma/K ~0.05 "
    "times a parent's state, entering only through (1 - r) at the between-session gaps), so single edges carry < 1 nat; and the "
    "Bayes posterior mean of alpha given every other true parameter reaches Spearman ~0.25, below the 0.5 target. "
    "A truth-free pairwise logistic-regression estimator also scores AUROC ~0.50 (seeds 0-2)."
)

# Settings of the acceptance run on top of the model defaults (chosen on validation, see the README/notes).
BENCH_SETS: dict[str, str] = {"select_on": "elbo", "patience": "20"}


def _load_frame(frame, name: str, **kw):
    import kt

    d = Path(tempfile.mkdtemp(prefix="kt-psikt-bench-"))
    p = d / name
    frame.write_csv(p)
    return kt.load(str(p), **kw)


def graph_scores(prob, adjacency) -> dict:
    """Edge-recovery metrics over ordered pairs i != k (EVALUATION.md section 10)."""
    import numpy as np

    from kt.metrics import auc

    A = np.asarray(adjacency, bool)
    K = A.shape[0]
    off = ~np.eye(K, dtype=bool)
    y, p = A[off].astype(float), np.asarray(prob)[off]
    order = np.argsort(-p, kind="stable")
    hits = y[order]
    prec = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    ap = float((prec * hits).sum() / max(hits.sum(), 1))
    E = int(y.sum())
    top = np.zeros_like(y)
    top[order[:E]] = 1
    tp = float((top * y).sum())
    f1_top = 2 * tp / (2 * tp + (top * (1 - y)).sum() + ((1 - top) * y).sum()) if E else float("nan")
    src, tgt = np.nonzero(A)
    orient = float(np.mean([prob[i, k] > prob[k, i] for i, k in zip(src, tgt)])) if E else float("nan")
    return {
        "edge_auroc": auc(y, p),
        "edge_auprc": ap,
        "edge_base_rate": E / len(y),
        "edges_true": E,
        "f1_top_edges": f1_top,
        "orientation_accuracy": orient,
    }


def trait_scores(model, truth) -> dict:
    from scipy.stats import spearmanr

    tt = model.traits()
    true = {r["user_id"]: r for r in truth["traits"]}
    users = [u for u in tt["user_id"].to_list() if u in true]
    tt = tt.filter(tt["user_id"].is_in(users))
    out = {}
    for k in ("alpha", "mu", "sigma", "gamma"):
        out[f"spearman_{k}"] = float(spearmanr(tt[k].to_numpy(), [true[u][k] for u in tt["user_id"]]).statistic)
    out["traits_learners"] = len(users)
    return out


def synthetic(seed: int, args, sets: dict) -> dict:
    import jax
    import numpy as np
    import polars as pl

    from kt.data.splits import train_valid
    from kt.data.synthetic import simulate_ou_graph
    from kt.models.base import create

    gen = {"decoupled": args.decoupled} if args.decoupled is not None else {}
    frame, truth = simulate_ou_graph(args.learners, args.kcs, args.steps, seed=seed, **gen)
    data = _load_frame(frame, "train.csv")
    tr, va = train_valid(data, 0.1, seed)
    model = create("psikt", sets=[f"{k}={v}" for k, v in sets.items()])
    t0 = time.perf_counter()
    model.fit(
        tr,
        valid=va,
        key=seed,
        progress=lambda r: print(
            f"  seed {seed} epoch {r['epoch']}: loss {r['train_loss']:.4f} valid {r.get('valid_score', float('nan')):.4f} "
            f"({r['seconds']:.1f}s)",
            flush=True,
        ),
    )
    train_seconds = time.perf_counter() - t0
    g = model.graph()
    order = [g.kcs.index(k) for k in truth["kcs"]]
    P = g.prob[np.ix_(order, order)]
    row = {
        "dataset": f"synthetic/ou-graph K={args.kcs} {args.learners}x{args.steps} seed {seed}",
        "split": "learners 90/10 (10% for early stopping only)",
        "model": "psikt",
        "impl": "kt",
        **graph_scores(P, truth["adjacency"]),
        **trait_scores(model, truth),
        "valid_score": max(r.get("valid_score", float("-inf")) for r in model.meta["history"]),
        "select_on": model.config.select_on,
        "train_seconds": train_seconds,
        "epochs_run": len(model.meta["history"]),
        "best_epoch": model.meta["best_epoch"],
        "interactions_per_second": float(
            np.median(
                [r["interactions_per_second"] for r in model.meta["history"][1:]]
                or [model.meta["history"][0]["interactions_per_second"]]
            )
        ),
        "generator": truth["settings"],
    }
    # continual update: each learner's next 10 attempts, one arrival per learner at a time
    more, _ = simulate_ou_graph(args.learners, args.kcs, args.steps + 10, seed=seed, **gen)
    more = more.with_columns(pl.int_range(pl.len()).over("user_id").alias("_p")).filter(pl.col("_p") >= args.steps)
    last = frame.group_by("user_id").agg(pl.col("timestamp").max().alias("_last"))
    first = more.group_by("user_id").agg(pl.col("timestamp").min().alias("_first"))
    more = (
        more.join(last, on="user_id")
        .join(first, on="user_id")
        .with_columns((pl.col("timestamp") - pl.col("_first") + pl.col("_last") + 2 * DAY).alias("timestamp"))
        .select("user_id", "skill_id", "timestamp", "correct")
        .sort("user_id", "timestamp")
    )
    new = _load_frame(more, "new.csv", vocab=model.vocab, min_attempts=1)
    before = model.traits()
    rep = model.update(new, key=seed)
    after = model.traits()
    moved = float(
        np.mean(
            np.abs(before.join(after, on="user_id", suffix="_u").select(pl.col("mu") - pl.col("mu_u")).to_series().to_numpy())
        )
    )
    row.update(
        {
            "update_rounds": rep["arrivals"],
            "update_learners": rep["learners"],
            "update_steps": rep["steps"],
            "seconds_per_update": rep["seconds_per_update"],
            "first_update_seconds": rep["first_update_seconds"],
            "update_total_seconds": rep["seconds"],
            "update_mean_abs_mu_change": moved,
            "refit_over_update_ratio": train_seconds / max(rep["seconds_per_update"], 1e-9),
            "jax": jax.__version__,
        }
    )
    return row


# Learner-level split of the EdNet learners with >= 20 interactions: train / validation / test.
EDNET_SPLIT = (0.6, 0.2, 0.2)
EDNET_MIN = 20
# PSI-KT candidates on EdNet (label, options on top of the bench's, training interactions per learner or None = all).
# Chosen on the validation learners' window accuracy; test is scored for the chosen one only.
PSIKT_EDNET_CANDIDATES: list[tuple[str, dict, int | None]] = [
    ("training sequences truncated to the first 50 (official preprocessing)", {}, 50),
    ("whole training sequences", {}, None),
]
# PSI-KT options on EdNet: the spec's selection (validation F1 of the window) and patience; epochs capped for a 2-core machine.
PSIKT_EDNET_SETS = {"select_on": "f1", "patience": "10", "epochs": "40"}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _window_eval(model, data) -> dict:
    """kt's own psikt-window protocol (the same code as ``kt evaluate --protocol psikt-window``)."""
    from kt.eval.protocols import EvalSpec

    return EvalSpec("psikt-window", breakdown=False).run(model, data)


def _head(data, n: int | None):
    """Each learner's first ``n`` interactions (all when None)."""
    import polars as pl

    import kt

    if n is None:
        return data
    f = data.frame.filter(pl.int_range(pl.len()).over("user_idx") < n)
    return kt.Interactions(f, data.vocab, data.source, data.colmap, data.fmt, data.notes, dict(data.stats))


def ednet(seed: int, sets: dict) -> list[dict]:
    """EdNet within-learner comparison: PSI-KT, DKT, BKT, majority under one split and kt's psikt-window protocol."""
    import jax
    import numpy as np
    import polars as pl

    import kt
    from kt.data.splits import split_learners
    from kt import metrics
    from kt.eval.multistep import split_history
    from kt.models.base import create

    path = SHARED / "ednet_small" / "preprocessed_data_test.csv.gz"
    if not path.exists():
        print(f"  skipping the EdNet rows: {path} not found", flush=True)
        return []
    data = kt.load(str(path))
    counts = data.frame.group_by("user_idx").len()
    eligible = np.sort(counts.filter(pl.col("len") >= EDNET_MIN)["user_idx"].to_numpy())
    tr_u, va_u, te_u = split_learners(eligible, EDNET_SPLIT, seed)
    train, valid, test = data.subset(tr_u), data.subset(va_u), data.subset(te_u)
    assert not (set(tr_u) & set(te_u)) and not (set(va_u) & set(te_u)) and not (set(tr_u) & set(va_u))
    split = (
        f"learner-level split (seed {seed}) of the {len(eligible)} of {data.n_users} learners with >= {EDNET_MIN} interactions: "
        f"{len(tr_u)} train / {len(va_u)} validation / {len(te_u)} test learners; models train on the training learners' "
        f"interactions ({train.n_rows:,} rows, whole sequences unless noted); validation learners for early stopping and "
        f"selection only; test learners: observe interactions 1-10, predict 11-20 open loop (kt.eval.protocols "
        f"psikt-window, require_full), {len(te_u) * 10} scored predictions"
    )
    dataset = f"ednet_small (EdNet KT1 sample, {data.n_users} learners, {len(data.vocab.skill_id)} KCs, timestamps)"
    print(f"  {split}", flush=True)

    def fit(name, opts, train_data, *, with_valid=True):
        model = create(name, sets=[f"{k}={v}" for k, v in opts.items()])
        t0 = time.perf_counter()
        model.fit(
            train_data,
            valid=valid if with_valid else None,
            key=seed,
            progress=lambda r: print(
                f"    {name} epoch {r['epoch']}: loss {r.get('train_loss', float('nan')):.4f} valid {r.get('valid_score', float('nan')):.4f} "
                f"({r.get('seconds', float('nan')):.1f}s)",
                flush=True,
            ),
        )
        return model, time.perf_counter() - t0

    def row(name, model, train_s, res, extra=None):
        out = {
            "dataset": dataset,
            "split": split,
            "protocol": "psikt-window",
            "model": name,
            "impl": "kt",
            "auc": res["auc"],
            "accuracy": res["accuracy"],
            "f1": res["f1"],
            "n_scored": res["scored_rows"],
            "scored_learners": res["split_learners"],
            "train_seconds": train_s,
            "peak_rss_mb": _rss_mb(),
            "predict_ahead": res["predict_ahead"],
            "mode": res["mode"],
            "frac_correct_scored": float(sum(s["frac_correct"] * s["n"] for s in res["by_step"]) / res["scored_rows"]),
            "by_step_accuracy": [round(s["accuracy"], 4) for s in res["by_step"]],
            "jax": jax.__version__,
        }
        if "sample_accuracy" in res:
            out["sample_accuracy"], out["sample_f1"] = res["sample_accuracy"], res["sample_f1"]
        extra = dict(extra or {})
        note = extra.pop("_note", "")
        out.update(extra)
        out["notes"] = (
            "accuracy/F1 at 0.5 on the mean probability and AUC of the probability, computed the same way for "
            "every model; peak_rss_mb is the bench process's peak so far (models run in one process, in row "
            "order); not comparable with next-step AUC. " + note
        ).strip()
        print(f"  {name:10} acc {out['accuracy']:.3f} F1 {out['f1']:.3f} AUC {out['auc']:.3f} ({train_s:.1f}s)", flush=True)
        return out

    rows = []
    # PSI-KT: candidates chosen on the validation learners' window accuracy.
    cands = []
    for label, opts, head in PSIKT_EDNET_CANDIDATES:
        o = {**sets, **PSIKT_EDNET_SETS, **opts}
        model, ts = fit("psikt", o, _head(train, head))
        v = _window_eval(model, valid)
        hist = model.meta["history"]
        cands.append(
            {
                "label": label,
                "options": o,
                "train_head": head,
                "valid_accuracy": v["accuracy"],
                "valid_f1": v["f1"],
                "valid_auc": v["auc"],
                "valid_sample_accuracy": v.get("sample_accuracy"),
                "epochs_run": len(hist),
                "best_epoch": model.meta["best_epoch"],
                "train_seconds": ts,
                "_model": model,
            }
        )
        print(
            f"  psikt [{label}]: valid acc {v['accuracy']:.3f} F1 {v['f1']:.3f} AUC {v['auc']:.3f}, "
            f"{len(hist)} epochs (best {model.meta['best_epoch']}), {ts:.1f}s",
            flush=True,
        )
    best = max(cands, key=lambda c: c["valid_accuracy"])
    res = _window_eval(best["_model"], test)
    rows.append(
        row(
            "psikt",
            best["_model"],
            best["train_seconds"],
            res,
            {
                "chosen": best["label"],
                "config": best["options"],
                "epochs_run": best["epochs_run"],
                "best_epoch": best["best_epoch"],
                "candidates_valid": [{k: v for k, v in c.items() if k != "_model"} for c in cands],
                "_note": "PSI-KT's open-loop predict_ahead; sample_accuracy/sample_f1 are the paper's per-MC-sample decisions. "
                "Candidate chosen on validation window accuracy (test scored for the chosen one only).",
            },
        )
    )
    for c in cands:
        c.pop("_model")
    # DKT (early stopping on validation next-step AUC, its default) and BKT (EM, no validation), majority.
    for name in ("dkt", "bkt", "majority"):
        model, ts = fit(name, {}, train, with_valid=name == "dkt")
        res = _window_eval(model, test)
        extra = {"_note": "kt's generic open-loop predict_ahead (kt.eval.multistep; non-accumulative, no outcome fed back)."}
        if name == "dkt":
            extra.update(epochs_run=len(model.meta.get("history", [])), best_epoch=model.meta.get("best_epoch"))
        rows.append(row(name, model, ts, res, extra))
    # Reference: each test learner's accuracy on interactions 1-10 predicts 11-20.
    hist, fut, _ = split_history(test, history=10, horizon=10, require_full=True)
    lm = hist.frame.group_by("user_idx").agg(pl.col("correct").mean().alias("lm"))
    f = fut.frame.join(lm, on="user_idx", how="left")
    y, p = f["correct"].to_numpy(), f["lm"].to_numpy()
    rows.append(
        {
            "dataset": dataset,
            "split": split,
            "protocol": "psikt-window",
            "model": "learner-mean (reference)",
            "impl": "bench",
            "auc": metrics.auc(y, p),
            "accuracy": metrics.accuracy(y, p),
            "f1": metrics.f1(y, p),
            "n_scored": int(len(y)),
            "train_seconds": 0.0,
            "peak_rss_mb": None,
            "notes": "each test learner's accuracy on its interactions 1-10 predicts its 11-20 (no training; reference only)",
        }
    )
    acc = {r["model"]: r["accuracy"] for r in rows}
    rows[0]["acceptance"] = {"psikt accuracy >= max(dkt, bkt)": acc["psikt"] >= max(acc["dkt"], acc["bkt"])}
    return rows


# ---------------------------------------------------------------------------------------------
# Part ``cohorts`` (issue 15 item 4): PSI-KT against BKT/DKT/majority over training-cohort sizes.
COHORT_DATASETS: dict[str, tuple[str, str]] = {
    # name -> (file under shared/data, description)
    "ednet_small": ("ednet_small/preprocessed_data_test.csv.gz", "EdNet KT1 sample (Gervet TSV-5 test split), real timestamps"),
    "assist2015": (
        "assist2015/dkvmn/assist2015_train.csv.gz",
        "ASSISTments 2015 (DKVMN 3-line train file), no timestamps: time = step index",
    ),
    "assist2009": (
        "assist2009/gervet/preprocessed_data_train.csv.gz",
        "ASSISTments 2009 (Gervet TSV-5 train file, KC-set ids), no timestamps: time = step index",
    ),
}
COHORT_MIN = 20  # eligible learners: >= 20 interactions
COHORT_TEST = 200  # test learners (100 when the dataset has too few eligible learners)
COHORT_TEST_SMALL = 100
COHORT_CAP = 200  # each learner contributes its first 200 interactions (bounds compute)
COHORT_HORIZON_STEP = 10  # positive share of the open-loop forecast at this horizon step
COHORT_VERSION = 1  # rows of another protocol version are not reused by a resumed run
COHORT_MODELS: dict[str, tuple[str, list[str], bool]] = {
    # label -> (registry name, --set options, fit with the validation learners)
    "psikt-filter": ("psikt", ["inference=filter"], True),
    "psikt-amortized": ("psikt", ["inference=amortized", "epochs=40", "patience=5"], True),
    "bkt": ("bkt", [], False),
    "dkt": ("dkt", [], True),
    "majority": ("majority", [], False),
}
COHORT_SUMMARY_KEYS = (
    "accuracy",
    "f1",
    "auc",
    "next_auc",
    "next_accuracy",
    "positive_share_h10",
    "observed_correct_h10",
    "train_seconds",
    "epochs_run",
    "best_epoch",
)


def _valid_size(n: int) -> int:
    return max(20, int(round(0.2 * n)))


def cohort_split(eligible, cohort: str, seed: int) -> dict | None:
    """Disjoint test / train / validation learners for one (cohort, seed); None when the dataset cannot supply it.

    One permutation per seed (``numpy.random.default_rng(seed)``) of the sorted eligible learners: the first
    ``COHORT_TEST`` (``COHORT_TEST_SMALL`` when fewer than test + 100 + 20 are eligible) are the test learners,
    the next N the training cohort, the next max(20, round(0.2 N)) the validation learners. ``all`` takes the
    largest N whose validation set still fits. The test learners of a seed are the same for every cohort size,
    and the training cohorts of one seed are nested.
    """
    import numpy as np

    eligible = np.sort(np.asarray(eligible))
    perm = np.random.default_rng(seed).permutation(eligible)
    n_test = COHORT_TEST if len(eligible) >= COHORT_TEST + 100 + _valid_size(100) else COHORT_TEST_SMALL
    rest = len(eligible) - n_test
    if cohort == "all":
        n = int(rest / 1.2)
        while n > 0 and n + _valid_size(n) > rest:
            n -= 1
        while n + 1 + _valid_size(n + 1) <= rest:
            n += 1
    else:
        n = int(cohort)
    if n < 1 or n + _valid_size(n) > rest:
        return None
    v = _valid_size(n)
    test, train, valid = perm[:n_test], perm[n_test : n_test + n], perm[n_test + n : n_test + n + v]
    assert not (set(test) & set(train) or set(test) & set(valid) or set(train) & set(valid))
    return {
        "test": np.sort(test),
        "train": np.sort(train),
        "valid": np.sort(valid),
        "n_train": n,
        "n_valid": v,
        "n_test": n_test,
        "n_eligible": len(eligible),
    }


def _cohort_data(name: str):
    """(interactions, eligible learner ids, description) of a cohorts dataset."""
    import numpy as np
    import polars as pl

    import kt

    rel, desc = COHORT_DATASETS[name]
    path = SHARED / rel
    if not path.exists():
        raise SystemExit(f"cohorts: {path} not found (shared data)")
    data = kt.load(str(path))
    counts = data.frame.group_by("user_idx").len()
    eligible = np.sort(counts.filter(pl.col("len") >= COHORT_MIN)["user_idx"].to_numpy())
    has_time = data.frame["timestamp"].null_count() == 0
    desc = (
        f"{name}: {desc}; {data.n_users:,} learners, {data.n_rows:,} rows, {len(data.vocab.skill_id)} KCs, "
        f"{len(eligible):,} learners with >= {COHORT_MIN} interactions; time: {'timestamps' if has_time else 'step index'}"
    )
    return data, eligible, desc


def _horizon_share(model, test, step: int = COHORT_HORIZON_STEP) -> dict:
    """Share of open-loop predictions with prob > 0.5 at one horizon step (and over the window) vs the observed rate.

    Uses the window of the psikt-window protocol (observe 10, predict 11-20, learners with all 20) through
    ``model.predict_ahead`` directly (kt.eval.multistep.split_history), as the protocol does.
    """
    import numpy as np

    from kt.eval.multistep import split_history

    hist, fut, _ = split_history(test, history=10, horizon=10, require_full=True)
    preds = model.predict_ahead(hist, fut, "nonacc")
    s = preds.filter(preds["step"] == step)
    p, y = s["prob"].to_numpy(), s["correct"].to_numpy()
    pa, ya = preds["prob"].to_numpy(), preds["correct"].to_numpy()
    return {
        f"positive_share_h{step}": float(np.mean(p > 0.5)),
        f"observed_correct_h{step}": float(np.mean(y)),
        f"mean_prob_h{step}": float(np.mean(p)),
        f"n_h{step}": int(len(p)),
        "positive_share_window": float(np.mean(pa > 0.5)),
        "observed_correct_window": float(np.mean(ya)),
    }


KT_REVISION_AT_START = "unknown"


def _kt_revision() -> str:
    """HEAD commit, plus ``+dirty`` when kt/ has uncommitted changes (the package under test is edited concurrently)."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "kt"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def cohort_run(label: str, data_name: str, cohort: str, seed: int, train, valid, test, split: dict, desc: str) -> dict:
    """Fit one model on one (dataset, cohort, seed) draw and score it on the test learners."""
    import jax

    from kt.eval.protocols import EvalSpec
    from kt.models.base import create

    reg, sets, with_valid = COHORT_MODELS[label]
    model = create(reg, sets=list(sets))
    t0 = time.perf_counter()
    model.fit(
        train,
        valid=valid if with_valid else None,
        key=seed,
        progress=lambda r: print(
            f"      {label} epoch {r.get('epoch')}: loss {r.get('train_loss', float('nan')):.4f} "
            f"valid {r.get('valid_score', r.get('valid_auc', float('nan'))):.4f} ({r.get('seconds', float('nan')):.1f}s)",
            flush=True,
        ),
    )
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    win = EvalSpec("psikt-window", breakdown=False).run(model, test)
    nxt = EvalSpec("next", breakdown=False).run(model, test)
    share = _horizon_share(model, test)
    eval_s = time.perf_counter() - t1
    hist = model.meta.get("history") if isinstance(model.meta, dict) else None
    row = {
        "experiment": "cohorts",
        "cohort_version": COHORT_VERSION,
        "dataset": data_name,
        "cohort": cohort,
        "seed": seed,
        "model": label,
        "impl": "kt",
        "options": sets,
        "validation_used": with_valid,
        "protocol": "psikt-window",
        "split": (
            f"seed {seed}: {split['n_test']} test / {split['n_train']} train / "
            f"{split['n_valid']} validation learners of {split['n_eligible']} eligible "
            f"(>= {COHORT_MIN} interactions); first {COHORT_CAP} interactions each"
        ),
        "train_learners": split["n_train"],
        "valid_learners": split["n_valid"],
        "test_learners": split["n_test"],
        "train_rows": train.n_rows,
        "valid_rows": valid.n_rows,
        "test_rows": test.n_rows,
        "accuracy": win["accuracy"],
        "f1": win["f1"],
        "auc": win["auc"],
        "n_scored": win["scored_rows"],
        "scored_learners": win["split_learners"],
        "predict_ahead": win["predict_ahead"],
        "frac_correct_scored": float(sum(s["frac_correct"] * s["n"] for s in win["by_step"]) / win["scored_rows"]),
        "by_step_accuracy": [round(s["accuracy"], 4) for s in win["by_step"]],
        "by_step_mean_pred": [round(s["mean_pred"], 4) for s in win["by_step"]],
        **share,
        "next_auc": nxt["auc"],
        "next_accuracy": nxt["accuracy"],
        "next_n_scored": nxt.get("scored_rows"),
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "epochs_run": len(hist) if hist else None,
        "best_epoch": model.meta.get("best_epoch") if isinstance(model.meta, dict) else None,
        "peak_rss_mb": _rss_mb(),
        "jax": jax.__version__,
        "kt_revision_at_start": KT_REVISION_AT_START,
        "model_class": type(model).__name__,
        "data": desc,
    }
    cfg = getattr(model, "config", None)
    if dataclasses.is_dataclass(cfg):
        row["config"] = {
            k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v)) for k, v in dataclasses.asdict(cfg).items()
        }
    if "sample_accuracy" in win:
        row["sample_accuracy"], row["sample_f1"] = win["sample_accuracy"], win["sample_f1"]
    print(
        f"    {data_name} {cohort} seed {seed} {label:16} window acc {row['accuracy']:.3f} F1 {row['f1']:.3f} "
        f"AUC {row['auc']:.3f} | next AUC {row['next_auc']:.3f} | pos@10 {row['positive_share_h10']:.2f} "
        f"(obs {row['observed_correct_h10']:.2f}) | {train_s:.1f}s train, {eval_s:.1f}s eval",
        flush=True,
    )
    return row


def _msd(vals) -> tuple[float | None, float | None]:
    import numpy as np

    v = np.asarray([x for x in vals if x is not None and x == x], float)
    if not len(v):
        return None, None
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None)


def cohort_summaries(seed_rows: list[dict]) -> list[dict]:
    """Mean ± sd over seeds per (dataset, cohort, model); PSI-KT-filter rows carry the acceptance entry."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in seed_rows:
        groups.setdefault((r["dataset"], r["cohort"], r["model"]), []).append(r)
    out = []
    for (ds, co, m), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        row = {
            "experiment": "cohorts",
            "summary": True,
            "cohort_version": COHORT_VERSION,
            "dataset": ds,
            "cohort": co,
            "model": m,
            "impl": "kt",
            "protocol": "psikt-window",
            "seeds": [r["seed"] for r in rs],
            "train_learners": sorted({r["train_learners"] for r in rs}),
            "test_learners": rs[0]["test_learners"],
        }
        for k in COHORT_SUMMARY_KEYS:
            row[k], row[f"{k}_sd"] = _msd([r.get(k) for r in rs])
        out.append(row)
    for row in out:
        if row["model"] != "psikt-filter":
            continue
        ds, co = row["dataset"], row["cohort"]
        base = {r["model"]: r for r in out if r["dataset"] == ds and r["cohort"] == co and r["model"] in ("bkt", "dkt")}
        if not base:
            continue
        best = max(base.values(), key=lambda r: r["accuracy"])
        mine = {
            r["seed"]: r["accuracy"] for r in seed_rows if (r["dataset"], r["cohort"], r["model"]) == (ds, co, "psikt-filter")
        }
        theirs = {
            r["seed"]: r["accuracy"] for r in seed_rows if (r["dataset"], r["cohort"], r["model"]) == (ds, co, best["model"])
        }
        paired = sorted(set(mine) & set(theirs))
        d = np.array([mine[s] - theirs[s] for s in paired])
        gap = float(d.mean()) if len(d) else None
        sd = float(d.std(ddof=1)) if len(d) > 1 else None
        met = gap is not None and gap >= 0
        row["acceptance"] = {
            "criterion": "mean window accuracy of psikt-filter >= that of the better of bkt and dkt (paired by seed)",
            "best_baseline": best["model"],
            "psikt_filter_accuracy": row["accuracy"],
            "best_baseline_accuracy": best["accuracy"],
            "paired_seeds": paired,
            "mean_difference": gap,
            "sd_difference": sd,
            "met": met,
            "miss_in_sd": (None if met or not sd else float(-gap / sd)),
        }
    return sorted(
        out,
        key=lambda r: (
            r["dataset"],
            _cohort_order(r["cohort"]),
            list(COHORT_MODELS).index(r["model"]) if r["model"] in COHORT_MODELS else 99,
        ),
    )


def _cohort_order(c: str) -> int:
    return 10**9 if c == "all" else int(c)


def _cohort_key(r: dict) -> tuple:
    return (r["dataset"], r["cohort"], r["seed"], r["model"])


def _write_results(path: str, rows: list[dict]) -> None:
    load = os.getloadavg()[0]
    out = {
        "machine": f"{os.cpu_count()} CPU cores, no GPU ({platform.processor() or platform.machine()}); shared with other jobs "
        f"(load average at end {load:.2f}), so timings are indicative",
        "date": dt.date.today().isoformat(),
        "versions": {"kt": __import__("kt").__version__, "jax": __import__("jax").__version__},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": rows,
    }
    from kt.atomic import write_text

    write_text(path, json.dumps(out, indent=1, default=float))


def cohorts(args) -> list[dict]:
    """Part ``cohorts``: every (dataset, cohort, seed, model) row, written to --out as it finishes (resumable)."""
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    cohort_list = [c.strip() for c in args.cohorts.split(",") if c.strip()]
    seeds = [int(s) for s in (args.seeds or "0,1,2,3,4").split(",") if s.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = (
        [d for d in datasets if d not in COHORT_DATASETS]
        + [m for m in models if m not in COHORT_MODELS]
        + [c for c in cohort_list if c != "all" and not c.isdigit()]
    )
    if bad:
        raise SystemExit(
            f"cohorts: unknown {bad}; datasets {list(COHORT_DATASETS)}, models {list(COHORT_MODELS)}, cohorts N or all"
        )
    limits = {}  # model -> cohorts it runs at (--model-cohorts psikt-amortized=100)
    for spec in args.model_cohorts:
        m, _, cs = spec.partition("=")
        limits[m.strip()] = {c.strip() for c in cs.split(",") if c.strip()}
    seed_limits = {}  # cohort -> seeds (--cohort-seeds-at 1000=0,1,2)
    for spec in args.cohort_seeds_at:
        c, _, ss = spec.partition("=")
        seed_limits[c.strip()] = {int(s) for s in ss.split(",") if s.strip()}
    global KT_REVISION_AT_START
    KT_REVISION_AT_START = _kt_revision()  # kt is imported lazily below: the code under test is the working tree of now
    old = json.loads(Path(args.out).read_text())["rows"] if Path(args.out).exists() else []
    others = [r for r in old if _part(r) != "cohorts"]
    kept = {
        _cohort_key(r): r
        for r in old
        if _part(r) == "cohorts" and not r.get("summary") and r.get("cohort_version") == COHORT_VERSION
    }  # rows of earlier runs are kept
    done = {} if args.fresh else dict(kept)  # and reused, unless --fresh recomputes the selected ones

    def flush():
        seed_rows = sorted(
            kept.values(),
            key=lambda r: (r["dataset"], _cohort_order(r["cohort"]), r["seed"], list(COHORT_MODELS).index(r["model"])),
        )
        _write_results(args.out, others + seed_rows + cohort_summaries(seed_rows))
        return seed_rows

    for ds in datasets:
        data, eligible, desc = _cohort_data(ds)
        print(f"  {desc}", flush=True)
        for co in cohort_list:
            for seed in seeds:
                if co in seed_limits and seed not in seed_limits[co]:
                    continue
                todo = [m for m in models if co in limits.get(m, {co}) and (ds, co, seed, m) not in done]
                if not todo:
                    continue
                split = cohort_split(eligible, co, seed)
                if split is None:
                    print(f"  {ds}: cohort {co} does not fit ({len(eligible)} eligible learners); skipped", flush=True)
                    break
                train = _head(data.subset(split["train"]), COHORT_CAP)
                valid = _head(data.subset(split["valid"]), COHORT_CAP)
                test = _head(data.subset(split["test"]), COHORT_CAP)
                print(
                    f"  {ds} cohort {co} seed {seed}: {split['n_train']} train ({train.n_rows:,} rows) / {split['n_valid']} "
                    f"valid / {split['n_test']} test learners",
                    flush=True,
                )
                for m in todo:
                    row = cohort_run(m, ds, co, seed, train, valid, test, split, desc)
                    notes = []
                    if m in limits:
                        notes.append(
                            f"{m} runs only at cohorts {sorted(limits[m], key=_cohort_order)} in this run (compute budget)"
                        )
                    if co in seed_limits:
                        notes.append(f"cohort {co} runs seeds {sorted(seed_limits[co])} only in this run (compute budget)")
                    row["notes"] = "; ".join(notes)
                    kept[(ds, co, seed, m)] = row
                    flush()
    seed_rows = flush()
    return seed_rows + cohort_summaries(seed_rows)


def cohorts_table(rows: list[dict]) -> None:
    """Mean ± sd table of the cohorts summary rows."""

    def f(r, k, w=5, d=3):
        m, s = r.get(k), r.get(f"{k}_sd")
        if m is None:
            return " " * (2 * w + 1)
        return f"{m:{w}.{d}f}±{s:<{w}.{d}f}" if s is not None else f"{m:{w}.{d}f}{'':{w + 1}}"

    summ = [r for r in rows if r.get("experiment") == "cohorts" and r.get("summary")]
    if not summ:
        return
    print(
        f"\n{'dataset':12} {'cohort':>6} {'model':16} {'n':>2} {'acc':^11} {'F1':^11} {'AUC':^11} {'next AUC':^11} "
        f"{'pos@10':^11} {'obs@10':^11} {'train s':^15}"
    )
    for r in summ:
        print(
            f"{r['dataset']:12} {r['cohort']:>6} {r['model']:16} {len(r['seeds']):2d} {f(r, 'accuracy')} {f(r, 'f1')} "
            f"{f(r, 'auc')} {f(r, 'next_auc')} {f(r, 'positive_share_h10')} {f(r, 'observed_correct_h10')} "
            f"{f(r, 'train_seconds', 7, 1)}"
        )
        a = r.get("acceptance")
        if a:
            miss = (
                ""
                if a["met"]
                else (f", misses by {a['miss_in_sd']:.1f} sd of the paired difference" if a["miss_in_sd"] is not None else "")
            )
            print(
                f"{'':38}acceptance vs {a['best_baseline']}: {a['mean_difference']:+.3f} "
                f"({'met' if a['met'] else 'not met'}{miss})"
            )


def scaling_child(n: int, kcs: int, steps: int, epochs: int, seed: int) -> None:
    """One scaling measurement (run in a fresh process): fixed epochs, no validation, no early stopping."""
    from kt.data.synthetic import simulate_ou_graph
    from kt.models.base import create

    frame, _ = simulate_ou_graph(n, kcs, steps, seed=seed)
    data = _load_frame(frame, "train.csv")
    rss_data = _rss_mb()
    model = create("psikt", sets=[f"epochs={epochs}", f"patience={epochs + 1}"])
    t0 = time.perf_counter()
    model.fit(
        data,
        valid=None,
        key=seed,
        progress=lambda r: print(f"  {n} learners epoch {r['epoch']}: {r['seconds']:.1f}s", file=sys.stderr, flush=True),
    )
    total = time.perf_counter() - t0
    hist = model.meta["history"]
    print(
        json.dumps(
            {
                "learners": n,
                "interactions": data.n_rows,
                "train_seconds": total,
                "inference": model.config.inference,
                "epoch_seconds": [r["seconds"] for r in hist],
                "rss_after_data_mb": rss_data,
                "peak_rss_mb_self": _rss_mb(),
            }
        )
    )


def scaling(args) -> list[dict]:
    """Training time and peak memory of PSI-KT vs learners (fresh child process per size)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from harness import machine, run_proc

    sizes = [int(s) for s in args.scaling_sizes.split(",")]
    rows, base = [], None
    for n in sizes:
        cmd = [
            sys.executable,
            __file__,
            "--scaling-child",
            str(n),
            "--kcs",
            str(args.scaling_kcs),
            "--steps",
            str(args.steps),
            "--scaling-epochs",
            str(args.scaling_epochs),
        ]
        print(f"  scaling: {n} learners ...", flush=True)
        res = run_proc(cmd, timeout=4 * 3600)
        if res["rc"] != 0:
            print(res["stderr"][-3000:], flush=True)
            raise SystemExit(f"scaling child for {n} learners failed")
        out = json.loads(res["stdout"].strip().splitlines()[-1])
        ep = out["epoch_seconds"]
        steady = ep[1:] if len(ep) > 1 else ep
        per_epoch = float(sum(steady) / len(steady))
        r = {
            "dataset": f"synthetic/ou-graph K={args.scaling_kcs} {n}x{args.steps}",
            "split": "all learners train (no validation)",
            "model": "psikt",
            "impl": "kt",
            "experiment": "scaling",
            "inference": out.get("inference"),
            "learners": n,
            "interactions": out["interactions"],
            "epochs": len(ep),
            "epoch_seconds": ep,
            "seconds_per_epoch_steady": per_epoch,
            "train_seconds": out["train_seconds"],
            "child_wall_seconds": res["wall"],
            "peak_rss_mb": res["rss_mb"],
            "rss_after_data_mb": out["rss_after_data_mb"],
            "ms_per_learner_epoch": 1000 * per_epoch / n,
            "other_cores_during_run": res["other_cores"],
            "load_before": res["load_before"],
            "machine": machine(),
            "notes": f"fixed {args.scaling_epochs} epochs, no early stopping, psikt defaults (inference={out.get('inference')}, "
            "batch 32, window 200); first epoch includes JIT compilation, seconds_per_epoch_steady averages the others; "
            "peak_rss_mb is the child's peak (wait4), data generation included; the children share the persistent JAX "
            "compilation cache, so a size that compiles from scratch (the first, on a cold cache) also peaks with XLA "
            "compilation",
        }
        if base is None:
            base = r
        r["per_learner_time_ratio_vs_smallest"] = r["ms_per_learner_epoch"] / base["ms_per_learner_epoch"]
        rows.append(r)
        print(
            f"  {n} learners: {per_epoch:.2f} s/epoch (steady), {r['ms_per_learner_epoch']:.2f} ms/learner-epoch, "
            f"peak RSS {res['rss_mb']:.0f} MB, train {out['train_seconds']:.1f}s",
            flush=True,
        )
    return rows


def identifiability(seed: int, args, particles: int = 128) -> dict:
    """Truth-level information in the generated outcomes (no model is trained).

    With the TRUE generator parameters, the particle-filter log-likelihood
    (``kt.data.synthetic.ou_graph_loglik``) of the seed's data changes by
    ``dll_*`` nats (summed over learners) when the graph is removed,
    reversed or relabelled, or a trait is shuffled across learners; and the
    "oracle" posterior means of alpha (mu) on a 10-point equal-prior-mass
    grid of the generator's prior, every other parameter at its true value,
    give the best Spearman any estimator can expect (up to MC error).
    """
    import numpy as np
    from scipy.stats import norm, spearmanr

    from kt.data.synthetic import ou_graph_loglik, simulate_ou_graph

    gen = {"decoupled": args.decoupled} if args.decoupled is not None else {}
    frame, truth = simulate_ou_graph(args.learners, args.kcs, args.steps, seed=seed, **gen)
    st, A = truth["settings"], np.array(truth["adjacency"], float)
    true = {k: np.array([r[k] for r in truth["traits"]]) for k in ("alpha", "mu")}
    rng = np.random.default_rng(1000 + seed)

    def ll(**kw):
        return ou_graph_loglik(frame, truth, particles=particles, seed=1, **kw)

    base = ll()
    perm = rng.permutation(args.kcs)
    out = {
        "dataset": f"synthetic/ou-graph K={args.kcs} {args.learners}x{args.steps} seed {seed}, identifiability (true parameters)",
        "model": "oracle (particle filter, true parameters)",
        "particles": particles,
        "loglik_true": float(base.sum()),
        "n_outcomes": int(frame.height),
        "edges_true": int(A.sum()),
    }
    for name, kw in (
        ("graph_removed", {"adjacency": 0 * A}),
        ("graph_reversed", {"adjacency": A.T.copy()}),
        ("graph_relabelled", {"adjacency": A[np.ix_(perm, perm)]}),
        ("alpha_shuffled", {"alpha": rng.permutation(true["alpha"])}),
        ("mu_shuffled", {"mu": rng.permutation(true["mu"])}),
    ):
        out[f"dll_{name}"] = float(ll(**kw).sum() - base.sum())
    q = norm.ppf((np.arange(10) + 0.5) / 10)
    grids = {"alpha": st["alpha_median_per_day"] * np.exp(st["alpha_log_sd"] * q), "mu": st["mu_sd"] * q}
    for k, g in grids.items():
        L = np.stack([ll(**{k: np.full(args.learners, v)}) for v in g], axis=1)
        w = np.exp(L - L.max(1, keepdims=True))
        post = (w / w.sum(1, keepdims=True)) @ g
        out[f"oracle_spearman_{k}"] = float(spearmanr(post, true[k]).statistic)
    print(json.dumps(out), flush=True)
    return out


PARTS = ("synthetic", "oracle", "ednet", "scaling", "cohorts")


def _part(row: dict) -> str:
    """Which part of the bench wrote a result row (for --only replacement)."""
    if row.get("experiment") == "scaling":
        return "scaling"
    if row.get("experiment") == "cohorts":
        return "cohorts"
    if row.get("protocol") in ("psikt-window", "psikt-within-learner"):
        return "ednet"
    if "identifiability" in row.get("dataset", ""):
        return "oracle"
    return "synthetic"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default=None, help="seeds (synthetic/oracle default 0,1,2; cohorts default 0,1,2,3,4)")
    ap.add_argument("--learners", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--kcs", type=int, default=10)
    ap.add_argument("--decoupled", type=float, default=None, help="generator's decoupled-practice share (default 0.3)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="psikt option key=value (repeatable)")
    ap.add_argument(
        "--only",
        default=None,
        help=f"comma list of parts to run ({', '.join(PARTS)}); their rows replace the same parts' rows in --out, "
        "the other rows are kept (default: synthetic, ednet and scaling, written afresh; cohorts rows are kept)",
    )
    ap.add_argument("--no-real", action="store_true", help="skip the EdNet comparison (default run)")
    ap.add_argument("--no-scaling", action="store_true", help="skip the scaling part (default run)")
    ap.add_argument("--ablation", action="store_true", help="also run seed 0 with decoupled practice 0 (identifiability)")
    ap.add_argument("--only-real", action="store_true", help="same as --only ednet")
    ap.add_argument("--oracle", action="store_true", help="also write truth-level identifiability rows per seed")
    ap.add_argument("--only-oracle", action="store_true", help="same as --only oracle")
    ap.add_argument("--ednet-seed", type=int, default=0, help="seed of the EdNet learner split and training")
    ap.add_argument("--scaling-sizes", default="100,1000,10000", help="learner counts of the scaling part")
    ap.add_argument("--scaling-kcs", type=int, default=100)
    ap.add_argument("--scaling-epochs", type=int, default=3, help="fixed epochs per scaling run (no early stopping)")
    ap.add_argument("--datasets", default="ednet_small,assist2015", help=f"cohorts: datasets ({', '.join(COHORT_DATASETS)})")
    ap.add_argument("--cohorts", default="100,1000,all", help="cohorts: training cohort sizes (N or all)")
    ap.add_argument("--models", default=",".join(COHORT_MODELS), help=f"cohorts: models ({', '.join(COHORT_MODELS)})")
    ap.add_argument(
        "--model-cohorts",
        action="append",
        default=[],
        metavar="MODEL=C1,C2",
        help="cohorts: run MODEL only at these cohorts (repeatable; e.g. psikt-amortized=100)",
    )
    ap.add_argument(
        "--cohort-seeds-at",
        action="append",
        default=[],
        metavar="COHORT=S1,S2",
        help="cohorts: run this cohort only with these seeds (repeatable; e.g. 1000=0,1,2)",
    )
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="cohorts: recompute the selected rows even when --out has them (default: skip them; rows of "
        "other selections are kept either way)",
    )
    ap.add_argument("--scaling-child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "psikt.json"))
    args = ap.parse_args()
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path.home() / ".cache" / "kt" / "jax"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if args.scaling_child is not None:
        return scaling_child(args.scaling_child, args.kcs, args.steps, args.scaling_epochs, 0)
    only = None
    if args.only:
        only = {p.strip() for p in args.only.split(",") if p.strip()}
    if args.only_real:
        only = (only or set()) | {"ednet"}
    if args.only_oracle:
        only = (only or set()) | {"oracle"}
    if only and not only <= set(PARTS):
        ap.error(f"--only {args.only}: choose from {', '.join(PARTS)}")
    run = (
        only
        if only
        else {"synthetic", "ednet", "scaling"}
        - ({"ednet"} if args.no_real else set())
        - ({"scaling"} if args.no_scaling else set())
        | ({"oracle"} if args.oracle else set())
    )
    sets = dict(BENCH_SETS)
    for kv in args.sets:
        k, _, v = kv.partition("=")
        sets[k.strip()] = v.strip()
    seeds = [int(s) for s in (args.seeds or "0,1,2").split(",") if s.strip()]
    rows = []
    if "synthetic" in run:
        for seed in seeds:
            row = synthetic(seed, args, sets)
            row["config"] = sets
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "generator"}), flush=True)
        syn = [r for r in rows if "edge_auroc" in r]
        if syn:
            keys = (
                "edge_auroc",
                "edge_auprc",
                "spearman_alpha",
                "spearman_mu",
                "spearman_sigma",
                "spearman_gamma",
                "seconds_per_update",
                "train_seconds",
            )
            mean = {k: float(sum(r[k] for r in syn) / len(syn)) for k in keys}
            rows.append(
                {
                    "dataset": f"synthetic/ou-graph K={args.kcs} {args.learners}x{args.steps}, mean over seeds {seeds}",
                    "split": "as the seed rows",
                    "model": "psikt",
                    "impl": "kt",
                    **{f"mean_{k}": v for k, v in mean.items()},
                    "notes": NOTE_MEAN,
                    "acceptance": {
                        "edge_auroc >= 0.75": mean["edge_auroc"] >= 0.75,
                        "spearman_alpha >= 0.5": mean["spearman_alpha"] >= 0.5,
                        "spearman_mu >= 0.5": mean["spearman_mu"] >= 0.5,
                    },
                    "config": sets,
                }
            )
        if args.ablation:
            a = argparse.Namespace(**{**vars(args), "decoupled": 0.0})
            row = synthetic(0, a, sets)
            row["dataset"] += ", decoupled practice 0 (ablation)"
            row["config"] = sets
            rows.append(row)
    if "oracle" in run:
        rows += [identifiability(seed, args) for seed in seeds]
    if "ednet" in run:
        rows += ednet(args.ednet_seed, sets)
    if "scaling" in run:
        rows += scaling(args)
    if "cohorts" in run:
        rows += cohorts(args)
    if only and Path(args.out).exists():  # keep the other parts' rows of the previous run
        old = json.loads(Path(args.out).read_text())["rows"]
        rows = [r for r in old if _part(r) not in only] + rows
    elif Path(args.out).exists():  # a default run is written afresh, except the (long) cohorts rows it does not rerun
        rows = [r for r in json.loads(Path(args.out).read_text())["rows"] if _part(r) == "cohorts"] + rows
        for r in rows:
            if "mean_edge_auroc" in r:
                r["notes"] = NOTE_MEAN
    _write_results(args.out, rows)
    print(f"\n{'row':60} {'AUROC':>6} {'rho_a':>6} {'rho_mu':>6} {'s/upd':>7} {'train s':>8}")
    for r in rows:
        if "edge_auroc" in r:
            print(
                f"{r['dataset'][:60]:60} {r['edge_auroc']:6.3f} {r['spearman_alpha']:6.3f} {r['spearman_mu']:6.3f} "
                f"{r['seconds_per_update']:7.4f} {r['train_seconds']:8.1f}"
            )
        elif "mean_edge_auroc" in r:
            print(
                f"{'mean':60} {r['mean_edge_auroc']:6.3f} {r['mean_spearman_alpha']:6.3f} {r['mean_spearman_mu']:6.3f} "
                f"{r['mean_seconds_per_update']:7.4f} {r['mean_train_seconds']:8.1f}"
            )
        elif "oracle_spearman_alpha" in r:
            print(
                f"{r['dataset'][:60]:60} dLL graph removed {r['dll_graph_removed']:.1f}, alpha shuffled {r['dll_alpha_shuffled']:.1f}; "
                f"oracle rho_a {r['oracle_spearman_alpha']:.3f} rho_mu {r['oracle_spearman_mu']:.3f}"
            )
        elif _part(r) == "ednet":
            print(f"EdNet window  {r['model']:26} acc {r['accuracy']:.3f} F1 {r['f1']:.3f} AUC {r['auc']:.3f}")
        elif _part(r) == "scaling":
            print(
                f"scaling {r['learners']:>6} learners: {r['seconds_per_epoch_steady']:8.2f} s/epoch, "
                f"{r['ms_per_learner_epoch']:.2f} ms/learner-epoch (x{r['per_learner_time_ratio_vs_smallest']:.2f}), "
                f"peak RSS {r['peak_rss_mb']:.0f} MB"
            )
    cohorts_table(rows)


if __name__ == "__main__":
    sys.exit(main())
