"""Conditional-influence graph of a sequence model (Piech et al. 2015, DKT).

The model is shown a single correct answer on KC i and predicts every KC:
``y[i, j]`` = P(correct on KC j | one correct answer on KC i). Piech et al.
normalise per dependent KC, J[i, j] = y[i, j] / sum_k y[k, j], which divides
out how easy KC j is, so J compares the sources of one KC. The sum runs over
all sources including j itself, as in the paper; the diagonal is then
dropped (self-influence is not a prerequisite relation).

J is stored as the graph's ``score``. Its neutral value is the uniform
share 1/K, so the edge probability is r / (1 + r) with r = K * J: 0.5 when
i influences j as much as an average KC, above 0.5 when more.
"""

from __future__ import annotations

import numpy as np

from kt.errors import KTError
from kt.graph.graph import PrerequisiteGraph


def piech_normalise(y: np.ndarray) -> np.ndarray:
    """J[i, j] = y[i, j] / sum_k y[k, j], with a zero diagonal.

    Args:
        y: K x K predicted correctness, row = the KC answered correctly.

    Returns:
        The normalised influence matrix.
    """
    col = y.sum(axis=0, keepdims=True)
    j = np.divide(y, col, out=np.zeros_like(y), where=col > 0)
    np.fill_diagonal(j, 0.0)
    return j


def influence_graph(kcs: list[str], y: np.ndarray) -> PrerequisiteGraph:
    """The conditional-influence graph from a model's K x K influence matrix.

    Args:
        kcs: KC names (the model's vocabulary order).
        y: ``y[i, j]`` = P(correct on j) after one correct answer on i.

    Returns:
        A graph with ``method="conditional-influence"`` and ``score`` = J.

    Raises:
        KTError: the matrix has the wrong shape or values outside [0, 1].
    """
    y = np.asarray(y, dtype=np.float64)
    k = len(kcs)
    if y.shape != (k, k) or not np.all(np.isfinite(y)) or y.min(initial=0) < 0 or y.max(initial=0) > 1:
        raise KTError(
            f"influence matrix: expected {k} x {k} probabilities, got shape {y.shape}; "
            "this is a bug in the model's influence_matrix()"
        )
    j = piech_normalise(y)
    r = k * j
    prob = r / (1.0 + r)
    meta = {
        "transform": "score J = y / column sum (Piech et al. 2015); prob = r / (1 + r), r = K * J",
        "influence": "y[i, j] = P(correct on j | one correct answer on i)",
    }
    return PrerequisiteGraph(kcs, prob, "conditional-influence", score=j, meta=meta)
