"""Run the benchmark scripts and render ``bench/RESULTS.md`` from their JSON.

Each script runs as a child process (the same interpreter, from the
repository root) and writes ``<results-dir>/<name>.json`` as it always does
(``--out`` is passed explicitly); its output is shown and kept in
``<results-dir>/logs/<script>.log``. Scripts that take ``--repeats`` get
``--repeats N`` (default 3: timings are medians of 3). Long scripts get
capped settings, listed by ``--list`` and in each table's note. Afterwards
the Markdown report is rendered from every JSON in the results directory;
a table whose script did not run (or failed) in this invocation is flagged.
``<results-dir>/run_all.json`` records when run_all last ran each script.

Usage::

    /work/venv/bin/python bench/run_all.py                       # everything (about 2 h on 2 CPU cores)
    /work/venv/bin/python bench/run_all.py --only bkt_vs_pybkt,dkt_vs_pykt
    /work/venv/bin/python bench/run_all.py --skip cakt,dkt_select
    /work/venv/bin/python bench/run_all.py --quick               # smoke run -> /tmp/kt-bench-quick/
    /work/venv/bin/python bench/run_all.py --render-only         # RESULTS.md from the existing JSON
    /work/venv/bin/python bench/run_all.py --list                # scripts and the arguments passed
    /work/venv/bin/python bench/run_all.py --args cakt="--datasets assist2009 --epochs 5"

``--quick`` uses the smallest settings of each script (a subset of learners,
one epoch, one repeat) and writes to ``/tmp/kt-bench-quick`` (or
``--results-dir``), never to ``bench/results``; its numbers are
meaningless except as a check that everything runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import threading
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# bench/ is not a package: its modules import each other from the scripts' directory, as the other bench scripts do.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from results_render import HERE, MANIFEST, REPO, SCRIPTS, Script, _ran_word, _rel, load_manifest, render  # noqa: E402

RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"
QUICK_DIR = Path("/tmp/kt-bench-quick")
BY_NAME = {s.name: s for s in SCRIPTS}


# --------------------------------------------------------------------------- environment
def _git(*args: str) -> str | None:
    try:
        r = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def environment() -> dict:
    """Machine, package versions and git commit of this checkout (for the report header)."""
    versions = {"python": platform.python_version()}
    for pkg in ("kt", "jax", "jaxlib", "equinox", "optax", "polars", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {
        "machine": harness.machine() + (f" ({cpu})" if cpu else ""),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "versions": versions,
        "commit": (commit + (" with uncommitted changes" if dirty else "")) if commit else None,
    }


# --------------------------------------------------------------------------- running
def script_args(s: Script, *, quick: bool, repeats: int, extra: dict[str, str]) -> list[list[str]]:
    """The argument lists run_all passes to a script (one per part), before ``--out``.

    Args:
        s: the script.
        quick: use its ``--quick`` settings.
        repeats: ``--repeats`` for scripts that take it (1 with ``quick``).
        extra: ``--args`` overrides, script name -> argument string.

    Returns:
        One argument list per invocation; empty when ``quick`` and the script has no small setting.
    """
    if s.name in extra:
        parts = [shlex.split(extra[s.name])]
    else:
        chosen = s.quick if quick else s.full
        if chosen is None:
            return []
        parts = [list(p) for p in chosen]
    if s.repeats and s.name not in extra:
        n = 1 if quick else repeats
        parts = [p if "--repeats" in p else [*p, "--repeats", str(n)] for p in parts]
    if s.optional and s.path.exists():
        flags = help_flags(s.path)
        parts = [[a for i, a in enumerate(p) if not _unsupported(p, i, flags)] for p in parts]
        if quick and "--quick" in flags:
            parts = [[*p, "--quick"] for p in parts]
    return parts


def _unsupported(args: list[str], i: int, flags: set[str]) -> bool:
    """Whether ``args[i]`` is an option (or the value of one) that the script's --help does not list."""
    a = args[i]
    if a.startswith("--"):
        return a.split("=")[0] not in flags
    return i > 0 and args[i - 1].startswith("--") and args[i - 1] not in flags


