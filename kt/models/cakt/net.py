"""CAKT's 3D-CNN branch: residual squeeze-excitation blocks over [k, 15, 15] volumes (shared/spec/CAKT.md).

Each block is conv-norm-ReLU-conv-norm, a squeeze-excitation over the k
frames, and a (projected) shortcut. The maths is the spec's; what this
module adds is a way of computing it that is fast and small on a CPU:

- a 3x3x3 convolution over [k, 15, 15] is a 3x3 2D convolution with the k
  frames folded into the channels (a block-banded kernel, :func:`fold_kernel`);
- the volumes are processed in chunks of :data:`CHUNK` positions that stay
  in cache (``lax.scan``). Batch statistics couple all positions, so a block
  runs in three stages split at its two normalisations: each stage is a
  chunked scan, the statistics are reductions over the whole stage output
  between them, and each chunk body is rematerialised, so autodiff keeps
  only the stage outputs (not every intermediate of every chunk);
- the convolution's gradients are computed by hand (:func:`conv2d_chunk`):
  XLA's kernel gradient of a convolution over thousands of tiny frames is a
  generic, very slow convolution on CPU; nine small matmuls per chunk are
  about 20x faster;
- positions carry weights instead of a mask: a weight is how many
  positions a row stands for in the batch statistics (0: padding, which is
  normalised but does not count; n: one row computed once for n identical
  volumes, see :func:`kt.models.cakt.compact_positions`).

Tests compare every stage with the literal layer (a 3D convolution and
whole-batch statistics, autodiff gradients): tests/models/cakt/test_cakt_cnn.py.
"""

from __future__ import annotations

import math
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

BN_MOMENTUM, BN_EPS = 0.1, 1e-5  # PyTorch defaults
# Positions per chunk: 32 volumes of [15, 15, 4 * 8] activations are 3.7 MB.
CHUNK = 32
_DN = ("NHWC", "HWIO", "NHWC")


def fold_kernel(w: Float[Array, "3 3 3 ci co"], k: int) -> Float[Array, "3 3 kci kco"]:
    """A 3x3x3 (depth, height, width) kernel as a 3x3 kernel over k folded frames.

    conv3d with padding 1 computes y[d] = sum_dd w[dd] x[d + dd - 1]; folding
    depth into channels (frame-major) gives a block-banded 2D kernel, so the
    same convolution runs as a 2D one over [15, 15, k * C].

    Args:
        w: the 3D kernel.
        k: frames per volume.

    Returns:
        The 2D kernel ``[3, 3, k * ci, k * co]``.
    """
    shift = np.zeros((3, k, k), np.float32)  # shift[dd, d_in, d_out]
    for dd in range(3):
        for d_out in range(k):
            d_in = d_out + dd - 1
            if 0 <= d_in < k:
                shift[dd, d_in, d_out] = 1.0
    ci, co = w.shape[3], w.shape[4]
    w2 = jnp.einsum("zab,zxyio->xyaibo", jnp.asarray(shift, w.dtype), w)
    return w2.reshape(3, 3, k * ci, k * co)


def _conv2d(x: Float[Array, "M H W ci"], w: Float[Array, "3 3 ci co"]) -> Float[Array, "M H W co"]:
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=_DN)


def _kernel_grad(x: Float[Array, "M H W ci"], g: Float[Array, "M H W co"]) -> Float[Array, "3 3 ci co"]:
    # d(sum g * conv(x, w)) / dw: for each of the 9 taps, the shifted x against g.
    H, W, ci, co = x.shape[1], x.shape[2], x.shape[3], g.shape[3]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    g2 = g.reshape(-1, co)
    return jnp.stack([xp[:, a : a + H, b : b + W].reshape(-1, ci).T @ g2 for a in range(3) for b in range(3)]).reshape(
        3, 3, ci, co
    )


@jax.custom_vjp
def conv2d_chunk(x: Float[Array, "M H W ci"], w: Float[Array, "3 3 ci co"]) -> Float[Array, "M H W co"]:
    """3x3 convolution, stride 1, zero padding 1, NHWC, with hand-written gradients (for chunk-sized M).

    Args:
        x: input frames.
        w: kernel.

    Returns:
        ``lax.conv_general_dilated(x, w, (1, 1), "SAME")``.
    """
    return _conv2d(x, w)


