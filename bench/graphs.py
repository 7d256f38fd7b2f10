"""Prerequisite-graph recovery bench (issue 16): which graph methods recover a known DAG, and how far the data allow.

Usage: python bench/graphs.py [--kcs 10,30] [--learners 100,300,1000,3000] [--steps 100] [--seeds 0,1,2,3,4]
                              [--methods mastery,gated,transition,causal-support,dkt,psikt] [--only gated-random,gated-curriculum,ou-graph]
                              [--ou-effect 1] [--effect 0.8] [--edge-prob P] [--no-ceiling] [--ceiling-seeds 0] [--oracle] [--oracle-learners 300]
                              [--dkt-hidden 64] [--dkt-epochs 20] [--bootstrap 20] [--bootstrap-methods mastery] [--calibration-thresholds 0.5,0.7,0.8]
                              [--out bench/results/graphs.json]

       python bench/graphs.py --kcs 10 --learners 1000 --only gated-random,gated-curriculum --methods mastery,transition
       python bench/graphs.py --kcs 10 --learners 1000 --only gated-random,gated-curriculum --methods mastery --bootstrap 20

Generators (parts, selected with ``--only``): ``gated-random`` and
``gated-curriculum`` (``kt simulate --kind gated`` with its defaults and the
given schedule; kt.data.synthetic_gated) and ``ou-graph`` (PSI-KT's model,
``kt simulate --kind ou-graph``, graph term scaled by ``--ou-effect``).
Every (part, K, learners) setting runs for every seed; each method gets
the whole simulated data set (no split: structure learning is unsupervised
and the truth is never seen; DKT keeps 10% of its learners for early
stopping).

Methods: ``mastery`` (kt.graph.mastery, the mastery-regression structure
learner), ``gated`` (kt.graph.gated, a gated-BKT likelihood with a soft
graph fitted by gradient; default options), ``transition`` (how often i is practised right before k), ``causal-support``
(kt.graph.support, what BKT models export) and ``dkt`` (conditional
influence of a small DKT, kt.graph.influence; ``--dkt-hidden``,
``--dkt-epochs``, patience 3). Scored over the K(K-1) ordered pairs
(kt.graph.evaluate): edge AUROC, AUPRC with the base rate, F1 of the
top-|E| pairs, orientation accuracy (share of true edges with
p_ik > p_ki); seconds to build the graph (DKT: training included).

Ceiling (on by default): the log-likelihood gain of the true generator with
its graph over the same generator with an empty graph, all other
parameters true, in nats and nats per true edge: exact forward pass over
the 2^K states (gated, K <= 12) or a particle filter (gated K > 12: 128
particles; ou-graph: 256 particles, kt.data.synthetic.ou_graph_loglik),
common random numbers for both graphs. A setting whose gain per edge is
below 1.92 nats (the 5% critical value of a one-degree-of-freedom
likelihood-ratio test) is flagged ``identifiable: false``: even the true
model could not tell a typical edge from none. ``--oracle`` adds the
oracle edge ranking (seed 0 only, first
``--oracle-learners`` learners): each ordered pair scored by the
log-likelihood change of adding (or, for a true edge, removing) that edge
under the true parameters, for gated exact for K <= 12 and by the particle filter
(128 particles, common random numbers) above, for ou-graph by the particle filter (256 particles); K = 30 with 1,000 learners
takes about 1.6 hours on one core.

Calibration of the bootstrap stability (``--bootstrap N``, for the data
methods of ``--bootstrap-methods``, default mastery; kt.graph.bootstrap):
the method's graph is refitted on N learner
resamples (seeded with the setting's seed) and, for every export threshold
of ``--calibration-thresholds``, the edges the full-data graph keeps at that
threshold (prob >= t and stronger than the reverse edge, the bootstrap's
keep rule) are binned by stability (>= 0.9, 0.7-0.9, 0.5-0.7, < 0.5); per
bin the row gives the number of kept edges, how many are true edges, and
their share (precision). Model name ``<method>-bootstrap@t``; the summary
row pools the seeds (true / kept over all seeds) and also gives the mean of
the per-seed shares. The issue's acceptance: edges at stability >= 0.9 are
true at least 90% of the time (``acceptance_met``).

Rows per seed and summary rows (``seed: "mean"``: mean and sd over seeds of
every metric); writes bench/results/graphs.json (rows per
shared/BENCHMARKS.md). With ``--only`` the rows of the other parts in
``--out`` are kept, and so is a row's ceiling when it is rerun with
``--no-ceiling``.
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
PARTS = ("gated-random", "gated-curriculum", "ou-graph")
METHODS = ("mastery", "gated", "transition", "causal-support", "dkt", "psikt")
METRICS = ("edge_auroc", "edge_auprc", "orientation_accuracy", "f1_at_top_true", "train_seconds")
STABILITY_BINS = ((">=0.9", 0.9, 1.01), ("0.7-0.9", 0.7, 0.9), ("0.5-0.7", 0.5, 0.7), ("<0.5", 0.0, 0.5))
LR_CRITICAL = 1.92  # nats: 5% critical value of a 1-df likelihood-ratio test (chi2 3.84 / 2)


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def simulate(part: str, K: int, N: int, T: int, seed: int, args):
    if part == "ou-graph":
        from kt.data.synthetic import simulate_ou_graph

        return simulate_ou_graph(
            N, K, T, seed=seed, effect=args.ou_effect, edge_prob=0.3 if args.edge_prob is None else args.edge_prob
        )
    from kt.data.synthetic_gated import simulate_gated

    return simulate_gated(N, K, T, seed=seed, schedule=part.split("-", 1)[1], effect=args.effect, edge_prob=args.edge_prob)


def ceiling(part: str, frame, truth) -> dict:
    """Log-likelihood gain of the true graph over an empty one, all other parameters true."""
    import numpy as np

    K = len(truth["kcs"])
    n_edges = len(truth["edges"])
    t0 = time.perf_counter()
    if part == "ou-graph":
        from kt.data.synthetic import ou_graph_loglik

        how = "particle filter, 256 particles"
        full = ou_graph_loglik(frame, truth, particles=256, seed=1).sum()
        empty = ou_graph_loglik(frame, truth, adjacency=np.zeros((K, K)), particles=256, seed=1).sum()
    else:
        from kt.data.synthetic_gated import _EXACT_MAX_K, gated_loglik

        exact = K <= _EXACT_MAX_K
        how = "exact forward pass" if exact else "particle filter, 128 particles"
        full = gated_loglik(frame, truth, particles=128, seed=1).sum()
        empty = gated_loglik(frame, truth, adjacency=np.zeros((K, K)), particles=128, seed=1).sum()
    gain = float(full - empty)
    per_edge = gain / max(n_edges, 1)
    return {
        "ceiling_nats": gain,
        "ceiling_nats_per_edge": per_edge,
        "ceiling_method": how,
        "loglik_true_graph": float(full),
        "identifiable": bool(per_edge >= LR_CRITICAL),
        "ceiling_seconds": time.perf_counter() - t0,
    }


def oracle_graph(frame, truth, n_learners: int, part: str = "gated-random"):
    """Log-likelihood change of toggling each ordered pair (first n_learners learners, true parameters).

    gated: exact for K <= 12, particle filter (128 particles) above; ou-graph:
    particle filter (256 particles); common random numbers across toggles.
    """
    import numpy as np
    import polars as pl

    from kt.graph.graph import PrerequisiteGraph

    ou = part == "ou-graph"
    key = "traits" if ou else "learners"
    users = truth[key][:n_learners]
    keep = [r["user_id"] for r in users]
    sub = frame.filter(pl.col("user_id").is_in(keep))
    tr = dict(truth, **{key: users}, settings=dict(truth["settings"], learners=len(users)))
    if ou:
        from kt.data.synthetic import ou_graph_loglik

        def loglik(B):
            return ou_graph_loglik(sub, tr, adjacency=B, particles=256, seed=1).sum()
    else:
        from kt.data.synthetic_gated import gated_loglik

        def loglik(B):
            return gated_loglik(sub, tr, adjacency=B, particles=128, seed=1).sum()

    A = np.array(truth["adjacency"], np.float64)
    K = len(A)
    base = loglik(A)
    score = np.zeros((K, K))
    for i in range(K):
        for k in range(K):
            if i != k:
                B = A.copy()
                B[i, k] = 1 - B[i, k]
                d = base - loglik(B)
                score[i, k] = d if A[i, k] else -d  # LL(with edge) - LL(without)
    prob = 1.0 / (1.0 + np.exp(-np.clip(score, -50, 50)))
    return PrerequisiteGraph(truth["kcs"], prob, "oracle", score=score)


def dkt_graph(data, seed: int, args):
    from kt.data.splits import train_valid
    from kt.graph.build import graph_for
    from kt.models.base import create

    fit_on, valid = train_valid(data, 0.1, seed)
    model = create("dkt", hidden=args.dkt_hidden, epochs=args.dkt_epochs, patience=3, window=min(200, args.steps))
    model.fit(fit_on, valid=valid, key=seed)
    return graph_for(model, data)


def psikt_graph(data, seed: int, sets: list[str] | None = None):
    """PSI-KT's own learned graph (default options, or ``sets`` as ``--set``), early-stopped on 10% of the learners."""
    from kt.data.splits import train_valid
    from kt.models.base import create

    fit_on, valid = train_valid(data, 0.1, seed)
    model = create("psikt", sets=sets or [])
    model.fit(fit_on, valid=valid, key=seed)
    return model.graph()


