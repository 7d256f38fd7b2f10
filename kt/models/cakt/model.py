"""CAKT: convolution-augmented knowledge tracing (Yang et al., arXiv 2008.01169).

DKT with a "learning curve" branch (``shared/spec/CAKT.md``; the official
code, Badstu/CAKT, is followed where paper and code differ). Interaction
x_t = 1 + q_t + K r_t is embedded into H*H = 225 values, seen as a 15x15
frame. For the output at step t (which predicts step t+1) the frames of the
learner's last k attempts on the key KC (the next question's KC by default,
``recent_key=current``: the current one, as in the official code) are
weighted by exp(-S * steps ago) and stacked, oldest first with zero frames
in front, into a [k, 15, 15] volume. Four residual squeeze-excitation 3D
convolution blocks (1 -> 4 -> 8 -> 4 -> 1 channels) and a mean over the k
frames give c_t; an LSTM over the embeddings gives h_t; two independent
sigmoid gates fuse them (f = g_c * c + g_h * h); a second LSTM and a linear
head give one logit per KC.

Implementation notes:

- the neighbour positions idx[T, k] and step gaps are computed on the host
  (:func:`neighbours`), so the volume is one gather of the embeddings;
- the 3D-CNN (:mod:`kt.models.cakt.net`) runs as folded 2D convolutions
  over cache-sized chunks of positions with hand-written convolution
  gradients, rematerialised per chunk;
- BatchNorm statistics use real positions only (masked) and the running
  statistics live in a separate state pytree threaded by the training loop;
- at prediction time the CNN feature of each (position, number of
  neighbours inside the window) is computed once and shared by all the
  evaluation windows that contain it (window mode would otherwise repeat
  it up to ``window`` times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import polars as pl
from jaxtyping import Array, Bool, Float, Int

from kt.data.schema import Interactions
from kt.data.sequences import BATCHINGS, Sequences
from kt.errors import KTError, check_choice
from kt.models.base import Capabilities, register
from kt.models.dkt.model import EVAL_MODES, WindowedModel, _known, last_windows, next_correct_frame
from kt.train import loop
from kt.models.cakt.net import Block, block_apply, block_state
from kt.models.nn import lstm_update, scan_from_zero

FUSIONS = ("gates", "gate", "sum", "concat")
NORMS = ("batch", "group")
EMBED_INITS = ("kaiming", "normal")
RECENT_KEYS = ("next", "current")
# CNN rows per batch are padded to a multiple of this (a few compiled shapes per epoch).
CNN_ROWS = 512


@dataclass(frozen=True)
class CAKTConfig:
    """Options of ``cakt`` (defaults: the official code's ``main.py``).

    Attributes:
        k: recent attempts per volume (>= 2; the SE bottleneck is k // 2).
        frame: frame side H; the embedding size is H * H.
        channels: output channels of the first three residual blocks (the
            fourth always outputs 1 channel), i.e. 1 -> 4 -> 8 -> 4 -> 1.
        decay: weight the recent frames by exp(-S * steps ago) (S learned);
            ``false``: weight 1.
        cnn: use the 3D-CNN branch; ``false`` (ablation) feeds the first
            LSTM's output straight into the second one.
        fusion: ``gates`` (two independent sigmoid gates, official),
            ``gate`` (g * c + (1 - g) * h), ``sum`` (c + h) or ``concat``
            (a linear layer on [c; h]).
        norm: ``batch`` (masked BatchNorm with running statistics) or
            ``group`` (per-position normalisation over channels and volume).
        embed_init: initial scale of the interaction embedding: ``normal``
            (kt default: N(0, 1), PyTorch's embedding default and DKT's) or
            ``kaiming`` (the official code: N(0, 2 / E), std 0.094 at H = 15).
            ``normal`` selects better on validation on both benchmark sets:
            on statics2011 (KC = problem step, 1,223 KCs) validation AUC
            stops at 0.783 with ``kaiming`` and passes 0.82 with ``normal``;
            on assist2009 0.7558 against 0.7546 (docs/models/cakt.md).
        recent_key: KC whose recent attempts feed the output at step t:
            ``next`` (the KC of the question being predicted, kt default) or
            ``current`` (the KC of step t, the official code).
        lr: Adam learning rate.
        beta2: Adam's second-moment decay (beta1 is 0.9).
        weight_decay: coupled L2 added to the gradient before Adam.
        lr_decay: learning-rate factor after every ``lr_every``-th epoch and
            after any epoch whose training loss rose.
        lr_every: see ``lr_decay`` (0: only on a rise).
        batch_size: chunks per batch (the official code uses 80; at 32 a
            training run on assist2009 peaks at about 3.4 GB RSS on CPU,
            about 4.6 GB when every chunk is a full 200 steps).
        window: training chunk length (history resets per chunk).
        min_chunk: chunks shorter than this are dropped.
        batching: ``pack`` (default) draws uniform random batches of chunks
            (as the official loader shuffles) and packs each batch's chunks
            into as few rows as fit, the recurrent states restarting at each
            chunk; ``random`` pads them instead; ``bucket`` batches chunks
            of similar length together.
        epochs: maximum epochs.
        patience: epochs without validation-AUC gain before stopping.
        eval_mode: ``window``, ``chunk`` or ``full`` (as for ``dkt``).
    """

    k: int = 4
    frame: int = 15
    channels: tuple[int, ...] = (4, 8, 4)
    decay: bool = True
    cnn: bool = True
    fusion: str = "gates"
    norm: str = "batch"
    embed_init: str = "normal"
    recent_key: str = "next"
    lr: float = 1e-3
    beta2: float = 0.99
    weight_decay: float = 1e-5
    lr_decay: float = 0.3
    lr_every: int = 5
    batch_size: int = 32
    window: int = 200
    min_chunk: int = 3
    batching: str = "pack"
    epochs: int = 30
    patience: int = 10
    eval_mode: str = "window"

    def validate(self) -> None:
        """Reject invalid values."""
        check_choice("--set recent_key=", self.recent_key, RECENT_KEYS)
        check_choice("--set fusion=", self.fusion, FUSIONS)
        check_choice("--set embed_init=", self.embed_init, EMBED_INITS)
        check_choice("--set norm=", self.norm, NORMS)
        check_choice("--set batching=", self.batching, BATCHINGS)
        check_choice("--set eval_mode=", self.eval_mode, EVAL_MODES)
        if self.k < 2:
            raise KTError(f"--set k={self.k}: k must be >= 2 (the squeeze-excitation uses k // 2)")
        if self.frame < 1 or any(c < 1 for c in self.channels):
            raise KTError("cakt: frame and every entry of channels must be >= 1 (e.g. --set channels=4,8,4)")
        if self.batch_size < 1 or self.window < 2 or self.epochs < 1 or self.patience < 1:
            raise KTError("cakt: batch_size, epochs, patience must be >= 1 and window >= 2")
        if not self.lr > 0 or not 0 < self.beta2 < 1 or self.weight_decay < 0 or not 0 < self.lr_decay <= 1 or self.lr_every < 0:
            raise KTError("cakt: need lr > 0, 0 < beta2 < 1, weight_decay >= 0, 0 < lr_decay <= 1, lr_every >= 0")


# --------------------------------------------------------------------------
# Host side: neighbours


def recent_keys(
    skill: Int[np.ndarray, "N T"], mask: Bool[np.ndarray, "N T"], mode: str, segment: Int[np.ndarray, "N T"] | None = None
) -> Int[np.ndarray, "N T"]:
    """The KC whose recent attempts feed the output at each step (-1: none).

    Args:
        skill: KC per step (-1 on padding).
        mask: real steps.
        mode: ``next`` (the KC of step t+1) or ``current`` (of step t).
        segment: packed rows: the sequence each step belongs to (see
            :func:`kt.data.packing.pack`); ``None``: one sequence per row.

    Returns:
        ``[N, T]`` key KC, -1 on padding and, in ``next`` mode, on each
        sequence's last step.
    """
    sk = np.where(mask, skill, -1)
    if mode == "current":
        return sk
    key = np.full_like(sk, -1)
    key[:, :-1] = sk[:, 1:]
    if segment is not None:
        key[:, :-1] = np.where(segment[:, 1:] == segment[:, :-1], key[:, :-1], -1)
    return np.where(mask, key, -1)


def neighbours(
    skill: Int[np.ndarray, "N T"],
    mask: Bool[np.ndarray, "N T"],
    k: int,
    mode: str,
    segment: Int[np.ndarray, "N T"] | None = None,
) -> tuple[Int[np.ndarray, "N T k"], Int[np.ndarray, "N T k"]]:
    """Positions of the last ``k`` attempts on each step's key KC, and their gaps.

    For step t with key KC q (:func:`recent_keys`), the positions i <= t of
    the same sequence with ``skill[i] == q``, the newest ``k`` of them,
    oldest first and front-padded with -1. One sort of (sequence, KC,
    position) codes and a binary search per step; no Python loop.

    Args:
        skill: KC per step (-1 on padding).
        mask: real steps.
        k: neighbours per step.
        mode: ``next`` or ``current``.
        segment: packed rows: the sequence of each step (neighbours stay
            inside it); ``None``: one sequence per row.

    Returns:
        ``(idx, delta)``: ``[N, T, k]`` int32 positions (-1 missing) and
        ``t - idx`` (0 where missing).
    """
    N, T = skill.shape
    if N == 0 or T == 0:
        return np.full((N, T, k), -1, np.int32), np.zeros((N, T, k), np.int32)
    sk = np.where(mask, skill, -1).astype(np.int64)
    key = recent_keys(skill, mask, mode, segment).astype(np.int64)
    G = int(max(sk.max(), key.max())) + 2  # KC groups per sequence; group 0 = padding
    pos = np.broadcast_to(np.arange(T, dtype=np.int64), (N, T))
    seq = np.arange(N, dtype=np.int64)[:, None]
    if segment is not None:  # (row, segment) is the sequence
        seg = np.maximum(segment, 0).astype(np.int64)
        seq = seq * (int(seg.max()) + 1) + seg
    codes = ((seq * G + sk + 1) * T + pos).ravel()  # unique, ordered by (sequence, KC, position)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    sorted_pos = pos.ravel()[order]
    group = (seq * G + key + 1).ravel()
    last = np.searchsorted(sorted_codes, group * T + pos.ravel(), side="right") - 1  # newest i <= t in the group
    has_key = key.ravel() >= 0
    idx = np.full((N * T, k), -1, np.int64)
    for m in range(k):
        j = last - m
        jc = np.maximum(j, 0)
        ok = has_key & (j >= 0) & (sorted_codes[jc] // T == group)
        idx[:, k - 1 - m] = np.where(ok, sorted_pos[jc], -1)
    idx = idx.reshape(N, T, k)
    delta = np.where(idx >= 0, pos[:, :, None] - idx, 0)
    return idx.astype(np.int32), delta.astype(np.int32)


def interaction_ids(skill, correct, mask, n_kc: int):
    """Embedding row of each step: 1 + KC + K * correct, 0 on padding."""
    return np.where(mask, 1 + np.maximum(skill, 0) + n_kc * correct.astype(np.int64), 0).astype(np.int32)


def neighbour_inputs(
    skill: Int[np.ndarray, "N T"],
    correct: Int[np.ndarray, "N T"],
    mask: Bool[np.ndarray, "N T"],
    n_kc: int,
    k: int,
    mode: str,
    segment: Int[np.ndarray, "N T"] | None = None,
) -> tuple[Int[np.ndarray, "N T k"], Int[np.ndarray, "N T k"]]:
    """Each step's volume as embedding rows: the interaction ids of its :func:`neighbours` and their gaps.

    Args:
        skill, correct, mask: the steps (as for :func:`interaction_ids`).
        n_kc: number of KCs.
        k: neighbours per step.
        mode: ``next`` or ``current``.
        segment: packed rows' sequence of each step, or ``None``.

    Returns:
        ``(x_nb, delta)``: ``[N, T, k]`` interaction ids (0: missing, so
        ``x_nb > 0`` marks the neighbours present) and step gaps.
    """
    N, T = mask.shape
    idx, delta = neighbours(skill, mask, k, mode, segment)
    x = interaction_ids(skill, correct, mask, n_kc)
    x_nb = np.where(idx >= 0, np.take_along_axis(x, np.maximum(idx, 0).reshape(N, -1), axis=1).reshape(N, T, k), 0)
    return x_nb.astype(np.int32), delta


def cnn_inputs(
    skill: Int[np.ndarray, "N T"],
    correct: Int[np.ndarray, "N T"],
    mask: Bool[np.ndarray, "N T"],
    n_kc: int,
    k: int,
    mode: str,
    segment: Int[np.ndarray, "N T"] | None = None,
    rows: int | None = None,
    compact: bool = True,
) -> dict[str, np.ndarray]:
    """The volumes the CNN must compute for a batch, and where each step reads its feature.

    Every real step whose key KC has no earlier attempt in its sequence has
    the same all-zero volume, hence the same feature (and, in training, the
    same contribution to the batch statistics): one row stands for all of
    them, with their count as its weight. The other real steps get a row
    each; padding gets none. The rows are padded with weight-0 rows to a
    multiple of :data:`CNN_ROWS` so that batches share compiled shapes.

    Args:
        skill: KC per step (-1 on padding).
        correct: outcome per step.
        mask: real steps.
        n_kc: number of KCs.
        k: neighbours per volume.
        mode: ``next`` or ``current`` (see :func:`recent_keys`).
        segment: packed rows' sequence of each step, or ``None``.
        rows: pad the step arrays to this many rows (the batch's row count).
        compact: ``False``: one row per step, padding included with weight 0
            (the plain layout, for tests).

    Returns:
        ``cnn_x`` [M, k] neighbour interaction ids (0: missing),
        ``cnn_delta`` [M, k] their step gaps, ``cnn_w`` [M] weights and
        ``cnn_slot`` [rows, T] the row of each step's feature.
    """
    N, T = mask.shape
    rows = N if rows is None else rows
    x_nb, delta = neighbour_inputs(skill, correct, mask, n_kc, k, mode, segment)
    x_nb = np.concatenate([x_nb, np.zeros((rows - N, T, k), x_nb.dtype)]).reshape(-1, k)
    delta = np.concatenate([delta, np.zeros((rows - N, T, k), delta.dtype)]).reshape(-1, k)
    real = np.concatenate([mask, np.zeros((rows - N, T), bool)]).ravel()
    if not compact:
        return {
            "cnn_x": x_nb,
            "cnn_delta": delta,
            "cnn_w": real.astype(np.float32),
            "cnn_slot": np.arange(rows * T).reshape(rows, T),
        }
    full = real & (x_nb > 0).any(axis=1)
    keep = np.flatnonzero(full)
    M = -(-(len(keep) + 1) // CNN_ROWS) * CNN_ROWS
    cx = np.zeros((M, k), np.int32)
    cd = np.zeros((M, k), np.int32)
    cx[: len(keep)], cd[: len(keep)] = x_nb[keep], delta[keep]
    w = np.zeros(M, np.float32)
    w[: len(keep)] = 1.0
    w[len(keep)] = (real & ~full).sum()  # the shared empty volume
    slot = np.full(rows * T, len(keep), np.int32)
    slot[keep] = np.arange(len(keep), dtype=np.int32)
    return {"cnn_x": cx, "cnn_delta": cd, "cnn_w": w, "cnn_slot": slot.reshape(rows, T)}


# --------------------------------------------------------------------------
# The network


class CAKTNet(eqx.Module):
    """Parameters of CAKT (the BatchNorm running statistics are a separate state)."""

    embed: Float[Array, "V E"]
    blocks: tuple[Block, ...]
    S: Float[Array, ""]
    f_ih: Float[Array, "4E E"]
    f_hh: Float[Array, "4E E"]
    f_b: Float[Array, " 4E"]
    r_ih: Float[Array, "4E E"]
    r_hh: Float[Array, "4E E"]
    r_b: Float[Array, " 4E"]
    w_c: Float[Array, "E 2E"]
    b_c: Float[Array, " E"]
    w_h: Float[Array, "E 2E"]
    b_h: Float[Array, " E"]
    w_out: Float[Array, "K E"]
    b_out: Float[Array, " K"]
    n_kc: int = eqx.field(static=True)
    k: int = eqx.field(static=True)
    frame: int = eqx.field(static=True)
    cnn: bool = eqx.field(static=True)
    decay: bool = eqx.field(static=True)
    fusion: str = eqx.field(static=True)
    norm: str = eqx.field(static=True)

    @staticmethod
    def init(key, n_kc: int, cfg: CAKTConfig) -> tuple["CAKTNet", tuple]:
        """Initialised parameters and BatchNorm state (spec's init; PyTorch defaults elsewhere)."""
        E = cfg.frame * cfg.frame
        keys = jax.random.split(key, 16)
        u = lambda kk, shape, fan: jax.random.uniform(kk, shape, jnp.float32, -1 / math.sqrt(fan), 1 / math.sqrt(fan))  # noqa: E731
        scale = math.sqrt(2 / E) if cfg.embed_init == "kaiming" else 1.0
        embed = jax.random.normal(keys[0], (2 * n_kc + 1, E)) * scale
        embed = embed.at[0].set(0.0)  # padding row
        widths = (1, *cfg.channels, 1)
        bkeys = jax.random.split(keys[1], len(widths) - 1)
        blocks = tuple(Block.init(bk, a, b, cfg.k) for bk, a, b in zip(bkeys, widths[:-1], widths[1:]))
        if not cfg.cnn:
            blocks = ()
        net = CAKTNet(
            embed=embed,
            blocks=blocks,
            S=jnp.asarray(1.0),
            f_ih=u(keys[2], (4 * E, E), E),
            f_hh=u(keys[3], (4 * E, E), E),
            f_b=u(keys[4], (4 * E,), E) + u(keys[5], (4 * E,), E),
            r_ih=u(keys[6], (4 * E, E), E),
            r_hh=u(keys[7], (4 * E, E), E),
            r_b=u(keys[8], (4 * E,), E) + u(keys[9], (4 * E,), E),
            w_c=u(keys[10], (E, 2 * E), 2 * E),
            b_c=u(keys[11], (E,), 2 * E),
            w_h=u(keys[12], (E, 2 * E), 2 * E),
            b_h=u(keys[13], (E,), 2 * E),
            w_out=u(keys[14], (n_kc, E), E),
            b_out=u(keys[15], (n_kc,), E),
            n_kc=n_kc,
            k=cfg.k,
            frame=cfg.frame,
            cnn=cfg.cnn,
            decay=cfg.decay,
            fusion=cfg.fusion,
            norm=cfg.norm,
        )
        return net, tuple(block_state(b) for b in blocks)


def volume(net: CAKTNet, x_nb: Int[Array, "... k"], delta: Int[Array, "... k"]) -> Float[Array, "... k E"]:
    """The weighted recent frames: Emb(x_i) * exp(-S * delta_i), zero where missing (x = 0)."""
    frames = net.embed[x_nb]
    w = (x_nb > 0).astype(frames.dtype)
    if net.decay:
        w = w * jnp.exp(-net.S * delta.astype(frames.dtype))
    return frames * w[..., None]


def cnn_features(net: CAKTNet, state, vol: Float[Array, "M k E"], w: Array, train: bool):
    """The 3D-CNN branch on M volumes.

    Args:
        net: parameters.
        state: BatchNorm running statistics.
        vol: the weighted recent frames (:func:`volume`).
        w: weight of each volume in the batch statistics (bool mask or
            counts; 0: padding).
        train: batch statistics (and a state update) or running statistics.

    Returns:
        ``(c [M, E], new state, SE weights per block)``.
    """
    M, k, E = vol.shape
    H = net.frame
    x = jnp.transpose(vol.reshape(M, k, H, H), (0, 2, 3, 1))[..., None]  # [M, H, W, k, 1]
    w = w.astype(vol.dtype)
    new, ses = [], []
    for p, st in zip(net.blocks, state):
        x, s, se = block_apply(p, st, x, w, train, net.norm)
        new.append(s)
        ses.append(se)
    c = x[..., 0].mean(axis=-1).reshape(M, H * H)  # average over the k frames
    return c, tuple(new), ses


def _lstm(
    w_hh, gates_in: Float[Array, "B T 4E"], reset: Bool[Array, "B T"] | None = None
) -> tuple[Float[Array, "B T E"], Float[Array, "B T E"]]:
    """LSTM from a zero state over precomputed input gates: (h_t, c_t) for every t.

    ``reset`` (packed rows): the state restarts from zero before every step where it is set.
    """

    def step(carry, g_in):
        h, c = lstm_update(g_in + carry[0] @ w_hh.T, carry[1])
        return (h, c), (h, c)

    return scan_from_zero(step, gates_in, w_hh.shape[1], reset)


def lstm_cell(w_ih, w_hh, b, x, h, c):
    """One LSTM step (for re-running the last step with another key)."""
    return lstm_update(x @ w_ih.T + b + h @ w_hh.T, c)


def fuse(net: CAKTNet, c: Float[Array, "... E"], h: Float[Array, "... E"]):
    """Fusion of the CNN feature and the first LSTM's output: (f, g_c, g_h)."""
    if not net.cnn:
        return h, None, None
    ch = jnp.concatenate([c, h], axis=-1)
    if net.fusion == "sum":
        return c + h, None, None
    if net.fusion == "concat":
        return ch @ net.w_c.T + net.b_c, None, None
    g_c = jax.nn.sigmoid(ch @ net.w_c.T + net.b_c)
    g_h = 1 - g_c if net.fusion == "gate" else jax.nn.sigmoid(ch @ net.w_h.T + net.b_h)
    return g_c * c + g_h * h, g_c, g_h


def trajectory(net: CAKTNet, state, batch: loop.Batch, train: bool):
    """Both LSTMs over a batch.

    Returns:
        dict with ``h`` (front outputs), ``h2``/``c2`` (rear states), ``c``
        (CNN features), gates, and ``state`` (the new BatchNorm state).
    """
    mask = batch["mask"]
    x = jnp.where(mask, 1 + batch["skill"] + net.n_kc * batch["correct"], 0)
    e = net.embed[x]
    new_state, ses = state, []
    if not net.cnn:
        c = jnp.zeros_like(e)
    elif "c" in batch:  # precomputed (prediction): see CAKT._feature_table
        c = batch["c"]
    else:  # the rows of cnn_inputs, then each step's row
        vol = volume(net, batch["cnn_x"], batch["cnn_delta"])
        c_rows, new_state, ses = cnn_features(net, state, vol, batch["cnn_w"], train)
        c = c_rows[batch["cnn_slot"]]
    reset = batch.get("reset")
    h, _ = _lstm(net.f_hh, e @ net.f_ih.T + net.f_b, reset)
    f, g_c, g_h = fuse(net, c, h)
    h2, c2 = _lstm(net.r_hh, f @ net.r_ih.T + net.r_b, reset)
    return {"h": h, "h2": h2, "c2": c2, "c": c, "f": f, "g_c": g_c, "g_h": g_h, "state": new_state, "se": ses}


def next_logits(net: CAKTNet, batch: loop.Batch, key, state) -> tuple[Float[Array, "B T"], tuple]:
    """Logit of each position from the rear state after ``batch["prev"]`` (loop's stateful convention).

    ``key`` is not ``None`` in training (batch statistics, state updated)
    and ``None`` in evaluation (running statistics). CAKT has no dropout.
    """
    out = trajectory(net, state, batch, key is not None)
    prev = batch["prev"]
    h_prev = jnp.take_along_axis(out["h2"], jnp.maximum(prev, 0)[:, :, None], axis=1)
    q = batch["skill"]
    dot = jnp.einsum("btd,btd->bt", h_prev, net.w_out[q])
    return jnp.where(prev >= 0, dot, 0.0) + net.b_out[q], out["state"]


@eqx.filter_jit
def _features(net: CAKTNet, state, x_nb, delta):
    # Prediction-time CNN features of M volumes (running statistics).
    vol = volume(net, x_nb, delta)
    c, _, _ = cnn_features(net, state, vol, jnp.ones(vol.shape[0], bool), False)
    return c


@eqx.filter_jit
def _last_step_logits(net: CAKTNet, state, batch, last, c_alt):
    """All-KC logits at each row's step ``last``; with ``c_alt`` [B, K, E], re-run that step per key KC."""
    out = trajectory(net, state, batch, False)
    rows = jnp.arange(last.shape[0])
    if c_alt is None:
        return out["h2"][rows, last] @ net.w_out.T + net.b_out
    prev = jnp.maximum(last - 1, 0)
    h0 = jnp.where((last > 0)[:, None], out["h2"][rows, prev], 0.0)
    s0 = jnp.where((last > 0)[:, None], out["c2"][rows, prev], 0.0)
    h = out["h"][rows, last]
    f, _, _ = fuse(net, c_alt, jnp.broadcast_to(h[:, None], c_alt.shape))
    h2, _ = lstm_cell(net.r_ih, net.r_hh, net.r_b, f, h0[:, None], s0[:, None])
    return jnp.einsum("bke,ke->bk", h2, net.w_out) + net.b_out


@eqx.filter_jit
def _influence_logits(net: CAKTNet, state, kcs, next_mode: bool):
    # One correct answer on each KC i in `kcs`; logits of every KC j.
    x = 1 + kcs + net.n_kc
    e = net.embed[x]
    z = jnp.zeros_like(e)
    h, _ = lstm_cell(net.f_ih, net.f_hh, net.f_b, e, z, z)
    k = net.k
    x_nb = jnp.zeros((len(kcs), k), jnp.int32).at[:, -1].set(x)
    d = jnp.zeros((len(kcs), k), jnp.int32)
    if net.cnn:
        c_own = _features_inline(net, state, x_nb, d)  # the key KC was answered: its frame, delta 0
        c_none = _features_inline(net, state, jnp.zeros((1, k), jnp.int32), d[:1])  # no attempt on the key KC
    else:
        c_own = c_none = jnp.zeros_like(e)

    def head(c):
        f, _, _ = fuse(net, c, h)
        h2, _ = lstm_cell(net.r_ih, net.r_hh, net.r_b, f, z, z)
        return h2 @ net.w_out.T + net.b_out

    own = head(c_own)
    if not next_mode:
        return own
    other = head(jnp.broadcast_to(c_none, c_own.shape))
    diag = jax.nn.one_hot(kcs, net.n_kc, dtype=bool)
    return jnp.where(diag, own, other)


def _features_inline(net, state, x_nb, delta):
    vol = volume(net, x_nb, delta)
    return cnn_features(net, state, vol, jnp.ones(vol.shape[0], bool), False)[0]


@eqx.filter_jit
def _diagnostics(net: CAKTNet, state, batch):
    out = trajectory(net, state, batch, False)
    m = batch["mask"][..., None]
    mean = lambda g: None if g is None else (g * m).sum() / jnp.maximum(m.sum() * g.shape[-1], 1)  # noqa: E731
    return mean(out["g_c"]), mean(out["g_h"])


# --------------------------------------------------------------------------
# The model


@register
class CAKT(WindowedModel):
    """CAKT: DKT with a 3D-CNN over the last k same-KC attempts (learning curve)."""

    name = "cakt"
    Config = CAKTConfig
    capabilities = Capabilities(resumable=True, devices=True, on_step=True, history_modes=True, graph="conditional-influence")
    summary = "Convolution-augmented KT (3D-CNN over recent same-KC attempts + LSTMs)"
    logits_fn = staticmethod(next_logits)

    def _skeleton(self):
        return CAKTNet.init(jax.random.key(0), len(self._fitted_vocab.skill_id), self.config)

    def make_batch(self, seqs: Sequences, batch_size: int) -> loop.Batch:
        """:func:`loop.to_batch` plus the CNN's rows (:func:`cnn_inputs`)."""
        b = loop.to_batch(seqs, batch_size)
        if not self.config.cnn:
            return b
        cfg = self.config
        rows = cnn_inputs(
            seqs.skill,
            seqs.correct,
            seqs.mask,
            len(self._fitted_vocab.skill_id),
            cfg.k,
            cfg.recent_key,
            seqs.segment,
            b["mask"].shape[0],
        )
        return {**b, **{name: jnp.asarray(a) for name, a in rows.items()}}

    def _settings(self) -> loop.LoopSettings:
        cfg = self.config
        return loop.LoopSettings(
            cfg.epochs,
            cfg.patience,
            1e-3,
            cfg.batch_size,
            cfg.lr,
            self._buckets(),
            weight_decay=cfg.weight_decay,
            b1=0.9,
            b2=cfg.beta2,
            lr_decay=cfg.lr_decay,
            lr_every=cfg.lr_every,
            lr_on_rise=cfg.lr_decay != 1.0,
            batching=cfg.batching,
        )

    def _init_train(self, key) -> tuple[CAKTNet, tuple]:
        return CAKTNet.init(key, len(self._fitted_vocab.skill_id), self.config)

    def _train_batches(self):
        return self.make_batch

    def _params_of(self, res: loop.FitResult) -> tuple[CAKTNet, tuple]:
        return res.model, res.state

    def _fit_meta(self, res: loop.FitResult, val) -> dict:
        """The learned decay ``S`` and the mean fusion gates on (a batch of) the validation data."""
        cfg = self.config
        meta = {"decay_S": float(res.model.S)}
        if isinstance(val, Sequences) and val.mask.shape[0] and cfg.cnn and cfg.fusion in ("gates", "gate"):
            b = self.make_batch(val.take(np.arange(min(cfg.batch_size, val.mask.shape[0]))), cfg.batch_size)
            g_c, g_h = _diagnostics(res.model, res.state, b)
            meta.update(gate_c_mean=float(g_c), gate_h_mean=float(g_h))
        return meta

    # -- prediction ------------------------------------------------------

    def _feature_table(self, seqs: Sequences):
        """CNN features of every distinct (position, neighbours kept) of ``seqs``, and a batch maker using them.

        In window mode one attempt appears in up to ``window`` sequences; its
        volume only changes when the window start cuts off some of its
        neighbours, so a frame row and a neighbour count identify it.
        """
        net, state = self.params
        k = self.config.k
        if not self.config.cnn:
            return loop.to_batch
        x_all, delta = neighbour_inputs(seqs.skill, seqs.correct, seqs.mask, net.n_kc, k, self.config.recent_key)
        codes = np.where(seqs.mask, seqs.row * (k + 1) + (x_all > 0).sum(-1), -1).ravel()
        uniq, first = np.unique(codes, return_index=True)
        first = first[uniq >= 0]
        uniq = uniq[uniq >= 0]
        n, t = np.divmod(first, seqs.mask.shape[1])
        x_nb, d_nb = x_all[n, t], delta[n, t]
        E = net.frame * net.frame
        table = np.zeros((len(uniq) + 1, E), np.float32)  # last row: padding
        chunk = 2048
        for i in range(0, len(uniq), chunk):
            j = min(len(uniq), i + chunk)
            xs = np.zeros((chunk, k), np.int32)
            ds = np.zeros((chunk, k), np.int32)
            xs[: j - i], ds[: j - i] = x_nb[i:j], d_nb[i:j]
            table[i:j] = np.asarray(_features(net, state, jnp.asarray(xs), jnp.asarray(ds)))[: j - i]

        def make(sub: Sequences, batch_size: int) -> loop.Batch:
            b = loop.to_batch(sub, batch_size)
            si, _ = neighbours(sub.skill, sub.mask, k, self.config.recent_key)
            code = np.where(sub.mask, sub.row * (k + 1) + (si >= 0).sum(-1), -1)
            pos = np.searchsorted(uniq, code)
            pos = np.where(code >= 0, np.minimum(pos, len(uniq) - 1), len(uniq))
            c = table[pos]
            pad = b["mask"].shape[0] - c.shape[0]
            if pad:
                c = np.concatenate([c, np.zeros((pad, *c.shape[1:]), c.dtype)])
            return {**b, "c": jnp.asarray(c)}

        return make

    def _eval_parts(self, seqs: Sequences):
        net, state = self.params
        return net, self._feature_table(seqs), state

    def mastery(self, data: Interactions) -> pl.DataFrame:
        """Predicted correctness of a next question on every KC after each learner's history.

        In ``next`` mode the last step is re-run with each KC as the key
        (its recent attempts feed the CNN); in ``current`` mode it is the
        head's output at the last step. History: the last ``window`` attempts.

        Returns:
            ``user_id``, ``skill_id``, ``p_correct_next``.
        """
        self._require_fitted()
        net, state = self.params
        cfg = self.config
        K = len(self._fitted_vocab.skill_id)
        sub, last = last_windows(_known(data), cfg.window)
        make = self._feature_table(sub)
        B = max(1, min(cfg.batch_size, 4096 // max(K, 1)) if cfg.recent_key == "next" else cfg.batch_size)
        out = []
        for i in range(0, len(last), B):
            n = min(B, len(last) - i)
            rows = np.arange(i, i + n)
            part = sub.take(rows)
            batch = make(part, B)
            lst = np.zeros(batch["mask"].shape[0], np.int32)
            lst[:n] = last[rows]
            c_alt = None
            if cfg.recent_key == "next" and cfg.cnn:
                c_alt = jnp.asarray(self._key_features(part, last[rows], batch["mask"].shape[0]))
            logits = _last_step_logits(net, state, batch, jnp.asarray(lst), c_alt)
            out.append(np.asarray(jax.nn.sigmoid(logits))[:n])
        return next_correct_frame(data, sub.user, self._fitted_vocab.skill_id, out)

    def _key_features(self, part: Sequences, last: np.ndarray, rows: int) -> np.ndarray:
        """CNN features at each row's last step with every KC as the key: [rows, K, E]."""
        net, state = self.params
        k, K, E = self.config.k, net.n_kc, net.frame * net.frame
        x = interaction_ids(part.skill, part.correct, part.mask, K)
        zero = np.asarray(_features(net, state, jnp.zeros((1, k), jnp.int32), jnp.zeros((1, k), jnp.int32)))[0]
        out = np.broadcast_to(zero, (rows, K, E)).copy()  # a KC never attempted: an all-zero volume
        xs, ds, where = [], [], []
        for r, t in enumerate(last):
            sk = part.skill[r, : t + 1]
            for q in np.unique(sk[sk >= 0]):
                p = np.flatnonzero(sk == q)[-k:]
                xs.append(np.pad(x[r, p], (k - len(p), 0)))
                ds.append(np.pad(t - p, (k - len(p), 0)))
                where.append((r, q))
        for i in range(0, len(xs), 2048):
            a = np.zeros((2048, k), np.int32)
            d = np.zeros((2048, k), np.int32)
            m = min(2048, len(xs) - i)
            a[:m], d[:m] = xs[i : i + m], ds[i : i + m]
            c = np.asarray(_features(net, state, jnp.asarray(a), jnp.asarray(d)))[:m]
            for (r, q), v in zip(where[i : i + m], c):
                out[r, q] = v
        return out

    def influence_matrix(self) -> np.ndarray:
        """P(correct on KC j) after a single correct answer on KC i (as for DKT).

        Returns:
            ``[K, K]`` array, row i = the observed KC, column j = the predicted KC.
        """
        self._require_fitted()
        net, state = self.params
        K = len(self._fitted_vocab.skill_id)
        out = []
        for i in range(0, K, 256):
            kcs = np.arange(i, i + 256) % K
            logits = _influence_logits(net, state, jnp.asarray(kcs, jnp.int32), self.config.recent_key == "next")
            out.append(np.asarray(jax.nn.sigmoid(logits))[: min(256, K - i)])
        return np.concatenate(out).astype(np.float64)
