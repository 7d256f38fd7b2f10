"""DKT hyperparameters chosen on validation AUC only (never on test).

Usage: python bench/dkt_select.py [--dataset assist2009] [--grid hidden=256,dropout=0.3 ...]

Each configuration is trained exactly as bench/dkt.py trains the default
(same learner-level validation split, seed, early stopping); the one with
the best validation AUC is marked ``selected``. Test AUCs of all
configurations are written too, so the reader can see that the selection
did not look at them. The grid is a subset of pyKT's DKT sweep
(shared/spec/DKT.md: d in {64, 256}, lr in {1e-3, 1e-4, 1e-5}, dropout in
{0.05, 0.1, 0.3, 0.5}).
Writes bench/results/dkt_select.json (rows appended as they finish).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dkt import REPO, SHARED, run  # noqa: E402

DEFAULT_GRID = [
    "",
    "dropout=0.3",
    "dropout=0.5",
    "hidden=256,dropout=0.3",
    "hidden=256,dropout=0.5",
    "hidden=256,dropout=0.5,lr=0.0001",
]


def parse(spec: str) -> dict:
    out = {}
    for part in filter(None, spec.split(",")):
        k, v = part.split("=")
        try:
            out[k] = float(v) if "." in v else int(v)
        except ValueError:
            out[k] = v  # e.g. eval_mode=full
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="assist2009")
    ap.add_argument("--grid", nargs="*", default=DEFAULT_GRID, help="configs as key=value,key=value ('' = defaults)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "dkt_select.json"))
    args = ap.parse_args()
    if not SHARED.exists():
        sys.exit(f"shared data not found at {SHARED}; set KT_SHARED_DATA")
    rows = []
    for spec in args.grid:
        row = run(args.dataset, None, args.seed, extra=parse(spec))
        rows.append(row)
        best = max(rows, key=lambda r: r["best_valid_auc"])
        for r in rows:
            r["selected"] = r is best
        out = {
            "machine": f"{os.cpu_count()} CPU cores, no GPU ({platform.processor() or platform.machine()}); "
            f"shared with other jobs (throughput not comparable); load average {os.getloadavg()[0]:.2f}",
            "date": dt.date.today().isoformat(),
            "selection": "best validation AUC (10% of training learners, seed 0); test AUC never used",
            "rows": rows,
        }
        from kt.atomic import write_text

        write_text(args.out, json.dumps(out, indent=1))
        print(json.dumps({k: row[k] for k in ("config", "best_valid_auc", "auc", "epochs_run")}), flush=True)
    print(f"{'config':32} {'valid':>7} {'test':>7} sel")
    for r in rows:
        print(f"{json.dumps(r['config']):32} {r['best_valid_auc']:7.4f} {r['auc']:7.4f} {'*' if r['selected'] else ''}")


if __name__ == "__main__":
    main()
