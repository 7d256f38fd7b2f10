"""Mastery-regression prerequisite graph (method ``mastery``): a structure
learner any interaction data can use.

For every attempt on KC k (each KC of a multi-KC item is a target), the
outcome is regressed on the learner's evidence of mastery of every other KC
i just before the attempt, controlling for k's own history and for the
learner's ability:

    logit P(y = 1) = b_k + c_k . [own mastery of k, log(1 + attempts on k),
                                  ability, log(1 + attempt number)]
                     + sum_{i != k} w_ik * (m_i - mbar_i)

* m_i = the learner's recency-weighted success rate on i: successes and
  attempts on i decay by ``decay`` at each new attempt on i, with
  ``prior_weight`` pseudo-attempts at the KC's overall success rate mbar_i
  (a KC never practised sits at mbar_i, i.e. contributes nothing).
* ability = the learner's success rate over all their other attempts
  (leave-one-out, shrunk to the overall rate): a per-learner control, so
  w_ik measures within-learner co-variation, not "strong learners are good
  at everything".
* KCs tagged on the same item as k are left out of that attempt's features
  (their mastery is part of the item, not a prerequisite).

One L2-regularised logistic regression per target KC (standardised
features, Newton's method). The edge score is the z statistic of w_ik
(coefficient / standard error): how strongly mastery of i predicts success
on k beyond k's own history. Orientation comes from the asymmetry of
prerequisites: when i is a prerequisite of k, i's mastery limits success
and learning on k, which k's own history cannot show, while k's mastery
adds less about i beyond i's own history, so z_ik > z_ki.

The edge probability reads z against the bulk of the pairs (an empirical
null: most ordered pairs are not edges, and their z statistics spread wider
than N(0, 1) because the regression is only an approximation of how
learners learn):

    prob_ik = sigmoid((z_ik - m0) / s0 - 2)

with m0 = the median of the off-diagonal z and s0 = the root mean square
deviation from m0 of the z below it (the lower half, which edges rarely
reach), floored at 1 (the sd of a z statistic under a correct model);
with K <= 4 (under 20 pairs) the theoretical null m0 = 0, s0 = 1. So
0.5 = two null standard deviations above the typical pair, about a
one-sided 2% null tail, and the default export threshold keeps only edges
that stand out; the map is increasing in z, so rankings (edge AUROC) are
those of z. The constant 2 was set once, on bootstrap calibration over
gated (random and curriculum, K = 10 and 30) and ou-graph data (seeds 0-4),
as the smallest whole number of null sds for which the edges a 20-refit
bootstrap keeps at stability >= 0.9 are true at least 90% of the time on
gated data (bench/graphs.py reports the table). The former map,
sigmoid(z / sd of all off-diagonal z), put half of all pairs above 0.5
and its stable edges were true only 15-59% of the time.
(Multiplying by sigmoid((z_ik - z_ki) / s) to stress the asymmetry was
tried and ranked edges worse on every generator checked, so it is not
used.)

Defaults (decay 0.5, one pseudo-attempt, l2 = 1) were chosen once from a
small grid (decay 0.5 / 0.7 / 0.9 / 1) on seeds 0-1 of three generators
(gated random, gated curriculum, ou-graph); short memory suits learners
whose states change.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kt.data.schema import Interactions
from kt.errors import KTError
from kt.graph.graph import PrerequisiteGraph
from kt.graph.support import kc_difficulty, transition_counts

N_CONTROLS = 4  # own mastery, log own attempts, ability, log attempt number
NULL_SDS = 2.0  # prob = 0.5 this many null sds above the median pair (see the module docstring)
MIN_NULL_PAIRS = 20  # fewer ordered pairs: the theoretical null N(0, 1) instead of the empirical one


def null_location_scale(z: np.ndarray) -> tuple[float, float]:
    """Empirical null of the off-diagonal z statistics: (median, rms deviation of the lower half, >= 1).

    Args:
        z: K x K scores (the diagonal is ignored).

    Returns:
        ``(m0, s0)``; the theoretical null ``(0, 1)`` when there are fewer
        than :data:`MIN_NULL_PAIRS` ordered pairs (K <= 4), too few to tell
        the bulk from the edges.
    """
    x = z[~np.eye(len(z), dtype=bool)]
    if x.size < MIN_NULL_PAIRS:
        return 0.0, 1.0
    m0 = float(np.median(x))
    lower = x[x <= m0]
    return m0, max(float(np.sqrt(np.mean((lower - m0) ** 2))), 1.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, clipped so that extreme scores give 0 or 1 without overflow warnings.

    Args:
        x: scores.

    Returns:
        1 / (1 + exp(-x)), elementwise.
    """
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def null_calibrated(score: np.ndarray, symbol: str) -> tuple[np.ndarray, dict]:
    """Edge probabilities read against the empirical null of the pairs (see the module docstring).

    Args:
        score: K x K scores (the diagonal is ignored).
        symbol: the score's name in the ``transform`` text (``z``, ``w``).

    Returns:
        ``(prob, meta)``: prob = sigmoid((score - m0) / s0 - NULL_SDS) with a
        zero diagonal, and ``transform``, ``null_median``, ``null_sd`` for
        the graph's meta.
    """
    m0, s0 = null_location_scale(score)
    prob = sigmoid((score - m0) / s0 - NULL_SDS)
    np.fill_diagonal(prob, 0.0)
    meta = {
        "transform": f"prob = sigmoid(({symbol}_ik - m0) / s0 - {NULL_SDS:g}), m0 = median of the off-diagonal "
        f"{symbol}, s0 = rms deviation of the {symbol} below m0 (at least 1)",
        "null_median": m0,
        "null_sd": s0,
    }
    return prob, meta


