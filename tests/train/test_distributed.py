"""Multi-host training, actually run: two `kt train --distributed` processes on 127.0.0.1.

Each process sees 2 fake CPU devices, so the cluster has 4; the saved model
must equal single-process training on 4 fake devices, and only process 0
writes it. Slow (two JAX processes plus a baseline, about a minute and a
half on two cores).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytestmark = pytest.mark.slow

TIMEOUT = 300  # seconds for each run (both processes of the pair together)
TRAIN = ["--model", "dkt", "--epochs", "1", "--seed", "3", "--set", "hidden=8", "--set", "batch_size=16"]
DIST_VARS = ("KT_COORDINATOR_ADDRESS", "KT_NUM_PROCESSES", "KT_PROCESS_ID")


@pytest.fixture(scope="module")
def small_csv(sample_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dist") / "small.csv"
    pl.read_csv(sample_dir / "train.csv").head(3000).write_csv(path)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS and not k.startswith(("SLURM_", "OMPI_"))}
    env.update(
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu", KT_NO_COMPILE_CACHE="1", **extra
    )
    return env


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    # Output goes to files: two processes writing to pipes nobody drains could block.
    with open(log, "w") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "kt.cli", "train", *args], stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _wait_all(procs: list[subprocess.Popen], logs: list[Path]) -> None:
    """Wait for every process within TIMEOUT; on a timeout or any failure kill them all."""
    deadline = time.monotonic() + TIMEOUT
    try:
        while None in (codes := [p.poll() for p in procs]):
            if any(c not in (None, 0) for c in codes):
                time.sleep(2)  # one failed: let the other print its side, then kill it below
                break
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {TIMEOUT}s:\n" + _tails(logs))
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
    bad = [p.returncode for p in procs]
    assert bad == [0] * len(procs), f"exit codes {bad}:\n" + _tails(logs)


def _tails(logs: list[Path]) -> str:
    return "\n".join(f"== {log.name}\n{log.read_text()[-3000:]}" for log in logs if log.exists())


def _leaves(model_dir: Path) -> list[np.ndarray]:
    import equinox as eqx
    import jax

    from kt.models.base import load

    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(load(model_dir).params, eqx.is_array))]


def _history(model_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (model_dir / "history.jsonl").read_text().splitlines() if line.strip()]


def test_two_processes_equal_one_process_on_four_devices(small_csv, tmp_path):
    single = tmp_path / "single"
    log = tmp_path / "single.log"
    _wait_all([_start([str(small_csv), "--out", str(single), "--devices", "4", *TRAIN], _env(4), log)], [log])

    outs = [tmp_path / "p0", tmp_path / "p1"]
    logs = [tmp_path / "p0.log", tmp_path / "p1.log"]
    coordinator = f"127.0.0.1:{_free_port()}"
    procs = []
    try:
        for rank in (0, 1):
            env = _env(2, KT_COORDINATOR_ADDRESS=coordinator, KT_NUM_PROCESSES="2", KT_PROCESS_ID=str(rank))
            procs.append(_start([str(small_csv), "--out", str(outs[rank]), "--distributed", *TRAIN], env, logs[rank]))
    finally:
        _wait_all(procs, logs)

    # Process 0 saved the model; process 1 wrote nothing (no model, no checkpoint left over).
    assert (outs[0] / "model.json").exists(), _tails(logs)
    assert "saved dkt to" in logs[0].read_text()
    assert "process 1: training done" in logs[1].read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("p1")) == ["p1.log"]
    assert not any(p.name.startswith("p0.ckpt") for p in tmp_path.iterdir())

    a, b = _leaves(single), _leaves(outs[0])
    assert len(a) == len(b) > 3
    assert [x.shape for x in a] == [x.shape for x in b]
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b) if x.size)
    assert diff < 1e-5, diff
    # Same batches, same steps: the epoch's training loss and validation AUC agree too.
    h1, h2 = _history(single), _history(outs[0])
    assert len(h1) == len(h2) == 1
    assert h1[0]["train_loss"] == pytest.approx(h2[0]["train_loss"], abs=1e-5)
    assert h1[0]["valid_auc"] == pytest.approx(h2[0]["valid_auc"], abs=1e-5)
    m1 = json.loads((single / "model.json").read_text())
    m2 = json.loads((outs[0] / "model.json").read_text())
    assert m1["config"] == m2["config"]
