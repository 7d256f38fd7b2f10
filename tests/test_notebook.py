"""notebooks/quickstart.ipynb: valid nbformat 4 JSON, and its code cells run
in order in one namespace (what nbclient would do, without a kernel)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def _cells() -> list[dict]:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]


def test_notebook_is_valid_nbformat4():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] >= 5
    assert nb["metadata"]["kernelspec"]["language"] == "python"
    ids = [c["id"] for c in nb["cells"]]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", i) for i in ids)
    for c in nb["cells"]:
        assert c["cell_type"] in ("markdown", "code") and isinstance(c["metadata"], dict)
        assert isinstance(c["source"], list) and all(isinstance(s, str) for s in c["source"])
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None  # committed without outputs
            compile("".join(c["source"]), c["id"], "exec")


@pytest.mark.slow
def test_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outputs go to runs/quickstart under the working directory
    ns: dict = {"__name__": "__main__"}
    for cell in _cells():
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"quickstart.ipynb:{cell['id']}", "exec"), ns)
    assert set(ns["results"]) == {"bkt", "dkt"}
    assert all(0.5 < r["auc"] < 1 for r in ns["results"].values())
    assert ns["graphs"]["bkt"].method == "mastery"
    assert ns["graphs"]["dkt"].method == "mastery"
    out = tmp_path / "runs" / "quickstart"
    assert {"bkt_graph.html", "dkt_graph.json", "bkt_graph.mmd"} <= {p.name for p in out.iterdir()}
    assert ns["mermaid"].startswith("flowchart LR")
