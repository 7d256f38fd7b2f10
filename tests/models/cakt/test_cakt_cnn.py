"""CAKT's chunked 3D-CNN against the literal layer (3D convolution, whole-batch statistics, autodiff)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kt.models.cakt import net as cnn


def conv3d(x, w):
    # [M, H, W, k, C] volumes through lax's own 3D convolution.
    y = jax.lax.conv_general_dilated(
        jnp.transpose(x, (0, 3, 1, 2, 4)), w, (1, 1, 1), "SAME", dimension_numbers=("NDHWC", "DHWIO", "NDHWC")
    )
    return jnp.transpose(y, (0, 2, 3, 1, 4))


def norm_ref(p, st, x, w, train, kind):
    if kind == "group":
        mu = x.mean(axis=(1, 2, 3, 4), keepdims=True)
        var = x.var(axis=(1, 2, 3, 4), keepdims=True)
        return (x - mu) / jnp.sqrt(var + cnn.BN_EPS) * p.scale + p.shift, st
    if train:
        cnt = (w[:, None, None, None, None] * jnp.ones_like(x[..., :1])).sum()
        mean = (x * w[:, None, None, None, None]).sum(axis=(0, 1, 2, 3)) / cnt
        var = (((x - mean) ** 2) * w[:, None, None, None, None]).sum(axis=(0, 1, 2, 3)) / cnt
        new = (0.9 * st[0] + 0.1 * mean, 0.9 * st[1] + 0.1 * var * cnt / (cnt - 1))
    else:
        (mean, var), new = st, st
    return (x - mean) / jnp.sqrt(var + cnn.BN_EPS) * p.scale + p.shift, new


def block_ref(p, st, x, w, train, kind):
    y, s1 = norm_ref(p.n1, st[0], conv3d(x, p.conv1), w, train, kind)
    y, s2 = norm_ref(p.n2, st[1], conv3d(jax.nn.relu(y), p.conv2), w, train, kind)
    pooled = y.mean(axis=(1, 2))  # [M, k, C]
    se = jax.nn.sigmoid(jnp.einsum("hk,mkc->mhc", p.se1, pooled).clip(0).transpose(0, 2, 1) @ p.se2.T)  # [M, C, k]
    y = y * jnp.transpose(se, (0, 2, 1))[:, None, None]
    if p.proj is None:
        r, s3 = x, st[2]
    else:
        r, s3 = norm_ref(p.np_, st[2], jnp.einsum("mhwkc,cd->mhwkd", x, p.proj), w, train, kind)
    return jax.nn.relu(y + r), (s1, s2, s3), se


def random_block(ci, co, k, seed):
    p = cnn.Block.init(jax.random.key(seed), ci, co, k)
    # non-trivial affine parameters and running statistics
    keys = jax.random.split(jax.random.key(seed + 100), 6)
    n1 = cnn.Norm(1 + 0.1 * jax.random.normal(keys[0], (co,)), 0.1 * jax.random.normal(keys[1], (co,)))
    n2 = cnn.Norm(1 + 0.1 * jax.random.normal(keys[2], (co,)), 0.1 * jax.random.normal(keys[3], (co,)))
    p = cnn.Block(p.conv1, p.conv2, n1, n2, p.se1, p.se2, p.proj, p.np_)
    st = cnn.block_state(p)
    st = jax.tree.map(lambda a: a + 0.2 * jax.random.uniform(keys[4], a.shape), st)
    return p, st


@pytest.mark.parametrize(
    "ci,co,M,train,kind",
    [
        (1, 4, 37, True, "batch"),
        pytest.param(4, 4, 70, True, "batch", marks=pytest.mark.slow),
        pytest.param(3, 2, 5, False, "batch", marks=pytest.mark.slow),
        (4, 1, 33, True, "group"),
    ],
)
def test_block_equals_the_literal_layer_with_gradients(ci, co, M, train, kind):
    k, H = 4, 6
    p, st = random_block(ci, co, k, seed=ci * 10 + co)
    x = jax.random.normal(jax.random.key(M), (M, H, H, k, ci))
    # padding (weight 0) and repeated rows (weight 3) among real positions
    w = jnp.asarray(np.random.default_rng(M).choice([0.0, 1.0, 1.0, 3.0], M), jnp.float32)
    out, new, se = cnn.block_apply(p, st, x, w, train, kind)
    ref, new_ref, se_ref = block_ref(p, st, x, w, train, kind)
    np.testing.assert_allclose(out, ref, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(se, se_ref, rtol=1e-4, atol=1e-6)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(new_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)

    proj = jax.random.normal(jax.random.key(7), out.shape)

    def loss(f, p, x):
        y, new, se = f(p, st, x, w, train, kind)
        return (y * proj).sum() + se.sum() + sum(a.sum() for a in jax.tree.leaves(new))

    g = jax.grad(lambda p, x: loss(cnn.block_apply, p, x), argnums=(0, 1))(p, x)
    g_ref = jax.grad(lambda p, x: loss(block_ref, p, x), argnums=(0, 1))(p, x)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * float(jnp.abs(b).max() + 1))


def test_chunk_convolution_and_its_gradients_equal_lax():
    x = jax.random.normal(jax.random.key(0), (45, 7, 5, 6))
    w = jax.random.normal(jax.random.key(1), (3, 3, 6, 4))
    lax = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))  # noqa: E731
    np.testing.assert_allclose(cnn.conv2d_chunk(x, w), lax(x, w), rtol=1e-5, atol=1e-5)
    t = jax.random.normal(jax.random.key(2), (45, 7, 5, 4))
    g = jax.grad(lambda x, w: (cnn.conv2d_chunk(x, w) * t).sum(), argnums=(0, 1))(x, w)
    g_ref = jax.grad(lambda x, w: (lax(x, w) * t).sum(), argnums=(0, 1))(x, w)
    for a, b in zip(g, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_folded_convolution_equals_a_3d_convolution():
    x = jax.random.normal(jax.random.key(0), (2, 5, 6, 4, 3))  # [M, H, W, k, C]
    w = jax.random.normal(jax.random.key(1), (3, 3, 3, 3, 2))  # [d, h, w, in, out]
    np.testing.assert_allclose(cnn.conv3(x, w), conv3d(x, w), atol=1e-4)


def test_zero_weight_rows_do_not_move_the_statistics():
    p, st = random_block(1, 4, 4, seed=3)
    x = jax.random.normal(jax.random.key(0), (40, 5, 5, 4, 1))
    w = jnp.ones(40).at[30:].set(0.0)
    out, new, _ = cnn.block_apply(p, st, x, w, True, "batch")
    x2 = x.at[30:].set(100.0)  # garbage in the padding
    out2, new2, _ = cnn.block_apply(p, st, x2, w, True, "batch")
    np.testing.assert_allclose(out[:30], out2[:30], rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(new2)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