def help_flags(path: Path) -> set[str]:
    """Options listed by a script's ``--help`` (for scripts whose interface run_all does not know).

    Args:
        path: the script.

    Returns:
        The ``--option`` names; empty when the script cannot be run.
    """
    try:
        r = subprocess.run([sys.executable, str(path), "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return set()
    return {w.strip(",[]").split("=")[0] for w in r.stdout.split() if w.strip("[").startswith("--")}


def run_child(cmd: list[str], log_path: Path, timeout: float | None) -> tuple[int, float]:
    """Run ``cmd`` from the repository root, echoing its output and writing it to ``log_path``.

    Args:
        cmd: the command.
        log_path: log file, appended to.
        timeout: seconds before the child is stopped; ``None`` = no limit.

    Returns:
        (exit status, wall seconds); on timeout the child's process group is
        terminated and the status is 124.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )

        def pump() -> None:
            for line in p.stdout:
                sys.stdout.write("    " + line)
                sys.stdout.flush()
                log.write(line)
                log.flush()

        th = threading.Thread(target=pump, daemon=True)
        th.start()
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(p)
            rc = 124
        except KeyboardInterrupt:
            _stop(p)
            raise
        th.join(10)
        wall = time.perf_counter() - t0
        log.write(f"# exit {rc} after {wall:.1f} s\n")
    return rc, wall


def _stop(p: subprocess.Popen) -> None:
    """Terminate the process group run_all started for this child (its own children included)."""
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def merge_parts(parts: list[dict], args: list[list[str]]) -> dict:
    """One result JSON from several runs of the same script: rows concatenated, the latest date.

    Args:
        parts: the runs' result JSON, in order.
        args: the argument list of each run (recorded under ``parts``).

    Returns:
        The merged JSON.
    """
    out = dict(parts[0])
    out["rows"] = [r for p in parts for r in p.get("rows", [])]
    out["date"] = max(str(p.get("date", "")) for p in parts)
    machines = list(dict.fromkeys(str(p.get("machine", "")) for p in parts))
    out["machine"] = machines[0] if len(machines) == 1 else " | ".join(machines)
    out["parts"] = [
        {"args": a, "date": p.get("date"), "machine": p.get("machine"), "rows": len(p.get("rows", []))}
        for a, p in zip(args, parts)
    ]
    return out


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def run_script(s: Script, parts: list[list[str]], results_dir: Path, timeout: float | None) -> dict:
    """Run a script (all its parts), merging the parts' JSON into one.

    Args:
        s: the script.
        parts: one argument list per invocation (``script_args``).
        results_dir: where the JSON and the log go.
        timeout: seconds per invocation; ``None`` = no limit.

    Returns:
        Its record for the manifest: exit status, seconds, times, commands, whether the JSON was written, log path.
    """
    out = results_dir / s.json
    log = results_dir / "logs" / f"{s.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    started = dt.datetime.now()
    t0 = time.perf_counter()
    rc, cmds, part_files = 0, [], []
    for i, a in enumerate(parts):
        dest = out if len(parts) == 1 else results_dir / ".parts" / f"{s.name}.{i}.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() and dest != out:
            dest.unlink()
        cmd = [sys.executable, str(s.path), *a, "--out", str(dest)]
        cmds.append(shlex.join(cmd))
        print(f"  $ {shlex.join(cmd)}", flush=True)
        rc, _ = run_child(cmd, log, timeout)
        if rc != 0:
            break
        part_files.append(dest)
    if rc == 0 and len(parts) > 1:
        try:
            _write_json(out, merge_parts([json.loads(f.read_text()) for f in part_files], parts))
            for f in part_files:
                f.unlink()
        except (OSError, ValueError) as exc:
            print(f"  could not merge the parts of {s.name}: {exc}", flush=True)
            rc = 1
    return {
        "rc": rc,
        "seconds": round(time.perf_counter() - t0, 1),
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "commands": cmds,
        "json_written": rc == 0 and out.exists() and out.stat().st_mtime >= started.timestamp() - 1,
        "log": str(log),
    }


# --------------------------------------------------------------------------- main
def _names(arg: str | None, ap: argparse.ArgumentParser) -> list[str]:
    if not arg:
        return []
    names = [n.strip() for n in arg.split(",") if n.strip()]
    bad = [n for n in names if n not in BY_NAME]
    if bad:
        ap.error(f"unknown script(s) {', '.join(bad)}; choose from {', '.join(BY_NAME)}")
    return names


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring).

    Args:
        argv: the arguments; ``None`` = ``sys.argv[1:]``.

    Returns:
        0 when every script that ran succeeded, else 1.
    """
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--only", help="comma-separated scripts to run (default: all); see --list")
    ap.add_argument("--skip", help="comma-separated scripts not to run")
    ap.add_argument(
        "--quick", action="store_true", help=f"smallest settings (smoke run), written to --results-dir (default {QUICK_DIR})"
    )
    ap.add_argument("--repeats", type=int, default=3, help="--repeats passed to the scripts that take it (default 3)")
    ap.add_argument(
        "--args",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help='replace run_all\'s arguments for one script (repeatable), e.g. cakt="--epochs 5"',
    )
    ap.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help=f"where the JSON goes (default {_rel(RESULTS_DIR)}; with --quick {QUICK_DIR})",
    )
    ap.add_argument(
        "--md",
        type=Path,
        default=None,
        help=f"report path (default {_rel(RESULTS_MD)} for {_rel(RESULTS_DIR)}, else RESULTS.md in --results-dir)",
    )
    ap.add_argument("--render-only", action="store_true", help="run nothing; render the report from the JSON")
    ap.add_argument("--timeout", type=float, default=0, help="seconds per script invocation before it is stopped (0: no limit)")
    ap.add_argument(
        "--keep-going",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after a failed script, run the others (default) or stop",
    )
    ap.add_argument("--list", action="store_true", help="print the scripts and the arguments run_all passes")
    ap.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    extra = {}
    for a in args.args:
        name, sep, val = a.partition("=")
        if not sep or name not in BY_NAME:
            ap.error(f"--args {a!r}: expected NAME=ARGS with NAME one of {', '.join(BY_NAME)}")
        extra[name] = val
    results_dir = (args.results_dir or (QUICK_DIR if args.quick else RESULTS_DIR)).resolve()
    if args.quick and results_dir == RESULTS_DIR.resolve():
        ap.error("--quick would overwrite bench/results; give another --results-dir")
    md = args.md or (RESULTS_MD if results_dir == RESULTS_DIR.resolve() else results_dir / "RESULTS.md")
    only, skip = _names(args.only, ap), set(_names(args.skip, ap))
    missing = [n for n in only if not BY_NAME[n].path.exists()]
    if missing:
        ap.error(f"not found: {', '.join(f'bench/{n}.py' for n in missing)}")
    chosen = [s for s in SCRIPTS if (not only or s.name in only) and s.name not in skip and s.path.exists()]
    invocation = "bench/run_all.py" + (
        "" if argv is None and len(sys.argv) < 2 else " " + shlex.join(sys.argv[1:] if argv is None else argv)
    )

    if args.list or args.dry_run:
        for s in SCRIPTS if args.list else chosen:
            present = s.path.exists()
            parts = script_args(s, quick=args.quick, repeats=args.repeats, extra=extra) if present else []
            print(f"{s.name:14} -> {s.json}" + ("" if present else "  (absent: skipped)"))
            if present and not parts:
                print("    (no small setting: skipped by --quick)")
            for i, p in enumerate(parts):
                dest = results_dir / s.json if len(parts) == 1 else results_dir / ".parts" / f"{s.name}.{i}.json"
                print(f"    {shlex.join([sys.executable, str(s.path), *p, '--out', str(dest)])}")
        return 0

    ran: dict[str, dict] = {}
    t_all = time.perf_counter()
    if not args.render_only:
        results_dir.mkdir(parents=True, exist_ok=True)
        manifest = load_manifest(results_dir)
        manifest.setdefault("scripts", {})
        inv = {
            "started": dt.datetime.now().isoformat(timespec="seconds"),
            "command": invocation,
            "mode": "quick" if args.quick else "full",
            "scripts": [s.name for s in chosen],
        }
        for i, s in enumerate(chosen, 1):
            parts = script_args(s, quick=args.quick, repeats=args.repeats, extra=extra)
            if not parts:
                print(f"[{i}/{len(chosen)}] {s.name}: no small setting, skipped by --quick", flush=True)
                continue
            print(f"[{i}/{len(chosen)}] {s.name} ({len(parts)} invocation{'s' if len(parts) > 1 else ''}) ...", flush=True)
            rec = run_script(s, parts, results_dir, args.timeout or None)
            rec["mode"] = inv["mode"]
            ran[s.name] = rec
            manifest["scripts"][s.name] = rec
            manifest["last_invocation"] = {**inv, "finished": None}
            _write_json(results_dir / MANIFEST, manifest)
            print(
                f"[{i}/{len(chosen)}] {s.name}: {'ok' if rec['rc'] == 0 else 'FAILED (exit %d)' % rec['rc']} "
                f"in {rec['seconds']:,.0f} s",
                flush=True,
            )
            if rec["rc"] != 0 and not args.keep_going:
                break
        manifest["last_invocation"] = {
            **inv,
            "finished": dt.datetime.now().isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - t_all, 1),
        }
        _write_json(results_dir / MANIFEST, manifest)

    text = render(results_dir, env=environment(), ran=ran, invocation=invocation)
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(text)
    if ran:
        print("\nscript           status        seconds")
        for name, rec in ran.items():
            print(f"{name:16} {_ran_word(rec):13} {rec['seconds']:8,.0f}")
        print(f"total {time.perf_counter() - t_all:,.0f} s")
    print(f"wrote {md}")
    return 0 if all(r["rc"] == 0 for r in ran.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
