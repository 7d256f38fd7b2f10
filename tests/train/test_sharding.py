"""Data-parallel training: four fake CPU devices give the one-device result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "shard_equality.py"


@pytest.fixture(scope="module")
def small_csv(sample_dir, tmp_path_factory) -> Path:
    # About five batches of 24 windows: "a few steps", before float rounding
    # differences between one and four devices can grow through training.
    path = tmp_path_factory.mktemp("shard") / "small.csv"
    pl.read_csv(sample_dir / "train.csv").head(3000).write_csv(path)
    return path


def _run_with_devices(args: list[str], n: int = 4) -> subprocess.CompletedProcess:
    # The device count is fixed when JAX starts, so the run needs its own process.
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu", KT_NO_COMPILE_CACHE="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("model", ["dkt", pytest.param("cakt", marks=pytest.mark.slow)])
def test_sharded_training_equals_single_device(small_csv, model):
    # CAKT compiles for about a minute per shape on two cores, so it is slow-only.
    proc = _run_with_devices([str(SCRIPT), str(small_csv), model])
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, r in got.items():
        assert r["n_leaves"] > 3, name
        assert r["max_abs_param"] > 0.05, name  # the parameters did train
        assert r["max_abs_diff"] < 1e-5, (name, r)
        assert r["devices_of_result"] == 1, name  # the fitted model is gathered back


def test_cli_devices_trains_and_saves(small_csv, tmp_path):
    out = tmp_path / "m"
    proc = _run_with_devices(
        [
            "-m",
            "kt.cli",
            "train",
            str(small_csv),
            "--model",
            "dkt",
            "--out",
            str(out),
            "--epochs",
            "1",
            "--devices",
            "4",
            "--set",
            "hidden=8",
            "--set",
            "batch_size=16",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.json").exists()


def test_cli_rejects_more_devices_than_exist(cli, small_csv, tmp_path):
    res = cli("train", str(small_csv), "--model", "dkt", "--out", str(tmp_path / "m"), "--devices", "64")
    assert res.exit_code == 1
    assert "--devices 64" in res.output and "Traceback" not in res.output


def test_cli_rejects_devices_for_one_device_models(cli, small_csv, tmp_path):
    res = cli("train", str(small_csv), "--model", "bkt", "--out", str(tmp_path / "m"), "--devices", "2")
    assert res.exit_code == 1
    assert "trains on one device" in res.output
