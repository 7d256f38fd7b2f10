"""String ids <-> dense integer indices, saved with every model."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

FIELDS = ("user_id", "skill_id", "item_id")


@dataclass
class Vocab:
    """Sorted string vocabularies of learners, KCs and items.

    Index i of ``skill_id`` is the KC encoded as integer i everywhere in kt.
    Sorting (rather than first-appearance order) makes the encoding
    independent of row order, so the same data always gives the same model.
    """

    user_id: list[str] = field(default_factory=list)
    skill_id: list[str] = field(default_factory=list)
    item_id: list[str] = field(default_factory=list)

    def size(self, name: str) -> int:
        """Number of distinct ids of field ``name``."""
        return len(getattr(self, name))

    def frame(self, name: str) -> pl.DataFrame:
        """Two-column lookup frame for joins: ``user_id`` -> ``user_idx`` etc."""
        values = getattr(self, name)
        idx = name.removesuffix("_id") + "_idx"
        return pl.DataFrame({name: pl.Series(values, dtype=pl.String), idx: pl.Series(range(len(values)), dtype=pl.Int32)})

    def to_dict(self) -> dict[str, list[str]]:
        """JSON-ready mapping of field name to its id list."""
        return {name: list(getattr(self, name)) for name in FIELDS}

    @classmethod
    def from_dict(cls, d: dict[str, list[str]]) -> "Vocab":
        """Inverse of :meth:`to_dict`."""
        return cls(**{name: list(d.get(name, [])) for name in FIELDS})
