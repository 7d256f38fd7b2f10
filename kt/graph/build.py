"""One prerequisite graph for every model, with the method named.

* PSI-KT learns one: ``model.graph()`` (method ``learned``).
* DKT/CAKT expose ``influence_matrix()``: the conditional-influence graph
  of Piech et al. (2015) (method ``conditional-influence``).
* Models without structure (BKT, baselines): the causal-support graph of
  the training data (method ``causal-support``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kt.data.schema import Interactions
from kt.graph.graph import PrerequisiteGraph
from kt.graph.influence import influence_graph
from kt.graph.support import causal_support_graph, kc_difficulty


def graph_for(model, data: Interactions | None = None) -> PrerequisiteGraph | None:
    """The best prerequisite graph available for a fitted model.

    Args:
        model: a fitted kt model (with ``vocab``).
        data: its training interactions; needed for the causal-support
            graph and for per-KC difficulty (breaks learning-order ties).

    Returns:
        The graph, or ``None`` when the model has no structure and no data
        is given.
    """
    kcs = list(model.vocab.skill_id)
    graph_fn = getattr(model, "graph", None)
    g = graph_fn() if callable(graph_fn) else None
    if g is None and callable(getattr(model, "influence_matrix", None)):
        g = influence_graph(kcs, np.asarray(model.influence_matrix()))
    if g is None:
        return None if data is None else causal_support_graph(data, kcs)
    if g.difficulty is None and data is not None:
        g = dataclasses.replace(g, difficulty=kc_difficulty(data, g.kcs))
    return g
