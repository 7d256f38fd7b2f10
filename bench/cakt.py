"""CAKT vs DKT (and the no-3D-CNN ablation) on the issue's splits.

Usage: python bench/cakt.py [--datasets assist2009,statics2011] [--epochs N] [--models dkt,cakt-nocnn,cakt]

Protocol (shared/spec/EVALUATION.md, as bench/dkt.py): assist2009/gervet
train -> test with KC = the file's skill_id; statics2011/gervet with KC =
item_id (problem step), learners split 80/20 with seed 0. Every model trains
on the same 90% of the training learners and selects its epoch on the same
10% validation learners (seed 0); the test split is only scored once, in
pyKT's window mode (200), first attempts unscored, global AUC.

- dkt: kt's DKT defaults (200 epochs, patience 10).
- cakt: kt's CAKT defaults: the spec's (k 4, H 15, 1-4-8-4-1 channels, Adam
  1e-3, betas 0.9/0.99, coupled L2 1e-5, lr x0.3 every 5 epochs or on a
  training loss rise, 30 epochs, patience 10), except the batch size (kt
  default 32, see README), the embedding initialised N(0, 1) (as DKT) and
  ``--epochs`` when given (caps cakt and the ablation).
- cakt-nocnn: cakt with ``cnn=false`` (the two LSTMs only).
- cakt-embed-kaiming, cakt-nocnn-embed-kaiming: the same with the official
  code's embedding init, N(0, 2 / 225) (``embed_init=kaiming``).

Rows written before kt's default became ``normal`` (2026-12-05) were renamed
to these keys: each row's ``config`` or ``model`` key says which init it ran.

Each (dataset, model) runs in a child process so that its peak RSS is its
own. Rows are written to bench/results/cakt.json as they finish.

Resumable: every epoch is checkpointed under ``--checkpoints`` (default
bench/checkpoints/, git-ignored), one directory per (dataset, model, seed,
epoch cap). Stopping the script and running it again with the same
arguments continues each unfinished run from its last finished epoch (as
``kt train --resume``); a finished run is only re-tested. Each epoch's
record names the process that trained it (``process``: host, pid and start
time), and a row lists which epochs ran in which process
(``processes``); ``train_seconds`` is that of the final process only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
SHARED = Path(os.environ.get("KT_SHARED_DATA") or REPO.parent / "shared" / "data")
DATASETS = {
    "assist2009": (
        "assist2009/gervet/preprocessed_data_train.csv.gz",
        "assist2009/gervet/preprocessed_data_test.csv.gz",
        "skill",
    ),
    "statics2011": ("statics2011/gervet/preprocessed_data.csv.gz", None, "item"),
}
MODELS = {
    "dkt": ("dkt", {}),
    "cakt": ("cakt", {}),
    "cakt-nocnn": ("cakt", {"cnn": False}),
    "cakt-embed-kaiming": ("cakt", {"embed_init": "kaiming"}),
    "cakt-nocnn-embed-kaiming": ("cakt", {"cnn": False, "embed_init": "kaiming"}),
}


PROCESS = f"{os.uname().nodename}:{os.getpid()}:{dt.datetime.now().isoformat(timespec='seconds')}"


def one(
    name: str, model_key: str, epochs: int | None, seed: int, timing: int | None = None, checkpoints: Path | None = None
) -> dict:
    """Train and test one model on one dataset (in this process); with ``timing``, only time training.

    With ``checkpoints``, training saves every epoch there and resumes from
    what an earlier process left.
    """
    import jax
    import numpy as np

    import kt
    from kt.data.splits import split_learners, train_valid
    from kt.eval.protocols import next_step
    from kt.models.base import create

    train_path, test_path, kc = DATASETS[name]
    overrides = {"skill_id": "item_id"} if kc == "item" else None
    data = kt.load(str(SHARED / train_path), overrides=overrides)
    if test_path is None:
        users = data.frame["user_idx"].unique().to_numpy()
        tr_u, te_u = split_learners(users, (0.8, 0.2), seed)
        train, test = data.subset(tr_u), data.subset(te_u)
        split = "learners 80/20, seed 0"
    else:
        train, test = data, kt.load(str(SHARED / test_path), vocab=data.vocab, overrides=overrides)
        split = "train->test"
    fit_on, valid = train_valid(train, 0.1, seed)
    mname, sets = MODELS[model_key]
    if mname == "dkt" and name == "statics2011":
        sets = {**sets, "epochs": 30}  # as bench/dkt.py (still improving slowly there)
    if mname == "cakt" and epochs is not None:
        sets = {**sets, "epochs": epochs}
    if timing:
        return time_only(name, model_key, mname, sets, fit_on, timing, seed)
    model = create(mname, **sets)
    ckpt = None
    if checkpoints is not None:
        ckpt = checkpoints / f"{name}-{model_key}-seed{seed}-epochs{epochs or 'default'}"
        ckpt.mkdir(parents=True, exist_ok=True)

    def progress(r: dict) -> None:
        r["process"] = PROCESS  # saved with the epoch's checkpoint, so a resumed run keeps it
        print(
            f"  {name} {model_key} epoch {r['epoch']}: loss {r['train_loss']:.4f} valid AUC {r.get('valid_auc', float('nan')):.4f} "
            f"{r['seconds']:.0f}s",
            file=sys.stderr,
            flush=True,
        )

    t0 = time.perf_counter()
    from kt.train.loop import CKPT_JSON

    resume = ckpt is not None and (ckpt / CKPT_JSON).exists()
    if resume:
        print(f"  {name} {model_key}: resuming from {ckpt}", file=sys.stderr, flush=True)
    model.fit(fit_on, valid=valid, key=seed, progress=progress, checkpoint=ckpt, resume=resume)
    train_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = next_step(model, test, breakdown=False)
    hist = model.meta["history"]
    steady = [r["seconds"] for r in hist[1:]] or [hist[0]["seconds"]]
    return {
        "dataset": f"{name}/gervet",
        "split": split,
        "kc": "item_id (problem/step id)" if kc == "item" else "skill_id of the file",
        "model": model_key,
        "impl": "kt",
        "config": {k: getattr(model.config, k) for k in sets},
        "auc": res["auc"],
        "accuracy": res["accuracy"],
        "rmse": res["rmse"],
        "n_scored": res["n"],
        "eval_window": res["window"],
        "train_seconds": train_seconds,
        "test_seconds": time.perf_counter() - t1,
        "epochs_run": len(hist),
        "best_epoch": model.meta["best_epoch"],
        "stopped": model.meta["stopped"],
        "best_valid_auc": max(r["valid_auc"] for r in hist),
        "seconds_per_epoch": float(np.median(steady)),
        "interactions_per_second": float(
            np.median([r["interactions_per_second"] for r in hist[1:]] or [hist[0]["interactions_per_second"]])
        ),
        "decay_S": model.meta.get("decay_S"),
        "gate_c_mean": model.meta.get("gate_c_mean"),
        "gate_h_mean": model.meta.get("gate_h_mean"),
        "history": hist,
        "processes": {
            p: [r["epoch"] for r in hist if r.get("process") == p] for p in dict.fromkeys(r.get("process") for r in hist)
        },
        "checkpoint": str(ckpt) if ckpt else None,
        "jax": jax.__version__,
    }


def time_only(name, model_key, mname, sets, fit_on, n_learners, seed) -> dict:
    """Seconds per epoch on the whole training split, estimated from ``n_learners`` of its learners.

    Two epochs without validation on a seeded random subset of the training
    learners; the second (compiled) epoch's scored interactions/s is scaled
    to the whole split's scored positions. No accuracy is claimed.
    """
    import jax

    from kt.data.splits import split_learners
    from kt.models.base import create

    users = fit_on.frame["user_idx"].unique().to_numpy()
    n = min(n_learners, len(users))
    sub = fit_on.subset(split_learners(users, (n / len(users), 1 - n / len(users)), seed)[0])
    model = create(mname, **{**sets, "epochs": 2})
    model.fit(
        sub,
        key=seed,
        progress=lambda r: print(
            f"  {name} {model_key} timing epoch {r['epoch']}: {r['seconds']:.0f}s", file=sys.stderr, flush=True
        ),
    )
    hist = model.meta["history"]
    ips = hist[-1]["interactions_per_second"]
    scored_full = int((fit_on.frame.group_by("user_idx").len()["len"] - 1).clip(0).sum())
    return {
        "dataset": f"{name}/gervet",
        "model": model_key,
        "impl": "kt",
        "kind": "timing",
        "config": {k: getattr(model.config, k) for k in ("batch_size", "window", "k", "frame", "channels", "cnn")},
        "timing_learners": n,
        "interactions_per_second": ips,
        "seconds_per_epoch": scored_full / ips,
        "scored_positions_full_epoch": scored_full,
        "history": hist,
        "jax": jax.__version__,
        "notes": f"estimate: {n} random training learners (seed {seed}), 2 epochs without validation; the second "
        f"epoch's scored interactions/s scaled to the {scored_full:,} scored positions of the full "
        "training split (first attempts of chunks aside)",
        "auc": None,
        "epochs_run": len(hist),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="assist2009,statics2011")
    ap.add_argument("--models", default="dkt,cakt-nocnn,cakt")
    ap.add_argument("--epochs", type=int, default=None, help="cap the epochs of cakt and its ablation (default: 30)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--timing",
        type=int,
        default=None,
        metavar="N",
        help="only estimate seconds per epoch, from 2 epochs on N random training learners",
    )
    ap.add_argument(
        "--checkpoints",
        default=str(REPO / "bench" / "checkpoints"),
        help="per-epoch checkpoints; a rerun resumes unfinished runs ('' to disable; default bench/checkpoints)",
    )
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # dataset:model, run in this process
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "cakt.json"))
    ap.add_argument(
        "--xla-default-scheduler",
        action="store_true",
        help="keep XLA's concurrency-optimised CPU scheduler (default: the memory-minimising one, as the kt CLI)",
    )
    args = ap.parse_args()
    if not args.xla_default_scheduler:
        from kt.cli.common import use_memory_scheduler

        use_memory_scheduler()  # before JAX starts; the children inherit it
    if args.one:
        name, model_key = args.one.split(":")
        ckpts = Path(args.checkpoints) if args.checkpoints and not args.timing else None
        print(json.dumps(one(name, model_key, args.epochs, args.seed, args.timing, ckpts)), flush=True)
        return
    if not SHARED.exists():
        sys.exit(f"shared data not found at {SHARED}; set KT_SHARED_DATA")
    import harness

    out_path = Path(args.out)
    kind = "timing" if args.timing else None
    runs = [(n.strip(), m.strip()) for n in args.datasets.split(",") for m in args.models.split(",")]
    # Rows already in the file are kept until this run replaces them (so an interrupted run loses none).
    rows = json.loads(out_path.read_text())["rows"] if out_path.exists() else []
    for name, model_key in runs:
        cmd = [sys.executable, __file__, "--one", f"{name}:{model_key}", "--seed", str(args.seed)]
        if args.epochs is not None:
            cmd += ["--epochs", str(args.epochs)]
        if args.timing:
            cmd += ["--timing", str(args.timing)]
        cmd += ["--checkpoints", args.checkpoints]
        if args.xla_default_scheduler:
            cmd += ["--xla-default-scheduler"]
        print(f"{name} {model_key} ...", flush=True)
        res = harness.run_proc(cmd, timeout=7 * 24 * 3600)
        rows = [r for r in rows if (r["dataset"].split("/")[0], r["model"], r.get("kind")) != (name, model_key, kind)]
        sys.stderr.write(res["stderr"][-4000:])
        if res["rc"] != 0:
            rows.append({"dataset": f"{name}/gervet", "model": model_key, "error": res["stderr"][-2000:]})
        else:
            row = json.loads(res["stdout"].strip().splitlines()[-1])
            row.update(
                peak_rss_mb=res["rss_mb"],
                xla_flags=os.environ.get("XLA_FLAGS", ""),
                wall_seconds=res["wall"],
                other_cores_while_running=res["other_cores"],
                load_before=res["load_before"],
                load_after=res["load_after"],
            )
            rows.append(row)
            auc = f"auc {row['auc']:.4f}, " if row.get("auc") is not None else "timing only, "
            print(
                f"  {auc}epochs {row['epochs_run']} ({row['seconds_per_epoch']:.0f} s/epoch), peak RSS {res['rss_mb']:.0f} MB",
                flush=True,
            )
        _write(out_path, rows, args)
    print(f"{'dataset':22} {'model':23} {'auc':>7} {'epochs':>6} {'s/epoch':>8} {'RSS MB':>7}")
    for r in rows:
        if "seconds_per_epoch" in r:
            auc = f"{r['auc']:7.4f}" if r.get("auc") is not None else f"{'-':>7}"
            print(
                f"{r['dataset']:22} {r['model']:23} {auc} {r['epochs_run']:6d} {r['seconds_per_epoch']:8.0f} {r['peak_rss_mb']:7.0f}"
            )


def _write(path: Path, rows: list[dict], args) -> None:
    import harness

    by = {(r["dataset"], r["model"]): r for r in rows if r.get("auc") is not None}
    ratios = {}
    for ds in sorted({r["dataset"] for r in rows}):
        d = by.get((ds, "dkt"))
        for key in (k for k in MODELS if k != "dkt"):
            if d and (ds, key) in by:
                ratios[f"{ds}: {key} - dkt (AUC points)"] = 100 * (by[ds, key]["auc"] - d["auc"])
        for with_cnn, without in (("cakt", "cakt-nocnn"), ("cakt-embed-kaiming", "cakt-nocnn-embed-kaiming")):
            if (ds, with_cnn) in by and (ds, without) in by:
                ratios[f"{ds}: {with_cnn} - {without} (AUC points)"] = 100 * (by[ds, with_cnn]["auc"] - by[ds, without]["auc"])
    out = {
        "machine": harness.machine() + f"; load average at write {harness.loadavg()} (shared with other jobs)",
        "date": dt.date.today().isoformat(),
        "versions": {"kt": __import__("kt").__version__, "jax": rows[0].get("jax") if rows else None},
        "epoch_cap": args.epochs,
        "rows": rows,
        "ratios": ratios,
        "notes": "no GPU was available; seconds_per_epoch is the median over epochs 2.. on 2 shared CPU cores "
        "(other_cores_while_running says how busy the machine was)",
    }
    from kt.atomic import write_text

    write_text(path, json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
