"""Shared machinery of the peer benchmarks: quiet-machine waits, timed child processes.

A timed step runs in a fresh child process; its wall time (perf_counter),
peak RSS (wait4) and the CPU other processes used meanwhile are recorded, so
a result can say whether the machine was quiet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Upper bound (seconds) on waiting for a quiet machine before a timed step; set from --wait-quiet.
WAIT_QUIET = {"limit": 0.0}


def loadavg() -> str:
    try:
        a = os.getloadavg()
        return f"{a[0]:.2f} {a[1]:.2f} {a[2]:.2f}"
    except OSError:
        return "n/a"


def system_busy_seconds() -> float:
    """Non-idle CPU seconds of the whole machine so far (Linux /proc/stat; NaN elsewhere)."""
    try:
        vals = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return float("nan")
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    return (sum(vals[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet() -> float:
    """Wait (up to --wait-quiet seconds) until the machine's other CPU use drops below 0.2 cores."""
    t_end = time.perf_counter() + WAIT_QUIET["limit"]
    t0 = time.perf_counter()
    announced = False
    while time.perf_counter() < t_end:
        b0 = system_busy_seconds()
        time.sleep(1.0)
        used = system_busy_seconds() - b0
        if used < 0.2:
            break
        if not announced:
            print(
                f"  waiting for a quiet machine (other processes use {used:.2f} cores; up to {WAIT_QUIET['limit']:.0f} s) ...",
                flush=True,
            )
            announced = True
    return time.perf_counter() - t0


def busy_note(*steps: tuple[str, dict]) -> str:
    """A warning for `notes` when other processes shared the cores during a timed step."""
    busy = [f"{name} {st['other_cores']:.2f}" for name, st in steps if st and st.get("other_cores", 0) > 0.2]
    return (
        (
            " WARNING: other processes used on average (cores) "
            + ", ".join(busy)
            + " while timed: timings inflated, rerun on a quiet machine."
        )
        if busy
        else ""
    )


def machine() -> str:
    gb = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                gb = str(round(int(line.split()[1]) / 1024 / 1024))
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores, {gb} GB, no GPU"


def run_proc(cmd, *, env=None, cwd=None, timeout=3600) -> dict:
    """Run a child; wall seconds (perf_counter), peak RSS (wait4) and its output."""
    waited = wait_quiet()
    load = loadavg()
    busy0 = system_busy_seconds()
    with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
        t0 = time.perf_counter()
        p = subprocess.Popen([str(c) for c in cmd], stdout=so, stderr=se, env=env, cwd=cwd)
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        child_cpu = ru.ru_utime + ru.ru_stime
        other = max(0.0, (system_busy_seconds() - busy0 - child_cpu) / wall) if wall > 0 else 0.0
        p.returncode = os.waitstatus_to_exitcode(status)
        so.seek(0)
        se.seek(0)
        out = so.read().decode(errors="replace")
        err = se.read().decode(errors="replace")
    return {
        "rc": p.returncode,
        "wall": wall,
        "rss_mb": ru.ru_maxrss / 1024.0,
        "stdout": out,
        "stderr": err,
        "cmd": " ".join(map(str, cmd)),
        "load_before": load,
        "load_after": loadavg(),
        "waited_for_quiet_s": round(waited, 1),
        "cpu_seconds": child_cpu,
        "other_cores": other,
    }


def check(res: dict, what: str) -> dict:
    if res["rc"] != 0:
        sys.stderr.write(f"\n{what} failed (exit {res['rc']}): {res['cmd']}\n{res['stdout'][-3000:]}\n{res['stderr'][-6000:]}\n")
        sys.exit(1)
    return res


def peer_status(py: Path, check_src: str, ok_key: str) -> dict:
    """Run a peer venv's self-check script (it prints one JSON line).

    Args:
        py: the peer venv's python.
        check_src: Python source of the check.
        ok_key: the key that reports success, set False on any failure here.

    Returns:
        The check's JSON, or ``{ok_key: False, "error": ...}``.
    """
    if not py.exists():
        return {ok_key: False, "error": "no venv"}
    r = subprocess.run([str(py), "-c", check_src], capture_output=True, text=True)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {ok_key: False, "error": r.stderr[-500:]}
