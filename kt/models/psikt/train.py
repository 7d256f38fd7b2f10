"""PSI-KT's training objective: the negative weighted ELBO, its batches, optimiser and scorers.

The loop is the shared one (:func:`kt.train.loop.run`); this module
supplies what is PSI-KT's own: device batches with gaps in days
(:func:`to_batch`), the step (Adam on :func:`kt.models.psikt.core.elbo`
after gradient clipping and weight decay on weight matrices, with noise
keys drawn from the loop's NumPy generator), and the validation scorers
(next-step AUC, validation ELBO; the within-learner F1 lives on the model,
which encodes and forecasts learners).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from kt.data.sequences import Sequences, batches, length_batches
from kt import metrics
from kt.models.psikt import core
from kt.models.seeds import seed_of
from kt.train import loop

DAY_SECONDS = {"seconds": 86400.0, "minutes": 1440.0, "hours": 24.0, "days": 1.0}


@dataclass(frozen=True)
class Settings(loop.LoopSettings):
    """The loop's settings with PSI-KT's defaults, plus gradient clipping (see :class:`kt.models.psikt.model.PsiKTConfig`).

    ``weight_decay`` applies to weight matrices only (see :func:`optimiser`).
    """

    epochs: int = 200
    patience: int = 10
    min_delta: float = 1e-4
    batch_size: int = 512
    lr: float = 5e-3
    buckets: tuple[int, ...] = (16, 32, 50, 64, 100, 128, 200)
    weight_decay: float = 1e-5
    clip_norm: float = 100.0


def seq_days(seqs: Sequences, unit: float | None) -> np.ndarray:
    """Model time (days, float64) of every step; the step index when ``unit`` is None."""
    T = seqs.mask.shape[1]
    if unit is None:
        t = seqs.start[:, None].astype(np.float64) + np.arange(T, dtype=np.float64)[None, :]
    else:
        t = seqs.time / unit
    return np.where(seqs.mask, t, np.nan)


def to_batch(seqs: Sequences, unit: float | None, pad_rows: int | None = None) -> core.Batch:
    """Device batch from padded sequences; gaps and offsets are taken in float64 on the host.

    Args:
        seqs: padded sequences (time in seconds, NaN on padding).
        unit: seconds per model day, or None to use the step index.
        pad_rows: pad the batch with empty rows to this many (default: the
            next power of two, bounding the number of compiled shapes).
    """
    n = seqs.mask.shape[0]
    rows = pad_rows if pad_rows is not None else 1 << max(n - 1, 0).bit_length()
    pad = max(rows - n, 0)
    t = seq_days(seqs, unit)
    dt = np.zeros_like(t)
    dt[:, 1:] = t[:, 1:] - t[:, :-1]
    dt = np.where(seqs.mask & np.isfinite(dt), np.maximum(dt, 0.0), 0.0)
    tau = np.where(seqs.mask, t - t[:, :1], 0.0)
    tau = np.where(np.isfinite(tau), tau, 0.0)
    known = seqs.mask & (seqs.skill >= 0)

    def arr(x, dtype):
        x = x.astype(dtype)
        if pad:
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), dtype)])
        return jnp.asarray(x)

    return core.Batch(
        skill=arr(np.maximum(seqs.skill, 0), np.int32),
        correct=arr(seqs.correct, np.int32),
        dt=arr(dt, np.float32),
        tau=arr(tau, np.float32),
        mask=arr(seqs.mask, bool),
        known=arr(known, bool),
    )


def noise_key(rng: np.random.Generator):
    """A fresh key for in-jit noise, drawn from the loop's NumPy generator.

    The ``rbg`` implementation compiles to XLA's RngBitGenerator: the
    default threefry PRNG adds over a minute of compilation to the train
    step on a 2-core machine. Drawing the seed from ``rng`` keeps runs
    reproducible and resumable (the generator state is checkpointed).
    """
    return jax.random.key(int(rng.integers(0, 2**31 - 1)), impl="rbg")


def _decay_mask(params):
    return jax.tree_util.tree_map(lambda x: eqx.is_array(x) and x.ndim >= 2, params)


@functools.lru_cache(maxsize=16)
def _optimiser(clip_norm: float, weight_decay: float, lr: float) -> optax.GradientTransformation:
    # Cached: the transformation is a static argument of the jitted step, so
    # equal settings must give the identical object to reuse compiled code.
    return optax.chain(
        optax.clip_by_global_norm(clip_norm),
        optax.add_decayed_weights(weight_decay, mask=_decay_mask),
        optax.adam(lr),
    )


def optimiser(s: Settings) -> optax.GradientTransformation:
    """clip(global norm) -> coupled L2 on weight matrices (arrays with >= 2 dims) -> Adam."""
    return _optimiser(float(s.clip_norm), float(s.weight_decay), float(s.lr))


@eqx.filter_jit
def _train_step(net, opt_state, batch: core.Batch, key, hyper: core.Hyper, opt):
    B, T = batch.mask.shape
    noise = core.draw_noise(key, B, T, hyper, net.n_cat)
    (loss, terms), grads = eqx.filter_value_and_grad(core.elbo, has_aux=True)(net, batch, noise, hyper)
    params = eqx.filter(net, eqx.is_array)
    updates, opt_state = opt.update(eqx.filter(grads, eqx.is_array), opt_state, params)
    return eqx.apply_updates(net, updates), opt_state, terms


def _step(hyper: core.Hyper, opt, net, opt_state, batch: core.Batch, key, lr, state):
    # The loop's step contract; the learning rate is fixed in ``opt``, and PSI-KT has no state.
    net, opt_state, terms = _train_step(net, opt_state, batch, key, hyper, opt)
    terms = dict(terms)
    terms["n"] = terms.pop("steps")
    return net, opt_state, state, terms


def _noise_step_key(key, rng: np.random.Generator):
    return key, noise_key(rng)


def objective(hyper: core.Hyper, unit: float | None, settings: Settings) -> loop.Objective:
    """The loop's :class:`~kt.train.loop.Objective` for PSI-KT.

    Each step minimises the negative ELBO (``core.elbo``; its terms are
    recorded as ``train_<name>``) with :func:`optimiser`, on batches padded
    to ``batch_size`` rows (one compiled step per length bucket), with noise
    from :func:`noise_key`.
    """
    opt = optimiser(settings)
    return loop.Objective(
        step=functools.partial(_step, hyper, opt),
        init=lambda net: opt.init(eqx.filter(net, eqx.is_array)),
        make_batch=lambda seqs, batch_size: to_batch(seqs, unit, pad_rows=batch_size),
        step_key=_noise_step_key,
    )


def fit(
    net: core.Net,
    hyper: core.Hyper,
    train: Sequences,
    unit: float | None,
    settings: Settings,
    key,
    *,
    valid_score: Callable[[Any, Any], loop.Score] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    on_step: Callable[[int, int | None, dict], None] | None = None,
) -> loop.FitResult:
    """Minimise the negative ELBO in the shared loop, early-stopping on ``valid_score``.

    Args:
        net: initial parameters.
        hyper: static settings of the ELBO.
        train: training sequences (windows).
        unit: seconds per day, or None (step index as time).
        settings: optimisation settings.
        key: int seed or PRNG key: it seeds the loop's NumPy generator, the
            source of the batch order and of all noise (the loop's JAX key is
            a fixed placeholder, checkpointed but never split).
        valid_score: ``(net, state) -> (score, fields)`` (higher is better;
            e.g. :func:`auc_score`), or None: no early stopping (the last
            state is kept).
        on_epoch: called with each epoch's record.
        checkpoint: directory for a per-epoch checkpoint.
        resume: continue from ``checkpoint``.
        on_step: progress hook between steps, as in :func:`kt.train.loop.run`.

    Returns:
        :class:`kt.train.loop.FitResult` (the best state by validation score).
    """
    return loop.run(
        net,
        objective(hyper, unit, settings),
        train,
        settings,
        jax.random.key(0),
        seed=seed_of(key),
        score=valid_score,
        on_epoch=on_epoch,
        on_step=on_step,
        checkpoint=checkpoint,
        resume=resume,
    )


@eqx.filter_jit
def _eval_elbo(net, batch: core.Batch, key, hyper: core.Hyper):
    B, T = batch.mask.shape
    return core.elbo(net, batch, core.draw_noise(key, B, T, hyper, net.n_cat), hyper)[1]


@eqx.filter_jit
def _next_probs(net, batch: core.Batch, hyper: core.Hyper):
    return core.next_step_probs(net, batch, hyper)


def predict_batch_rows(T: int, K: int, cap: int) -> int:
    """Sequences per prediction batch so that B x T x K stays near 4M cells."""
    rows = max(1, (4_000_000 // max(T * K, 1)))
    return int(min(cap, 1 << (rows.bit_length() - 1)))


def predict_batches(seqs: Sequences, n_kc: int, batch_size: int, buckets: tuple[int, ...]):
    """Length-ordered prediction batches of the amortized model (:func:`kt.data.sequences.length_batches`).

    Args:
        seqs: the sequences to predict.
        n_kc: number of KCs K.
        batch_size: the most sequences per batch; fewer for long padded
            lengths (:func:`predict_batch_rows`).
        buckets: allowed padded lengths.

    Returns:
        An iterator of ``(indices, padded sub-sequences)``.
    """
    return length_batches(seqs, batch_size, buckets, rows_at=lambda T: predict_batch_rows(T, n_kc, batch_size))


def next_step_on(net, seqs: Sequences, unit, hyper: core.Hyper, batch_size: int, buckets) -> dict[str, np.ndarray]:
    """Next-step predictions for every real step of ``seqs`` (batched by length).

    Returns:
        dict of flat arrays over real steps: ``row`` (source row), ``prob``,
        ``correct`` and ``pos`` (position within its sequence).
    """
    out: dict[str, list] = {"row": [], "prob": [], "correct": [], "pos": []}
    for idx, sub in predict_batches(seqs, hyper.n_kc, batch_size, buckets):
        p = np.asarray(_next_probs(net, to_batch(sub, unit), hyper))[: len(idx)]
        m = sub.mask
        out["row"].append(sub.row[m])
        out["prob"].append(p[m].astype(np.float64))
        out["correct"].append(sub.correct[m].astype(np.float64))
        out["pos"].append(np.broadcast_to(np.arange(m.shape[1]), m.shape)[m])
    if not out["row"]:
        return {"row": np.zeros(0, np.int64), "prob": np.zeros(0), "correct": np.zeros(0), "pos": np.zeros(0, np.int64)}
    return {k: np.concatenate(v) for k, v in out.items()}


def selected(score: float, fields: dict) -> loop.Score:
    """A validation :data:`~kt.train.loop.Score`: ``score`` selects and is recorded as ``valid_score`` after ``fields``."""
    return score, {**fields, "score": score}


def auc_score(net, seqs: Sequences, unit, hyper, batch_size, buckets) -> loop.Score:
    """Next-step validation AUC (each sequence's first step unscored; an undefined AUC scores -inf), accuracy, log loss."""
    r = next_step_on(net, seqs, unit, hyper, batch_size, buckets)
    keep = r["pos"] > 0
    s = metrics.summary(r["correct"][keep], r["prob"][keep])
    return selected(
        s["auc"] if math.isfinite(s["auc"]) else -math.inf,
        {"auc": s["auc"], "accuracy": s["accuracy"], "logloss": s["logloss"]},
    )


def elbo_score(net, seqs: Sequences, unit, hyper, batch_size, buckets, key) -> loop.Score:
    """Mean validation ELBO per step (fixed noise)."""
    tot, n = 0.0, 0.0
    for sub in batches(seqs, batch_size, rng=None, buckets=buckets):
        terms = _eval_elbo(net, to_batch(sub, unit), key, hyper)
        steps = float(terms["steps"])
        tot += -float(terms["loss"]) * steps
        n += steps
    v = tot / max(n, 1.0)
    return selected(v, {"elbo": v})
