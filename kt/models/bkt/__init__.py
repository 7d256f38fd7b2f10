"""Bayesian Knowledge Tracing: ``model`` (the :class:`BKT` class: data in and out), ``em`` (the EM
steps and parameter types), ``lanes`` (the lane engine) and ``layout`` (host-side
packing of the sequences into lanes and grids).

``import kt.models.bkt`` imports no JAX: every name of ``kt.models.bkt.model``
(the module ``kt.models.bkt`` was before it became this package) is looked up there
on first use, so ``from kt.models.bkt import BKT`` keeps working.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kt.models.bkt.model import BKT, BKTConfig

__all__ = ["BKT", "BKTConfig"]
_SUBMODULES = ("model", "em", "lanes", "layout")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if not name.startswith("__"):
        model = importlib.import_module(f"{__name__}.model")
        if hasattr(model, name):
            return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
