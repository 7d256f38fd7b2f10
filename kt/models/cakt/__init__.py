"""CAKT (convolution-augmented knowledge tracing): ``model`` (the :class:`CAKT` class and its network) and ``net`` (the
3D-CNN blocks as pure functions).

``import kt.models.cakt`` imports no JAX: every name of ``kt.models.cakt.model``
(the module ``kt.models.cakt`` was before it became this package) is looked up there
on first use, so ``from kt.models.cakt import CAKT`` keeps working.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kt.models.cakt.model import CAKT, CAKTConfig

__all__ = ["CAKT", "CAKTConfig"]
_SUBMODULES = ("model", "net")


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
