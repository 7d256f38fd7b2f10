"""The shared training loop (kt.train.loop.run) with a model's own objective and scorer."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import kt
from kt.data.sequences import build_sequences
from kt.train import loop


class Bias(eqx.Module):  # one logit per KC: compiles in a moment
    b: jax.Array


@eqx.filter_jit
def _sgd_step(model, opt_state, batch, key, lr):
    def loss(m):
        per = optax.sigmoid_binary_cross_entropy(m.b[batch["skill"]], batch["correct"].astype(jnp.float32))
        tgt = loop.targets(batch)
        return jnp.where(tgt, per, 0.0).sum() / jnp.maximum(tgt.sum(), 1), tgt.sum()

    (value, n), grads = jax.value_and_grad(loss, has_aux=True)(model)
    return jax.tree.map(lambda p, g: p - lr * g, model, grads), opt_state, value, n


def _step(model, opt_state, batch, key, lr, state):
    model, opt_state, value, n = _sgd_step(model, opt_state, batch, key, lr)
    return model, opt_state, state, {"loss": value, "n": n, "extra": jnp.float32(2.0)}


@pytest.fixture(scope="module")
def seqs():
    df, _ = kt.simulate("bkt", learners=30, kcs=3, steps=5, seed=2)
    return build_sequences(kt.from_frame(df).frame, window=200, min_len=2)


def test_run_takes_the_models_objective_and_scorer(seqs):
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9])
    seen = []

    def score(model, state):  # a scripted selection metric; the model of each epoch is kept aside
        seen.append(np.asarray(model.b))
        m = next(scores)
        return m, {"metric": m, "note": 1.0}

    objective = loop.Objective(step=_step, init=lambda model: ())
    settings = loop.LoopSettings(epochs=10, patience=2, min_delta=0.0, batch_size=8, lr=0.5, buckets=(8,))
    res = loop.run(Bias(jnp.zeros(3)), objective, seqs, settings, jax.random.key(0), score=score)
    # epochs 3 and 4 do not beat epoch 2: patience 2 stops after epoch 4, epoch 2's model is returned
    assert res.stopped == "patience" and res.best_epoch == 2 and len(res.history) == 4
    np.testing.assert_array_equal(np.asarray(res.model.b), seen[1])
    assert not np.array_equal(seen[1], seen[3])
    rec = res.history[0]
    assert rec["train_extra"] == pytest.approx(2.0)  # other terms: averaged over the epoch's positions
    assert rec["valid_metric"] == 0.5 and rec["valid_note"] == 1.0
    assert {"train_loss", "seconds", "interactions_per_second"} <= set(rec)


def test_run_draws_batch_order_from_seed_and_step_keys_from_the_objective(seqs):
    keys = []

    def step_key(key, rng):  # e.g. PSI-KT: noise from the loop's generator, the JAX key untouched
        keys.append(int(rng.integers(0, 2**31 - 1)))
        return key, key

    settings = loop.LoopSettings(epochs=2, batch_size=8, lr=0.5, buckets=(8,))

    def train(key, seed):
        keys.clear()
        obj = loop.Objective(step=_step, init=lambda model: (), step_key=step_key)
        res = loop.run(Bias(jnp.zeros(3)), obj, seqs, settings, key, seed=seed)
        return np.asarray(res.model.b), list(keys)

    b1, k1 = train(jax.random.key(0), 7)
    b2, k2 = train(jax.random.key(1), 7)  # the seed, not the key, drives the generator
    b3, k3 = train(jax.random.key(0), 8)
    np.testing.assert_array_equal(b1, b2)
    assert k1 == k2 and k1 != k3 and len(k1) == 2 * loop.n_batches(seqs, 8)