def mastery_features(data: Interactions, *, decay: float = 0.5, prior_weight: float = 1.0):
    """Per (attempt, KC) row: the target KC, outcome, controls and the mastery deviations of every KC.

    Args:
        data: interactions (KC indices from ``data.vocab``; unknown KCs are skipped).
        decay: per-attempt decay of a KC's success evidence (1 = plain running rate).
        prior_weight: pseudo-attempts at the KC's overall success rate.

    Returns:
        ``(target, y, controls, other)``: target KC per row (R,), outcome (R,),
        controls (R, 4), mastery deviations m_i - mbar_i of all KCs (R, K),
        with the target and its co-tagged KCs set to 0.
    """
    if not 0 < decay <= 1:  # also rejects NaN
        raise KTError(f"mastery graph: decay {decay}: must be in (0, 1]")
    if not prior_weight > 0:
        raise KTError(f"mastery graph: prior_weight {prior_weight}: must be > 0")
    K = data.vocab.size("skill_id")
    ex = data.explode().select("attempt", "user_idx", "skill_idx", "correct").filter(pl.col("skill_idx") >= 0)
    if ex.height == 0:
        raise KTError(f"{data.source}: no attempt with a known KC; the mastery graph needs KC-tagged attempts")
    att = ex["attempt"].to_numpy().astype(np.int64)
    user = ex["user_idx"].to_numpy().astype(np.int64)
    kc = ex["skill_idx"].to_numpy().astype(np.int64)
    y = ex["correct"].to_numpy().astype(np.float64)
    # Compact learner ids and each attempt's position in its learner's sequence (frame is ordered per learner).
    _, u = np.unique(user, return_inverse=True)
    first_att = np.unique(att, return_index=True)[1]
    a_user = u[first_att]
    a_y = y[first_att]
    n_att = len(first_att)
    start = np.r_[0, np.flatnonzero(np.diff(a_user) != 0) + 1]
    if len(np.unique(a_user)) != len(start):
        raise KTError(f"{data.source}: attempts are not grouped by learner; load the data with kt.load")
    pos_att = np.arange(n_att) - np.repeat(start, np.diff(np.r_[start, n_att]))
    rank = np.searchsorted(np.unique(att), att)  # attempt rank of each exploded row
    pos = pos_att[rank]
    N = int(u.max()) + 1
    mbar = np.bincount(kc, weights=y, minlength=K) / np.maximum(np.bincount(kc, minlength=K), 1)
    mbar = np.where(np.bincount(kc, minlength=K) > 0, mbar, y.mean())
    # Ability: leave-one-out success rate of the learner over attempts, shrunk by 2 pseudo-attempts.
    tot_y = np.bincount(a_user, weights=a_y, minlength=N)
    tot_n = np.bincount(a_user, minlength=N).astype(np.float64)
    base = a_y.mean()
    ability = (tot_y[u] - y + 2 * base) / (tot_n[u] - 1 + 2)

    R = len(kc)
    if R * K * 4 > 4e9:  # the (rows x KCs) feature matrix
        raise KTError(
            f"{data.source}: the mastery graph needs {R * K * 4 / 1e9:.1f} GB for {R:,} KC-attempts x {K:,} KCs; "
            "run it on a sample of learners"
        )
    # Walk the sequences position by position (all learners' n-th attempts at once); the cost is
    # O(rows x K), touching only the learners who have an attempt at that position.
    order = np.lexsort((att, pos))
    bounds = np.r_[0, np.flatnonzero(np.diff(pos[order]) != 0) + 1, len(order)]
    other = np.zeros((R, K), np.float32)
    controls = np.zeros((R, N_CONTROLS))
    S = np.zeros((N, K))  # decayed successes
    W = np.zeros((N, K))  # decayed attempts
    C = np.zeros((N, K))  # plain attempt counts
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        rows = order[b0:b1]
        ur, kr = u[rows], kc[rows]
        m = (S[ur] + prior_weight * mbar) / (W[ur] + prior_weight) - mbar  # deviations before this attempt
        # KCs of the same attempt (one attempt per learner at a position) are not features of each other.
        users, inv = np.unique(ur, return_inverse=True)
        tagged = np.zeros((len(users), K), bool)
        tagged[inv, kr] = True
        other[rows] = np.where(tagged[inv], 0.0, m)
        controls[rows, 0] = m[np.arange(len(rows)), kr]
        controls[rows, 1] = np.log1p(C[ur, kr])
        controls[rows, 3] = np.log1p(pos[rows])
        # Each practised KC takes the attempt's outcome (each (learner, KC) appears once per position).
        S[ur, kr] = decay * S[ur, kr] + y[rows]
        W[ur, kr] = decay * W[ur, kr] + 1.0
        C[ur, kr] += 1.0
    controls[:, 2] = ability
    return kc, y, controls, other


