"""DKT against known answers: the generating BKT's own predictions, and overfitting a few sequences."""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from kt.data.splits import split_learners
from kt.data.synthetic import simulate_bkt
from kt.models.base import create
from tests.models.bkt.test_bkt_model import frame_to_data


def bkt_oracle(frame: pl.DataFrame, truth: dict) -> np.ndarray:
    """P(correct) of every row under the true BKT parameters (exact forward filter)."""
    kcs = truth["kcs"]
    known: dict[tuple[str, str], float] = {}
    out = np.empty(frame.height)
    for i, (u, k, c) in enumerate(zip(frame["user_id"], frame["skill_id"], frame["correct"])):
        p = kcs[k]
        pk = known.get((u, k), p["prior"])
        out[i] = pk * (1 - p["slip"]) + (1 - pk) * p["guess"]
        like_k, like_u = (1 - p["slip"], p["guess"]) if c else (p["slip"], 1 - p["guess"])
        post = pk * like_k / (pk * like_k + (1 - pk) * like_u)
        known[(u, k)] = post * (1 - p["forget"]) + (1 - post) * p["learn"]
    return out


def test_dkt_comes_within_002_auc_of_the_generating_bkt():
    frame, truth = simulate_bkt(2000, 3, 15, seed=11)
    data = frame_to_data(frame)
    train_u, valid_u, test_u = split_learners(data.frame["user_idx"].unique().to_numpy(), (0.7, 0.1, 0.2), seed=0)
    dkt = create("dkt", hidden=32, lr=1e-2, batch_size=64, epochs=15, patience=3).fit(
        data.subset(train_u), valid=data.subset(valid_u), key=0
    )
    pred = dkt.predict(data.subset(test_u)).filter(pl.col("position") > 0)  # first attempts have no history
    oracle = bkt_oracle(frame, truth)[pred["line"].to_numpy() - 2]  # frame_to_data numbers lines from 2
    y = pred["correct"].to_numpy()
    auc_oracle, auc_dkt = roc_auc_score(y, oracle), roc_auc_score(y, pred["prob"].to_numpy())
    assert auc_oracle > 0.7  # the data carry signal worth learning
    assert auc_dkt > auc_oracle - 0.02, (auc_dkt, auc_oracle)


def test_dkt_overfits_eight_short_sequences():
    rng = np.random.default_rng(0)
    n = 8 * 12
    frame = pl.DataFrame(
        {
            "user_id": np.repeat([f"u{i}" for i in range(8)], 12),
            "skill_id": [f"k{k}" for k in rng.integers(0, 3, n)],
            "correct": rng.integers(0, 2, n),
        }
    )
    data = frame_to_data(frame)
    dkt = create("dkt", hidden=64, lr=2e-2, dropout=0.0, batch_size=8, epochs=300, patience=300).fit(data, key=0)
    assert dkt.meta["history"][-1]["train_loss"] < 0.05
