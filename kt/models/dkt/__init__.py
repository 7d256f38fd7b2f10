"""Deep Knowledge Tracing: ``model`` (the :class:`DKT` class and its network).

``import kt.models.dkt`` imports no JAX: every name of ``kt.models.dkt.model``
(the module ``kt.models.dkt`` was before it became this package) is looked up there
on first use, so ``from kt.models.dkt import DKT`` keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kt.models.paths import lazy_package

if TYPE_CHECKING:
    from kt.models.dkt.model import DKT, DKTConfig

__all__ = ["DKT", "DKTConfig"]
_SUBMODULES = ("model",)

__getattr__, __dir__ = lazy_package(__name__, _SUBMODULES, __all__)