def _conv_fwd(x, w):
    return _conv2d(x, w), (x, w)


def _conv_bwd(res, g):
    x, w = res
    # The input gradient is the correlation of g with the flipped, transposed kernel.
    return _conv2d(g, jnp.flip(w, (0, 1)).swapaxes(2, 3)), _kernel_grad(x, g)


conv2d_chunk.defvjp(_conv_fwd, _conv_bwd)


def conv3(x: Float[Array, "M H W k ci"], w: Float[Array, "3 3 3 ci co"]) -> Float[Array, "M H W k co"]:
    """3x3x3 convolution over (k, H, W), stride 1, zero padding 1, no bias.

    Args:
        x: volumes, frames on the fourth axis.
        w: ``[depth, height, width, in, out]`` kernel.

    Returns:
        The convolved volumes.
    """
    M, H, W, k, ci = x.shape
    y = conv2d_chunk(x.reshape(M, H, W, k * ci), fold_kernel(w, k))
    return y.reshape(M, H, W, k, w.shape[-1])


class Norm(eqx.Module):
    """Affine parameters of one normalisation layer."""

    scale: Float[Array, " C"]
    shift: Float[Array, " C"]


class Block(eqx.Module):
    """Residual block: conv-norm-ReLU-conv-norm, squeeze-excitation over k, shortcut."""

    conv1: Float[Array, "3 3 3 ci co"]
    conv2: Float[Array, "3 3 3 co co"]
    n1: Norm
    n2: Norm
    se1: Float[Array, "kh k"]
    se2: Float[Array, "k kh"]
    proj: Float[Array, "ci co"] | None
    np_: Norm | None

    @staticmethod
    def init(key, ci: int, co: int, k: int) -> "Block":
        """Kaiming-normal (fan_out, ReLU) convolutions, PyTorch-default SE linears.

        Args:
            key: PRNG key.
            ci: input channels.
            co: output channels.
            k: frames per volume.

        Returns:
            The block's parameters.
        """
        k1, k2, k3, k4, k5 = jax.random.split(key, 5)
        conv = lambda kk, a, b: jax.random.normal(kk, (3, 3, 3, a, b)) * math.sqrt(2 / (27 * b))  # noqa: E731
        norm = lambda c: Norm(jnp.ones((c,)), jnp.zeros((c,)))  # noqa: E731
        kh = k // 2
        return Block(
            conv1=conv(k1, ci, co),
            conv2=conv(k2, co, co),
            n1=norm(co),
            n2=norm(co),
            se1=jax.random.uniform(k3, (kh, k), minval=-1 / math.sqrt(k), maxval=1 / math.sqrt(k)),
            se2=jax.random.uniform(k4, (k, kh), minval=-1 / math.sqrt(kh), maxval=1 / math.sqrt(kh)),
            proj=None if ci == co else jax.random.normal(k5, (ci, co)) * math.sqrt(2 / co),
            np_=None if ci == co else norm(co),
        )


def block_state(block: Block):
    """Zero-mean, unit-variance running statistics for a block's norms.

    Args:
        block: the block's parameters.

    Returns:
        ``(n1, n2, projection)`` running ``(mean, var)`` pairs (the last is
        ``None`` without a projection).
    """
    co = block.n1.scale.shape[0]
    one = (jnp.zeros((co,)), jnp.ones((co,)))
    return (one, one, one if block.proj is not None else None)


def batch_stats(x: Float[Array, "M H W k C"], w: Float[Array, " M"]) -> tuple[Float[Array, " C"], Float[Array, " C"], Array]:
    """Weighted per-channel mean and (biased) variance over positions, frames and pixels.

    Args:
        x: activations.
        w: weight of each position (0: not counted).

    Returns:
        ``(mean, var, count)``.
    """
    ww = w.astype(x.dtype)[:, None, None, None, None]
    cnt = jnp.maximum(w.sum().astype(x.dtype) * (x.shape[1] * x.shape[2] * x.shape[3]), 1.0)
    mean = (x * ww).sum(axis=(0, 1, 2, 3)) / cnt
    var = (((x - mean) ** 2) * ww).sum(axis=(0, 1, 2, 3)) / cnt
    return mean, var, cnt


