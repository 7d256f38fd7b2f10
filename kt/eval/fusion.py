"""Late fusion of the KC-row predictions of a multi-KC question.

The rules live in :mod:`kt.models.fusion` (the models fuse with the same
mean); this module re-exports them for the evaluation protocols.
"""

from kt.models.fusion import FUSIONS, fuse

__all__ = ["FUSIONS", "fuse"]
