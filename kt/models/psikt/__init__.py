"""PSI-KT: ``model`` (the :class:`PsiKT` class: data in and out), ``core`` (the
pure JAX pieces: links, graph, transition, networks, ELBO), ``filter`` (the
filter-inference equations), ``filter_model`` (the ``inference=filter``
class) and ``train`` (its training loop).

``import kt.models.psikt`` imports no JAX: every name of ``kt.models.psikt.model``
(the module ``kt.models.psikt`` was before it became this package) is looked up there
on first use, so ``from kt.models.psikt import PsiKT`` keeps working.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kt.models.psikt.model import PsiKT, PsiKTConfig

__all__ = ["PsiKT", "PsiKTConfig"]
_SUBMODULES = ("model", "core", "filter", "filter_model", "train")


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
