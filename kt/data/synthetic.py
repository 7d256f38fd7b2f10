"""Synthetic interaction data with known ground truth (for recovery tests)."""

from __future__ import annotations

import numpy as np
import polars as pl

from kt.errors import KTError


def simulate_bkt(
    n_learners: int,
    n_kcs: int,
    steps: int,
    *,
    seed: int = 0,
    forgets: bool = False,
    items_per_kc: int = 1,
    multigs: bool = False,
) -> tuple[pl.DataFrame, dict]:
    """Sample BKT learners: every learner practises every KC ``steps`` times.

    Attempts on different KCs are interleaved at random; timestamps are
    seconds, one minute apart.

    Args:
        n_learners: number of learners.
        n_kcs: number of KCs.
        steps: attempts per learner and KC.
        seed: NumPy seed.
        forgets: sample a non-zero forget probability.
        items_per_kc: distinct items per KC (drawn uniformly per attempt).
        multigs: guess/slip differ per item (KT-IDEM).

    Returns:
        (interactions with ``user_id``, ``skill_id``, ``item_id``,
        ``timestamp``, ``correct``; truth dict with per-KC parameters and,
        with ``multigs``, per-item guess/slip).
    """
    if min(n_learners, n_kcs, steps, items_per_kc) < 1:
        raise KTError("simulate: --learners, --kcs, --steps and items per KC must be >= 1")
    rng = np.random.default_rng(seed)
    K, N, T = n_kcs, n_learners, steps
    prior = rng.uniform(0.05, 0.6, K)
    learn = rng.uniform(0.05, 0.3, K)
    forget = rng.uniform(0.01, 0.1, K) if forgets else np.zeros(K)
    n_items = K * items_per_kc
    if multigs:
        guess = rng.uniform(0.05, 0.35, n_items)
        slip = rng.uniform(0.05, 0.25, n_items)
    else:
        guess = np.repeat(rng.uniform(0.05, 0.3, K), items_per_kc)
        slip = np.repeat(rng.uniform(0.05, 0.2, K), items_per_kc)

    known = rng.random((N, K)) < prior
    item = np.empty((N, K, T), np.int64)
    correct = np.empty((N, K, T), np.int8)
    for t in range(T):
        it = rng.integers(0, items_per_kc, (N, K)) + np.arange(K) * items_per_kc
        p = np.where(known, 1 - slip[it], guess[it])
        correct[:, :, t] = rng.random((N, K)) < p
        item[:, :, t] = it
        u = rng.random((N, K))
        known = np.where(known, u >= forget, u < learn)
    # Interleave each learner's KCs randomly while keeping order within a KC.
    keys = rng.random((N, K * T))
    order = np.argsort(keys, axis=1)
    kc_seq = np.repeat(np.arange(K), T)[order]
    kc_pos = np.zeros((N, K * T), np.int64)
    for k in range(K):
        mask = kc_seq == k
        kc_pos[mask] = np.tile(np.arange(T), N)
    users = np.repeat(np.arange(N), K * T)
    flat_kc = kc_seq.ravel()
    flat_t = kc_pos.ravel()
    frame = pl.DataFrame(
        {
            "user_id": [f"u{u}" for u in users],
            "skill_id": [f"kc{k}" for k in flat_kc],
            "item_id": [f"i{i}" for i in item[users, flat_kc, flat_t]],
            "timestamp": np.tile(np.arange(K * T) * 60, N).astype(np.int64),
            "correct": correct[users, flat_kc, flat_t].astype(np.int8),
        }
    )
    truth = {
        "kind": "bkt",
        "seed": seed,
        "kcs": {f"kc{k}": {"prior": prior[k], "learn": learn[k], "forget": forget[k],
                           "guess": float(guess[k * items_per_kc]), "slip": float(slip[k * items_per_kc])}
                for k in range(K)},
    }
    if multigs:
        truth["items"] = {f"i{i}": {"guess": float(guess[i]), "slip": float(slip[i])} for i in range(n_items)}
    truth["kcs"] = {k: {p: float(v) for p, v in d.items()} for k, d in truth["kcs"].items()}
    return frame, truth
