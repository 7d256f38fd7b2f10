"""The README's examples run: the Python API walk-through and the graph-recovery commands,
executed as written (the commands through Typer's CliRunner) in a scratch directory."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kt.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block(after: str, lang: str, starts: str = "") -> str:
    """The first ``lang`` code block after the heading or text ``after`` (whose first line starts with ``starts``)."""
    for m in re.finditer(rf"```{lang}\n(.*?)```", README[README.index(after) :], re.S):
        if m.group(1).startswith(starts):
            return m.group(1)
    raise AssertionError(f"README: no {lang} block after {after!r} starting with {starts!r}")


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    (tmp_path / "datasets").symlink_to(ROOT / "datasets", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_python_api_example_runs(scratch):
    code = _block("## Python API", "python")
    scope: dict = {}
    exec(compile(code, "README.md (Python API)", "exec"), scope)
    assert scope["graph"].method == "mastery" and scope["graph"].stability is not None
    assert (scratch / "runs" / "bkt" / "model.json").is_file() and (scratch / "runs" / "bkt-graph.html").is_file()
    assert 0.5 < scope["res"]["auc"] < 1 and scope["dkt"].name == "dkt"


def test_graph_recovery_commands_run(scratch):
    lines = [ln for ln in _block("### Graphs from data alone", "bash", "kt simulate").splitlines() if ln.startswith("kt ")]
    assert len(lines) == 3
    for line in lines:
        res = CliRunner().invoke(app, shlex.split(line)[1:])
        assert res.exit_code == 0, f"{line}: {res.output}"
    assert "auroc" in res.output  # graph-eval printed its table
