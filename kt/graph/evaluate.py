"""Graph-recovery metrics (EVALUATION.md section 10).

Every ordered pair (i, k), i != k, of the KCs both graphs cover is scored
by the graph's ``prob[i, k]`` against the truth's 0/1 edge indicator:

* AUROC (tie-aware) and AUPRC (average precision, tied scores one step),
  with the base rate |E_true| / (K(K-1)) alongside;
* precision, recall and F1 of the edges at ``prob >= threshold``, and of
  the |E_true| highest-scored pairs (ties broken by KC names);
* Jaccard of the thresholded edge set with the true one;
* orientation accuracy: the share of true edges with p_ik > p_ki;
* MRR: rank all pairs by p, descending; MRR = mean over true edges of
  1 / rank. Tied pairs count with their expected 1 / rank under a random
  order of the tie (a perfect graph with |E| tied true edges scores
  H(|E|) / |E|, as with any strict order).
"""

from __future__ import annotations

import numpy as np

from kt.errors import KTError
from kt.metrics import auc
from kt.graph.graph import PrerequisiteGraph
from kt.graph.truth import Truth


def align(graph: PrerequisiteGraph, truth: Truth) -> tuple[list[str], np.ndarray, np.ndarray, dict]:
    """Match the truth to the graph's KCs by name.

    The KCs scored are the graph's KCs that the truth covers (all of them
    when the truth is a bare edge list, which cannot name KCs without edges).

    Args:
        graph: the inferred graph.
        truth: the true graph.

    Returns:
        ``(kcs, prob, adjacency, counts)``: KC names, the graph's and the
        truth's K x K matrices on them, and bookkeeping counts.

    Raises:
        KTError: fewer than two shared KCs, or no true edge among them.
    """
    covered = set(truth.kcs) if truth.kcs is not None else set(graph.kcs)
    keep = [i for i, k in enumerate(graph.kcs) if k in covered]
    kcs = [graph.kcs[i] for i in keep]
    if len(kcs) < 2:
        some = ", ".join(list(truth.kcs or [k for e in truth.edges for k in e])[:3])
        raise KTError(
            f"{truth.source}: shares {len(kcs)} KC names with the graph (graph: {', '.join(graph.kcs[:3])}, ...; "
            f"truth: {some}, ...); the truth must name KCs as the training data does"
        )
    pos = {k: i for i, k in enumerate(kcs)}
    adj = np.zeros((len(kcs), len(kcs)), dtype=np.int8)
    outside = 0
    for s, t in truth.edges:
        if s in pos and t in pos:
            adj[pos[s], pos[t]] = 1
        else:
            outside += 1
    if adj.sum() == 0:
        raise KTError(
            f"{truth.source}: none of its {len(truth.edges)} edges joins two KCs of the graph; "
            "check that the truth and the training data name KCs the same way"
        )
    counts = {
        "n_kcs": len(kcs),
        "graph_kcs": graph.n_kcs,
        "graph_kcs_not_in_truth": graph.n_kcs - len(kcs),
        "truth_edges": len(truth.edges),
        "truth_edges_outside_graph": outside,
    }
    return kcs, graph.prob[np.ix_(keep, keep)], adj, counts


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the precision-recall curve as a step sum over distinct scores.

    Args:
        y: 0/1 labels.
        p: scores.

    Returns:
        AP in [0, 1]; NaN without positives.
    """
    y = np.asarray(y, dtype=np.float64)
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="mergesort")
    ps, ys = np.asarray(p)[order], y[order]
    last = np.r_[ps[1:] != ps[:-1], True]  # a threshold after each group of tied scores
    tp = np.cumsum(ys)[last]
    k = (np.arange(1, len(ys) + 1))[last]
    precision, recall = tp / k, tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def expected_reciprocal_rank(p: np.ndarray) -> np.ndarray:
    """E[1 / rank] of each score in a descending sort, ties in random order.

    Args:
        p: scores.

    Returns:
        Per score: for a tie of m scores after s higher ones,
        (H(s + m) - H(s)) / m with H the harmonic numbers.
    """
    p = np.asarray(p, dtype=np.float64)
    harmonic = np.r_[0.0, np.cumsum(1.0 / np.arange(1, len(p) + 1))]
    uniq, inverse, counts = np.unique(-p, return_inverse=True, return_counts=True)
    before = np.r_[0, np.cumsum(counts)[:-1]]  # pairs scored strictly higher
    per_group = (harmonic[before + counts] - harmonic[before]) / counts
    return per_group[inverse]


def _prf(pred: np.ndarray, y: np.ndarray) -> dict:
    tp, n_pred, n_true = float(np.sum(pred & y)), float(pred.sum()), float(y.sum())
    prec = tp / n_pred if n_pred else 0.0
    rec = tp / n_true if n_true else 0.0
    return {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0}


def graph_metrics(graph: PrerequisiteGraph, truth: Truth, threshold: float = 0.5) -> dict:
    """All recovery metrics of ``graph`` against ``truth`` (see the module docstring).

    Args:
        graph: the inferred graph.
        truth: the true or expert graph.
        threshold: edge threshold for precision/recall/F1 and Jaccard.

    Returns:
        JSON-ready dict of metrics and counts.
    """
    if not 0 <= threshold <= 1:
        raise KTError(f"--threshold {threshold}: must be in [0, 1]")
    kcs, prob, adj, counts = align(graph, truth)
    k = len(kcs)
    off = ~np.eye(k, dtype=bool)
    p, y = prob[off], adj[off].astype(bool)
    n_true = int(y.sum())
    # Top-|E| by score, ties by (source, target) names: a deterministic cut.
    name_rank = np.argsort(np.argsort(np.array(kcs, dtype=object)))
    src_all, dst_all = np.nonzero(off)
    order = np.lexsort((name_rank[dst_all], name_rank[src_all], -p))
    top = np.zeros(len(p), dtype=bool)
    top[order[:n_true]] = True
    at = (p >= threshold) & (p > 0)
    src, dst = np.nonzero(adj)
    oriented = prob[src, dst] > prob[dst, src]
    union = float(np.sum(at | y))
    res = {
        "method": graph.method,
        "threshold": threshold,
        **counts,
        "n_pairs": int(len(p)),
        "n_true_edges": n_true,
        "base_rate": n_true / len(p),
        "auroc": auc(y, p),
        "auprc": average_precision(y, p),
        **{f"{m}_at_threshold": v for m, v in _prf(at, y).items()},
        "n_edges_at_threshold": int(at.sum()),
        **{f"{m}_at_top_true": v for m, v in _prf(top, y).items()},
        "jaccard_at_threshold": float(np.sum(at & y)) / union if union else 0.0,
        "orientation_accuracy": float(oriented.mean()),
        "mrr": float(np.mean(expected_reciprocal_rank(p)[y])),
    }
    return res
