"""DKT accuracy and training throughput on the issue's splits (kt side).

Usage: python bench/dkt.py [--datasets assist2009,statics2011,assist2015] [--epochs N]

Protocol (shared/spec/EVALUATION.md): KC = the file's skill_id (for Gervet
TSV-5 files: the KC-set index) unless --kc item; DKT with pyKT defaults (embedding + LSTM 200,
dropout 0.1, Adam 1e-3, batch 256, training chunks of 200, early stopping
on validation AUC with patience 10, validation = 10% of training learners,
seed 0); test scored in pyKT's window mode (no history reset, each step
sees up to 199 predecessors), each learner's first attempt unscored; AUC is
global over all scored attempts. Statics 2011 (Gervet) has no published
split: learners are split 80/20 with seed 0. Writes bench/results/dkt.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KT_SHARED_DATA") or REPO.parent / "shared" / "data")

DATASETS = {
    "assist2009": ("assist2009/gervet/preprocessed_data_train.csv.gz", "assist2009/gervet/preprocessed_data_test.csv.gz"),
    "statics2011": ("statics2011/gervet/preprocessed_data.csv.gz", None),
    "assist2015": ("assist2015/dkvmn/assist2015_train.csv.gz", "assist2015/dkvmn/assist2015_test.csv.gz"),
}
# Per-dataset protocol: Statics 2011's KC is the problem step (its item_id, as in
# bench/cakt.py and Gervet et al.), with a 30-epoch cap (validation AUC still creeps
# up slowly there); the ASSISTments files use their skill_id and no cap.
PROTOCOL = {"statics2011": {"kc": "item", "epochs": 30}}


def run(
    name: str, epochs: int | None, seed: int, kc: str = "skill", batching: str | None = None, extra: dict | None = None
) -> dict:
    import jax
    import numpy as np

    import kt
    from kt.data.splits import split_learners, train_valid
    from kt.eval.protocols import next_step
    from kt.models.base import create

    train_path, test_path = (SHARED / p if p else None for p in DATASETS[name])
    overrides = {"skill_id": "item_id"} if kc == "item" else None
    data = kt.load(str(train_path), overrides=overrides)
    if test_path is None:
        users = data.frame["user_idx"].unique().to_numpy()
        tr_u, te_u = split_learners(users, (0.8, 0.2), seed)
        train, test = data.subset(tr_u), data.subset(te_u)
        split = "learners 80/20, seed 0"
    else:
        train = data
        test = kt.load(str(test_path), vocab=data.vocab, overrides=overrides)
        split = "train->test"
    fit_on, valid = train_valid(train, 0.1, seed)
    sets = {} if epochs is None else {"epochs": epochs}
    if batching:
        sets["batching"] = batching
    sets.update(extra or {})
    model = create("dkt", **sets)
    t0 = time.perf_counter()
    model.fit(
        fit_on,
        valid=valid,
        key=seed,
        progress=lambda r: print(
            f"  {name} epoch {r['epoch']}: "
            f"loss {r['train_loss']:.4f} valid AUC {r.get('valid_auc', float('nan')):.4f} "
            f"{r['interactions_per_second']:,.0f}/s",
            flush=True,
        ),
    )
    train_seconds = time.perf_counter() - t0
    res = next_step(model, test, breakdown=False)
    hist = model.meta["history"]
    steady = [r["interactions_per_second"] for r in hist[1:]] or [hist[0]["interactions_per_second"]]
    return {
        "dataset": f"{name}/{DATASETS[name][0].split('/')[1]}",
        "split": split,
        "kc": "item_id (problem/step id)" if kc == "item" else "skill_id of the file",
        "model": "dkt",
        "impl": "kt",
        "batching": model.config.batching,
        "config": {k: v for k, v in sets.items() if k not in ("epochs", "batching")},
        "epoch_cap": epochs,
        "auc": res["auc"],
        "accuracy": res["accuracy"],
        "rmse": res["rmse"],
        "n_scored": res["n"],
        "eval_window": res["window"],
        "train_seconds": train_seconds,
        "epochs_run": len(hist),
        "best_epoch": model.meta["best_epoch"],
        "best_valid_auc": max(r["valid_auc"] for r in hist),
        "interactions_per_second": float(np.median(steady)),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "notes": "first attempts unscored; throughput = scored training "
        "interactions/s, median over epochs 2.. (compile excluded), on 2 CPU cores",
        "jax": jax.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="assist2009,statics2011,assist2015")
    ap.add_argument(
        "--epochs", type=int, default=None, help="cap epochs (default: the model's 200 with patience 10; statics2011 30)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batching", choices=("bucket", "random", "pack"), default=None, help="DKT batching (default: the model's)")
    ap.add_argument(
        "--kc",
        choices=("skill", "item"),
        default=None,
        help="KC input: the file's skill_id or its item_id (default: statics2011 item_id, the problem step; the others skill_id)",
    )
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "dkt.json"))
    args = ap.parse_args()
    if not SHARED.exists():
        sys.exit(f"shared data not found at {SHARED}; set KT_SHARED_DATA")
    names = [n.strip() for n in args.datasets.split(",")]
    # Rows of datasets not rerun are kept, so one dataset can be rerun alone.
    old = json.loads(Path(args.out).read_text())["rows"] if Path(args.out).exists() else []
    rows = [r for r in old if r["dataset"].split("/")[0] not in names]
    for name in names:
        proto = PROTOCOL.get(name, {})
        epochs = args.epochs if args.epochs is not None else proto.get("epochs")
        row = run(name, epochs, args.seed, args.kc or proto.get("kc", "skill"), args.batching)
        rows.append(row)
        print(json.dumps(row), flush=True)
    load = os.getloadavg()[0]
    out = {
        "machine": f"{os.cpu_count()} CPU cores, no GPU ({platform.processor() or platform.machine()}); load average at end {load:.2f}",
        "date": dt.date.today().isoformat(),
        "versions": {"kt": __import__("kt").__version__, "jax": rows[0]["jax"] if rows else None},
        "rows": rows,
    }
    from kt.atomic import write_text

    write_text(args.out, json.dumps(out, indent=1))
    print(f"{'dataset':28} {'auc':>7} {'acc':>7} {'epochs':>6} {'inter/s':>9}")
    for r in rows:
        print(f"{r['dataset']:28} {r['auc']:7.4f} {r['accuracy']:7.4f} {r['epochs_run']:6d} {r['interactions_per_second']:9,.0f}")


if __name__ == "__main__":
    main()
