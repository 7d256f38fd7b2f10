"""CAKT (convolution-augmented knowledge tracing): ``model`` (the :class:`CAKT` class and its network) and ``net`` (the
3D-CNN blocks as pure functions).

``import kt.models.cakt`` imports no JAX: every name of ``kt.models.cakt.model``
(the module ``kt.models.cakt`` was before it became this package) is looked up there
on first use, so ``from kt.models.cakt import CAKT`` keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kt.models.paths import lazy_package

if TYPE_CHECKING:
    from kt.models.cakt.model import CAKT, CAKTConfig

__all__ = ["CAKT", "CAKTConfig"]
_SUBMODULES = ("model", "net")

__getattr__, __dir__ = lazy_package(__name__, _SUBMODULES, __all__)
