"""ARCHITECTURE.md's worked example ("Adding a model in one file") runs as written: the
toy model registers, trains through kt.train, evaluates, saves and loads back."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import kt
from kt.errors import KTError
from kt.models.base import REGISTRY

DOC = Path(__file__).resolve().parents[1] / "ARCHITECTURE.md"


@pytest.fixture(scope="module")
def example_module(tmp_path_factory):
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Adding a model in one file") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    path = tmp_path_factory.mktemp("example") / "last_answer_model.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("last_answer_model", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["last_answer_model"] = mod
    spec.loader.exec_module(mod)
    yield mod
    REGISTRY.pop("last-answer", None)
    sys.modules.pop("last_answer_model", None)


def test_worked_example_trains_evaluates_saves_and_loads(example_module, tmp_path):
    frame, _ = kt.simulate(kind="bkt", learners=80, kcs=4, steps=12, seed=0)
    data = kt.from_frame(frame)
    assert "last-answer" in kt.list_models()
    model = kt.train(data, "last-answer", weight=0.5, out=tmp_path / "m")
    report = kt.evaluate(model, data)
    # BKT learners' previous answer on a KC carries signal: the example beats chance.
    assert report["auc"] > 0.55
    again = kt.load_model(tmp_path / "m")
    np.testing.assert_allclose(again.predict(data)["prob"].to_numpy(), model.predict(data)["prob"].to_numpy())
    with pytest.raises(KTError, match="weight=2"):
        kt.train(data, "last-answer", weight=2.0)