def _logistic(X: np.ndarray, y: np.ndarray, l2: float, iters: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """L2-penalised logistic regression by Newton's method (intercept in column 0, not penalised).

    Returns:
        (coefficients, standard errors from the penalised Hessian).
    """
    d = X.shape[1]
    w = np.zeros(d)
    pen = np.full(d, l2)
    pen[0] = 0.0
    H = np.eye(d)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -30, 30)))
        g = X.T @ (y - p) - pen * w
        H = (X * (p * (1 - p))[:, None]).T @ X + np.diag(pen) + 1e-9 * np.eye(d)
        step = np.linalg.solve(H, g)
        w += step
        if np.max(np.abs(step)) < 1e-8:
            break
    se = np.sqrt(np.clip(np.diag(np.linalg.inv(H)), 1e-12, None))
    return w, se


def mastery_scores(
    data: Interactions, *, decay: float = 0.5, prior_weight: float = 1.0, l2: float = 1.0, min_rows: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """z statistics of mastery of i predicting success on k, per ordered pair.

    Args:
        data: interactions.
        decay, prior_weight: see :func:`mastery_features`.
        l2: ridge penalty on the standardised coefficients.
        min_rows: targets with fewer attempts get score 0.

    Returns:
        ``(z, rows)``: z[i, k] (zero diagonal) and the attempts per target KC.
    """
    K = data.vocab.size("skill_id")
    target, y, controls, other = mastery_features(data, decay=decay, prior_weight=prior_weight)
    z = np.zeros((K, K))
    n_rows = np.bincount(target, minlength=K)
    for k in range(K):
        sel = target == k
        if sel.sum() < min_rows or y[sel].min() == y[sel].max():
            continue
        X = np.concatenate([controls[sel], other[sel].astype(np.float64)], axis=1)
        sd = X.std(axis=0)
        keep = sd > 1e-9  # KCs never seen before k (or co-tagged) carry no information
        Xs = (X[:, keep] - X[:, keep].mean(axis=0)) / sd[keep]
        w, se = _logistic(np.concatenate([np.ones((len(Xs), 1)), Xs], axis=1), y[sel], l2)
        full = np.zeros(X.shape[1])
        full[keep] = (w / se)[1:]
        z[:, k] = full[N_CONTROLS:]
    np.fill_diagonal(z, 0.0)
    return z, n_rows


def mastery_graph(data: Interactions, kcs: list[str] | None = None, **kwargs) -> PrerequisiteGraph:
    """The mastery-regression graph of a data set (see the module docstring).

    Args:
        data: interactions.
        kcs: KC names of the graph (e.g. a model's vocabulary); default the data's.
        **kwargs: options of :func:`mastery_scores`.

    Returns:
        A graph with ``method="mastery"``, ``score`` = z statistics and
        ``support`` = attempts on the target KC.
    """
    z, n_rows = mastery_scores(data, **kwargs)
    prob, null = null_calibrated(z, "z")
    support = np.broadcast_to(n_rows[None, :].astype(np.float64), z.shape).copy()
    meta = {
        **null,
        "score": "z statistic of KC i's recent-mastery deviation in an L2 logistic regression of success on KC k, "
        "controlling for k's own mastery and attempts, learner ability and attempt number",
        **{k: v for k, v in kwargs.items()},
    }
    return _reindex(PrerequisiteGraph(list(data.vocab.skill_id), prob, "mastery", support=support, score=z, meta=meta), data, kcs)


def transition_graph(data: Interactions, kcs: list[str] | None = None) -> PrerequisiteGraph:
    """Baseline (method ``transition``): how often KC i is practised right before KC k.

    Shows what practice order alone says: under a curriculum it follows the
    order of teaching, prerequisite or not.

    Args:
        data: interactions.
        kcs: KC names of the graph; default the data's.

    Returns:
        A graph with ``score`` = transition counts n_ik and
        ``prob = r / (1 + r)``, r = n_ik / mean off-diagonal count (0.5 = an average pair).
    """
    K = data.vocab.size("skill_id")
    n = transition_counts(data, K).sum(axis=(2, 3))
    off = ~np.eye(K, dtype=bool)
    mean = n[off].mean() if off.any() and n[off].mean() > 0 else 1.0
    r = n / mean
    meta = {"transform": "prob = r / (1 + r), r = transitions i -> k / mean over ordered pairs", "transitions": int(n.sum())}
    return _reindex(
        PrerequisiteGraph(list(data.vocab.skill_id), r / (1 + r), "transition", support=n, score=n, meta=meta), data, kcs
    )


def _reindex(g: PrerequisiteGraph, data: Interactions, kcs: list[str] | None) -> PrerequisiteGraph:
    """Re-index a graph on the data's vocabulary to ``kcs`` (absent KCs get no edges) and add difficulty."""
    kcs = g.kcs if kcs is None else [str(k) for k in kcs]
    pos = {k: i for i, k in enumerate(g.kcs)}
    src = np.array([pos.get(k, -1) for k in kcs])
    have = np.flatnonzero(src >= 0)

    def move(a):
        if a is None:
            return None
        b = np.zeros((len(kcs), len(kcs)))
        b[np.ix_(have, have)] = a[np.ix_(src[have], src[have])]
        return b

    return PrerequisiteGraph(
        kcs,
        move(g.prob),
        g.method,
        support=move(g.support),
        score=move(g.score),
        difficulty=kc_difficulty(data, kcs),
        meta=g.meta,
    )
