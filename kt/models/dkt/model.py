"""Deep Knowledge Tracing (Piech et al. 2015), pyKT's embedding + LSTM variant.

x_t = q_t + K r_t is embedded, run through an LSTM (zero initial state), and
a linear head gives a logit per KC; the logit of the next attempt's KC is its
prediction (``shared/spec/DKT.md``). The input projection of the LSTM is
folded into the embedding table, so the time loop only multiplies by the
recurrent weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Self

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
from jaxtyping import Array, Bool, Float, Int

from kt.data.partitioned import PartitionedData, PartitionStream
from kt.data.schema import Interactions, correct_rate
from kt.data.sequences import BATCHINGS, Sequences, build_sequences
from kt.errors import KTError, check_choice
from kt.models.base import Capabilities, Model, register
from kt.models.fusion import question_means, question_rows
from kt.train import loop
from kt.models.nn import lstm_update, scan_from_zero
from kt.models.seeds import jax_key

EVAL_MODES = ("window", "chunk", "full")


@dataclass(frozen=True)
class DKTConfig:
    """Options of ``dkt`` (defaults: pyKT's DKT).

    Attributes:
        hidden: embedding and LSTM size d.
        dropout: dropout on the LSTM output (training only).
        lr: Adam learning rate.
        batch_size: sequences per batch.
        window: training chunk length (history resets per chunk).
        min_chunk: chunks shorter than this are dropped.
        epochs: maximum epochs.
        patience: epochs without validation-AUC gain before stopping.
        eval_mode: ``window`` (each position sees up to ``window`` - 1
            previous attempts, no reset; pyKT's window mode), ``chunk``
            (same chunks as training) or ``full`` (whole history).
        batching: ``pack`` (default) draws uniform random batches of
            chunks, as pyKT's loader does, and packs each batch's chunks
            side by side into rows of ``window`` steps with the LSTM state
            restarting at every chunk (the same result as ``random``,
            without its padding); ``random`` pads every chunk of a batch
            to the longest; ``bucket`` groups chunks of similar length
            (little padding, but each batch holds one kind of learner,
            which costs accuracy).
        variant: ``pykt`` (trained embedding of q + K r, the default) or
            ``piech`` (one-hot input of the (KC, response) pair, Piech et
            al. 2015).
        cell: ``lstm``, ``rnn`` (tanh RNN, the original released model) or
            ``auto`` (lstm for pykt, rnn for piech).
        compressed: piech only: project the one-hot input with a fixed
            random Gaussian matrix to this many dimensions (compressed
            sensing, 100 in the original ASSISTments script); 0 = off.
    """

    hidden: int = 200
    dropout: float = 0.1
    lr: float = 1e-3
    batch_size: int = 256
    window: int = 200
    min_chunk: int = 3
    epochs: int = 200
    patience: int = 10
    eval_mode: str = "window"
    batching: str = "pack"
    variant: str = "pykt"
    cell: str = "auto"
    compressed: int = 0

    @property
    def cell_type(self) -> str:
        """The recurrent cell after resolving ``auto``."""
        if self.cell != "auto":
            return self.cell
        return "rnn" if self.variant == "piech" else "lstm"

    def validate(self) -> None:
        """Reject invalid values."""
        check_choice("--set batching=", self.batching, BATCHINGS)
        check_choice("--set eval_mode=", self.eval_mode, EVAL_MODES)
        if self.hidden < 1 or self.batch_size < 1 or self.window < 2 or self.epochs < 1:
            raise KTError("dkt: hidden, batch_size, epochs must be >= 1 and window >= 2")
        if not 0 <= self.dropout < 1 or not self.lr > 0:
            raise KTError("dkt: dropout must be in [0, 1) and lr > 0")
        check_choice("--set variant=", self.variant, ("pykt", "piech"))
        if self.cell not in ("auto", "lstm", "rnn"):
            raise KTError(f"--set cell={self.cell!r}: choose auto, lstm or rnn")
        if self.compressed < 0 or (self.compressed and self.variant != "piech"):
            raise KTError("--set compressed=N: needs variant=piech and N >= 1 (0 turns it off)")


class DKTNet(eqx.Module):
    """Input table -> LSTM or tanh RNN -> linear head over K KCs.

    The input of step t is row ``q_t + K r_t`` of ``embed`` (pyKT: trained;
    Piech with compressed sensing: a fixed random projection), or the
    one-hot pair itself when ``embed`` is ``None``; the input weights are
    folded into a per-row table, so the time loop only multiplies by the
    recurrent weights.
    """

    embed: Float[Array, "2K e"] | None
    w_ih: Float[Array, "Gd e"]
    w_hh: Float[Array, "Gd d"]
    b: Float[Array, " Gd"]
    w_out: Float[Array, "K d"]
    b_out: Float[Array, " K"]
    n_kc: int = eqx.field(static=True)
    dropout: float = eqx.field(static=True)
    cell: str = eqx.field(static=True, default="lstm")
    frozen_embed: bool = eqx.field(static=True, default=False)

    @staticmethod
    def init(
        key, n_kc: int, hidden: int, dropout: float, *, variant: str = "pykt", cell: str = "lstm", compressed: int = 0
    ) -> "DKTNet":
        """PyTorch-style initialisation (N(0,1) embedding, U(+-1/sqrt(d)) weights).

        Args:
            key: PRNG key.
            n_kc: number of KCs K.
            hidden: hidden size d (and pyKT's embedding size).
            dropout: dropout rate on the recurrent output.
            variant: ``pykt`` or ``piech`` (see :class:`DKTConfig`).
            cell: ``lstm`` or ``rnn``.
            compressed: Piech's compressed-sensing dimension (0 = one-hot input).

        Returns:
            A new network.
        """
        ke, k1, k2, k3, k4, k5 = jax.random.split(key, 6)
        s = 1 / math.sqrt(hidden)
        u = lambda k, shape: jax.random.uniform(k, shape, jnp.float32, -s, s)  # noqa: E731
        G = 4 if cell == "lstm" else 1
        if variant == "pykt":
            embed, n_in = jax.random.normal(ke, (2 * n_kc, hidden), jnp.float32), hidden
        elif compressed:
            # Fixed seed as in the original script: the projection is data, not a learned weight.
            embed, n_in = jax.random.normal(jax.random.key(12345), (2 * n_kc, compressed), jnp.float32), compressed
        else:
            embed, n_in = None, 2 * n_kc
        return DKTNet(
            embed=embed,
            w_ih=u(k1, (G * hidden, n_in)),
            w_hh=u(k2, (G * hidden, hidden)),
            b=u(k3, (G * hidden,)) + u(k4, (G * hidden,)),
            w_out=u(k5, (n_kc, hidden)),
            b_out=jnp.zeros((n_kc,), jnp.float32),
            n_kc=n_kc,
            dropout=dropout,
            cell=cell,
            frozen_embed=variant == "piech" and compressed > 0,
        )

    def hidden_states(
        self, skill: Int[Array, "B T"], correct: Int[Array, "B T"], reset: Bool[Array, "B T"] | None = None
    ) -> Float[Array, "B T d"]:
        """Recurrent outputs h_t after each step, from a zero initial state.

        Args:
            skill: KC index per step.
            correct: 0/1 outcome per step.
            reset: packed rows only: the state restarts from zero before
                every step where this is set.

        Returns:
            ``[B, T, d]`` recurrent outputs.
        """
        if self.embed is None:
            table = self.w_ih.T + self.b  # one-hot input: W x is a column of W
        else:
            embed = jax.lax.stop_gradient(self.embed) if self.frozen_embed else self.embed
            table = embed @ self.w_ih.T + self.b
        gates_in = table[skill + self.n_kc * correct]  # [B, T, G d]
        d = self.w_hh.shape[1]

        def lstm(carry, g_in):
            h, c = lstm_update(g_in + carry[0] @ self.w_hh.T, carry[1])
            return (h, c), h

        def rnn(carry, g_in):
            h, c = carry
            h = jnp.tanh(g_in + h @ self.w_hh.T)
            return (h, c), h

        return scan_from_zero(lstm if self.cell == "lstm" else rnn, gates_in, d, reset)


def next_logits(net: DKTNet, batch: loop.Batch, key) -> Float[Array, "B T"]:
    """Logit of each position's correctness from the state before its question.

    Position t reads the LSTM output after position ``batch["prev"][t]``
    (t - 1 for single-KC data; the last row of the previous question when
    a question has several KC rows); with no earlier question only the
    KC's bias is left.
    """
    h = net.hidden_states(batch["skill"], batch["correct"], batch.get("reset"))
    if key is not None and net.dropout > 0:
        keep = jax.random.bernoulli(key, 1 - net.dropout, h.shape)
        h = jnp.where(keep, h / (1 - net.dropout), 0.0)
    prev = batch["prev"]
    h_prev = jnp.take_along_axis(h, jnp.maximum(prev, 0)[:, :, None], axis=1)
    q = batch["skill"]
    w = net.w_out[q]  # only the predicted KC's row of the head is needed
    dot = jnp.einsum("btd,btd->bt", h_prev, w)
    return jnp.where(prev >= 0, dot, 0.0) + net.b_out[q]


@eqx.filter_jit
def _all_kc_probs(net: DKTNet, batch: loop.Batch, last: Int[Array, " B"]) -> Float[Array, "B K"]:
    h = net.hidden_states(batch["skill"], batch["correct"])
    h_last = jnp.take_along_axis(h, last[:, None, None], axis=1)[:, 0]
    return jax.nn.sigmoid(h_last @ net.w_out.T + net.b_out)


def _flat(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    user = frame["user_idx"].to_numpy()
    n = len(user)
    boundary = np.ones(n, bool)
    boundary[1:] = user[1:] != user[:-1]
    starts = np.flatnonzero(boundary)
    lengths = np.diff(np.append(starts, n))
    return {
        "user": user,
        "starts": starts,
        "lengths": lengths,
        "pos": np.arange(n) - np.repeat(starts, lengths),
        "skill": frame["skill_idx"].to_numpy(),
        "item": frame["item_idx"].to_numpy(),
        "correct": frame["correct"].to_numpy(),
        "time": frame["timestamp"].to_numpy().astype(np.float64),
        "group": frame["attempt"].to_numpy() if "attempt" in frame.columns else np.arange(n),
    }


def _gather(f: dict, idx: np.ndarray, valid: np.ndarray, user: np.ndarray, start: np.ndarray) -> Sequences:
    safe = np.where(valid, idx, 0)

    def g(a, fill, dtype):
        return np.where(valid, a[safe], fill).astype(dtype)

    return Sequences(
        skill=g(f["skill"], -1, np.int32),
        item=g(f["item"], -1, np.int32),
        correct=g(f["correct"], 0, np.int8),
        time=g(f["time"], np.nan, np.float64),
        mask=valid.copy(),
        row=np.where(valid, idx, -1).astype(np.int64),
        user=user.astype(np.int32),
        start=start.astype(np.int64),
        group=g(f["group"], -1, np.int64),
    )


def window_sequences(frame: pl.DataFrame, window: int) -> tuple[Sequences, np.ndarray]:
    """pyKT's window mode: no history reset; each step sees <= window-1 predecessors.

    A learner's first ``window`` steps form one sequence scoring all of them;
    every later step t gets its own sequence (steps t-window+1 .. t) scoring
    only its last position. Built from the flat, learner-sorted frame, so
    memory grows with the number of windows, not the longest learner.

    Args:
        frame: canonical frame (sorted by learner).
        window: window length.

    Returns:
        (sequences, ``[N, window]`` bool of the positions to score).
    """
    f = _flat(frame)
    starts, lengths = f["starts"], f["lengths"]
    cols = np.arange(window)[None, :]
    heads = _gather(f, starts[:, None] + cols, cols < lengths[:, None], f["user"][starts], np.zeros(len(starts)))
    t = np.flatnonzero(f["pos"] >= window)
    tails = _gather(f, t[:, None] - window + 1 + cols, np.ones((len(t), window), bool), f["user"][t], f["pos"][t] - window + 1)
    score = np.concatenate([heads.mask, np.zeros(tails.mask.shape, bool)])
    score[len(starts) :, -1] = True
    seqs = Sequences(
        **{
            k: np.concatenate([getattr(heads, k), getattr(tails, k)])
            for k in Sequences.__dataclass_fields__
            if getattr(heads, k) is not None
        }
    )
    return seqs, score


def last_windows(frame: pl.DataFrame, window: int) -> tuple[Sequences, np.ndarray]:
    """Each learner's last ``window`` steps (left-aligned) and the index of the last one."""
    f = _flat(frame)
    starts, lengths = f["starts"], f["lengths"]
    keep = np.minimum(lengths, window)
    first = starts + lengths - keep
    cols = np.arange(window)[None, :]
    seqs = _gather(f, first[:, None] + cols, cols < keep[:, None], f["user"][starts], lengths - keep)
    return seqs, keep - 1


def eval_sequences(frame: pl.DataFrame, mode: str, window: int) -> tuple[Sequences, np.ndarray]:
    """Sequences of an exploded frame for evaluation, and the positions to score.

    Args:
        frame: exploded frame of known KCs (see :func:`_known`).
        mode: ``window``, ``chunk`` or ``full`` (see :class:`DKTConfig`).
        window: window / chunk length.

    Returns:
        (sequences, ``[N, T]`` bool of the positions to score).
    """
    if mode == "window":
        return window_sequences(frame, window)
    seqs = build_sequences(frame, window=window if mode == "chunk" else None)
    return seqs, seqs.mask.copy()  # every real step; position 0 has a bias-only logit


def question_probs(
    name: str, data: Interactions, ex: pl.DataFrame, known: np.ndarray, rows: np.ndarray, p: np.ndarray, base_rate: float
) -> tuple[np.ndarray, dict]:
    """One probability per question from the per-KC-row predictions of a sequence model.

    Args:
        name: model name (for the error message).
        data: the interactions predicted.
        ex: ``data.explode()``.
        known: per row of ``ex``, whether its KC is in the vocabulary.
        rows: rows of the known-KC frame that got the probabilities ``p``.
        p: predicted probabilities.
        base_rate: prediction for KCs outside the vocabulary.

    Returns:
        ``(probs, extra)`` for :meth:`Model.predict`; multi-KC data adds the
        per-row values as ``prob_kc``.
    """
    per_kc = np.full(ex.height, np.nan)
    per_kc[np.flatnonzero(known)[rows]] = p
    # A KC outside the training vocabulary has no embedding: such rows are
    # left out of the input and predicted with the training correct rate.
    per_kc[~known] = base_rate
    if np.isnan(per_kc).any():
        raise KTError(f"{name}: internal error, some attempts got no prediction")
    if not data.multi_kc:
        return per_kc, {}
    # Question-level: the mean over the question's KC rows, all predicted
    # from the state before the question; per-row values kept for other fusions.
    prob = question_means(ex["attempt"], p=per_kc)["p"].to_numpy()
    return prob, {"prob_kc": question_rows(ex["attempt"], per_kc)}


def window_buckets(window: int) -> tuple[int, ...]:
    """Padded lengths for batches: powers of two below the window, and the window."""
    return tuple(sorted({b for b in (16, 32, 64, 128) if b < window} | {window}))


def next_correct_frame(data: Interactions, users: np.ndarray, kcs: list[str], chunks: list[np.ndarray]) -> pl.DataFrame:
    """What ``mastery`` returns: per learner x KC, the predicted correctness of a next question.

    Args:
        data: the interactions predicted (for the learner ids).
        users: ``user_idx`` of each learner, in the order of the rows of ``chunks``.
        kcs: the model's KCs (the columns of ``chunks``).
        chunks: ``[n, K]`` probabilities of consecutive learners.

    Returns:
        ``user_id``, ``skill_id``, ``p_correct_next``: one row per learner and KC.
    """
    K = len(kcs)
    probs = np.concatenate(chunks) if chunks else np.zeros((0, K))
    ids = [data.vocab.user_id[u] for u in users]
    return pl.DataFrame({"user_id": np.repeat(ids, K), "skill_id": np.tile(kcs, len(ids)), "p_correct_next": probs.ravel()})


def _known(data: Interactions) -> pl.DataFrame:
    """One row per (question, KC) with a KC in the vocabulary (``attempt`` = question)."""
    return data.explode().filter(pl.col("skill_idx") >= 0)


class WindowedModel(Model):
    """What DKT and CAKT share: training on windows of KC rows in the shared loop, prediction in a history mode.

    Training cuts each learner's (question, KC) rows into chunks of
    ``window`` steps for :func:`kt.train.loop.fit` (in memory, or streamed
    from a partitioned dataset); prediction scores every row from the state
    before its question in the config's ``eval_mode`` (:func:`eval_sequences`),
    rows of KCs outside the vocabulary at the training correct rate. The
    config has ``window``, ``min_chunk``, ``batch_size`` and ``eval_mode``.
    A subclass gives its logits function (``logits_fn``, the loop's
    convention), its initial network (``_init_train``) and loop settings
    (``_settings``), and where it has them its own batches
    (``_train_batches``, ``_eval_parts``), parameters (``_params_of``) and
    training record (``_fit_meta``).
    """

    logits_fn: ClassVar[Callable[..., Any]]

    def _init_train(self, key) -> tuple[Any, Any]:
        """The initial network and its non-trainable state (``None`` when it has none)."""
        raise NotImplementedError

    def _settings(self) -> loop.LoopSettings:
        raise NotImplementedError

    def _train_batches(self) -> Callable[[Sequences, int], loop.Batch] | None:
        """The training batch maker (``None``: :func:`kt.train.loop.to_batch`)."""
        return None

    def _params_of(self, res: loop.FitResult) -> Any:
        return res.model

    def _fit_meta(self, res: loop.FitResult, val: Sequences | PartitionStream | None) -> dict:
        """Entries the subclass adds to ``meta`` after training."""
        return {}

    def _eval_parts(self, seqs: Sequences) -> tuple[Any, Callable[[Sequences, int], loop.Batch] | None, Any]:
        """The model, batch maker and state that predict ``seqs`` (see :func:`kt.train.loop.predict_positions`)."""
        return self.params, None, None

    def _buckets(self) -> tuple[int, ...]:
        return window_buckets(self.config.window)

    def fit(
        self,
        data: "Interactions | PartitionedData",
        *,
        valid=None,
        key=None,
        progress=None,
        checkpoint=None,
        resume=False,
        devices: int | None = 1,
        on_step=None,
    ) -> Self:
        """Train on ``data`` (chunks of ``window``), selecting the best epoch on ``valid``.

        Args:
            data: training interactions, or a partitioned dataset view
                (:class:`kt.data.partitioned.PartitionedData`, e.g. from
                ``split``; models whose capabilities have ``streams``): its
                partitions are then loaded and windowed one at a time, so
                memory follows the largest partition; with a single
                partition the result equals in-memory training.
            valid: validation interactions (learner-level split; a
                partitioned view when ``data`` is one), or ``None`` (then the
                last epoch is kept).
            key, progress, checkpoint, resume, devices, on_step: as in
                :meth:`kt.models.base.Model.fit`.

        Returns:
            ``self``; ``meta`` holds the per-epoch ``history``, the best
            epoch, why training stopped, the number of training windows and
            the training correct rate (``base_rate``).
        """
        cfg = self.config
        self.vocab = data.vocab
        k_init, k_train = jax.random.split(jax_key(key))

        # One step per (question, KC) row; the KC rows of a question share a
        # group, so each is trained and scored from the state before the question.
        def windows(d: Interactions) -> Sequences:
            return build_sequences(_known(d), window=cfg.window, min_len=cfg.min_chunk)

        train: Sequences | PartitionStream
        val: Sequences | PartitionStream | None
        if isinstance(data, PartitionedData):
            train = data.stream(windows)
            val = valid.stream(windows) if valid is not None else None
            data_rate = data.correct_rate
        else:
            train = windows(data)
            val = windows(valid) if valid is not None else None
            data_rate = correct_rate(data.frame)
        net, state = self._init_train(k_init)
        res = self._record_fit(
            lambda: loop.fit(
                net,
                self.logits_fn,
                train,
                val,
                self._settings(),
                k_train,
                on_epoch=progress,
                checkpoint=checkpoint,
                resume=resume,
                make_batch=self._train_batches(),
                state=state,
                devices=devices,
                on_step=on_step,
            ),
            self._params_of,
            {},
        )
        if isinstance(train, Sequences):
            n_windows, base_rate = int(train.mask.shape[0]), data_rate
        else:  # counted while streaming (the whole dataset's rate if no epoch ran, e.g. a finished --resume)
            n_windows, base_rate = train.sequences, train.correct_rate or data_rate
        self.meta.update({"train_windows": n_windows, "base_rate": float(base_rate), **self._fit_meta(res, val)})
        return self

    def _predict_probs(self, data: Interactions):
        ex = data.explode()
        known = (ex["skill_idx"] >= 0).to_numpy()
        seqs, score = eval_sequences(ex.filter(pl.Series(known)), self.config.eval_mode, self.config.window)
        model, make_batch, state = self._eval_parts(seqs)
        _, p, rows = loop.predict_positions(
            model, self.logits_fn, seqs, self.config.batch_size, self._buckets(), score=score, make_batch=make_batch, state=state
        )
        return question_probs(self.name, data, ex, known, rows, p, self.meta.get("base_rate", 0.5))


@register
class DKT(WindowedModel):
    """DKT: LSTM over (KC, response) pairs; pyKT's default configuration."""

    name = "dkt"
    Config = DKTConfig
    capabilities = Capabilities(
        resumable=True, streams=True, devices=True, on_step=True, history_modes=True, graph="conditional-influence"
    )
    summary = "Deep Knowledge Tracing (embedding + LSTM, pyKT default; variant=piech: one-hot + RNN)"
    logits_fn = staticmethod(next_logits)

    def _skeleton(self) -> DKTNet:
        return self._init_net(jax.random.key(0))

    def _init_net(self, key) -> DKTNet:
        c = self.config
        return DKTNet.init(
            key,
            len(self._fitted_vocab.skill_id),
            c.hidden,
            c.dropout,
            variant=c.variant,
            cell=c.cell_type,
            compressed=c.compressed,
        )

    def _init_train(self, key) -> tuple[DKTNet, None]:
        return self._init_net(key), None

    def _settings(self) -> loop.LoopSettings:
        cfg = self.config
        return loop.LoopSettings(cfg.epochs, cfg.patience, 1e-3, cfg.batch_size, cfg.lr, self._buckets(), batching=cfg.batching)

    def influence_matrix(self) -> np.ndarray:
        """P(correct on KC j) after a single correct answer on KC i (Piech et al. 2015).

        Returns:
            ``[K, K]`` array, row i = the observed KC, column j = the predicted KC.
        """
        self._require_fitted()
        K = len(self._fitted_vocab.skill_id)
        out = []
        for i in range(0, K, self.config.batch_size):
            kcs = np.arange(i, min(K, i + self.config.batch_size))
            seqs = Sequences(
                skill=kcs[:, None].astype(np.int32),
                item=np.full((len(kcs), 1), -1, np.int32),
                correct=np.ones((len(kcs), 1), np.int8),
                time=np.full((len(kcs), 1), np.nan),
                mask=np.ones((len(kcs), 1), bool),
                row=np.zeros((len(kcs), 1), np.int64),
                user=np.zeros(len(kcs), np.int32),
                start=np.zeros(len(kcs), np.int64),
                group=np.zeros((len(kcs), 1), np.int64),
            )
            batch = loop.to_batch(seqs, self.config.batch_size)
            probs = _all_kc_probs(self.params, batch, jnp.zeros(batch["mask"].shape[0], jnp.int32))
            out.append(np.asarray(probs)[: len(kcs)])
        return np.concatenate(out).astype(np.float64)

    def mastery(self, data: Interactions) -> pl.DataFrame:
        """Predicted correctness on every KC after each learner's history.

        Not a calibrated mastery probability: it is DKT's output layer read
        at the last step (history limited to the last ``window`` attempts).

        Returns:
            ``user_id``, ``skill_id``, ``p_correct_next``.
        """
        self._require_fitted()
        sub, last = last_windows(_known(data), self.config.window)
        B = self.config.batch_size
        out = []
        for i in range(0, len(last), B):
            n = min(B, len(last) - i)
            batch = loop.to_batch(sub.take(np.arange(i, i + n)), B)
            lst = np.zeros(batch["mask"].shape[0], np.int32)
            lst[:n] = last[i : i + n]
            out.append(np.asarray(_all_kc_probs(self.params, batch, jnp.asarray(lst)))[:n])
        return next_correct_frame(data, sub.user, self._fitted_vocab.skill_id, out)
