"""The one training loop of the gradient models.

:func:`run` is the loop: epochs over shuffled batches of
:func:`kt.data.sequences.batches` (length buckets, random or packed, in
memory or streamed in chunks), a validation score after each epoch, the
best state kept, early stopping after ``patience`` epochs without a gain of
at least ``min_delta``, a guard against non-finite losses, per-epoch
checkpoints and exact resumption, the learning-rate schedule, live progress
and data parallelism. What differs between models comes in as an
:class:`Objective` (one compiled optimiser step, its optimiser state, how
a device batch is built from :class:`Sequences`, where each step's
randomness comes from) and a validation scorer returning a :data:`Score`.

:func:`fit` is that loop with the next-step objective of DKT, CAKT and
PSI-KT's filter (:func:`next_step`: Adam on masked binary cross-entropy of
``logits_fn``, selection on validation AUC). PSI-KT's amortized model
passes its own objective (the negative weighted ELBO, gradient clipping, a
weight-decay mask, noise drawn from the loop's generator) and scorers
(next-step AUC, validation ELBO or within-learner F1); see
:mod:`kt.models.psikt.train`.

Optional extensions of :func:`fit` (defaults reproduce plain Adam exactly):

- coupled L2 and Adam betas (:class:`LoopSettings` ``weight_decay``, ``b1``,
  ``b2``; see :func:`make_optimizer`);
- a per-epoch learning-rate schedule driven by the training loss
  (``lr_decay``, ``lr_every``, ``lr_on_rise``; see :func:`next_lr`);
- non-trainable state threaded through training (``fit(..., state=...)``,
  e.g. BatchNorm running statistics): the logits function is then called
  as ``logits_fn(model, batch, key, state) -> (logits, new_state)``;
- data parallelism over several devices (``fit(..., devices=N)``, see
  :mod:`kt.train.shard`);
- training and validation data streamed in chunks (any object with a
  ``chunks(rng)`` method, see :class:`SequenceStream`), so memory follows the
  chunk and batch size instead of the data size.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from kt.data.sequences import Sequences, batches, length_batches
from kt.errors import KTError
from kt import metrics
from kt.train import shard

Batch = dict[str, jax.Array]


@runtime_checkable
class SequenceStream(Protocol):
    """Training or validation data delivered in chunks (e.g. one per partition file).

    ``chunks(rng)`` yields :class:`Sequences`; with a generator it may shuffle
    the chunk order (training), with ``None`` it must yield a fixed order
    (validation). Batches never span two chunks.
    """

    def chunks(self, rng: np.random.Generator | None) -> Iterator[Sequences]:
        """Yield the data as consecutive :class:`Sequences` chunks."""
        ...


def _chunks(data: "Sequences | SequenceStream", rng: np.random.Generator | None) -> Iterator[Sequences]:
    if isinstance(data, Sequences):
        yield data
    else:
        yield from data.chunks(rng)


@dataclass(frozen=True)
class LoopSettings:
    """Settings of :func:`fit`.

    Attributes:
        epochs: maximum number of epochs.
        patience: epochs without a validation-score gain before stopping.
        min_delta: smallest gain of the validation score that counts as progress.
        batch_size: sequences per batch (padded to this size).
        lr: Adam learning rate.
        buckets: allowed padded sequence lengths.
        batching: ``bucket``, ``random`` or ``pack`` (see
            :func:`kt.data.sequences.batches`; ``pack`` needs a model that
            restarts its state where ``batch["reset"]`` is set).
        weight_decay: coupled L2 coefficient: ``weight_decay * param`` is added
            to the gradient before Adam (``optax.add_decayed_weights`` then
            ``optax.adam``; not AdamW). 0 gives plain Adam.
        b1: Adam's first-moment decay.
        b2: Adam's second-moment decay.
        lr_decay: factor applied to the learning rate after an epoch that
            triggers the schedule (1.0: constant learning rate).
        lr_every: the schedule triggers after every ``lr_every``-th epoch (0: never).
        lr_on_rise: the schedule also triggers when the epoch's training loss
            is higher than the previous epoch's.
    """

    epochs: int = 200
    patience: int = 10
    min_delta: float = 1e-3
    batch_size: int = 256
    lr: float = 1e-3
    buckets: tuple[int, ...] = (16, 32, 64, 128, 200)
    batching: str = "bucket"
    weight_decay: float = 0.0
    b1: float = 0.9
    b2: float = 0.999
    lr_decay: float = 1.0
    lr_every: int = 0
    lr_on_rise: bool = False

    @property
    def optim(self) -> tuple[float, float, float]:
        """The static optimiser hyperparameters ``(weight_decay, b1, b2)``."""
        return (float(self.weight_decay), float(self.b1), float(self.b2))


def make_optimizer(lr, optim: tuple[float, float, float] = (0.0, 0.9, 0.999)) -> optax.GradientTransformation:
    """Adam with optional coupled L2, as an optax transformation.

    Args:
        lr: learning rate (a float or a traced scalar, so that a schedule can
            change it between steps without recompiling).
        optim: ``(weight_decay, b1, b2)``.

    Returns:
        ``optax.adam(lr, b1, b2)``, preceded by
        ``optax.add_decayed_weights(weight_decay)`` when it is non-zero (the
        L2 term then passes through Adam's normalisation, as
        ``torch.optim.Adam(weight_decay=...)`` does).
    """
    wd, b1, b2 = optim
    adam = optax.adam(lr, b1=b1, b2=b2)
    return optax.chain(optax.add_decayed_weights(wd), adam) if wd else adam


def next_lr(lr: float, epoch: int, prev_loss: float | None, loss: float, settings: "LoopSettings") -> float:
    """The learning rate for the epoch after ``epoch`` (1-based).

    ``lr * lr_decay`` when ``epoch`` is a multiple of ``lr_every`` or (with
    ``lr_on_rise``) the training loss rose above ``prev_loss``; the factor is
    applied once even when both hold, and it compounds over epochs
    (CAKT's ``adjust_lr``).

    Args:
        lr: the learning rate used in ``epoch``.
        epoch: 1-based epoch just finished.
        prev_loss: the previous epoch's training loss (``None`` for the first).
        loss: this epoch's training loss.
        settings: loop settings.

    Returns:
        The next learning rate.
    """
    if settings.lr_decay == 1.0:
        return lr
    due = settings.lr_every > 0 and epoch % settings.lr_every == 0
    rose = settings.lr_on_rise and prev_loss is not None and loss > prev_loss
    return lr * settings.lr_decay if (due or rose) else lr


@dataclass
class FitResult:
    """What :func:`run` (and so :func:`fit`) returns.

    Attributes:
        model: the best model (by the validation score; the last one without validation).
        history: one dict per epoch (loss, validation metrics, throughput).
        best_epoch: 1-based epoch of the returned model.
        stopped: why training ended (``patience``, ``epochs``, ``non-finite``).
        state: the non-trainable state paired with ``model`` (``None`` when
            :func:`fit` got no ``state``).
    """

    model: Any
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped: str = "epochs"
    state: Any = None


def to_batch(seqs: Sequences, batch_size: int) -> Batch:
    """Device arrays of one batch, padded with masked rows (see below)."""
    n = seqs.mask.shape[0]
    # A partial batch is padded to the next power of two, not to batch_size:
    # a few extra compiled shapes instead of mostly-empty batches. Packed
    # batches come with their row count already bucketed.
    pad = 0 if seqs.segment is not None else min(batch_size, 1 << max(n - 1, 0).bit_length()) - n

    def arr(x, fill):
        if pad > 0:
            x = np.concatenate([x, np.full((pad, x.shape[1]), fill, x.dtype)])
        return jnp.asarray(x)

    batch = {
        "skill": arr(np.maximum(seqs.skill, 0), 0),
        "correct": arr(seqs.correct.astype(np.int32), 0),
        "mask": arr(seqs.mask, False),
        "prev": arr(prev_index(seqs.group, seqs.mask, seqs.segment), -1),
    }
    if seqs.segment is not None:
        reset = np.ones(seqs.segment.shape, bool)
        reset[:, 1:] = seqs.segment[:, 1:] != seqs.segment[:, :-1]
        batch["reset"] = arr(reset, True)
    return batch


def prev_index(group: np.ndarray, mask: np.ndarray, segment: np.ndarray | None = None) -> np.ndarray:
    """Position whose state predicts each step: the last step of the previous question.

    The KC rows of one multi-KC question share a ``group``; each of them is
    predicted from the state before the question, so no row sees the
    answer it shares with its siblings. Single-KC steps get ``t - 1``.

    Args:
        group: ``[N, T]`` question occurrence per step (-1 on padding).
        mask: ``[N, T]`` real steps.
        segment: ``[N, T]`` packed sequence of each step (packed rows), or
            ``None``; no step looks back into another segment.

    Returns:
        ``[N, T]`` int32 index, -1 where there is no earlier question in
        the sequence (the position has no history).
    """
    N, T = mask.shape
    new = np.ones((N, T), bool)
    new[:, 1:] = group[:, 1:] != group[:, :-1]
    if segment is not None:
        new[:, 1:] |= segment[:, 1:] != segment[:, :-1]
    t = np.broadcast_to(np.arange(T), (N, T))
    qstart = np.maximum.accumulate(np.where(new, t, 0), axis=1)
    prev = qstart - 1
    if segment is not None:
        before = np.take_along_axis(segment, np.maximum(prev, 0), axis=1)
        prev = np.where((prev >= 0) & (before == segment), prev, -1)
    return np.where(mask, prev, -1).astype(np.int32)


def _loss(model, batch: Batch, key, logits_fn, norm, state=None):
    # Batches are length-bucketed, so a per-batch mean would give a batch of
    # short sequences as much weight as a batch of long ones. Dividing by a
    # constant (batch size x longest bucket) weights every position equally,
    # as random batches do in expectation.
    if state is None:
        logits, new_state = logits_fn(model, batch, key), None
    else:
        logits, new_state = logits_fn(model, batch, key, state)
    tgt = targets(batch)
    per = optax.sigmoid_binary_cross_entropy(logits, batch["correct"].astype(logits.dtype))
    total = jnp.where(tgt, per, 0.0).sum()
    n = tgt.sum()
    return total / norm, (total / jnp.maximum(n, 1), n, new_state)


@eqx.filter_jit
def _train_step(model, opt_state, batch: Batch, key, lr, logits_fn, norm, optim=(0.0, 0.9, 0.999), state=None):
    # Module level with a traced learning rate and static logits_fn/optim:
    # every fit (and, through JAX's persistent cache, every run) reuses the
    # programs compiled for a given model type, optimiser and bucket shape.
    # ``state`` (None for stateless models) is threaded, not differentiated.
    (_, (loss, n, new_state)), grads = eqx.filter_value_and_grad(_loss, has_aux=True)(model, batch, key, logits_fn, norm, state)
    updates, opt_state = make_optimizer(lr, optim).update(grads, opt_state, eqx.filter(model, eqx.is_array))
    new_state = None if state is None else jax.lax.stop_gradient(new_state)
    return eqx.apply_updates(model, updates), opt_state, new_state, {"loss": loss, "n": n}


def targets(batch: Batch) -> jax.Array:
    """Positions scored in training: real steps with an earlier question before them."""
    return batch["mask"] & (batch["prev"] >= 0)


Score = tuple[float, dict[str, Any]]
"""A validation scorer's answer: the selection metric (higher is better) and
the epoch record's fields (stored as ``valid_<name>``)."""


def split_key(key: jax.Array, rng: np.random.Generator) -> tuple[jax.Array, jax.Array]:
    """A step's randomness by default: split the loop's JAX key (``rng`` is not used)."""
    key, sub = jax.random.split(key)
    return key, sub


@dataclass(frozen=True)
class Objective:
    """The model-specific half of :func:`run`: what one optimiser step does.

    Attributes:
        step: ``(model, opt_state, batch, key, lr, state) -> (model,
            opt_state, state, terms)``, one optimiser step. It should call a
            module-level jitted function whose static arguments hash equal
            from call to call, so that each batch shape compiles once.
            ``lr`` is the loop's learning rate as a traced scalar (the
            schedule changes it without recompiling; an objective may
            ignore it); ``state`` is the non-trainable state (``None`` for
            stateless models), returned updated. ``terms`` maps names to
            scalars: ``loss`` (the mean loss per counted position) and
            ``n`` (the counted positions) are required; every other term is
            averaged over the epoch's positions into ``train_<name>``.
        init: ``model -> optimiser state``.
        make_batch: ``(sequences, batch_size) -> device batch``.
        step_key: ``(key, rng) -> (key, step key)``: the randomness each
            step gets from the loop's JAX key and NumPy generator (both
            checkpointed); default :func:`split_key`.
    """

    step: Callable[..., tuple[Any, Any, Any, dict[str, Any]]]
    init: Callable[[Any], Any]
    make_batch: Callable[[Sequences, int], Any] = to_batch
    step_key: Callable[[jax.Array, np.random.Generator], tuple[jax.Array, jax.Array]] = split_key


def next_step(
    logits_fn: Callable, settings: LoopSettings, make_batch: Callable[[Sequences, int], Batch] | None = None
) -> Objective:
    """Adam (:func:`make_optimizer`) on masked next-step binary cross-entropy of ``logits_fn``.

    Args:
        logits_fn: as in :func:`fit`.
        settings: loop settings (the optimiser's ``lr``, ``weight_decay``,
            ``b1``, ``b2``; ``batch_size`` and ``buckets`` fix the loss's
            normaliser).
        make_batch: as in :func:`fit` (default :func:`to_batch`).

    Returns:
        The :class:`Objective` of DKT, CAKT and PSI-KT's filter.
    """
    norm = jnp.asarray(settings.batch_size * max(settings.buckets), jnp.float32)
    optim = settings.optim

    def step(model, opt_state, batch, key, lr, state):
        return _train_step(model, opt_state, batch, key, lr, logits_fn, norm, optim, state)

    def init(model):
        return make_optimizer(jnp.asarray(settings.lr, jnp.float32), optim).init(eqx.filter(model, eqx.is_array))

    return Objective(step, init, make_batch or to_batch)


def fit(
    model: Any,
    logits_fn: Callable[[Any, Batch, jax.Array | None], jax.Array]
    | Callable[[Any, Batch, jax.Array | None, Any], tuple[jax.Array, Any]],
    train: "Sequences | SequenceStream",
    valid: "Sequences | SequenceStream | None",
    settings: LoopSettings,
    key: jax.Array,
    *,
    on_epoch: Callable[[dict], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    on_step: Callable[[int, int | None, dict], None] | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    make_batch: Callable[[Sequences, int], Batch] | None = None,
    state: Any = None,
    devices: int | None = 1,
) -> FitResult:
    """Train ``model`` with Adam on masked next-step binary cross-entropy, selecting on validation AUC.

    :func:`run` with the :func:`next_step` objective and a scorer that
    records the validation AUC, accuracy and log loss.

    Args:
        model: an equinox module (the parameters).
        logits_fn: ``(model, batch, dropout_key or None) -> [B, T]`` logits of
            each position's correctness from the state after position
            ``batch["prev"]`` (see :func:`prev_index`; -1: no history, not
            scored in training); ``None`` key means evaluation mode.
        train: training sequences (already windowed).
        valid: validation sequences, or ``None`` (then no early stopping).
        settings: loop settings.
        key: PRNG key (shuffling seed and dropout).
        on_epoch, on_batch, on_step, checkpoint, resume: as in :func:`run`.
        make_batch: ``(sequences, batch_size) -> Batch`` for models that need
            more host-computed inputs than :func:`to_batch` gives (it should
            call :func:`to_batch` and add keys).
        state: non-trainable state (e.g. BatchNorm running statistics), or
            ``None``. With a state, ``logits_fn`` is called as
            ``logits_fn(model, batch, key, state)`` and returns
            ``(logits, new_state)``; in training (key not ``None``) the new
            state replaces the old one after each step, in evaluation (key
            ``None``) it must use and return the state unchanged. The state
            is never differentiated nor decayed, and the best model's state
            is returned in :attr:`FitResult.state`.
        devices: number of devices to split each batch over (``None``: all;
            1: no sharding). Parameters are replicated and gradients summed
            across devices; the returned model lives on the default device.

    Returns:
        A :class:`FitResult`.
    """
    mesh = shard.data_mesh(devices)
    objective = next_step(logits_fn, settings, make_batch)
    return run(
        model,
        objective,
        train,
        settings,
        key,
        score=None if valid is None else functools.partial(_auc_score, logits_fn, valid, settings, objective.make_batch, mesh),
        state=state,
        mesh=mesh,
        on_epoch=on_epoch,
        on_batch=on_batch,
        on_step=on_step,
        checkpoint=checkpoint,
        resume=resume,
    )


def _auc_score(logits_fn, valid, settings: LoopSettings, make_batch, mesh, model, state) -> Score:
    # fit's scorer: validation AUC selects, accuracy and log loss are recorded too.
    y, p, _ = predict_positions(
        model, logits_fn, valid, settings.batch_size, settings.buckets, make_batch=make_batch, state=state, mesh=mesh
    )
    fields = {k: v for k, v in metrics.summary(y, p).items() if k in ("auc", "accuracy", "logloss")}
    return fields["auc"], fields


def run(
    model: Any,
    objective: Objective,
    train: "Sequences | SequenceStream",
    settings: LoopSettings,
    key: jax.Array,
    *,
    score: Callable[[Any, Any], Score] | None = None,
    seed: int | None = None,
    state: Any = None,
    mesh: Any = None,
    on_epoch: Callable[[dict], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    on_step: Callable[[int, int | None, dict], None] | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
) -> FitResult:
    """The training loop: epochs, validation, early stopping, checkpoints, resume, progress.

    Args:
        model: the initial parameters (an equinox module or pytree).
        objective: the model's optimiser step, batches and step randomness.
        train: training sequences, or a :class:`SequenceStream`.
        settings: loop settings (``epochs``, ``patience``, ``min_delta``,
            ``batch_size``, ``buckets``, ``batching``, ``lr`` and its schedule).
        key: JAX PRNG key, threaded through ``objective.step_key`` and
            checkpointed.
        score: ``(model, state) -> (metric, fields)`` (a :data:`Score`) after
            each epoch: the best epoch is the first whose metric beats the
            best so far by more than ``min_delta``, and training stops after
            ``patience`` epochs without one. ``None``: no validation, every
            epoch's state is kept.
        seed: seed of the loop's NumPy generator (batch order and any noise
            ``objective.step_key`` draws from it); default: drawn from ``key``.
        state: non-trainable state threaded through ``objective.step``, or
            ``None`` (see :func:`fit`).
        mesh: device mesh to split batches over (:func:`kt.train.shard.data_mesh`;
            ``None``: the default device).
        on_epoch: called with each epoch's record.
        on_batch: called with the number of scored positions of each batch.
        on_step: progress hook, called from Python between the compiled
            steps as ``on_step(done, total, metrics)``: ``done`` batches of
            ``total`` this epoch (``None`` until known: streamed data counts
            its batches in the first epoch), ``metrics`` with ``epoch``, the
            running mean ``loss``, ``interactions`` and
            ``interactions_per_second``; once with ``done=0`` as each epoch
            starts. It reads only values the loop has on the host already
            (the loss is fetched every step for the non-finite check), so it
            adds no device synchronisation.
        checkpoint: directory for a checkpoint written after every epoch.
        resume: continue from ``checkpoint`` (same data, settings and key
            give exactly the result of an uninterrupted run).

    Returns:
        A :class:`FitResult`.

    Raises:
        NonFiniteLoss: a step's loss was NaN or infinite; its ``result``
            holds the best state so far (with validation) or the last good
            one.
    """
    stateful = state is not None
    lr_value = float(settings.lr)
    lr = jnp.asarray(settings.lr, jnp.float32)
    opt_state = objective.init(model)

    if seed is None:
        seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    # The checkpoint calls the best score "best_auc" (its first meaning; kept so that old checkpoints resume).
    best, best_model, best_epoch, bad = -math.inf, model, 0, 0
    best_state = state
    prev_loss = None
    result = FitResult(model)
    start = 1
    if resume:
        if checkpoint is None or not (checkpoint / CKPT_JSON).exists():
            raise KTError(f"--resume: no checkpoint found in {checkpoint}; train without --resume first")
        got = _load_checkpoint(checkpoint, model, opt_state, states=(state, state) if stateful else None)
        model, opt_state, best_model, key, c = got[:5]
        if stateful:
            state, best_state = got[5]
        rng.bit_generator.state = c["rng"]
        best, best_epoch, bad, start = c["best_auc"], c["best_epoch"], c["bad"], c["epoch"] + 1
        lr_value, prev_loss = c.get("lr", lr_value), c.get("last_loss")
        lr = jnp.asarray(lr_value, jnp.float32)
        result.history = c["history"]
        if c.get("stopped"):
            result.stopped = c["stopped"]
            start = settings.epochs + 1  # the checkpointed run had already finished
    model, opt_state, state = shard.replicate((model, opt_state, state), mesh)
    n_steps = n_batches(train, settings.batch_size)
    for epoch in range(start, settings.epochs + 1):
        t0 = time.perf_counter()
        sums: dict[str, float] = {}  # each term times its positions
        count, step = 0, 0
        if on_step:
            on_step(0, n_steps, {"epoch": epoch})
        for seqs in (
            b
            for part in _chunks(train, rng)
            for b in batches(part, settings.batch_size, rng=rng, buckets=settings.buckets, batching=settings.batching)
        ):
            key, sub = objective.step_key(key, rng)
            batch = shard.shard_batch(objective.make_batch(seqs, settings.batch_size), mesh)
            new_model, new_opt, new_state, terms = objective.step(model, opt_state, batch, sub, lr, state)
            host = {k: float(v) for k, v in terms.items()}
            if not math.isfinite(host["loss"]):
                result.stopped = "non-finite"
                result.history.append({"epoch": epoch, "error": "non-finite loss"})
                keep_best = score is not None and best_epoch
                result.model = shard.gather(best_model if keep_best else model, mesh)
                result.state = shard.gather(best_state if keep_best else state, mesh) if stateful else None
                result.best_epoch = best_epoch
                raise NonFiniteLoss(result, epoch)
            model, opt_state, state = new_model, new_opt, new_state
            n = int(host.pop("n"))
            for k, v in host.items():
                sums[k] = sums.get(k, 0.0) + v * n
            count += n
            if on_batch:
                on_batch(n)
            step += 1
            if on_step:
                el = time.perf_counter() - t0
                on_step(
                    step,
                    n_steps,
                    {
                        "epoch": epoch,
                        "loss": sums["loss"] / max(count, 1),
                        "interactions": count,
                        "interactions_per_second": count / el if el > 0 else None,
                    },
                )
        n_steps = step  # streamed data: the next epoch has as many batches
        seconds = time.perf_counter() - t0
        rec: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": sums.get("loss", 0.0) / max(count, 1),
            "seconds": seconds,
            "interactions_per_second": count / seconds if seconds > 0 else None,
        }
        rec.update({f"train_{k}": v / max(count, 1) for k, v in sums.items() if k != "loss"})
        if settings.lr_decay != 1.0:
            rec["lr"] = lr_value
        if score is not None:
            metric, fields = score(model, state)
            rec.update({f"valid_{k}": v for k, v in fields.items()})
            if metric > best + settings.min_delta:
                best, best_model, best_state, best_epoch, bad = metric, model, state, epoch, 0
            else:
                bad += 1
        else:
            best_model, best_state, best_epoch = model, state, epoch
        if settings.lr_decay != 1.0:
            # The schedule reads the training loss only (never validation).
            lr_value = next_lr(lr_value, epoch, prev_loss, rec["train_loss"], settings)
            lr = jnp.asarray(lr_value, jnp.float32)
        prev_loss = rec["train_loss"]
        result.history.append(rec)
        if on_epoch:
            on_epoch(rec)
        stop = score is not None and bad >= settings.patience
        if checkpoint is not None:
            info = {
                "epoch": epoch,
                "best_auc": best,
                "best_epoch": best_epoch,
                "bad": bad,
                "rng": rng.bit_generator.state,
                "history": result.history,
                "stopped": "patience" if stop else None,
            }
            if settings.lr_decay != 1.0:
                info.update(lr=lr_value, last_loss=prev_loss)
            _save_checkpoint(
                checkpoint, model, opt_state, best_model, key, info, states=(state, best_state) if stateful else None
            )
        if stop:
            result.stopped = "patience"
            break
    result.model, result.best_epoch = shard.gather(best_model, mesh), best_epoch
    result.state = shard.gather(best_state, mesh) if stateful else None
    return result


def n_batches(data: "Sequences | SequenceStream", batch_size: int) -> int | None:
    """Batches per epoch of in-memory sequences (``None`` for a stream: known after one pass)."""
    if isinstance(data, Sequences):
        return -(-int(data.mask.shape[0]) // batch_size)
    return None


CKPT_JSON = "checkpoint.json"
CKPT_LEAVES = "checkpoint.eqx"


def _save_checkpoint(path: Path, model, opt_state, best_model, key, info: dict, states=None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    # Leaves first, then the JSON that points at a complete set of them; both
    # are renamed into place so a crash never leaves a half checkpoint.
    tmp = path / (CKPT_LEAVES + ".tmp")
    leaves = (model, opt_state, best_model, jax.random.key_data(key))
    eqx.tree_serialise_leaves(tmp, leaves if states is None else (*leaves, states))
    os.replace(tmp, path / CKPT_LEAVES)
    tmpj = path / (CKPT_JSON + ".tmp")
    tmpj.write_text(json.dumps({**info, "best_auc": None if math.isinf(info["best_auc"]) else info["best_auc"]}))
    os.replace(tmpj, path / CKPT_JSON)


def _load_checkpoint(path: Path, model, opt_state, states=None):
    # With ``states`` (a skeleton of the (state, best_state) pair), that pair
    # is read as well and returned as a sixth element.
    info = json.loads((path / CKPT_JSON).read_text())
    info["best_auc"] = -math.inf if info["best_auc"] is None else info["best_auc"]
    like = (model, opt_state, model, jax.random.key_data(jax.random.key(0)))
    try:
        got = eqx.tree_deserialise_leaves(path / CKPT_LEAVES, like if states is None else (*like, states))
    except (OSError, ValueError, RuntimeError) as exc:
        raise KTError(f"{path}: checkpoint does not match this model/config ({exc}); train without --resume") from None
    m, o, b, kd = got[:4]
    if states is None:
        return m, o, b, jax.random.wrap_key_data(kd), info
    return m, o, b, jax.random.wrap_key_data(kd), info, got[4]


class NonFiniteLoss(KTError):
    """Training produced a NaN/inf loss; ``result`` holds the last good state."""

    def __init__(self, result: FitResult, epoch: int):
        super().__init__(
            f"training stopped at epoch {epoch}: the loss became NaN/inf; the last good state is kept "
            "(lower the learning rate with --set lr=..., or check the data)"
        )
        self.result = result


def predict_positions(
    model: Any,
    logits_fn: Callable,
    seqs: Sequences,
    batch_size: int,
    buckets: tuple[int, ...],
    *,
    score: np.ndarray | None = None,
    make_batch: Callable[[Sequences, int], Batch] | None = None,
    state: Any = None,
    mesh: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities at the scored positions of ``seqs`` (no dropout).

    Args:
        model: trained module.
        logits_fn: as in :func:`fit`.
        seqs: sequences to score, or a :class:`SequenceStream` (chunks are
            scored one after another; ``score`` must then be ``None``).
        batch_size: batch size.
        buckets: allowed padded lengths.
        score: optional ``[N, T]`` bool of positions to return; default: every
            real position with an earlier question in its sequence.
        make_batch: as in :func:`fit`.
        state: as in :func:`fit` (evaluation mode: used, not updated).
        mesh: device mesh to split batches over (from
            :func:`kt.train.shard.data_mesh`; ``None``: default device).

    Returns:
        (labels, probabilities, source rows) of the scored positions, in
        batch order; rows are ``seqs.row`` values (frame row indices).
    """
    make_batch = make_batch or to_batch
    if not isinstance(seqs, Sequences):
        if score is not None:
            raise ValueError("predict_positions: score is only supported for in-memory Sequences")
        got = [
            predict_positions(model, logits_fn, part, batch_size, buckets, make_batch=make_batch, state=state, mesh=mesh)
            for part in _chunks(seqs, None)
        ]
        if not got:
            return np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
        return tuple(np.concatenate(parts) for parts in zip(*got))
    ys, ps, rows = [], [], []
    if score is None:
        score = prev_index(seqs.group, seqs.mask) >= 0
    for idx, sub in length_batches(seqs, batch_size, buckets):
        probs = shard.to_numpy(_eval_probs(model, shard.shard_batch(make_batch(sub, batch_size), mesh), logits_fn, state))[
            : len(idx)
        ]
        sel = fit_width(score[idx], probs.shape[1])
        ys.append(sub.correct[sel])
        ps.append(probs[sel])
        rows.append(sub.row[sel])
    if not ys:
        return np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    return np.concatenate(ys).astype(np.float64), np.concatenate(ps).astype(np.float64), np.concatenate(rows)


def fit_width(score: np.ndarray, width: int) -> np.ndarray:
    """Cut or zero-pad a ``[N, T]`` bool array to ``width`` columns."""
    if score.shape[1] >= width:
        return score[:, :width]
    return np.pad(score, ((0, 0), (0, width - score.shape[1])))


@eqx.filter_jit
def _eval_probs(model, batch: Batch, logits_fn, state=None):
    # logits_fn is a static (hashed) argument, so each model type compiles
    # once per bucket shape and validation epochs reuse the programs.
    if state is None:
        return jax.nn.sigmoid(logits_fn(model, batch, None))
    return jax.nn.sigmoid(logits_fn(model, batch, None, state)[0])
