"""Streaming ingestion benchmark: a generated 20M-row CSV -> learner partitions -> one DKT epoch.

Issue 9 acceptance: ``kt data convert --partitions`` on a generated 20M-row
CSV, then one epoch of DKT trained from the partitions, each with peak RSS
< 3 GB; conversion rows/s reported.

Steps, each a fresh ``kt`` process timed by ``bench/harness.run_proc``
(wall time with ``perf_counter``, peak RSS from ``wait4``, imports included):

(a) ``kt data convert CSV --out DIR --partitions N``: wall seconds, rows/s
    (rows / process wall; the in-process seconds from ``meta.json`` too) and
    peak RSS; ``--repeats`` conversions, median wall, largest peak RSS;
(b) for comparison, the in-memory ``kt data convert CSV --out x.parquet``
    (peak RSS; skip with ``--skip-inmemory``);
(c) ``kt train DIR --model dkt --epochs 1`` with DKT's default settings
    (validation: 10% of learners by hash, streamed): wall seconds, peak RSS,
    and from the model's history the epoch's seconds and scored
    interactions/s (partition loading and windowing included, as they
    happen inside the epoch). ``--eval-mode`` sets only how the
    *post-training* validation metrics are computed (default ``chunk``:
    one forward pass; DKT's default ``window`` mode runs one 200-step
    sequence per attempt past a learner's 200th, which on this data costs
    more than the training epoch).

The CSV is generated in chunks with a fixed seed (learners' rows in chunks
of 2,000 learners, rows within a chunk in time order, so learners interleave
as in a real log), under ``--workdir`` (default ``/tmp/kt-stream-bench``),
and removed at the end unless ``--keep``.

Usage::

    python bench/stream.py                              # 20M rows, 100k learners, 32 partitions
    python bench/stream.py --rows 1000000 --learners 5000 --partitions 4 --out /tmp/s.json   # smoke
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness  # noqa: E402

TARGET_PEAK_MB = 3 * 1024
KT = [sys.executable, "-m", "kt.cli"]


# --------------------------------------------------------------------------- data
def generate_csv(
    path: Path, rows: int, learners: int, *, kcs: int = 100, items: int = 10_000, seed: int = 0, chunk_learners: int = 2000
) -> dict:
    """Write a seeded interactions CSV of exactly ``rows`` rows in chunks (light on memory).

    Log-normal sequence lengths (sigma 0.8, at least 2), ``items`` items each
    tied to one of ``kcs`` KCs with Zipf-like popularity, correctness from a
    logistic model of ability, item difficulty and practice on the KC, and
    increasing unix-second timestamps per learner (seconds to minutes apart,
    with occasional breaks of days).
    """
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(0.0, 0.8, learners)
    lengths = np.maximum(2, np.floor(raw / raw.sum() * rows)).astype(np.int64)
    diff = rows - int(lengths.sum())
    order = np.argsort(-lengths)
    lengths[order[: abs(diff)]] += np.sign(diff)  # |diff| < learners: fix the total on the longest learners
    assert int(lengths.sum()) == rows and lengths.min() >= 1
    item_kc = rng.integers(0, kcs, items)
    pop = 1.0 / np.arange(1, items + 1) ** 0.7
    pop /= pop.sum()
    difficulty = rng.normal(0.0, 0.8, items)
    ability = rng.normal(0.5, 0.9, learners)
    user_ids = rng.permutation(learners) + 100_000
    start = rng.integers(1_546_300_800, 1_640_995_200, learners)
    t0 = time.perf_counter()
    import polars as pl

    with open(path, "wb") as fh:
        fh.write(b"user_id,item_id,skill_id,correct,timestamp\n")
        for c0 in range(0, learners, chunk_learners):
            r = np.random.default_rng([seed, c0])
            idx = np.arange(c0, min(learners, c0 + chunk_learners))
            n = lengths[idx]
            who = np.repeat(idx, n)
            pos = np.arange(len(who)) - np.repeat(np.cumsum(n) - n, n)
            item = r.choice(items, size=len(who), p=pop)
            kc = item_kc[item]
            practice = np.log1p(pos)  # a crude learning effect
            p = 1.0 / (1.0 + np.exp(-(ability[who] - difficulty[item] + 0.15 * practice)))
            correct = (r.random(len(who)) < p).astype(np.int8)
            gaps = np.maximum(1, r.exponential(60.0, len(who))).astype(np.int64)
            breaks = r.random(len(who)) < 0.02
            gaps[breaks] += r.integers(3600, 7 * 86400, int(breaks.sum()))
            gaps[pos == 0] = 0
            ts = start[who] + np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[np.cumsum(n) - n], n)
            o = np.argsort(ts, kind="stable")  # a log: learners interleaved in time order
            pl.DataFrame(
                {
                    "user_id": user_ids[who][o],
                    "item_id": item[o] + 1_000_000,
                    "skill_id": kc[o] + 1,
                    "correct": correct[o],
                    "timestamp": ts[o],
                }
            ).write_csv(fh, include_header=False)
    return {
        "rows": rows,
        "learners": learners,
        "kcs": kcs,
        "items": items,
        "seed": seed,
        "median_len": float(np.median(lengths)),
        "max_len": int(lengths.max()),
        "attempts_past_200": int(np.maximum(lengths - 200, 0).sum()),
        "bytes": path.stat().st_size,
        "generate_seconds": round(time.perf_counter() - t0, 1),
    }


# --------------------------------------------------------------------------- steps
def convert(csv: Path, out: Path, partitions: int, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        res = harness.check(
            harness.run_proc([*KT, "data", "convert", csv, "--out", out, "--partitions", partitions], timeout=3 * 3600),
            "kt data convert --partitions",
        )
        meta = json.loads((out / "meta.json").read_text())
        runs.append({**res, "in_process_seconds": meta["seconds"], "meta": meta})
        print(
            f"  convert: {res['wall']:.1f} s wall ({meta['seconds']:.1f} s in process), peak RSS {res['rss_mb']:.0f} MB",
            flush=True,
        )
    walls = [r["wall"] for r in runs]
    best = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
    return {**best, "walls": walls, "peak_mb": max(r["rss_mb"] for r in runs)}


def train(part_dir: Path, model_dir: Path, eval_mode: str | None) -> dict:
    cmd = [*KT, "train", part_dir, "--model", "dkt", "--epochs", "1", "--out", model_dir]
    if eval_mode:
        cmd += ["--set", f"eval_mode={eval_mode}"]
    res = harness.check(harness.run_proc(cmd, timeout=6 * 3600), "kt train PARTDIR --model dkt")
    header = json.loads((model_dir / "model.json").read_text())
    hist = header["meta"]["history"][0]
    print(
        f"  train: {res['wall']:.1f} s wall, epoch {hist['seconds']:.1f} s, "
        f"{hist['interactions_per_second']:,.0f} interactions/s, peak RSS {res['rss_mb']:.0f} MB",
        flush=True,
    )
    return {**res, "epoch": hist, "meta": header["meta"], "config": header["config"]}


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--learners", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=1, help="conversions to time (median wall); training runs once")
    ap.add_argument("--eval-mode", default="chunk", help="post-training validation mode (dkt eval_mode); '' = DKT's default")
    ap.add_argument("--skip-inmemory", action="store_true", help="skip the in-memory single-Parquet conversion")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--workdir", default="/tmp/kt-stream-bench")
    ap.add_argument("--keep", action="store_true", help="keep the generated CSV, partitions and model")
    ap.add_argument("--wait-quiet", type=float, default=0.0, help="wait up to S seconds for a quiet machine before each step")
    ap.add_argument("--out", default=str(HERE / "results" / "stream.json"))
    args = ap.parse_args()
    harness.WAIT_QUIET["limit"] = args.wait_quiet

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    csv = work / f"log-{args.rows}-{args.learners}.csv"
    part_dir, model_dir, pq = work / "partitions", work / "model", work / "inmemory.parquet"
    info_path = csv.with_suffix(".json")
    if csv.exists() and info_path.exists():
        gen = json.loads(info_path.read_text())
        print(f"reusing {csv}")
    else:
        print(f"generating {args.rows:,} rows of {args.learners:,} learners into {csv} ...", flush=True)
        gen = generate_csv(csv, args.rows, args.learners)
        info_path.write_text(json.dumps(gen))
    print(f"  {gen['bytes'] / 2**30:.2f} GiB, median {gen['median_len']:.0f} / max {gen['max_len']:,} attempts per learner")
    dataset = f"synthetic-{args.rows / 1e6:g}M"
    try:
        conv = convert(csv, part_dir, args.partitions, args.repeats)
        mem = None
        if not args.skip_inmemory:
            mem = harness.run_proc([*KT, "data", "convert", csv, "--out", pq], timeout=3 * 3600)
            print(
                f"  in-memory convert: {'ok' if mem['rc'] == 0 else 'FAILED (exit %d)' % mem['rc']}, "
                f"{mem['wall']:.1f} s, peak RSS {mem['rss_mb']:.0f} MB",
                flush=True,
            )
        tr = None if args.skip_train else train(part_dir, model_dir, args.eval_mode or None)
    finally:
        if not args.keep:
            for p in (part_dir, model_dir):
                shutil.rmtree(p, ignore_errors=True)
            for p in (pq, csv, info_path):
                p.unlink(missing_ok=True)

    meta = conv["meta"]
    rows_per_s = gen["rows"] / statistics.median(conv["walls"])
    rows = [
        {
            "dataset": dataset,
            "split": "all",
            "model": "convert --partitions",
            "impl": "kt",
            "n_rows": gen["rows"],
            "learners": meta["learners"],
            "partitions": args.partitions,
            "rows_per_second": round(rows_per_s, 1),
            "in_process_rows_per_second": round(gen["rows"] / meta["seconds"], 1),
            "train_seconds": None,
            "convert_seconds": round(statistics.median(conv["walls"]), 2),
            "convert_seconds_all": [round(w, 2) for w in conv["walls"]],
            "peak_rss_mb": round(conv["peak_mb"], 1),
            "target_met": conv["peak_mb"] < TARGET_PEAK_MB,
            "other_processes_cores": round(conv["other_cores"], 2),
            "notes": (
                f"process wall (imports included; {meta['seconds']:.1f} s inside convert_partitioned), "
                f"median of {args.repeats}; peak RSS < {TARGET_PEAK_MB} MB: "
                f"{'met' if conv['peak_mb'] < TARGET_PEAK_MB else 'NOT met'}" + harness.busy_note(("convert", conv))
            ),
        }
    ]
    if mem is not None:
        rows.append(
            {
                "dataset": dataset,
                "split": "all",
                "model": "convert (in memory, one Parquet)",
                "impl": "kt",
                "n_rows": gen["rows"],
                "rows_per_second": round(gen["rows"] / mem["wall"], 1) if mem["rc"] == 0 else None,
                "convert_seconds": round(mem["wall"], 2),
                "peak_rss_mb": round(mem["rss_mb"], 1),
                "other_processes_cores": round(mem["other_cores"], 2),
                "notes": (
                    "for comparison: kt.load of the whole file, then one Parquet file"
                    + ("" if mem["rc"] == 0 else f"; FAILED with exit {mem['rc']}: {mem['stderr'][-300:]}")
                    + harness.busy_note(("in-memory convert", mem))
                ),
            }
        )
    if tr is not None:
        vm = tr["meta"].get("valid_metrics", {})
        ep = tr["epoch"]
        rows.append(
            {
                "dataset": dataset,
                "split": "train->valid (10% of learners by hash)",
                "model": "dkt",
                "impl": "kt",
                "auc": vm.get("auc"),
                "accuracy": vm.get("accuracy"),
                "rmse": vm.get("rmse"),
                "train_seconds": round(ep["seconds"], 1),
                "interactions_per_second": round(ep["interactions_per_second"], 1),
                "wall_seconds": round(tr["wall"], 1),
                "peak_rss_mb": round(tr["rss_mb"], 1),
                "train_attempts": tr["meta"].get("train_attempts"),
                "valid_scored": vm.get("n"),
                "epoch_valid_auc": ep.get("valid_auc"),
                "target_met": tr["rss_mb"] < TARGET_PEAK_MB,
                "other_processes_cores": round(tr["other_cores"], 2),
                "notes": (
                    f"1 epoch, DKT defaults (hidden {tr['config'].get('hidden')}, batch {tr['config'].get('batch_size')}, "
                    f"window {tr['config'].get('window')}), {args.partitions} partitions streamed; train_seconds and "
                    "interactions/s = the epoch (scored positions, partition loading included, compilation included); "
                    "wall_seconds = the whole kt train process (streamed post-training validation with "
                    f"eval_mode={tr['config'].get('eval_mode')}, graph, save); peak RSS < {TARGET_PEAK_MB} MB: "
                    f"{'met' if tr['rss_mb'] < TARGET_PEAK_MB else 'NOT met'}" + harness.busy_note(("train", tr))
                ),
            }
        )
    result = {
        "machine": harness.machine(),
        "date": _dt.date.today().isoformat(),
        "versions": {k: metadata.version(k) for k in ("kt", "polars", "jax", "equinox", "optax")},
        "data": gen,
        "acceptance": {
            "convert_peak_rss_lt_3gb": rows[0]["target_met"],
            **({"train_peak_rss_lt_3gb": rows[-1]["target_met"]} if tr is not None else {}),
        },
        "rows": rows,
    }
    print_table(
        f"kt streaming ingestion: {gen['rows']:,} rows, {meta['learners']:,} learners, {args.partitions} partitions "
        f"— {result['machine']}",
        ["step", "wall s", "rows/s or interactions/s", "peak RSS MB", "< 3 GB"],
        [
            [
                r["model"],
                f"{r.get('convert_seconds') or r.get('wall_seconds') or 0:,.1f}",
                f"{(r.get('rows_per_second') or r.get('interactions_per_second') or 0):,.0f}",
                f"{r['peak_rss_mb']:,.0f}",
                "" if "target_met" not in r else ("yes" if r["target_met"] else "NO"),
            ]
            for r in rows
        ],
    )
    if tr is not None:
        print(f"dkt epoch: {tr['epoch']['seconds']:.1f} s; validation AUC {rows[-1]['auc']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from kt.atomic import write_text

    write_text(out, json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