def run_setting(part: str, K: int, N: int, seed: int, args, tmp: Path) -> list[dict]:
    import kt
    from kt.graph.build import data_graph
    from kt.graph.evaluate import graph_metrics
    from kt.graph.truth import Truth

    frame, truth = simulate(part, K, N, args.steps, seed, args)
    path = tmp / f"{part}-{K}-{N}-{seed}.csv"
    frame.write_csv(path)
    data = kt.load(str(path))
    os.unlink(path)
    true = Truth([tuple(e) for e in truth["edges"]], truth["kcs"], "truth", "json")
    effect = args.ou_effect if part == "ou-graph" else args.effect
    dataset = (
        f"{part}/K{K}/N{N}/T{args.steps}"
        + ("" if effect == (1.0 if part == "ou-graph" else 0.8) else f"/effect{effect:g}")
        + ("" if args.edge_prob is None else f"/p{args.edge_prob:g}")
    )
    base = {
        "dataset": dataset,
        "part": part,
        "generator": "gated" if part.startswith("gated") else "ou-graph",
        "schedule": part.split("-", 1)[1] if part.startswith("gated") else "ou-graph curriculum (30% decoupled)",
        "kcs": K,
        "learners": N,
        "steps": args.steps,
        "seed": seed,
        "n_true_edges": len(truth["edges"]),
        "effect": effect,
        "edge_prob": truth["settings"]["edge_prob"],
        "impl": "kt",
    }
    ceil = ceiling(part, frame, truth) if args.ceiling and (args.ceiling_seeds is None or seed in args.ceiling_seeds) else {}
    rows = []
    methods = list(args.methods)
    if args.oracle and seed == args.seeds[0]:
        methods.append("oracle")
    for m in methods:
        t0 = time.perf_counter()
        if m == "dkt":
            g = dkt_graph(data, seed, args)
        elif m == "psikt":
            g = psikt_graph(data, seed, args.psikt_set)
        elif m == "oracle":
            g = oracle_graph(frame, truth, args.oracle_learners, part)
        else:
            g = data_graph(data, m, truth["kcs"])
        secs = time.perf_counter() - t0
        res = graph_metrics(g, true)
        calibrate = bool(m in args.bootstrap_methods and args.bootstrap) or g.stability is not None
        calib = calibration_rows(data, truth, g, base, seed, args, label=_label(m, args)) if calibrate else []
        row = {
            **base,
            "model": _label(m, args),
            "graph_method": g.method,
            "edge_auroc": res["auroc"],
            "edge_auprc": res["auprc"],
            "base_rate": res["base_rate"],
            "orientation_accuracy": res["orientation_accuracy"],
            "f1_at_top_true": res["f1_at_top_true"],
            "train_seconds": secs,
            **ceil,
            "notes": (
                f"oracle: first {args.oracle_learners} learners, true parameters"
                if m == "oracle"
                else "DKT training (early stopping on 10% of learners) included"
                if m == "dkt"
                else f"PSI-KT ({', '.join(args.psikt_set) or 'default options'}) training (early stopping on 10% of learners) included"
                if m == "psikt"
                else ""
            ),
        }
        rows.append(row)
        rows += calib
        print(
            f"{dataset:32} seed {seed} {m:15} AUROC {res['auroc']:.3f} orient {res['orientation_accuracy']:.3f} "
            f"AUPRC {res['auprc']:.3f} (base {res['base_rate']:.3f}) {secs:6.1f} s"
            + (f"  ceiling {ceil['ceiling_nats_per_edge']:.1f} nats/edge" if ceil else ""),
            flush=True,
        )
    return rows


