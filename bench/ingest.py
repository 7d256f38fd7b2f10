"""Ingestion benchmark: a 1M-row interactions CSV -> canonical frame -> padded sequences.

Issue acceptance: read a 1,000,000-row CSV into canonical sequences at
>= 1M rows/s on 2 cores with peak memory < 1 GB.

What is timed, in a fresh subprocess (so import cost and RSS are clean):

(a) ``kt.load(path)``: reading, typing/validation, sorting, duplicate check,
    id encoding;
(b) ``kt.data.sequences.build_sequences(data.frame, window=...)``: padded arrays.

Python/library import time is excluded from rows/s (it is reported apart).
Each stage is timed with ``time.perf_counter()`` on every repeat and the
median of the repeats is kept (the first repeat is cold: page cache is warm
from generation, but Polars' thread pool and allocator are not).

Peak memory is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` in the child
(also cross-checked with ``VmHWM`` from ``/proc/self/status``), together with
the RSS right after imports (the baseline every kt process pays).

``build_sequences`` without a window pads every learner to the longest
learner; on skewed data that [N, Tmax] array can be huge. The child estimates
its size first and, if it would exceed ``--pad-budget-mb``, benchmarks the
windowed form (``window=200``, what DKT training uses) instead and says so in
``notes``. ``--window 0`` forces the full padding, ``--window N`` forces N.

Usage::

    python bench/ingest.py                      # 1M synthetic rows, 3 repeats
    python bench/ingest.py --rows 200000 --repeats 5
    python bench/ingest.py --csv data.csv --out /tmp/ingest.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_ROWS_PER_S = 1_000_000
TARGET_PEAK_MB = 1024
SEQ_BYTES_PER_CELL = 4 + 4 + 1 + 8 + 1 + 8  # skill, item, correct, time, mask, row


# --------------------------------------------------------------------------- data
def generate_csv(path: Path, rows: int, seed: int = 0) -> dict:
    """Write a realistic interactions CSV (seeded) and return a summary.

    ~rows/50 learners (20k for 1M rows) with log-normal sequence lengths (a
    long tail up to a few thousand attempts), ~5k items with Zipf-like
    popularity, each item tied to one of ~150 skills, ~65% correct,
    per-learner increasing unix-second timestamps (seconds to minutes between
    attempts, with occasional multi-day breaks). Rows are ordered by learner,
    then time, like real exports.
    """
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    n_users = max(1, rows // 50)
    n_items, n_skills = 5000, 150

    # Skewed sequence lengths: log-normal, min 2 (kt drops 1-attempt learners),
    # rescaled so they sum to exactly `rows`.
    raw = rng.lognormal(mean=0.0, sigma=1.3, size=n_users)
    lengths = np.maximum(2, np.floor(raw / raw.sum() * rows)).astype(np.int64)
    diff = rows - int(lengths.sum())
    order = np.argsort(-lengths)
    if diff > 0:
        lengths[order[: diff % n_users]] += 1
        lengths += diff // n_users
    while diff < 0:  # take from the longest learners
        take = min(-diff, n_users)
        cand = order[:take]
        ok = cand[lengths[cand] > 2]
        lengths[ok] -= 1
        diff += len(ok)
    assert int(lengths.sum()) == rows, (lengths.sum(), rows)

    user_ids = np.sort(rng.choice(np.arange(10_000, 10_000 + 20 * n_users), size=n_users, replace=False))
    user_col = np.repeat(user_ids, lengths)

    item_skill = rng.integers(0, n_skills, size=n_items)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    item_ids_pool = rng.permutation(np.arange(100_000, 100_000 + n_items))
    item_pick = rng.choice(n_items, size=rows, p=pop / pop.sum())
    item_col = item_ids_pool[item_pick]
    skill_col = 1 + item_skill[item_pick]

    # Learner ability + item difficulty -> correct
    ability = np.repeat(rng.normal(0.6, 0.8, n_users), lengths)
    difficulty = rng.normal(0.0, 0.7, n_items)[item_pick]
    p = 1.0 / (1.0 + np.exp(-(ability - difficulty)))
    correct_col = (rng.random(rows) < p).astype(np.int8)

    # Timestamps: per-learner start in 2019-2021, gaps >= 1 s, mostly under
    # a few minutes, 2% multi-day breaks; strictly increasing per learner.
    gaps = np.maximum(1, rng.exponential(60.0, rows)).astype(np.int64)
    breaks = rng.random(rows) < 0.02
    gaps[breaks] += rng.integers(3_600, 7 * 86_400, size=int(breaks.sum()))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    gaps[starts] = 0
    cum = np.cumsum(gaps)
    cum -= np.repeat(cum[starts], lengths)  # restart per learner
    t0 = np.repeat(rng.integers(1_546_300_800, 1_640_995_200, size=n_users), lengths)
    ts_col = t0 + cum

    frame = pl.DataFrame(
        {
            "user_id": user_col,
            "item_id": item_col,
            "skill_id": skill_col,
            "correct": correct_col,
            "timestamp": ts_col,
        }
    )
    frame.write_csv(path)
    return {
        "rows": rows,
        "learners": n_users,
        "items": n_items,
        "skills": n_skills,
        "max_len": int(lengths.max()),
        "median_len": float(np.median(lengths)),
        "bytes": path.stat().st_size,
        "seed": seed,
    }


# --------------------------------------------------------------------------- child
def _rss_mb() -> tuple[float, float]:
    """(current RSS, VmHWM) in MB from /proc/self/status (Linux)."""
    cur = hwm = float("nan")
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return cur, hwm


def _maxrss_mb() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 / 1024 if sys.platform == "darwin" else r / 1024


def child(args: argparse.Namespace) -> None:
    """Run in a fresh interpreter; print one JSON object on the last stdout line."""
    import gc

    t_imp = time.perf_counter()
    import numpy as np
    import polars as pl

    import kt
    from kt.data.sequences import build_sequences

    import_s = time.perf_counter() - t_imp
    baseline_rss, _ = _rss_mb()
    baseline_maxrss = _maxrss_mb()

    load_s, seq_s, seq_shapes = [], [], []
    window = args.window
    window_reason = "forced by --window" if window is not None else ""
    info: dict = {}
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        data = kt.load(args.csv)
        t1 = time.perf_counter()
        if rep == 0:
            frame = data.frame
            lens = frame.group_by("user_idx").len()["len"].to_numpy()
            full_cells = int(len(lens)) * int(lens.max())
            info = {
                "rows": int(data.stats.get("rows_read", frame.height)),
                "canonical_rows": frame.height,
                "learners": int(len(lens)),
                "max_len": int(lens.max()),
                "median_len": float(np.median(lens)),
                "full_pad_cells": full_cells,
                "full_pad_mb": full_cells * SEQ_BYTES_PER_CELL / 2**20,
                "fill_ratio": frame.height / full_cells,
                "load_notes": list(data.notes),
                "after_load_rss_mb": _rss_mb()[0],
            }
            if window is None:
                if info["full_pad_mb"] > args.pad_budget_mb:
                    window = 200
                    window_reason = (
                        f"full padding would be {info['learners']} x {info['max_len']} cells "
                        f"= {info['full_pad_mb']:.0f} MB (only {100 * info['fill_ratio']:.1f}% real steps), "
                        f"over the {args.pad_budget_mb:.0f} MB budget"
                    )
                else:
                    window = 0
        t2 = time.perf_counter()
        seqs = build_sequences(data.frame, window=window or None)
        t3 = time.perf_counter()
        load_s.append(t1 - t0)
        seq_s.append(t3 - t2)
        seq_shapes.append(list(seqs.mask.shape))
        del data, seqs
        if rep == 0:
            del frame
        gc.collect()

    cur_rss, hwm = _rss_mb()
    peak = _maxrss_mb()  # before the breakdown pass, which is not part of the measurement
    stages = _stage_breakdown(args.csv, window) if args.breakdown else {}
    out = {
        "stage_seconds": stages,
        "import_seconds": import_s,
        "baseline_rss_mb": baseline_rss,
        "baseline_maxrss_mb": baseline_maxrss,
        "peak_rss_mb": peak,
        "vm_hwm_mb": hwm,
        "end_rss_mb": cur_rss,
        "load_seconds_all": load_s,
        "sequences_seconds_all": seq_s,
        "sequences_shape": seq_shapes[0],
        "window": window or None,
        "window_reason": window_reason,
        "polars_threads": pl.thread_pool_size(),
        "versions": {
            "kt": kt.__version__,
            "polars": pl.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        **info,
    }
    print(json.dumps(out))


# Private helpers of kt.data.schema / kt.data.io timed by the breakdown pass.
# Names that no longer exist are skipped, so a kt refactor cannot break the bench.
_STAGES = (
    ("kt.data.io", "read_table"),
    ("kt.data.io", "_is_utf8_file"),
    ("kt.data.schema", "_to_float"),
    ("kt.data.schema", "_parse_time"),
    ("kt.data.schema", "_split_kcs"),
    ("kt.data.schema", "_order"),
    ("kt.data.schema", "_duplicates"),
    ("kt.data.schema", "_encode_all"),
)


def _stage_breakdown(csv: str, window: int | None) -> dict[str, float]:
    """One extra, untimed-for-the-headline pass with the stages of kt.load wrapped.

    Calls nested inside another wrapped stage (``_is_utf8_file`` inside
    ``read_table``) are reported on their own and also inside their parent.
    """
    import importlib
    import time

    import kt
    from kt.data.sequences import build_sequences

    acc: dict[str, float] = {}
    saved = []

    def wrap(label, fn):
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                acc[label] = acc.get(label, 0.0) + time.perf_counter() - t

        return timed

    for mod_name, name in _STAGES:
        mod = importlib.import_module(mod_name)
        fn = getattr(mod, name, None)
        if callable(fn):
            saved.append((mod, name, fn))
            setattr(mod, name, wrap(f"{mod_name.rsplit('.', 1)[-1]}.{name}", fn))
    try:
        t0 = time.perf_counter()
        data = kt.load(csv)
        t1 = time.perf_counter()
        build_sequences(data.frame, window=window or None)
        t2 = time.perf_counter()
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)
    nested = acc.get("io._is_utf8_file", 0.0)
    top = sum(v for k, v in acc.items() if k != "io._is_utf8_file")
    acc["schema.to_interactions (rest)"] = (t1 - t0) - top
    acc["kt.load (whole)"] = t1 - t0
    acc["build_sequences"] = t2 - t1
    assert nested <= acc.get("io.read_table", nested)
    return acc


# --------------------------------------------------------------------------- parent
def machine_description() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem_gb = None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
                break
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = "no GPU"
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
        if r.returncode == 0 and r.stdout.strip():
            gpu = r.stdout.strip().splitlines()[0].split(" (UUID")[0]
    except (OSError, subprocess.SubprocessError):
        pass
    mem = f"{mem_gb:.0f} GB" if mem_gb else "? GB"
    return f"{cores} CPU cores ({cpu}), {mem}, {gpu}"


def _system_busy_seconds() -> float:
    """Non-idle CPU seconds of the whole machine so far (Linux /proc/stat; NaN elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    vals = [int(x) for x in fields]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    busy = sum(vals[:8]) - idle  # guest time is already counted in user
    return busy / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def write_json_atomic(path: Path, obj: dict) -> None:
    from kt.atomic import write_text

    write_text(path, json.dumps(obj, indent=2) + "\n")


def _run_python(argv: list[str]) -> str:
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit(f"subprocess {' '.join(argv[:2])} failed with exit code {r.returncode}")
    return r.stdout.strip().splitlines()[-1]


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title)
        for i, h in enumerate(header):
            t.add_column(h, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*r)
        Console().print(t)
    except ImportError:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print(title)
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of synthetic data to generate (default 1M)")
    ap.add_argument("--csv", type=str, default=None, help="benchmark this CSV instead of generating one")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported (default 3)")
    ap.add_argument("--out", type=str, default=str(HERE / "results" / "ingest.json"), help="result JSON path")
    ap.add_argument("--seed", type=int, default=0, help="seed for the synthetic data")
    ap.add_argument(
        "--window",
        type=int,
        default=None,
        help="build_sequences window (0 = full padding); default: full padding unless it would exceed --pad-budget-mb, else 200",
    )
    ap.add_argument(
        "--pad-budget-mb", type=float, default=512.0, help="largest full-padding array set to attempt (default 512 MB)"
    )
    ap.add_argument(
        "--no-breakdown", dest="breakdown", action="store_false", help="skip the extra pass that times the stages inside kt.load"
    )
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._child:
        child(args)
        return

    with tempfile.TemporaryDirectory(prefix="kt-bench-ingest-") as tmp:
        gen = None
        if args.csv is None:
            csv = Path(tmp) / "interactions.csv"
            print(f"generating {args.rows:,} rows -> {csv} ...", flush=True)
            # In its own process: the parent stays small, so the benchmark child
            # cannot inherit a large max-RSS through fork/exec.
            gen = json.loads(_run_python(["--_gen", str(csv), str(args.rows), str(args.seed)]))
            dataset = "synthetic-1M" if args.rows == 1_000_000 else f"synthetic-{args.rows}"
        else:
            csv = Path(args.csv)
            dataset = csv.name
        child_argv = ["--_child", "--csv", str(csv), "--repeats", str(args.repeats), "--pad-budget-mb", str(args.pad_budget_mb)]
        if args.window is not None:
            child_argv += ["--window", str(args.window)]
        if not args.breakdown:
            child_argv.append("--no-breakdown")
        print(f"timing kt.load + build_sequences in a fresh process ({args.repeats} repeats) ...", flush=True)
        cpu0, kids0, wall0 = _system_busy_seconds(), _children_cpu_seconds(), time.perf_counter()
        res = json.loads(_run_python(child_argv))
        wall = time.perf_counter() - wall0
        other_busy = (_system_busy_seconds() - cpu0) - (_children_cpu_seconds() - kids0)
        other_cores = max(0.0, other_busy / wall) if wall > 0 else 0.0

    n = res["rows"]
    load_s = statistics.median(res["load_seconds_all"])
    seq_s = statistics.median(res["sequences_seconds_all"])
    totals = [a + b for a, b in zip(res["load_seconds_all"], res["sequences_seconds_all"])]
    total_s = statistics.median(totals)
    rps = n / total_s
    peak = res["peak_rss_mb"]
    met_speed, met_mem = rps >= TARGET_ROWS_PER_S, peak < TARGET_PEAK_MB
    wdesc = f"window={res['window']}" if res["window"] else "full padding (no window)"

    notes = [
        f"median of {args.repeats} repeats in a fresh subprocess; rows/s = rows / (load + sequences) seconds, "
        f"Python/library import ({res['import_seconds']:.2f} s, {res['baseline_rss_mb']:.0f} MB RSS) excluded from time, "
        f"included in peak_rss_mb",
        f"build_sequences {wdesc}; shape {res['sequences_shape']}",
    ]
    if res["window_reason"] == "forced by --window":
        notes.append(f"build_sequences window set by --window {args.window}")
    elif res["window_reason"]:
        notes.append(f"windowed (DKT training's window=200) instead of full padding because {res['window_reason']}")
    notes.append(
        f"target >= {TARGET_ROWS_PER_S:,} rows/s: {'met' if met_speed else 'NOT met'}; "
        f"peak < {TARGET_PEAK_MB} MB: {'met' if met_mem else 'NOT met'}"
    )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if other_cores > 0.2:
        notes.append(
            f"WARNING: other processes used {other_cores:.2f} of {cores} cores on average while the child ran; "
            f"timings are inflated (Polars' multi-threaded steps most): rerun on a quiet machine"
        )
    if res["polars_threads"] != cores:
        notes.append(f"polars thread pool = {res['polars_threads']}")

    row = {
        "dataset": dataset,
        "split": "all",
        "model": "ingest",
        "impl": "kt",
        "n_rows": n,
        "learners": res["learners"],
        "rows_per_second": round(rps, 1),
        "load_rows_per_second": round(n / load_s, 1),
        "sequences_rows_per_second": round(n / seq_s, 1),
        "total_seconds": round(total_s, 4),
        "load_seconds": round(load_s, 4),
        "sequences_seconds": round(seq_s, 4),
        "min_total_seconds": round(min(totals), 4),
        "load_seconds_all": [round(x, 4) for x in res["load_seconds_all"]],
        "sequences_seconds_all": [round(x, 4) for x in res["sequences_seconds_all"]],
        "import_seconds": round(res["import_seconds"], 3),
        "peak_rss_mb": round(peak, 1),
        "baseline_rss_mb": round(res["baseline_rss_mb"], 1),
        "window": res["window"],
        "full_pad_mb_estimate": round(res["full_pad_mb"], 1),
        "target_met": bool(met_speed and met_mem),
        "other_processes_cores": round(other_cores, 2),
        "stage_seconds": {k: round(v, 4) for k, v in res["stage_seconds"].items()},
        "notes": "; ".join(notes),
    }
    result = {
        "machine": machine_description(),
        "date": _dt.date.today().isoformat(),
        "versions": res["versions"],
        "data": gen or {"csv": str(csv), "rows": n, "learners": res["learners"]},
        "rows": [row],
    }

    print_table(
        f"kt ingest: {n:,} rows, {res['learners']:,} learners (max {res['max_len']:,} attempts) — {result['machine']}",
        ["stage", "seconds (median)", "rows/s", "repeats (s)"],
        [
            ["kt.load", f"{load_s:.3f}", f"{n / load_s:,.0f}", ", ".join(f"{x:.3f}" for x in res["load_seconds_all"])],
            ["build_sequences", f"{seq_s:.3f}", f"{n / seq_s:,.0f}", ", ".join(f"{x:.3f}" for x in res["sequences_seconds_all"])],
            ["load + sequences", f"{total_s:.3f}", f"{rps:,.0f}", ", ".join(f"{x:.3f}" for x in totals)],
        ],
    )
    print_table(
        "memory (child process)",
        ["measure", "MB"],
        [
            ["RSS after imports (baseline)", f"{res['baseline_rss_mb']:.0f}"],
            ["RSS after first kt.load", f"{res['after_load_rss_mb']:.0f}"],
            ["peak RSS, ru_maxrss (imports included)", f"{peak:.0f}"],
            ["peak RSS, VmHWM (cross-check)", f"{res['vm_hwm_mb']:.0f}"],
            ["full-padding arrays (estimate)", f"{res['full_pad_mb']:.0f}"],
        ],
    )
    if res["stage_seconds"]:
        st = res["stage_seconds"]
        whole = st["kt.load (whole)"]
        print_table(
            "inside kt.load (one extra pass, stages wrapped)",
            ["stage", "seconds", "share of kt.load"],
            [[k, f"{v:.3f}", f"{100 * v / whole:.0f}%" if not k.startswith("build") else ""] for k, v in st.items()],
        )
    print(
        f"import time (excluded): {res['import_seconds']:.2f} s; "
        f"stage medians are taken separately, so they need not add up to the total's median"
    )
    for note in notes[1:]:
        print("note:", note)
    out = Path(args.out)
    write_json_atomic(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--_gen":
        print(json.dumps(generate_csv(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
    else:
        main()
