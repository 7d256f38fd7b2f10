"""Per-edge confidence by the learner bootstrap (``--bootstrap N``).

The graph is refitted on N resamples of the learners (drawn with
replacement, seeded; a learner drawn twice counts as two learners), with the
same data method (``mastery``, ``gated``, ``transition`` or ``causal-support``). Per
ordered pair (i, k):

* ``stability[i, k]`` = the share of refits whose graph **keeps** the edge.
  A refit keeps i -> k when (1) its edge probability is >= the export
  threshold (``--threshold``, default 0.5), (2) it outweighs the reverse
  edge (prob_ik > prob_ki: the refit agrees on the direction) and (3), when
  ``--top-k`` is given, it is among the refit's top-k such edges. An edge
  with stability 0.95 is kept, pointing the same way, in 95% of plausible
  re-collections of the learners; one at 0.5 is a coin flip.

  Stability measures sampling noise only. An edge the method gets wrong the
  same way on every sample (a learner's mastery of two sibling KCs moves
  together; a reverse edge whose z statistic is positive too) is stable and
  still false: bench/graphs.py measures how often stable edges are true.
* ``strength_lo[i, k]`` / ``strength_hi[i, k]`` = the 2.5% / 97.5%
  quantiles of the edge probability over the refits (a 95% percentile
  interval for the strength).

The arrays are K x K fields of the graph (stored compactly in graph.json);
``meta["bootstrap"]`` records the rule (refits, seed, threshold, top-k).
Neural models are never retrained: the refits use a data method on the
training data.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from kt.data.schema import Interactions
from kt.errors import KTError
from kt.data.graph import KEEP_RULE, kept_mask, stability_of, with_refit_stability
from kt.data.splits import resample_learners
from kt.graph.graph import PrerequisiteGraph

__all__ = ["KEEP_RULE", "bootstrap_graph", "kept_mask", "refit_probs", "resample_learners", "stability_of"]


def refit_probs(
    data: Interactions, method: str, kcs: list[str], *, n: int, seed: int = 0, progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """Edge probabilities of ``n`` refits on learner resamples, shape (n, K, K).

    Args:
        data: interactions.
        method: a data method (:data:`kt.graph.build.DATA_METHODS`).
        kcs: KC names of the graph.
        n: number of refits.
        seed: seed of the resampling.
        progress: called with (refits done, n) after each refit.
    """
    from kt.graph.build import data_graph

    rng = np.random.default_rng(seed)
    probs = np.empty((n, len(kcs), len(kcs)))
    for b in range(n):
        probs[b] = data_graph(resample_learners(data, rng), method, kcs).prob
        if progress is not None:
            progress(b + 1, n)
    return probs


def bootstrap_graph(
    data: Interactions,
    method: str = "mastery",
    kcs: list[str] | None = None,
    *,
    n: int = 20,
    seed: int = 0,
    threshold: float = 0.5,
    top_k: int | None = None,
    graph: PrerequisiteGraph | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PrerequisiteGraph:
    """A data-method graph with per-edge bootstrap stability and strength intervals.

    Args:
        data: interactions (e.g. a model's training file).
        method: a data method (:data:`kt.graph.build.DATA_METHODS`).
        kcs: KC names of the graph (e.g. a model's vocabulary); default the data's.
        n: number of learner resamples (>= 2).
        seed: seed of the resampling; the same seed gives the same arrays.
        threshold, top_k: the export rule that decides whether a refit keeps an edge.
        graph: the graph on the full data when already computed (else fitted here).
        progress: called with (refits done, n) after each refit.

    Returns:
        ``graph`` (or the full-data fit) with ``stability``, ``strength_lo``
        and ``strength_hi`` set and ``meta["bootstrap"]`` describing the rule.

    Raises:
        KTError: n < 2, threshold outside [0, 1], top_k < 1 or an unknown method.
    """
    from kt.graph.build import data_graph

    if n < 2:
        raise KTError(f"--bootstrap {n}: needs at least 2 refits (20 or more for stable shares)")
    if not 0 <= threshold <= 1:
        raise KTError(f"--threshold {threshold}: must be in [0, 1]")
    if top_k is not None and top_k < 1:
        raise KTError(f"--top-k {top_k}: must be >= 1")
    g = data_graph(data, method, kcs) if graph is None else graph
    probs = refit_probs(data, method, g.kcs, n=n, seed=seed, progress=progress)
    return with_refit_stability(g, probs, threshold, top_k, seed=seed, resample="learners with replacement", method=method)
