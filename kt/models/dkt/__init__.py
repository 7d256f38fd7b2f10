"""Deep Knowledge Tracing: ``model`` (the :class:`DKT` class and its network).

``import kt.models.dkt`` imports no JAX: every name of ``kt.models.dkt.model``
(the module ``kt.models.dkt`` was before it became this package) is looked up there
on first use, so ``from kt.models.dkt import DKT`` keeps working.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kt.models.dkt.model import DKT, DKTConfig

__all__ = ["DKT", "DKTConfig"]
_SUBMODULES = ("model",)


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