def _label(m: str, args) -> str:
    """A method's row name: PSI-KT with its --psikt-set options in brackets."""
    return f"psikt[{','.join(args.psikt_set)}]" if m == "psikt" and args.psikt_set else m


def calibration_rows(data, truth, g, base: dict, seed: int, args, label: str | None = None) -> list[dict]:
    """Stability-bin calibration of a graph's bootstrap at each export threshold (one row per threshold).

    A data method is refitted here (``--bootstrap`` refits); a graph that
    carries its own stability (PSI-KT with ``fit_resample``, computed at
    threshold 0.5 in training) is binned by it at threshold 0.5 only.
    """
    import numpy as np

    from kt.graph.bootstrap import kept_mask, refit_probs, stability_of

    t0 = time.perf_counter()
    own = g.stability is not None
    probs = None if own else refit_probs(data, g.method, g.kcs, n=args.bootstrap, seed=seed)
    refits = g.meta["bootstrap"]["refits"] if own else args.bootstrap
    secs = time.perf_counter() - t0
    pos = {k: i for i, k in enumerate(g.kcs)}
    A = np.zeros((g.n_kcs, g.n_kcs), bool)
    for a, b in truth["edges"]:
        A[pos[str(a)], pos[str(b)]] = True
    rows = []
    for t in [0.5] if own else args.calibration_thresholds:
        kept = kept_mask(g.prob, t)
        stab = g.stability if own else stability_of(probs, t)
        row = {
            **base,
            "model": f"{label or g.method}-bootstrap@{t:g}",
            "graph_method": g.method,
            "bootstrap_refits": refits,
            "bootstrap_seed": seed,
            "calibration_threshold": t,
            "kept_edges": int(kept.sum()),
            "kept_true_edges": int((kept & A).sum()),
            "bootstrap_seconds": secs,
            "recall_stable": float((kept & A & (stab >= 0.9)).sum() / max(A.sum(), 1)),
            "notes": "kept = prob >= threshold and prob > reverse; bins by bootstrap stability (share of refits keeping the edge)",
        }
        for name, lo, hi in STABILITY_BINS:
            m = kept & (stab >= lo) & (stab < hi)
            row[f"kept[{name}]"] = int(m.sum())
            row[f"true[{name}]"] = int((m & A).sum())
            row[f"precision[{name}]"] = float((m & A).sum() / m.sum()) if m.sum() else None
        rows.append(row)
        print(
            f"{base['dataset']:32} seed {seed} bootstrap@{t:g}: "
            + "  ".join(f"{name} {row[f'true[{name}]']}/{row[f'kept[{name}]']}" for name, _, _ in STABILITY_BINS)
            + f"  ({secs:.1f} s for {refits} refits)",
            flush=True,
        )
    return rows


