"""The prerequisite graph every model can hand to a curriculum designer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float


@dataclass(frozen=True)
class PrerequisiteGraph:
    """Directed KC graph; ``prob[i, k]`` = P(KC i is a prerequisite of KC k).

    Attributes:
        kcs: KC names (the model's vocabulary order).
        prob: edge probabilities, zero diagonal.
        method: how the graph was obtained (e.g. ``learned``, ``influence``).
    """

    kcs: list[str]
    prob: Float[np.ndarray, "K K"]
    method: str

    def edges(self, threshold: float = 0.5) -> list[tuple[str, str, float]]:
        """Edges with probability >= ``threshold``, strongest first."""
        i, k = np.nonzero(self.prob >= threshold)
        rows = [(self.kcs[a], self.kcs[b], float(self.prob[a, b])) for a, b in zip(i, k) if a != b]
        return sorted(rows, key=lambda r: -r[2])

    def to_dict(self, threshold: float = 0.5) -> dict:
        """JSON-ready edge list."""
        return {
            "method": self.method,
            "kcs": list(self.kcs),
            "threshold": threshold,
            "edges": [{"source": s, "target": t, "prob": p} for s, t, p in self.edges(threshold)],
        }