def running_update(st, mean, var, cnt):
    """PyTorch's running-statistics update (momentum 0.1, unbiased variance).

    Args:
        st: ``(running_mean, running_var)``.
        mean: batch mean.
        var: biased batch variance.
        cnt: values per channel behind them.

    Returns:
        The new ``(running_mean, running_var)``.
    """
    unbiased = var * cnt / jnp.maximum(cnt - 1, 1.0)
    return ((1 - BN_MOMENTUM) * st[0] + BN_MOMENTUM * mean, (1 - BN_MOMENTUM) * st[1] + BN_MOMENTUM * unbiased)


def _apply_norm(p: Norm, stats, x: Float[Array, "m H W k C"], kind: str) -> Float[Array, "m H W k C"]:
    # stats: (mean, var) for batch norm; ignored for group norm (per position).
    if kind == "group":
        mu = x.mean(axis=(1, 2, 3, 4), keepdims=True)
        var = ((x - mu) ** 2).mean(axis=(1, 2, 3, 4), keepdims=True)
        return (x - mu) * jax.lax.rsqrt(var + BN_EPS) * p.scale + p.shift
    mean, var = stats
    return (x - mean) * jax.lax.rsqrt(var + BN_EPS) * p.scale + p.shift


def _chunk(x: Array) -> Array:
    pad = (-x.shape[0]) % CHUNK
    x = jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1))
    return x.reshape(-1, CHUNK, *x.shape[1:])


def chunked(f, *xs: Array, remat: bool = True):
    """``f`` applied to chunks of :data:`CHUNK` positions of ``xs`` (rematerialised per chunk), outputs rejoined.

    Args:
        f: per-chunk function of arrays whose first axis is positions,
            returning an array or a tuple of them (first axis positions).
        xs: the arrays, all with the same first axis M.
        remat: rematerialise each chunk in the backward pass (autodiff then
            keeps only the inputs, not the chunk's intermediates).

    Returns:
        ``f``'s outputs for all M positions.
    """
    M = xs[0].shape[0]
    body = jax.checkpoint(f) if remat else f
    _, ys = jax.lax.scan(lambda carry, c: (carry, body(*c)), None, tuple(_chunk(x) for x in xs))
    return jax.tree.map(lambda y: y.reshape(-1, *y.shape[2:])[:M], ys)


def block_apply(p: Block, st, x: Float[Array, "M H W k ci"], w: Float[Array, " M"], train: bool, kind: str):
    """One residual block on M volumes.

    Args:
        p: the block's parameters.
        st: its running statistics (:func:`block_state`).
        x: input volumes.
        w: weight of each position in the batch statistics (0 for padding).
        train: batch statistics and a running-statistics update; else the
            running statistics.
        kind: ``batch`` or ``group`` normalisation.

    Returns:
        ``(output, new state, SE weights [M, C, k])``.
    """

    def stats(y, s):
        # (statistics to normalise y with, new running state)
        if kind == "group":
            return None, s
        if not train:
            return s, s
        mean, var, cnt = batch_stats(y, w)
        return (mean, var), running_update(s, mean, var, cnt)

    # The statistics are whole-array reductions over the stage outputs, not
    # part of the stage bodies: a body's backward then never needs its
    # convolution's output, so rematerialisation does not recompute it
    # (measured: 15-35% faster than statistics inside the chunks).
    def head(xc):
        return conv3(xc, p.conv1), (xc if p.proj is None else xc @ p.proj)

    a, res = chunked(head, x)
    s1, new1 = stats(a, st[0])
    sp, new3 = (None, st[2]) if p.proj is None else stats(res, st[2])

    # Statistics and parameters enter the chunk bodies as closed-over values (scan constants).
    b = chunked(lambda ac: conv3(jax.nn.relu(_apply_norm(p.n1, s1, ac, kind)), p.conv2), a)
    s2, new2 = stats(b, st[1])

    def tail(bc, rc):
        y = _apply_norm(p.n2, s2, bc, kind)
        pooled = jnp.swapaxes(y.mean(axis=(1, 2)), 1, 2)  # [m, C, k]
        se = jax.nn.sigmoid(jax.nn.relu(pooled @ p.se1.T) @ p.se2.T)  # excitation over the k frames
        y = y * jnp.swapaxes(se, 1, 2)[:, None, None]
        r = rc if p.np_ is None else _apply_norm(p.np_, sp, rc, kind)
        return jax.nn.relu(y + r), se

    out, se = chunked(tail, b, res)
    return out, (new1, new2, new3), se