def summarise_calibration(rs: list[dict]) -> dict:
    """Pooled (true / kept over seeds) and seed-mean precision per stability bin."""
    import numpy as np

    s = {
        k: rs[0][k]
        for k in (
            "dataset",
            "part",
            "generator",
            "schedule",
            "kcs",
            "learners",
            "steps",
            "effect",
            "impl",
            "model",
            "graph_method",
            "bootstrap_refits",
            "calibration_threshold",
        )
    }
    s["seed"] = "mean"
    s["seeds"] = [r["seed"] for r in rs]
    for name, _, _ in STABILITY_BINS:
        kept = sum(r[f"kept[{name}]"] for r in rs)
        true = sum(r[f"true[{name}]"] for r in rs)
        s[f"kept[{name}]"], s[f"true[{name}]"] = kept, true
        s[f"precision[{name}]"] = true / kept if kept else None
        per = [r[f"precision[{name}]"] for r in rs if r[f"precision[{name}]"] is not None]
        s[f"precision_seed_mean[{name}]"] = float(np.mean(per)) if per else None
        s[f"precision_seed_sd[{name}]"] = float(np.std(per, ddof=1)) if len(per) > 1 else None
    for k in ("recall_stable", "bootstrap_seconds", "kept_edges", "kept_true_edges"):
        s[k] = float(np.mean([r[k] for r in rs]))
    p = s["precision[>=0.9]"]
    s["acceptance_met"] = bool(p is not None and p >= 0.9)
    return s


