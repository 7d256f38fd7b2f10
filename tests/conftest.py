"""Shared fixtures for the kt test suite.

Keep this file additive: each helper or fixture is self-contained so that
several test modules (and several authors) can add to it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# --- shared real datasets ---------------------------------------------------


def shared_data_dir() -> Path:
    """Where the shared real datasets live (may not exist).

    ``$KT_SHARED_DATA`` wins; otherwise ``<repo>/../shared/data``.
    """
    env = os.environ.get("KT_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data directory; skips the test when it is absent."""
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"shared datasets not found at {d} (set KT_SHARED_DATA)")
    return d


@pytest.fixture
def shared_file(shared_data):
    """``shared_file("assist2009/gervet/x.csv.gz")`` -> path, or skip if that file is missing."""

    def get(rel: str) -> Path:
        p = shared_data / rel
        if not p.exists():
            pytest.skip(f"shared dataset file {rel} not found under {shared_data}")
        return p

    return get


# --- bundled sample -----------------------------------------------------------


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The bundled ASSISTments 2009 sample (``datasets/assist2009_sample``)."""
    return REPO / "datasets" / "assist2009_sample"


# --- CLI ------------------------------------------------------------------------


@pytest.fixture
def cli():
    """Run the ``kt`` CLI in-process: ``cli("data", "inspect", path)`` -> click Result.

    ``result.output`` holds stdout and stderr together.
    """
    from typer.testing import CliRunner

    from kt.cli import app

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


# --- small synthetic files -----------------------------------------------------


@pytest.fixture
def write_file(tmp_path):
    """``write_file("x.csv", text, encoding="utf-8")`` -> path under ``tmp_path``.

    ``text`` may be ``str`` (encoded with ``encoding``) or ``bytes``; a name
    ending in ``.gz`` is gzip-compressed.
    """
    import gzip

    def write(name: str, text: str | bytes, encoding: str = "utf-8") -> Path:
        data = text.encode(encoding) if isinstance(text, str) else text
        if name.endswith(".gz"):
            data = gzip.compress(data, mtime=0)
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    return write
