"""PSI-KT acceptance bench: graph and trait recovery on the ou-graph generator, update speed, a real-data row.

Usage: python bench/psikt.py [--seeds 0,1,2] [--learners 1000] [--steps 50] [--kcs 10]
                             [--set key=value ...] [--no-real] [--ablation] [--oracle | --only-oracle] [--out PATH]

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

Real data (``--no-real`` to skip): EdNet-small (shared/data, timestamps,
one KC per item) under the PSI-KT within-learner protocol of
EVALUATION.md section 8: learners with >= 50 interactions, first 50; 100
test + 20 validation learners drawn with the seed; training on the first 10
interactions of all 120; validation/test predict interactions 11-20 open
loop from the first 10; accuracy and F1 of per-MC-sample 0.5 decisions, AUC
of the mean probability. Selection on validation F1.

Writes bench/results/psikt.json (rows per shared/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
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

NOTE_MEAN = ("Acceptance not met for edge AUROC and alpha (see the per-seed rows). Seed 0 was used while developing the objective fixes "
             "(diagnostics only; no setting was chosen by its truth scores). The generator follows the spec equation by equation, and the "
             "targets are beyond what the generated outcomes contain: see the 'identifiability' rows (true parameters, particle filter). "
             "Removing the whole true graph changes the log-likelihood by only a few nats out of ~32,000 (the shift is gamma/K ~0.05 "
             "times a parent's state, entering only through (1 - r) at the between-session gaps), so single edges carry < 1 nat; and the "
             "Bayes posterior mean of alpha given every other true parameter reaches Spearman ~0.25, below the 0.5 target. "
             "A truth-free pairwise logistic-regression estimator also scores AUROC ~0.50 (seeds 0-2).")

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

    from kt.eval.metrics import auc

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
    return {"edge_auroc": auc(y, p), "edge_auprc": ap, "edge_base_rate": E / len(y), "edges_true": E,
            "f1_top_edges": f1_top, "orientation_accuracy": orient}


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
    model.fit(tr, valid=va, key=seed, progress=lambda r: print(
        f"  seed {seed} epoch {r['epoch']}: loss {r['train_loss']:.4f} valid {r.get('valid_score', float('nan')):.4f} "
        f"({r['seconds']:.1f}s)", flush=True))
    train_seconds = time.perf_counter() - t0
    g = model.graph()
    order = [g.kcs.index(k) for k in truth["kcs"]]
    P = g.prob[np.ix_(order, order)]
    row = {
        "dataset": f"synthetic/ou-graph K={args.kcs} {args.learners}x{args.steps} seed {seed}",
        "split": "learners 90/10 (10% for early stopping only)",
        "model": "psikt", "impl": "kt",
        **graph_scores(P, truth["adjacency"]),
        **trait_scores(model, truth),
        "valid_score": max(r.get("valid_score", float("-inf")) for r in model.meta["history"]),
        "select_on": model.config.select_on,
        "train_seconds": train_seconds,
        "epochs_run": len(model.meta["history"]),
        "best_epoch": model.meta["best_epoch"],
        "interactions_per_second": float(np.median([r["interactions_per_second"] for r in model.meta["history"][1:]]
                                                   or [model.meta["history"][0]["interactions_per_second"]])),
        "generator": truth["settings"],
    }
    # continual update: each learner's next 10 attempts, one arrival per learner at a time
    more, _ = simulate_ou_graph(args.learners, args.kcs, args.steps + 10, seed=seed, **gen)
    more = more.with_columns(pl.int_range(pl.len()).over("user_id").alias("_p")).filter(pl.col("_p") >= args.steps)
    last = frame.group_by("user_id").agg(pl.col("timestamp").max().alias("_last"))
    first = more.group_by("user_id").agg(pl.col("timestamp").min().alias("_first"))
    more = (more.join(last, on="user_id").join(first, on="user_id")
            .with_columns((pl.col("timestamp") - pl.col("_first") + pl.col("_last") + 2 * DAY).alias("timestamp"))
            .select("user_id", "skill_id", "timestamp", "correct").sort("user_id", "timestamp"))
    new = _load_frame(more, "new.csv", vocab=model.vocab, min_attempts=1)
    before = model.traits()
    rep = model.update(new, key=seed)
    after = model.traits()
    moved = float(np.mean(np.abs(before.join(after, on="user_id", suffix="_u").select(pl.col("mu") - pl.col("mu_u")).to_series().to_numpy())))
    row.update({
        "update_rounds": rep["arrivals"], "update_learners": rep["learners"], "update_steps": rep["steps"],
        "seconds_per_update": rep["seconds_per_update"], "first_update_seconds": rep["first_update_seconds"],
        "update_total_seconds": rep["seconds"], "update_mean_abs_mu_change": moved,
        "refit_over_update_ratio": train_seconds / max(rep["seconds_per_update"], 1e-9),
        "jax": jax.__version__,
    })
    return row


def real(seed: int, sets: dict) -> dict | None:
    import jax
    import numpy as np
    import polars as pl

    import kt
    from kt.models.base import create
    from kt.models.psikt import within_learner_metrics

    path = SHARED / "ednet_small" / "preprocessed_data_test.csv.gz"
    if not path.exists():
        print(f"  skipping the real-data row: {path} not found", flush=True)
        return None
    data = kt.load(str(path))
    f = data.frame.with_columns(pl.int_range(pl.len()).over("user_idx").alias("_p"), pl.len().over("user_idx").alias("_n"))
    f = f.filter((pl.col("_n") >= 50) & (pl.col("_p") < 50))
    users = np.sort(f["user_idx"].unique().to_numpy())
    rng = np.random.default_rng(seed)
    pick = rng.choice(users, size=min(120, len(users)), replace=False)
    test_u, valid_u = pick[:100], pick[100:]

    def sub(u, lo, hi):
        g = f.filter(pl.col("user_idx").is_in(pl.Series(u, dtype=pl.Int32).implode()) & (pl.col("_p") >= lo) & (pl.col("_p") < hi))
        return kt.Interactions(g.drop("_p", "_n"), data.vocab, data.source)

    train = sub(pick, 0, 10)
    valid = sub(valid_u, 0, 20)
    sets = {**sets, "select_on": "f1", "select_history": 10, "select_horizon": 10}
    model = create("psikt", sets=[f"{k}={v}" for k, v in sets.items()])
    t0 = time.perf_counter()
    model.fit(train, valid=valid, key=seed, progress=lambda r: print(
        f"  ednet epoch {r['epoch']}: loss {r['train_loss']:.4f} valid F1 {r.get('valid_f1', float('nan')):.4f}", flush=True))
    train_seconds = time.perf_counter() - t0
    hist = sub(test_u, 0, 10)
    preds = model.predict_ahead(hist, sub(test_u, 10, 20))
    m = within_learner_metrics(preds)
    y = preds["correct"].to_numpy()
    # context: each learner's accuracy on its first 10 interactions as the prediction of 11-20
    from kt.eval.metrics import auc

    lm = hist.frame.group_by("user_id").agg(pl.col("correct").mean().alias("lm"))
    base = preds.join(lm, on="user_id", how="left")["lm"].to_numpy()
    base_acc = float(np.mean((base >= 0.5) == (y > 0)))
    return {
        "dataset": "ednet_small (EdNet KT1 sample, 1,000 learners, timestamps)",
        "split": f"PSI-KT within-learner (EVALUATION.md 8): {len(users)} learners with >= 50 interactions, first 50; "
                 f"100 test + {len(valid_u)} validation learners (seed {seed}); train on interactions 1-10 of all; "
                 "predict 11-20 open loop from 1-10",
        "protocol": "psikt-within-learner",
        "model": "psikt", "impl": "kt",
        "accuracy": m["accuracy"], "f1": m["f1"], "auc": m["auc"], "n_scored": m["n"],
        "majority_accuracy": float(max(y.mean(), 1 - y.mean())),
        "baseline_learner_mean": {"auc": auc(y, base), "accuracy": base_acc,
                                  "what": "each test learner's accuracy on interactions 1-10 predicts 11-20"},
        "train_seconds": train_seconds, "epochs_run": len(model.meta["history"]), "best_epoch": model.meta["best_epoch"],
        "notes": "accuracy/F1 of per-sample 0.5 decisions pooled over the MC points; AUC of the mean probability; "
                 "not comparable with next-step AUC; paper (ASSIST12/17, unverified) reports accuracy .68/.63",
        "jax": jax.__version__,
    }


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
    out = {"dataset": f"synthetic/ou-graph K={args.kcs} {args.learners}x{args.steps} seed {seed}, identifiability (true parameters)",
           "model": "oracle (particle filter, true parameters)", "particles": particles, "loglik_true": float(base.sum()),
           "n_outcomes": int(frame.height), "edges_true": int(A.sum())}
    for name, kw in (("graph_removed", {"adjacency": 0 * A}), ("graph_reversed", {"adjacency": A.T.copy()}),
                     ("graph_relabelled", {"adjacency": A[np.ix_(perm, perm)]}),
                     ("alpha_shuffled", {"alpha": rng.permutation(true["alpha"])}),
                     ("mu_shuffled", {"mu": rng.permutation(true["mu"])})):
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--learners", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--kcs", type=int, default=10)
    ap.add_argument("--decoupled", type=float, default=None, help="generator's decoupled-practice share (default 0.3)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="psikt option key=value (repeatable)")
    ap.add_argument("--no-real", action="store_true", help="skip the EdNet within-learner row")
    ap.add_argument("--ablation", action="store_true", help="also run seed 0 with decoupled practice 0 (identifiability)")
    ap.add_argument("--only-real", action="store_true", help="rerun only the EdNet row and replace it in --out")
    ap.add_argument("--oracle", action="store_true", help="also write truth-level identifiability rows per seed")
    ap.add_argument("--only-oracle", action="store_true", help="compute only the identifiability rows and replace them in --out")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "psikt.json"))
    args = ap.parse_args()
    if args.only_real:
        args.seeds, args.ablation = "", False
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path.home() / ".cache" / "kt" / "jax"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    sets = dict(BENCH_SETS)
    for kv in args.sets:
        k, _, v = kv.partition("=")
        sets[k.strip()] = v.strip()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows = []
    if args.only_oracle:
        new = [identifiability(seed, args) for seed in seeds]
        old = json.loads(Path(args.out).read_text())["rows"] if Path(args.out).exists() else []
        rows = [r for r in old if "identifiability" not in r["dataset"]] + new
        for r in rows:
            if "mean_edge_auroc" in r:
                r["notes"] = NOTE_MEAN
        seeds, args.ablation, args.no_real = [], False, True
    for seed in seeds:
        row = synthetic(seed, args, sets)
        row["config"] = sets
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "generator"}), flush=True)
    syn = [r for r in rows if "edge_auroc" in r]
    if args.oracle:
        rows += [identifiability(seed, args) for seed in seeds]
    if syn and not args.only_real and not args.only_oracle:
        keys = ("edge_auroc", "edge_auprc", "spearman_alpha", "spearman_mu", "spearman_sigma", "spearman_gamma",
                "seconds_per_update", "train_seconds")
        mean = {k: float(sum(r[k] for r in syn) / len(syn)) for k in keys}
        rows.append({"dataset": f"synthetic/ou-graph K={args.kcs} {args.learners}x{args.steps}, mean over seeds {seeds}",
                     "split": "as the seed rows", "model": "psikt", "impl": "kt", **{f"mean_{k}": v for k, v in mean.items()},
                     "notes": NOTE_MEAN,
                     "acceptance": {"edge_auroc >= 0.75": mean["edge_auroc"] >= 0.75,
                                    "spearman_alpha >= 0.5": mean["spearman_alpha"] >= 0.5,
                                    "spearman_mu >= 0.5": mean["spearman_mu"] >= 0.5},
                     "config": sets})
    if args.ablation:
        a = argparse.Namespace(**{**vars(args), "decoupled": 0.0})
        row = synthetic(0, a, sets)
        row["dataset"] += ", decoupled practice 0 (ablation)"
        row["config"] = sets
        rows.append(row)
    if not args.no_real:
        row = real(0, sets)
        if row is not None:
            row["config"] = sets
            rows.append(row)
    if args.only_real and Path(args.out).exists():  # keep the synthetic rows of the previous run
        old = json.loads(Path(args.out).read_text())["rows"]
        rows = [r for r in old if r.get("protocol") != "psikt-within-learner"] + rows
    load = os.getloadavg()[0]
    out = {
        "machine": f"{os.cpu_count()} CPU cores, no GPU ({platform.processor() or platform.machine()}); shared with other jobs "
                   f"(load average at end {load:.2f}), so timings are indicative",
        "date": dt.date.today().isoformat(),
        "versions": {"kt": __import__("kt").__version__, "jax": __import__("jax").__version__},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": rows,
    }
    tmp = Path(args.out).with_suffix(".json.tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(out, indent=1, default=float))
    os.replace(tmp, args.out)
    print(f"\n{'row':60} {'AUROC':>6} {'rho_a':>6} {'rho_mu':>6} {'s/upd':>7} {'train s':>8}")
    for r in rows:
        if "edge_auroc" in r:
            print(f"{r['dataset'][:60]:60} {r['edge_auroc']:6.3f} {r['spearman_alpha']:6.3f} {r['spearman_mu']:6.3f} "
                  f"{r['seconds_per_update']:7.4f} {r['train_seconds']:8.1f}")
        elif "mean_edge_auroc" in r:
            print(f"{'mean':60} {r['mean_edge_auroc']:6.3f} {r['mean_spearman_alpha']:6.3f} {r['mean_spearman_mu']:6.3f} "
                  f"{r['mean_seconds_per_update']:7.4f} {r['mean_train_seconds']:8.1f}")
        elif "oracle_spearman_alpha" in r:
            print(f"{r['dataset'][:60]:60} dLL graph removed {r['dll_graph_removed']:.1f}, alpha shuffled {r['dll_alpha_shuffled']:.1f}; "
                  f"oracle rho_a {r['oracle_spearman_alpha']:.3f} rho_mu {r['oracle_spearman_mu']:.3f}")
        elif "f1" in r:
            b = r["baseline_learner_mean"]
            print(f"{r['dataset'][:60]:60} acc {r['accuracy']:.3f} F1 {r['f1']:.3f} AUC {r['auc']:.3f} (majority {r['majority_accuracy']:.3f}; "
                  f"learner-mean baseline acc {b['accuracy']:.3f} AUC {b['auc']:.3f})")


if __name__ == "__main__":
    sys.exit(main())
