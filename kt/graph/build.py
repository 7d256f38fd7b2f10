"""One prerequisite graph for every model, with the method named.

* PSI-KT learns one: ``model.graph()`` (method ``learned``).
* DKT/CAKT expose ``influence_matrix()``: the conditional-influence graph
  of Piech et al. (2015) (method ``conditional-influence``).
* Models without structure (BKT, baselines): the causal-support graph of
  the training data (method ``causal-support``).

Graphs from data alone (:func:`data_graph`, ``kt learn-graph``): ``mastery``
(the mastery-regression structure learner, kt.graph.mastery),
``gated`` (a gated-BKT likelihood with a soft graph fitted by gradient,
kt.graph.gated; slower, far better where prerequisites gate learning),
``transition`` (practice-order counts, a baseline that shows the curriculum
confound) and ``causal-support``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from kt.data.partitioned import PartitionedData
from kt.data.schema import Interactions
from kt.errors import KTError
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
    own = model.capabilities.graph
    g = model.graph() if own == "learned" else None
    if g is None and own == "conditional-influence":
        g = influence_graph(kcs, np.asarray(model.influence_matrix()))
    if g is None:
        return None if data is None else causal_support_graph(data, kcs)
    if g.difficulty is None and data is not None:
        g = dataclasses.replace(g, difficulty=kc_difficulty(data, g.kcs))
    return g


def partitioned_graph(model, data: PartitionedData) -> PrerequisiteGraph | None:
    """:func:`graph_for` a model trained on a partitioned dataset, without a pass over the data.

    Per-KC difficulty (which breaks learning-order ties) comes from the
    counts in the dataset's ``meta.json`` (whole dataset).

    Args:
        model: a fitted kt model.
        data: the partitioned dataset it was trained on.

    Returns:
        The model's own graph with difficulty filled in, or ``None`` when it has none.
    """
    g = graph_for(model, None)
    if g is not None and g.difficulty is None:
        g = dataclasses.replace(g, difficulty=data.kc_difficulty(list(g.kcs)))
    return g


DATA_METHODS = ("mastery", "gated", "transition", "causal-support")

# Learners x longest sequence x K^2 up to which the gated learner is the default graph: its fit does
# about this much work per Adam step (K = 30, 3,000 learners x 100 attempts, 2.7e8, takes about
# 4.5 minutes on one core); beyond it the mastery learner (seconds) is the default.
GATED_AUTO_CELLS = 3e8


def _gated_size(data: Interactions) -> tuple[int, int, int]:
    """(learners, longest sequence, K): what sets the gated learner's cost."""
    lengths = data.frame.group_by("user_idx").len()["len"].to_numpy()
    longest = int(lengths.max()) if len(lengths) else 0
    return data.n_users, longest, data.vocab.size("skill_id")


def gated_cells(data: Interactions) -> int:
    """The size that sets the gated learner's cost: learners x longest sequence x K².

    Args:
        data: interactions.

    Returns:
        N * T_max * K**2 (the filter runs over padded sequences and K x K pairs).
    """
    return _cells(*_gated_size(data))


def _cells(n: int, t: int, k: int) -> int:
    return n * t * k * k


def default_data_method(data: Interactions) -> tuple[str, str | None]:
    """The graph method ``kt export-graph`` uses by default on a model's training data.

    ``gated`` recovers known graphs best on the generator where
    prerequisites gate learning (edge AUROC 0.97-1.00 against mastery's
    0.81-0.93, bench/results/graphs.json) but costs a filter pass over every
    (learner, attempt, KC pair) per step, so it is the default only up to
    :data:`GATED_AUTO_CELLS`; larger data get ``mastery``.

    Args:
        data: the training interactions.

    Returns:
        ``(method, why)``: ``why`` says why ``gated`` was not used (None when it is).
    """
    n, t, k = _gated_size(data)  # one pass over the frame: the note names the sizes
    cells = _cells(n, t, k)
    if cells <= GATED_AUTO_CELLS:
        return "gated", None
    return "mastery", (
        f"the gated graph would take long here ({n:,} learners x up to {t:,} attempts x {k}^2 KC pairs, "
        f"{cells / GATED_AUTO_CELLS:.0f}x its default budget): showing the mastery graph; --method gated forces it"
    )


def data_graph(
    data: Interactions,
    method: str = "mastery",
    kcs: list[str] | None = None,
    *,
    on_step: Callable[[int, int], None] | None = None,
) -> PrerequisiteGraph:
    """A prerequisite graph learnt from interactions alone, by a named method.

    Args:
        data: interactions.
        method: ``mastery``, ``gated``, ``transition`` or ``causal-support`` (see the module docstring).
        kcs: KC names of the graph (e.g. a model's vocabulary); default the data's.
        on_step: ``gated`` only: called as ``on_step(step, steps)`` after each fitting step (progress).

    Returns:
        The graph, with ``method`` set to the method's name.

    Raises:
        KTError: unknown method.
    """
    from kt.graph.mastery import mastery_graph, transition_graph

    if method == "mastery":
        return mastery_graph(data, kcs)
    if method == "gated":
        from kt.graph.gated import GATED_STEPS, gated_graph

        step = None if on_step is None else (lambda i, _loss: on_step(i + 1, GATED_STEPS))
        return gated_graph(data, kcs, on_step=step)
    if method == "transition":
        return transition_graph(data, kcs)
    if method == "causal-support":
        return causal_support_graph(data, kcs)
    raise KTError(f"--method {method!r}: unknown graph method; choose one of {', '.join(DATA_METHODS)}")