def summarise(rows: list[dict]) -> list[dict]:
    import numpy as np

    out = []
    keys = sorted({(r["dataset"], r["model"]) for r in rows if r["seed"] != "mean"})
    for ds, m in keys:
        rs = [r for r in rows if r["dataset"] == ds and r["model"] == m and r["seed"] != "mean"]
        if "-bootstrap@" in m:
            out.append(summarise_calibration(rs))
            continue
        s = {
            k: rs[0][k]
            for k in ("dataset", "part", "generator", "schedule", "kcs", "learners", "steps", "effect", "impl", "model")
        }
        s["seed"] = "mean"
        s["seeds"] = [r["seed"] for r in rs]
        for k in METRICS + ("ceiling_nats", "ceiling_nats_per_edge", "base_rate"):
            v = np.array([r[k] for r in rs if r.get(k) is not None], np.float64)
            if len(v):
                s[k] = float(v.mean())
                s[f"{k}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        if any("identifiable" in r for r in rs):
            s["identifiable"] = bool(s.get("ceiling_nats_per_edge", 0) >= LR_CRITICAL)
        out.append(s)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kcs", default="10,30")
    ap.add_argument("--learners", default="100,300,1000,3000")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument(
        "--methods",
        default=",".join(m for m in METHODS if m != "psikt"),
        help="graph methods (psikt: PSI-KT's learned graph, trained per setting; not in the default list)",
    )
    ap.add_argument("--only", default=",".join(PARTS), help="parts to run: " + ", ".join(PARTS))
    ap.add_argument(
        "--psikt-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a PSI-KT option for --methods psikt (repeatable; the rows' model becomes psikt[KEY=VALUE,...])",
    )
    ap.add_argument("--effect", type=float, default=0.8, help="gated: gate strength")
    ap.add_argument(
        "--edge-prob",
        type=float,
        default=None,
        help="probability of each forward edge of the random DAG (both generators; default the generator's: ou-graph 0.3, "
        "gated 1.35 prerequisites per KC on average, 0.3 at K = 10 and 0.0931 at K = 30); the rows' dataset ends in /pP when given",
    )
    ap.add_argument("--ou-effect", type=float, default=1.0, help="ou-graph: scale of the graph term")
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false")
    ap.add_argument("--ceiling-seeds", default=None, help="compute the ceiling only for these seeds (default: all)")
    ap.add_argument("--oracle", action="store_true")
    ap.add_argument("--oracle-learners", type=int, default=300)
    ap.add_argument("--dkt-hidden", type=int, default=64)
    ap.add_argument("--dkt-epochs", type=int, default=20)
    ap.add_argument(
        "--bootstrap", type=int, default=0, help="refits on learner resamples for the stability calibration (0: none)"
    )
    ap.add_argument("--bootstrap-methods", default="mastery", help="data methods whose bootstrap is calibrated")
    ap.add_argument(
        "--calibration-thresholds", default="0.5,0.7,0.8", help="export thresholds at which the calibration is measured"
    )
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "graphs.json"))
    args = ap.parse_args(argv)
    args.seeds = _ints(args.seeds)
    args.ceiling_seeds = None if args.ceiling_seeds is None else _ints(args.ceiling_seeds)
    args.methods = [m for m in args.methods.split(",") if m]
    args.calibration_thresholds = [float(x) for x in args.calibration_thresholds.split(",") if x.strip()]
    if args.bootstrap == 1 or args.bootstrap < 0:
        sys.exit("--bootstrap: 0 (none) or at least 2 refits")
    args.bootstrap_methods = [m for m in args.bootstrap_methods.split(",") if m]
    if args.bootstrap and not set(args.bootstrap_methods) & set(args.methods):
        sys.exit("--bootstrap calibrates the --bootstrap-methods (default mastery): add one of them to --methods")
    parts = [p for p in args.only.split(",") if p]
    bad = [m for m in args.methods if m not in METHODS] + [p for p in parts if p not in PARTS]
    if bad:
        sys.exit(f"unknown method or part {bad[0]!r}: methods {', '.join(METHODS)}; parts {', '.join(PARTS)}")

    rows = []
    with tempfile.TemporaryDirectory(prefix="kt-graphs-") as tmp:
        for part in parts:
            for K in _ints(args.kcs):
                for N in _ints(args.learners):
                    for seed in args.seeds:
                        rows += run_setting(part, K, N, seed, args, Path(tmp))
    if Path(args.out).exists():  # keep rows of other parts/settings/methods from earlier runs
        old = [r for r in json.loads(Path(args.out).read_text())["rows"] if r["seed"] != "mean"]
        new = {(r["dataset"], r["model"], r["seed"]) for r in rows}
        ceilings = {(r["dataset"], r["model"], r["seed"]): r for r in old if "ceiling_nats" in r}
        for r in rows:  # a rerun with --no-ceiling keeps the ceiling measured before
            prev = ceilings.get((r["dataset"], r["model"], r["seed"]))
            if prev is not None and "ceiling_nats" not in r:
                r.update(
                    {k: v for k, v in prev.items() if k.startswith("ceiling_") or k in ("loglik_true_graph", "identifiable")}
                )
        rows = [r for r in old if (r["dataset"], r["model"], r["seed"]) not in new] + rows
    rows = [r for r in rows if r["seed"] != "mean"]
    rows += summarise(rows)
    load = os.getloadavg()[0]
    out = {
        "machine": f"{os.cpu_count()} CPU cores, no GPU ({platform.processor() or platform.machine()}); shared with other jobs "
        f"(load average at end {load:.2f}), so timings are indicative",
        "date": dt.date.today().isoformat(),
        "versions": {
            "kt": __import__("kt").__version__,
            "jax": __import__("jax").__version__,
            "numpy": __import__("numpy").__version__,
            "polars": __import__("polars").__version__,
        },
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": rows,
    }
    from kt.atomic import write_text

    write_text(args.out, json.dumps(out, indent=1, default=float))
    print(
        f"\n{'setting':32} {'method':15} {'AUROC':>13} {'orient':>13} {'AUPRC':>6} {'base':>5} {'F1@|E|':>6} {'ceiling/edge':>12} {'s':>6}"
    )
    for r in sorted(
        (r for r in rows if r["seed"] == "mean" and "calibration_threshold" not in r), key=lambda r: (r["dataset"], r["model"])
    ):
        ce = r.get("ceiling_nats_per_edge")
        flag = "" if r.get("identifiable", True) else " (!)"
        print(
            f"{r['dataset']:32} {r['model']:15} {r['edge_auroc']:.3f}±{r['edge_auroc_sd']:.3f} "
            f"{r['orientation_accuracy']:.3f}±{r['orientation_accuracy_sd']:.3f} {r['edge_auprc']:6.3f} {r['base_rate']:5.3f} "
            f"{r['f1_at_top_true']:6.3f} {('%.1f' % ce) if ce is not None else 'n/a':>12}{flag} {r['train_seconds']:6.1f}"
        )
    print(f"(!) = ceiling below {LR_CRITICAL} nats per edge: not identifiable even with the true model.")
    cal = sorted(
        (r for r in rows if r["seed"] == "mean" and "calibration_threshold" in r),
        key=lambda r: (r["dataset"], r["graph_method"], r["calibration_threshold"]),
    )
    if cal:
        print("\nBootstrap calibration: share of kept edges that are true, pooled over seeds (true/kept)")
        print(
            f"{'setting':32} {'method':8} {'thr':>4} "
            + " ".join(f"{name:>16}" for name, _, _ in STABILITY_BINS)
            + f" {'recall@0.9':>10} {'refits':>6}"
        )
        for r in cal:
            cells = []
            for name, _, _ in STABILITY_BINS:
                p = r[f"precision[{name}]"]
                cells.append(f"{'n/a' if p is None else f'{p:.2f}'} ({r[f'true[{name}]']}/{r[f'kept[{name}]']})".rjust(16))
            print(
                f"{r['dataset']:32} {r['graph_method']:8} {r['calibration_threshold']:4.2f} "
                + " ".join(cells)
                + f" {r['recall_stable']:10.2f} {r['bootstrap_refits']:6d}"
                + ("" if r["acceptance_met"] else "  (!)")
            )
        print("(!) = edges at stability >= 0.9 are true less than 90% of the time (the issue's acceptance)")
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
