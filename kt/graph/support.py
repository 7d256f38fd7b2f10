"""Data-driven prerequisite graph from transition statistics: causal support
(Griffiths & Tenenbaum 2005), as in EVALUATION.md section 10.

For every ordered KC pair (i, k), consecutive attempts of the same learner
with KC i first and KC k next (gap 1, different KCs) are counted by outcome:
c = the answer on i was correct, e = the answer on k was correct. Two
hypotheses explain the four counts:

* G0: e ~ Bernoulli(w0), whatever c;
* G1: noisy-OR, P(e | c) = 1 - (1 - w0)(1 - w1)^c (a correct answer on i
  raises the chance of a correct answer on k).

support = log P(D | G1) - log P(D | G0), with w0 and w1 integrated over a
uniform grid (all four likelihood factors kept under G1). The edge
probability is the logistic of the support, which is P(G1 | D) under even
prior odds: 0.5 means no evidence either way. Pairs with fewer than
``min_transitions`` transitions get probability 0 (no evidence is not an
edge) and keep their count in ``support``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kt.data.schema import Interactions
from kt.graph.graph import PrerequisiteGraph


def transition_counts(data: Interactions, n_kcs: int) -> np.ndarray:
    """Outcome counts of consecutive attempt pairs per ordered KC pair.

    An attempt with several KCs pairs each of its KCs with each KC of the
    learner's next attempt.

    Args:
        data: interactions (KC indices from ``data.vocab``).
        n_kcs: number of KCs (``data.vocab.size("skill_id")``).

    Returns:
        Array ``n[i, k, c, e]`` of shape (K, K, 2, 2); the diagonal is 0.
    """
    ex = data.explode().select("attempt", "user_idx", "skill_idx", "correct")
    nxt = ex.with_columns(pl.col("attempt") - 1).rename({"user_idx": "u2", "skill_idx": "k2", "correct": "e"})
    pairs = ex.join(nxt, on="attempt", how="inner").filter(
        (pl.col("user_idx") == pl.col("u2"))
        & (pl.col("skill_idx") >= 0)
        & (pl.col("k2") >= 0)
        & (pl.col("skill_idx") != pl.col("k2"))
    )
    i = pairs["skill_idx"].to_numpy().astype(np.int64)
    k = pairs["k2"].to_numpy().astype(np.int64)
    c = pairs["correct"].to_numpy().astype(np.int64)
    e = pairs["e"].to_numpy().astype(np.int64)
    flat = ((i * n_kcs + k) * 2 + c) * 2 + e
    return np.bincount(flat, minlength=n_kcs * n_kcs * 4).reshape(n_kcs, n_kcs, 2, 2).astype(np.float64)


def causal_support(counts: np.ndarray, grid: int = 50, chunk: int = 1024) -> np.ndarray:
    """log P(D | G1) - log P(D | G0) for each count table.

    Args:
        counts: ``(..., 2, 2)`` outcome counts ``n[c, e]``.
        grid: points per strength axis (midpoints of a uniform grid on (0, 1)).
        chunk: pairs evaluated at once (bounds memory at chunk x grid^2).

    Returns:
        Support per table, shape ``counts.shape[:-2]``; 0 for empty tables.
    """
    shape = counts.shape[:-2]
    n = counts.reshape(-1, 4)  # columns: (c0,e0), (c0,e1), (c1,e0), (c1,e1)
    w = (np.arange(grid) + 0.5) / grid
    lw, l1w = np.log(w), np.log1p(-w)
    # noisy-OR success: 1 - (1 - w0)(1 - w1), rows w0, columns w1
    l_or = np.log1p(-np.outer(1 - w, 1 - w))
    out = np.zeros(len(n))
    rows = np.flatnonzero(n.sum(axis=1) > 0)  # an empty table is equally likely under both: 0
    # Sparse data repeats few tables ((0,1,0,0), ...): evaluate each distinct table once.
    tables = np.ascontiguousarray(n[rows])
    keys = tables.view(np.dtype((np.void, tables.dtype.itemsize * 4))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    uniq = tables[first]
    res = np.zeros(len(uniq))
    for s in range(0, len(uniq), chunk):
        m = uniq[s : s + chunk]
        n00, n01, n10, n11 = (m[:, j, None] for j in range(4))
        ll0 = (n01 + n11) * lw + (n00 + n10) * l1w  # (P, grid) over w0
        ll1 = (
            (n01 * lw + (n00 + n10) * l1w)[:, :, None]  # w0 terms
            + (n10 * l1w)[:, None, :]  # (1 - w1) of c=1, e=0
            + n11[:, :, None] * l_or[None]
        )
        res[s : s + chunk] = _logmeanexp(ll1.reshape(len(m), -1)) - _logmeanexp(ll0)
    out[rows] = res[inverse.reshape(-1)]
    return out.reshape(shape)


def _logmeanexp(a: np.ndarray) -> np.ndarray:
    top = a.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(a - top).mean(axis=1, keepdims=True)))[:, 0]


def kc_difficulty(data: Interactions, kcs: list[str]) -> np.ndarray:
    """1 - mean correctness per KC name (NaN for KCs without attempts).

    Args:
        data: interactions.
        kcs: KC names to report, in order.

    Returns:
        Difficulty per KC of ``kcs``.
    """
    ex = data.explode().filter(pl.col("skill_idx") >= 0)
    rates = ex.group_by("skill_id").agg(pl.col("correct").mean().alias("r"))
    table = dict(zip(rates["skill_id"].to_list(), rates["r"].to_list()))
    return np.array([1.0 - table[k] if k in table else np.nan for k in kcs])


def causal_support_graph(
    data: Interactions, kcs: list[str] | None = None, *, min_transitions: int = 2, grid: int = 50
) -> PrerequisiteGraph:
    """The causal-support graph of a data set (see the module docstring).

    Args:
        data: training interactions.
        kcs: KC names of the graph (a model's vocabulary); default: the
            data's KC vocabulary. KCs absent from the data get no edges.
        min_transitions: pairs with fewer transitions get probability 0.
        grid: grid points per strength axis.

    Returns:
        A graph with ``method="causal-support"``, ``score`` = support,
        ``support`` = transition counts, and per-KC ``difficulty``.
    """
    own = list(data.vocab.skill_id)
    k_own = len(own)
    counts = transition_counts(data, k_own)
    score_own = causal_support(counts, grid)
    n_own = counts.sum(axis=(2, 3))
    kcs = own if kcs is None else [str(k) for k in kcs]
    # Re-index from the data's vocabulary to the requested KC names.
    pos = {k: i for i, k in enumerate(own)}
    src = np.array([pos.get(k, -1) for k in kcs])
    have = src >= 0
    score = np.zeros((len(kcs), len(kcs)))
    n = np.zeros((len(kcs), len(kcs)))
    ix = np.ix_(np.flatnonzero(have), np.flatnonzero(have))
    score[ix] = score_own[np.ix_(src[have], src[have])]
    n[ix] = n_own[np.ix_(src[have], src[have])]
    prob = np.where(n >= min_transitions, 1.0 / (1.0 + np.exp(-score)), 0.0)
    np.fill_diagonal(prob, 0.0)
    meta = {
        "transform": "prob = 1 / (1 + exp(-support)) = P(G1 | D) at even prior odds; "
        f"0 for pairs with fewer than {min_transitions} transitions",
        "support": "log P(D|G1) - log P(D|G0), noisy-OR G1, strengths on a uniform grid",
        "grid": grid,
        "min_transitions": min_transitions,
        "transitions": int(n.sum()),
    }
    return PrerequisiteGraph(kcs, prob, "causal-support", support=n, score=score, difficulty=kc_difficulty(data, kcs), meta=meta)
