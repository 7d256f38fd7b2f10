"""One multi-KC mean fusion for the models (kt.models.fusion) and the evaluation (issue 18).

The shared functions are checked against the per-model code they replaced (DKT/CAKT,
the rate baselines and BKT each grouped their KC rows by question) on multi-KC data,
bit for bit, and against PSI-KT's and the evaluation's mean up to float rounding.
"""

from __future__ import annotations

import numpy as np
import polars as pl

import kt
from kt.eval import fusion as eval_fusion
from kt.models import fusion
from kt.models.base import create


def _multi_kc() -> kt.Interactions:
    rng = np.random.default_rng(7)
    rows = []
    for u in range(6):
        for t in range(15):
            kcs = rng.choice(list("abcdefg"), size=rng.integers(1, 6), replace=False)
            rows.append({"user_id": f"u{u}", "skill_id": "~~".join(kcs), "correct": int(rng.random() < 0.6), "order": t})
    data = kt.from_frame(pl.DataFrame(rows))
    assert data.multi_kc and data.frame["skill_id"].list.len().max() >= 3  # sums of 3+ terms show float order
    return data


def test_question_means_equal_the_per_model_grouping_they_replaced():
    ex = _multi_kc().explode()
    rng = np.random.default_rng(0)
    p, k = rng.random(ex.height), rng.random(ex.height)
    flag = rng.random(ex.height) < 0.2
    # DKT/CAKT's question_probs, before:
    old = (
        pl.DataFrame({"attempt": ex["attempt"], "p": p})
        .group_by("attempt", maintain_order=True)
        .agg(pl.col("p").mean().alias("prob"), pl.col("p").alias("prob_kc"))
        .sort("attempt")
    )
    new = fusion.question_means(ex["attempt"], p=p)
    np.testing.assert_array_equal(new["p"].to_numpy(), old["prob"].to_numpy())
    assert fusion.question_rows(ex["attempt"], p).to_list() == old["prob_kc"].to_list()
    # BKT's _predict_probs, before (means and any-flags in one grouping):
    old = (
        pl.DataFrame({"a": ex["attempt"], "p": p, "k": k, "kf": flag})
        .group_by("a", maintain_order=True)
        .agg(pl.col("p").mean(), pl.col("k").mean(), pl.col("kf").any())
    )
    new = fusion.question_means(ex["attempt"], p=p, k=k, kf=flag)
    for c in ("p", "k"):
        np.testing.assert_array_equal(new[c].to_numpy(), old[c].to_numpy())
    np.testing.assert_array_equal((new["kf"] > 0).to_numpy(), old["kf"].to_numpy())
    # PSI-KT's bincount mean and the evaluation's list mean: the same rule up to rounding.
    q = ex["attempt"].to_numpy().astype(np.int64)
    n = int(q.max()) + 1
    np.testing.assert_allclose(new["p"].to_numpy(), np.bincount(q, weights=p, minlength=n) / np.bincount(q, minlength=n))
    np.testing.assert_allclose(new["p"].to_numpy(), fusion.fuse(fusion.question_rows(ex["attempt"], p), "mean"), rtol=1e-12)


def test_models_report_the_shared_mean_of_their_kc_rows():
    data = _multi_kc()
    ex = data.explode()
    m = create("dkt", hidden=8, epochs=1, window=32).fit(data, key=0)
    pred = m.predict(data)
    assert pred["prob_kc"].list.len().to_list() == data.frame["skill_id"].list.len().to_list()
    per_row = pred["prob_kc"].explode().to_numpy()
    np.testing.assert_array_equal(pred["prob"].to_numpy(), fusion.question_means(ex["attempt"], p=per_row)["p"].to_numpy())
    rate = create("kc-rate").fit(data, key=0)
    table = np.append(np.asarray(rate.params.kc_rate), float(rate.params.global_rate))
    expect = fusion.question_means(ex["attempt"], r=table[ex["skill_idx"].to_numpy()])["r"].to_numpy()
    np.testing.assert_array_equal(rate.predict(data)["prob"].to_numpy(), expect)


def test_eval_fusion_is_the_models_module():
    assert eval_fusion.fuse is fusion.fuse and eval_fusion.FUSIONS is fusion.FUSIONS
