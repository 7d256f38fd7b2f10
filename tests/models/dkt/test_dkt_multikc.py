"""DKT on questions with several KCs: every KC row is predicted from the state before the question."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kt.data.schema import load
from kt.models.base import create, load as load_model
from kt.train import loop


def test_prev_index_points_before_the_question():
    group = np.array([[0, 0, 1, 2, 2, 2, 3, -1, -1]])
    mask = group >= 0
    prev = loop.prev_index(group, mask)
    np.testing.assert_array_equal(prev, [[-1, -1, 1, 2, 2, 2, 5, -1, -1]])
    # single-KC steps: the step before
    g = np.arange(5)[None, :]
    np.testing.assert_array_equal(loop.prev_index(g, g >= 0), [[-1, 0, 1, 2, 3]])


def _write(path, rows):
    pl.DataFrame(rows, schema=["user_id", "skill_id", "correct"], orient="row").write_csv(path)
    return path


@pytest.fixture(scope="module")
def multikc(tmp_path_factory):
    rng = np.random.default_rng(0)
    rows = []
    kcs = ["a", "b", "c", "d"]
    for u in range(40):
        for _ in range(12):
            pick = rng.choice(4, size=rng.integers(1, 3), replace=False)
            rows.append((f"u{u}", "~~".join(kcs[k] for k in sorted(pick)), int(rng.random() < 0.6)))
    path = _write(tmp_path_factory.mktemp("mkc") / "multi.csv", rows)
    data = load(str(path))
    assert data.multi_kc
    model = create("dkt", sets=["hidden=8", "epochs=2", "batch_size=16", "eval_mode=full"])
    model.fit(data, key=0)
    return data, model, path


def test_multi_kc_prediction_is_fused_mean_of_kc_rows(multikc):
    data, model, _ = multikc
    pred = model.predict(data)
    assert pred.height == data.n_rows  # one prediction per question
    means = pred["prob_kc"].list.mean().to_numpy()
    np.testing.assert_allclose(pred["prob"].to_numpy(), means, rtol=1e-6)
    lens = pred["prob_kc"].list.len().to_numpy()
    np.testing.assert_array_equal(lens, data.frame["skill_id"].list.len().to_numpy())


def test_question_answer_never_reaches_its_own_kc_rows(multikc, tmp_path):
    data, model, path = multikc
    # Flip the answer of one two-KC question: its own prediction must not
    # move (both rows use the state before it), later ones must.
    f = data.frame
    two = np.flatnonzero((f["skill_id"].list.len() == 2).to_numpy() & (f["user_id"] == f["user_id"][0]).to_numpy())
    q = int(two[1])
    raw = pl.read_csv(path)
    raw = raw.with_columns(
        pl.when(pl.int_range(pl.len()) == q).then(1 - pl.col("correct")).otherwise(pl.col("correct")).alias("correct")
    )
    raw.write_csv(tmp_path / "flipped.csv")
    flipped = load(str(tmp_path / "flipped.csv"), vocab=model.vocab)
    a = model.predict(data)["prob"].to_numpy()
    b = model.predict(flipped)["prob"].to_numpy()
    user0 = np.flatnonzero((f["user_id"] == f["user_id"][0]).to_numpy())
    np.testing.assert_allclose(a[: q + 1], b[: q + 1], atol=1e-6)
    assert not np.allclose(a[q + 1 : user0[-1] + 1], b[q + 1 : user0[-1] + 1])


def test_window_and_full_agree_on_short_learners(multikc):
    data, model, _ = multikc
    full = model.predict(data)["prob"].to_numpy()
    import dataclasses

    model.config = dataclasses.replace(model.config, eval_mode="window")
    try:
        win = model.predict(data)["prob"].to_numpy()
    finally:
        model.config = dataclasses.replace(model.config, eval_mode="full")
    np.testing.assert_allclose(full, win, atol=1e-5)


def test_unknown_kc_gets_base_rate_and_saves(multikc, tmp_path):
    data, model, _ = multikc
    rows = [("x", "a", 1), ("x", "zzz", 0), ("x", "b~~c", 1), ("x", "a", 0)]
    new = load(str(_write(tmp_path / "new.csv", rows)), vocab=model.vocab)
    pred = model.predict(new)
    assert pred["prob_kc"][1].to_list() == pytest.approx([model.meta["base_rate"]])
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m").predict(new)
    np.testing.assert_allclose(again["prob"].to_numpy(), pred["prob"].to_numpy(), atol=1e-6)


def test_influence_matrix_shape_and_range(multikc):
    _, model, _ = multikc
    y = model.influence_matrix()
    assert y.shape == (4, 4)
    assert np.all((y > 0) & (y < 1))
