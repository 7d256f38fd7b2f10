"""Declared model capabilities (kt.models.base.Capabilities) match what each class implements,
so the API and the CLI can read the declaration instead of probing signatures and attributes."""

from __future__ import annotations

import inspect

import pytest

from kt.models.base import REGISTRY, Capabilities, Model, _ensure_builtin
from kt.models.psikt.filter_model import PsiKTFilter

_ensure_builtin()
CLASSES = sorted({*REGISTRY.values(), PsiKTFilter}, key=lambda c: (c.name, c.__name__))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_declaration_matches_the_class(cls):
    caps = cls.capabilities
    assert isinstance(caps, Capabilities)
    fit = inspect.signature(cls.fit).parameters
    assert caps.on_step == ("on_step" in fit)
    assert caps.devices == ("devices" in fit)
    assert caps.resumable == ("checkpoint" in fit and "resume" in fit)
    assert caps.history_modes == hasattr(cls.Config(), "eval_mode")
    assert caps.update == callable(getattr(cls, "update", None))
    assert caps.params_table == callable(getattr(cls, "params_table", None))
    own = {"learned": cls.graph is not Model.graph, "conditional-influence": callable(getattr(cls, "influence_matrix", None))}
    assert caps.graph in (None, *own) and all(v == (caps.graph == k) for k, v in own.items())


def test_every_builtin_model_is_checked():
    assert {"majority", "kc-rate", "bkt", "dkt", "cakt", "psikt"} <= {c.name for c in CLASSES}
