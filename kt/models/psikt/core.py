"""PSI-KT's pure JAX pieces: links, graph, OU transition, networks, ELBO, propagation.

Everything here is a pure function of (parameters, arrays); the model class
in :mod:`kt.models.psikt.model` only moves data in and out. Equations follow
``shared/spec/PSIKT.md`` (implemented from the equations, not ported code):

* traits: alpha = softplus(s0) + 1e-6 (or relu(s0) + 1e-6), mu = s1, sigma = s2,
  gamma = sigmoid(s3); s_0 ~ N(m_s0, exp l_s0), s_n ~ N(H s_{n-1}, exp l_R)
* graph: p_ik = sig(u_i.u_k) sig(u_i^T (M - M^T) u_k), p_kk = 0, and A = p
* knowledge: r = exp(-alpha dt), target_k = mu + gamma / K sum_i A_ik z_i,
  z_n ~ N(r z + (1 - r) target, sigma^2 (1 - r^2) / (2 alpha) + 1e-6)
* emission: P(y = 1) = sigmoid(z at the practised KC)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from kt.models.nn import lstm_update
from kt.models.seeds import seed_of

VAR_FLOOR = 1e-6  # added to the OU transition variance
DT_EPS = 1e-6  # added to every time gap (days)
STD_FLOOR = 1e-5  # added to softplus standard deviations
ALPHA_FLOOR = 1e-6
# Initial raw traits (prior mean m_s0 and the q(s) mean head's bias): alpha = 0.5 / day,
# mu = 0, sigma = 1, gamma = 0.5. With sigma near 0 the OU variance starts at its 1e-6
# floor and training collapses onto constant knowledge states (see the model docs).
TRAIT_INIT = (math.log(math.expm1(0.5)), 0.0, 1.0, 0.0)  # added to alpha under both links (official: relu(s) + 1e-6)
LOG_2PI_E = math.log(2 * math.pi * math.e)
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class Hyper:
    """Static settings of the pure functions (hashable: part of the jit key).

    Attributes:
        n_kc: K.
        n_traits: 4 with the graph, 3 without (gamma dropped).
        mc: Monte-Carlo samples of q(s), q(z) in the ELBO.
        graph_samples: 0 = expected graph A = p; S > 0 = average of S
            straight-through hard Gumbel-softmax graph samples.
        graph_category: ``kt`` (A = p) or ``official`` (A = 1 - p off the
            diagonal, the official code's category; parity runs only).
        alpha_link: ``softplus`` or ``relu`` (relu(s) + 1e-6).
        w_s, w_z, w_y: ELBO weights of the trait prior, knowledge prior and
            emission terms.
        w_0: weight of the n = 0 terms.
        lambda_s, lambda_z: entropy weights.
        w_c: weight of KL(q(c) || Uniform(C)).
        accumulate_variance: prediction carries the z variance forward
            (:func:`z_moments`) instead of using the one-step Q.
        objective: ``official`` (the weighted objective below) or ``elbo``
            (per real step: w_s log p~(s) + w_z log p~(z) + w_y log p(y)
            + lambda_s H[q(s)] + lambda_z H[q(z)], averaged over all real
            steps, the n = 0 steps times w_0; with all weights 1 this is
            the ELBO per step).
        propagate_z_var: p~(z_n) has the variance of the propagated q(z_{n-1})
            (r^2 v + ((1 - r) gamma / K)^2 v A^2 + Q, as p~(s_n) carries
            H P H^T) instead of the transition variance Q alone (official).
        analytic: score the two prior terms by their closed-form expectation
            under q (no sampling noise; the same objective in expectation)
            instead of at reparameterised samples (official).
    """

    n_kc: int
    n_traits: int = 4
    mc: int = 10
    graph_samples: int = 0
    graph_category: str = "kt"
    alpha_link: str = "softplus"
    w_s: float = 1.0
    w_z: float = 1.0
    w_y: float = 1.0
    w_0: float = 1e-4
    lambda_s: float = 0.1
    lambda_z: float = 0.1
    w_c: float = 10.0
    accumulate_variance: bool = False
    analytic: bool = False
    objective: str = "official"
    propagate_z_var: bool = False

    @property
    def use_graph(self) -> bool:
        return self.n_traits == 4


# --- links, graph, OU ---------------------------------------------------------------------------


class Traits(NamedTuple):
    """Trait values (any leading shape)."""

    alpha: Array
    mu: Array
    sigma: Array
    gamma: Array


def traits(s: Float[Array, "... S"], hyper: Hyper) -> Traits:
    """Raw traits s -> (alpha > 0, mu, sigma, gamma in (0, 1)); gamma = 0 without a graph."""
    # + 1e-6 on both links: softplus underflows to 0 in float32, and alpha divides the OU variance
    a = (jax.nn.softplus(s[..., 0]) if hyper.alpha_link == "softplus" else jax.nn.relu(s[..., 0])) + ALPHA_FLOOR
    g = jax.nn.sigmoid(s[..., 3]) if hyper.use_graph else jnp.zeros_like(s[..., 0])
    return Traits(a, s[..., 1], s[..., 2], g)


def graph_factors(u: Float[Array, "K D"], M: Float[Array, "D D"], bias: float = 0.0) -> tuple[Array, Array]:
    """(existence sig(u_i.u_k + bias), orientation sig(u_i^T (M - M^T) u_k)), both K x K.

    ``bias`` (0 in the spec) offsets the existence logit: a negative value
    starts the graph sparse (see ``PsiKTConfig.edge_bias``).
    """
    exist = jax.nn.sigmoid(u @ u.T + bias)
    orient = jax.nn.sigmoid(u @ (M - M.T) @ u.T)
    return exist, orient


def graph_probs(u: Float[Array, "K D"], M: Float[Array, "D D"], bias: float = 0.0) -> Float[Array, "K K"]:
    """p_ik = P(edge i -> k) with a zero diagonal; p_ik + p_ki = sig(u_i.u_k + bias) <= 1."""
    exist, orient = graph_factors(u, M, bias)
    K = u.shape[0]
    return exist * orient * (1.0 - jnp.eye(K, dtype=u.dtype))


def dynamics_matrix(p: Float[Array, "K K"], hyper: Hyper) -> Float[Array, "K K"]:
    """The matrix used in the mean shift: A = p (kt) or 1 - p off the diagonal (official)."""
    if hyper.graph_category == "official":
        K = p.shape[-1]
        return (1.0 - p) * (1.0 - jnp.eye(K, dtype=p.dtype))
    return p


def sample_graphs(key, p: Float[Array, "K K"], n: int) -> Float[Array, "n K K"]:
    """n straight-through hard Gumbel-softmax (tau = 1) samples of the edge category.

    Forward value: 0/1 edges; gradient: that of the soft sample.
    """
    eps = 1e-7
    logits = jnp.stack([jnp.log(p + eps), jnp.log1p(-p + eps)], axis=-1)  # [K, K, 2]: edge, no edge
    g = jax.random.gumbel(key, (n, *logits.shape), logits.dtype)
    soft = jax.nn.softmax(logits + g, axis=-1)[..., 0]
    hard = (soft > 0.5).astype(p.dtype)
    out = hard + soft - jax.lax.stop_gradient(soft)
    return out * (1.0 - jnp.eye(p.shape[0], dtype=p.dtype))


def ou_transition(
    z_prev: Float[Array, "... K"], tr: Traits, A: Float[Array, "K K"], dt: Float[Array, "..."]
) -> tuple[Float[Array, "... K"], Float[Array, "..."], Float[Array, "..."]]:
    """OU map with the structural mean shift.

    Args:
        z_prev: previous knowledge (all K KCs).
        tr: traits, shaped like ``dt``.
        A: dynamics matrix (A[i, k] = edge i -> k).
        dt: time gap in days (``DT_EPS`` is added here).

    Returns:
        (mean [..., K], variance [...] (same for every KC), r = exp(-alpha dt)).
    """
    K = z_prev.shape[-1]
    r = jnp.exp(-tr.alpha * (dt + DT_EPS))
    target = tr.mu[..., None] + tr.gamma[..., None] / K * (z_prev @ A)
    mean = r[..., None] * z_prev + (1.0 - r[..., None]) * target
    var = tr.sigma**2 * (1.0 - r**2) / (2.0 * tr.alpha) + VAR_FLOOR
    return mean, var, r


def z_moments(z_mean, z_var, tr: Traits, A, dt, propagate_var: bool):
    """Mean and variance of z_n given q(z_{n-1}) = N(z_mean, diag z_var), per KC.

    Mean: the OU map of the previous mean. Variance: the transition
    variance Q alone, or with ``propagate_var`` the moments of
    r z + (1 - r) gamma / K A^T z under q(z_{n-1}) plus Q.

    Returns:
        (mean [..., K], var [..., K], r [...]).
    """
    mean, q, r = ou_transition(z_mean, tr, A, dt)
    if not propagate_var:
        return mean, jnp.broadcast_to(q[..., None], mean.shape), r
    c = ((1.0 - r) * tr.gamma / z_mean.shape[-1])[..., None]
    return mean, (r**2)[..., None] * z_var + c**2 * (z_var @ (A**2)) + q[..., None], r


def positional_encoding(tau: Float[Array, "..."], dim: int) -> Float[Array, "... D"]:
    """Sinusoidal encoding of tau (days since the sequence start)."""
    i = jnp.arange(dim // 2, dtype=jnp.float32)
    freq = jnp.exp(-math.log(10000.0) * 2.0 * i / dim)
    ang = tau[..., None] * freq
    pe = jnp.stack([jnp.sin(ang), jnp.cos(ang)], axis=-1).reshape(*tau.shape, 2 * (dim // 2))
    if dim % 2:
        pe = jnp.concatenate([pe, jnp.zeros((*tau.shape, 1), pe.dtype)], axis=-1)
    return pe


# --- networks -----------------------------------------------------------------------------------


class Dense(eqx.Module):
    """y = x W^T + b over any leading dimensions (PyTorch-style uniform init)."""

    weight: Float[Array, "O I"]
    bias: Float[Array, " O"]

    @staticmethod
    def init(rng: np.random.Generator, n_in: int, n_out: int) -> "Dense":
        s = 1.0 / math.sqrt(n_in)
        w = rng.uniform(-s, s, (n_out, n_in)).astype(np.float32)
        b = rng.uniform(-s, s, (n_out,)).astype(np.float32)
        return Dense(jnp.asarray(w), jnp.asarray(b))

    def __call__(self, x: Array) -> Array:
        return x @ self.weight.T + self.bias


class LSTMWeights(eqx.Module):
    """Weights of one LSTM direction."""

    w_ih: Float[Array, "4H D"]
    w_hh: Float[Array, "4H H"]
    b: Float[Array, " 4H"]


def _leaky(x):
    return jax.nn.leaky_relu(x, 0.2)


class Net(eqx.Module):
    """All parameters: generative (graph, trait prior, initial state) and inference networks."""

    # generative
    u: Float[Array, "K D"]
    M: Float[Array, "D D"]
    m_s0: Float[Array, " S"]
    log_s0: Float[Array, " S"]
    H: Float[Array, "S S"]
    log_R: Float[Array, " S"]
    m_z0: Float[Array, ""]
    log_z0: Float[Array, ""]
    # inference: step embedding
    emb1: Dense
    emb2: Dense
    # q(z): LSTM D -> 2D (plus a backward LSTM when bidirectional), two hidden layers, mean and std heads
    w_ih: Float[Array, "4H D"]
    w_hh: Float[Array, "4H H"]
    b_lstm: Float[Array, " 4H"]
    bwd: "LSTMWeights | None"
    zh1: Dense
    zh2: Dense
    z_mu: Dense
    z_sd: Dense
    # q(c): masked pooling of g(e) then two layers to C logits
    pool_g: Dense
    pool1: Dense
    pool2: Dense
    # q(s): per step from (e_n, c)
    sh1: Dense
    sh2: Dense
    s_mu: Dense
    s_sd: Dense
    pooled_traits: bool = eqx.field(static=True, default=False)

    @staticmethod
    def init(
        seed,
        n_kc: int,
        n_traits: int,
        dim: int = 16,
        n_cat: int = 10,
        hidden: int = 64,
        bidirectional: bool = False,
        pooled_traits: bool = False,
        graph_init_std: float = 1.0,
    ) -> "Net":
        """Initialise (u, M ~ N(0, 1); H = I; l_s0 = l_R = log 0.05; traits at ``TRAIT_INIT``).

        Args:
            seed: int or JAX key; NumPy draws the values (eager JAX random
                calls would compile one program per shape).
            bidirectional: add the backward LSTM of the smoothing encoder.
            pooled_traits: q(s) also reads the pooled learner summary itself,
                not only the category c drawn from it.
            graph_init_std: standard deviation of the initial u and M
                (official 1: with D = 16 most p_ik start saturated at 0 or 1).
        """
        rng = np.random.default_rng(seed_of(seed))
        D, S, Hd = dim, n_traits, 2 * dim
        s = 1.0 / math.sqrt(Hd)

        def unif(shape: tuple[int, ...]) -> Array:
            return jnp.asarray(rng.uniform(-s, s, shape).astype(np.float32))

        s_init = np.asarray(TRAIT_INIT[:S], np.float32)
        u = jnp.asarray((graph_init_std * rng.normal(size=(n_kc, D))).astype(np.float32))
        M = jnp.asarray((graph_init_std * rng.normal(size=(D, D))).astype(np.float32))
        emb1, emb2 = Dense.init(rng, 2 * D, D), Dense.init(rng, D, D)
        w_ih, w_hh = unif((4 * Hd, D)), unif((4 * Hd, Hd))
        b_lstm = unif((4 * Hd,)) + unif((4 * Hd,))
        s_mu = Dense.init(rng, D, S)
        bwd = LSTMWeights(unif((4 * Hd, D)), unif((4 * Hd, Hd)), unif((4 * Hd,)) + unif((4 * Hd,))) if bidirectional else None
        return Net(
            u=u,
            M=M,
            m_s0=jnp.asarray(s_init),
            log_s0=jnp.full((S,), math.log(0.05), jnp.float32),
            H=jnp.eye(S, dtype=jnp.float32),
            log_R=jnp.full((S,), math.log(0.05), jnp.float32),
            m_z0=jnp.zeros((), jnp.float32),
            log_z0=jnp.zeros((), jnp.float32),
            emb1=emb1,
            emb2=emb2,
            w_ih=w_ih,
            w_hh=w_hh,
            b_lstm=b_lstm,
            bwd=bwd,
            zh1=Dense.init(rng, 2 * Hd if bidirectional else Hd, D),
            zh2=Dense.init(rng, D, D),
            z_mu=Dense.init(rng, D, n_kc),
            z_sd=Dense.init(rng, D, n_kc),
            pool_g=Dense.init(rng, D, hidden),
            pool1=Dense.init(rng, hidden, hidden),
            pool2=Dense.init(rng, hidden, n_cat),
            sh1=Dense.init(rng, D + n_cat + (hidden if pooled_traits else 0), hidden),
            sh2=Dense.init(rng, hidden, D),
            s_mu=Dense(s_mu.weight, s_mu.bias + jnp.asarray(s_init)),
            s_sd=Dense.init(rng, D, S),
            pooled_traits=pooled_traits,
        )

    @property
    def n_cat(self) -> int:
        return self.pool2.weight.shape[0]


class Batch(NamedTuple):
    """One padded batch (B sequences x T steps).

    Attributes:
        skill: KC index (0 where unknown or padding; see ``known``).
        correct: 0/1 outcome.
        dt: days since the previous step of the sequence (0 at step 0).
        tau: days since the sequence's first step.
        mask: real steps (a prefix of every row).
        known: real steps whose KC is in the vocabulary.
    """

    skill: Int[Array, "B T"]
    correct: Int[Array, "B T"]
    dt: Float[Array, "B T"]
    tau: Float[Array, "B T"]
    mask: Bool[Array, "B T"]
    known: Bool[Array, "B T"]


def embed_steps(net: Net, skill, known, correct, tau) -> Float[Array, "... D"]:
    """e_n = MLP([u_{k_n} ; y_n 1_D + PE(tau_n)]) (u = 0 for an unknown KC)."""
    D = net.u.shape[1]
    uk = net.u[skill] * known[..., None]
    obs = correct[..., None].astype(jnp.float32) + positional_encoding(tau, D)
    return net.emb2(_leaky(net.emb1(jnp.concatenate([uk, obs], axis=-1))))


def lstm_cell(net: Net, carry, x):
    """One step of the forward (causal) LSTM; carry = (h, c)."""
    return _cell(net.w_ih, net.w_hh, net.b_lstm, carry, x)


def backward_at_end(net: Net, e: Array) -> Array:
    """Backward-LSTM output at the last step of a prefix: one step from a zero state."""
    bwd = net.bwd
    if bwd is None:
        raise ValueError("backward_at_end: the net has no backward LSTM (bidirectional=False)")
    zeros = jnp.zeros((*e.shape[:-1], bwd.w_hh.shape[1]), e.dtype)
    return _cell(bwd.w_ih, bwd.w_hh, bwd.b, (zeros, zeros), e)[0]


def z_input(net: Net, h_fwd: Array, e: Array) -> Array:
    """What the q(z) head reads at the end of a prefix (forward state, plus the backward one if any)."""
    return h_fwd if net.bwd is None else jnp.concatenate([h_fwd, backward_at_end(net, e)], axis=-1)


def _cell(w_ih, w_hh, b, carry, x):
    h, c = carry
    return lstm_update(x @ w_ih.T + h @ w_hh.T + b, c)


def z_head(net: Net, h) -> tuple[Array, Array]:
    x = _leaky(net.zh2(_leaky(net.zh1(h))))
    return net.z_mu(x), jax.nn.softplus(net.z_sd(x)) + STD_FLOOR


def c_logits(net: Net, pooled) -> Array:
    return net.pool2(_leaky(net.pool1(pooled)))


def s_head(net: Net, e, c, pooled) -> tuple[Array, Array]:
    parts = [e, c, pooled] if net.pooled_traits else [e, c]
    x = jax.nn.relu(net.sh2(jax.nn.relu(net.sh1(jnp.concatenate(parts, axis=-1)))))
    return net.s_mu(x), jax.nn.softplus(net.s_sd(x)) + STD_FLOOR


class Posterior(NamedTuple):
    """Per-step posterior parameters of one batch (plus what a continual update needs)."""

    z_mean: Float[Array, "B T K"]
    z_std: Float[Array, "B T K"]
    s_mean: Float[Array, "B T S"]
    s_std: Float[Array, "B T S"]
    c_logits: Float[Array, "B T C"]
    h: Float[Array, "B T H"]
    c: Float[Array, "B T H"]
    pool_sum: Float[Array, "B T P"]


def encode(net: Net, batch: Batch, gumbel: Float[Array, "B C"] | None = None) -> Posterior:
    """Amortised posteriors q(z_n), q(s_n) for every step.

    With ``gumbel`` (training), q(c) pools the whole (masked) sequence and c
    is a soft Gumbel-softmax sample (tau = 1); without it (prediction), step n
    pools steps <= n and c = softmax(logits).

    q(z_n) reads the causal LSTM state after step n. A bidirectional net
    also reads a backward LSTM: in training over the whole window (a
    smoothing posterior, like q(c)); in prediction its state at the end
    of the prefix <= n, i.e. one step from zero, so step n never sees later
    steps.
    """
    e = embed_steps(net, batch.skill, batch.known, batch.correct, batch.tau)  # [B, T, D]
    B = e.shape[0]
    Hd = net.w_hh.shape[1]
    zeros = jnp.zeros((B, Hd), e.dtype)

    def step(carry, x):
        h, c = lstm_cell(net, carry, x)
        return (h, c), (h, c)

    _, (hs, cs) = jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(e, 0, 1))
    hs, cs = jnp.swapaxes(hs, 0, 1), jnp.swapaxes(cs, 0, 1)
    if net.bwd is not None and gumbel is not None:

        def bstep(carry, inp):
            x, keep = inp
            h, c = _cell(net.bwd.w_ih, net.bwd.w_hh, net.bwd.b, carry, x)
            h, c = jnp.where(keep[:, None], h, 0.0), jnp.where(keep[:, None], c, 0.0)  # padding keeps a zero state
            return (h, c), h

        zb = jnp.zeros((B, net.bwd.w_hh.shape[1]), e.dtype)
        _, hb = jax.lax.scan(bstep, (zb, zb), (jnp.swapaxes(e, 0, 1), batch.mask.T), reverse=True)
        zm, zs = z_head(net, jnp.concatenate([hs, jnp.swapaxes(hb, 0, 1)], axis=-1))
    else:
        zm, zs = z_head(net, z_input(net, hs, e))
    m = batch.mask.astype(e.dtype)[..., None]
    g = _leaky(net.pool_g(e)) * m
    csum = jnp.cumsum(g, axis=1)
    if gumbel is not None:
        pooled = g.sum(axis=1) / jnp.maximum(m.sum(axis=1), 1.0)  # [B, P]
        logits = c_logits(net, pooled)
        cvec = jax.nn.softmax(logits + gumbel, axis=-1)
        logits = jnp.broadcast_to(logits[:, None], (*e.shape[:2], logits.shape[-1]))
        cvec = jnp.broadcast_to(cvec[:, None], logits.shape)
        pooled = jnp.broadcast_to(pooled[:, None], g.shape)
    else:
        cnt = jnp.maximum(jnp.cumsum(m, axis=1), 1.0)
        pooled = csum / cnt
        logits = c_logits(net, pooled)
        cvec = jax.nn.softmax(logits, axis=-1)
    sm, ss = s_head(net, e, cvec, pooled)
    return Posterior(zm, zs, sm, ss, logits, hs, cs, csum)


# --- ELBO ---------------------------------------------------------------------------------------


class Noise(NamedTuple):
    """Standard noise of one ELBO evaluation (explicit, so padding can be tested)."""

    z: Float[Array, "N B T K"]
    s: Float[Array, "N B T S"]
    gumbel: Float[Array, "B C"]
    graph_key: Array | None = None


def draw_noise(key, B: int, T: int, hyper: Hyper, n_cat: int) -> Noise:
    """Noise for :func:`elbo`; N = max(mc, graph_samples) samples."""
    kz, ks, kg, ka = jax.random.split(key, 4)
    n = max(hyper.mc, hyper.graph_samples)
    return Noise(
        jax.random.normal(kz, (n, B, T, hyper.n_kc)),
        jax.random.normal(ks, (n, B, T, hyper.n_traits)),
        jax.random.gumbel(kg, (B, n_cat)),
        ka if hyper.graph_samples else None,
    )


def _diag_logpdf(x, mean, var):
    return -0.5 * (LOG_2PI + jnp.log(var) + (x - mean) ** 2 / var)


def trait_prior_cov(net: Net, s_std_prev: Array) -> Array:
    """H diag(std^2) H^T + diag(exp l_R): the propagated trait covariance."""
    P = (net.H * s_std_prev[..., None, :] ** 2) @ net.H.T
    return P + jnp.diag(jnp.exp(net.log_R))


def _cholesky_small(cov: Array) -> list[list[Array]]:
    """Unrolled Cholesky factor of small S x S matrices (S <= 4) as nested lists of [...] arrays.

    Row i holds the lower triangle's entries ``L[i][0..i]``. Elementwise
    operations only: vectorises over any leading shape and compiles far
    faster than batched LAPACK calls.
    """
    S = cov.shape[-1]
    L: list[list[Array]] = [[] for _ in range(S)]
    for i in range(S):
        for j in range(i + 1):
            acc = cov[..., i, j]
            for k in range(j):
                acc = acc - L[i][k] * L[j][k]
            L[i].append(jnp.sqrt(jnp.maximum(acc, 1e-12)) if i == j else acc / L[j][j])
    return L


def _mvn_logpdf(x, mean, cov):
    """log N(x; mean, cov) for small S; cov [..., S, S] broadcasts against x's leading dims."""
    L = _cholesky_small(cov)
    d = x - mean
    S = d.shape[-1]
    sol = []
    maha = 0.0
    logdet = 0.0
    for i in range(S):  # forward substitution L w = d
        acc = d[..., i]
        for k in range(i):
            acc = acc - L[i][k] * sol[k]
        w = acc / L[i][i]
        sol.append(w)
        maha = maha + w**2
        logdet = logdet + 2.0 * jnp.log(L[i][i])
    return -0.5 * (S * LOG_2PI + logdet + maha)


def _diag_expected_logpdf(m, v, mean, var):
    """E_{x ~ N(m, v)} log N(x; mean, var), elementwise."""
    return -0.5 * (LOG_2PI + jnp.log(var) + (v + (m - mean) ** 2) / var)


def _mvn_expected_logpdf(m, v, mean, cov):
    """E_{x ~ N(m, diag v)} log N(x; mean, cov) for small S (unrolled, like :func:`_mvn_logpdf`)."""
    L = _cholesky_small(cov)
    S = m.shape[-1]
    d = m - mean
    maha, logdet, trace = 0.0, 0.0, 0.0
    sol = []
    for i in range(S):
        acc = d[..., i]
        for k in range(i):
            acc = acc - L[i][k] * sol[k]
        sol.append(acc / L[i][i])
        maha = maha + sol[-1] ** 2
        logdet = logdet + 2.0 * jnp.log(L[i][i])
    for j in range(S):  # tr(C^-1 diag v) = sum_j v_j ||L^-1 e_j||^2
        w = [None] * S
        for i in range(j, S):
            acc = (1.0 if i == j else 0.0) - sum((L[i][k] * w[k] for k in range(j, i)), 0.0)
            w[i] = acc / L[i][i]
        trace = trace + v[..., j] * sum(w[i] ** 2 for i in range(j, S))
    return -0.5 * (S * LOG_2PI + logdet + maha + trace)


def _emission_logp(logit, y):
    return jnp.where(y > 0, -jax.nn.softplus(-logit), -jax.nn.softplus(logit))


def elbo(net: Net, batch: Batch, noise: Noise, hyper: Hyper) -> tuple[Array, dict]:
    """The weighted ELBO of ``shared/spec/PSIKT.md`` and the loss to minimise.

    Official objective (``hyper.objective == "official"``):
    L = mean_{n>=1}[(w_s log p~(s_n) + w_z log p~(z_n) + w_y log p(y_n | z_n)) / 3]
        + w_0 mean[the same at n = 0] + lambda_s H[q(s)] + lambda_z H[q(z)];
    loss = -L + w_c KL(q(c) || Uniform(C)). Means run over MC samples and
    valid steps of the batch (padding is masked). p~(s_n) = N(H m_{n-1},
    H P_{n-1} H^T + R) from q(s_{n-1}); p~(z_n) is the OU kernel at the
    posterior means of z_{n-1} and s_n. Both are scored at reparameterised
    samples, as is the emission.

    Returns:
        (loss, terms) with the terms as scalars for logging.
    """
    post = encode(net, batch, noise.gumbel)
    n = noise.z.shape[0]
    zs = post.z_mean + post.z_std * noise.z  # [N, B, T, K]
    ss = post.s_mean + post.s_std * noise.s  # [N, B, T, S]
    mask = batch.mask.astype(zs.dtype)
    m1, m0 = mask[:, 1:], mask[:, 0]

    # trait prior
    cov = trait_prior_cov(net, post.s_std[:, :-1])  # [B, T-1, S, S]
    mean_s = post.s_mean[:, :-1] @ net.H.T
    if hyper.analytic:  # E_q[log p~] in closed form: the same objective without sampling noise
        lps1 = _mvn_expected_logpdf(post.s_mean[:, 1:], post.s_std[:, 1:] ** 2, mean_s, cov)[None]  # [1, B, T-1]
        lps0 = _diag_expected_logpdf(post.s_mean[:, 0], post.s_std[:, 0] ** 2, net.m_s0, jnp.exp(net.log_s0)).sum(-1)[None]
    else:
        lps1 = _mvn_logpdf(ss[:, :, 1:], mean_s, cov)  # [N, B, T-1]
        lps0 = _diag_logpdf(ss[:, :, 0], net.m_s0, jnp.exp(net.log_s0)).sum(-1)  # [N, B]

    # knowledge prior
    p = graph_probs(net.u, net.M)
    tr = traits(post.s_mean[:, 1:], hyper)  # traits at the posterior means, [B, T-1]
    z_prev = post.z_mean[:, :-1]
    v_prev = post.z_std[:, :-1] ** 2

    def z_prior(A):  # the OU kernel at the posterior mean; with propagate_z_var also carrying q's variance
        return z_moments(z_prev, v_prev, tr, A, batch.dt[:, 1:], hyper.propagate_z_var)[:2]

    if hyper.graph_samples:
        As = sample_graphs(noise.graph_key, p, hyper.graph_samples)
        As = dynamics_matrix(As, hyper)[jnp.arange(n) % hyper.graph_samples]  # [N, K, K]
        mean_z, var_z = jax.vmap(z_prior)(As)
    else:
        mean_z, var_z = z_prior(dynamics_matrix(p, hyper))
    if hyper.analytic:
        lpz1 = _diag_expected_logpdf(post.z_mean[:, 1:], post.z_std[:, 1:] ** 2, mean_z, var_z).sum(-1)
        lpz1 = lpz1 if lpz1.ndim == 3 else lpz1[None]  # [N or 1, B, T-1]
        lpz0 = _diag_expected_logpdf(post.z_mean[:, 0], post.z_std[:, 0] ** 2, net.m_z0, jnp.exp(net.log_z0)).sum(-1)[None]
    else:
        lpz1 = _diag_logpdf(zs[:, :, 1:], mean_z, var_z).sum(-1)  # [N, B, T-1]
        lpz0 = _diag_logpdf(zs[:, :, 0], net.m_z0, jnp.exp(net.log_z0)).sum(-1)  # [N, B]

    # emission
    logit = jnp.take_along_axis(zs, batch.skill[None, ..., None], axis=-1)[..., 0]  # [N, B, T]
    lpy = _emission_logp(logit, batch.correct[None]) * batch.known
    lpy1, lpy0 = lpy[:, :, 1:], lpy[:, :, 0]

    n1 = jnp.maximum(m1.sum(), 1.0)
    n0 = jnp.maximum(m0.sum(), 1.0)
    nall = jnp.maximum(mask.sum(), 1.0)
    h_s = (0.5 * LOG_2PI_E + jnp.log(post.s_std)).sum(-1)  # [B, T]
    h_z = (0.5 * LOG_2PI_E + jnp.log(post.z_std)).sum(-1)
    ent_s = (h_s * mask).sum() / nall
    ent_z = (h_z * mask).sum() / nall
    if hyper.objective == "elbo":
        # sum over steps of log p - log q, per real step: a proper (plug-in) ELBO
        def per_step(lps, lpz, lpy, m, hs, hz):
            w = hyper.w_s * lps + hyper.w_z * lpz + hyper.w_y * lpy  # [N, B, ...]
            return ((w.mean(0) + hyper.lambda_s * hs + hyper.lambda_z * hz) * m).sum()

        L = (
            per_step(lps1, lpz1, lpy1, m1, h_s[:, 1:], h_z[:, 1:])
            + hyper.w_0 * per_step(lps0, lpz0, lpy0, m0, h_s[:, 0], h_z[:, 0])
        ) / nall
    else:  # the official weighting
        t1 = (hyper.w_s * lps1 + hyper.w_z * lpz1 + hyper.w_y * lpy1) / 3.0  # [N, B, T-1] (priors broadcast)
        t0 = (hyper.w_s * lps0 + hyper.w_z * lpz0 + hyper.w_y * lpy0) / 3.0
        term1 = (t1 * m1).sum() / (t1.shape[0] * n1)
        term0 = (t0 * m0).sum() / (t0.shape[0] * n0)
        L = term1 + hyper.w_0 * term0 + hyper.lambda_s * ent_s + hyper.lambda_z * ent_z
    logq = jax.nn.log_softmax(post.c_logits[:, 0], axis=-1)
    C = logq.shape[-1]
    kl_c = (((jnp.exp(logq) * logq).sum(-1) + math.log(C)) * m0).sum() / n0
    loss = -L + hyper.w_c * kl_c
    terms = {
        "loss": loss,
        "log_p_s": (lps1 * m1).sum() / (lps1.shape[0] * n1),
        "log_p_z": (lpz1 * m1).sum() / (lpz1.shape[0] * n1),
        "log_p_y": (lpy1 * m1).sum() / (n * n1),
        "entropy_s": ent_s,
        "entropy_z": ent_z,
        "kl_c": kl_c,
        "steps": mask.sum(),
    }
    return loss, terms


# --- prediction ---------------------------------------------------------------------------------


def quantile_noise(n: int) -> Float[Array, " n"]:
    """Stratified standard-normal quantiles Phi^-1((j + 0.5) / n): deterministic MC points."""
    q = (jnp.arange(n, dtype=jnp.float32) + 0.5) / n
    return jax.scipy.special.ndtri(q)


def propagate(net: Net, s_mean, s_cov, z_mean, z_var, dt, hyper: Hyper):
    """One open-loop step: traits m <- H m, P <- H P H^T + R; z through the OU map.

    The z variance is the one-step OU variance Q (official) or, with
    ``accumulate_variance``, the propagated variance (see :func:`z_moments`).

    Args:
        s_mean: [..., S]; s_cov: [..., S, S]; z_mean: [..., K]; z_var: [..., K]; dt: [...] days.

    Returns:
        (s_mean, s_cov, z_mean, z_var) after the step.
    """
    s_mean = s_mean @ net.H.T
    s_cov = net.H @ s_cov @ net.H.T + jnp.diag(jnp.exp(net.log_R))
    tr = traits(s_mean, hyper)
    A = dynamics_matrix(graph_probs(net.u, net.M), hyper)
    mean, var, _ = z_moments(z_mean, z_var, tr, A, dt, hyper.accumulate_variance)
    return s_mean, s_cov, mean, var


def prior_state(net: Net, lead: tuple[int, ...], hyper: Hyper):
    """(s_mean, s_cov, z_mean, z_var) of the n = 0 prior, broadcast to ``lead``."""
    S, K = net.m_s0.shape[0], hyper.n_kc
    s_mean = jnp.broadcast_to(net.m_s0, (*lead, S))
    s_cov = jnp.broadcast_to(jnp.diag(jnp.exp(net.log_s0)), (*lead, S, S))
    z_mean = jnp.broadcast_to(net.m_z0, (*lead, K))
    z_var = jnp.broadcast_to(jnp.exp(net.log_z0), (*lead, K))
    return s_mean, s_cov, z_mean, z_var


def emission_probs(z_mean, z_var, hyper: Hyper):
    """(mean P(correct), share of MC points with P > 0.5) at stratified quantiles."""
    q = quantile_noise(hyper.mc)
    z = z_mean[..., None] + jnp.sqrt(z_var)[..., None] * q
    return jax.nn.sigmoid(z).mean(-1), (z > 0).astype(z.dtype).mean(-1)


def next_step_dists(net: Net, batch: Batch, hyper: Hyper):
    """Predictive z mean/variance at every step from the posterior of the step before.

    Step 0 uses the n = 0 prior; step n >= 1 propagates q(s_{n-1}),
    q(z_{n-1}) (causal LSTM and causal pooling, so y_n..y_T are unseen)
    one step with dt_n.

    Returns:
        (z_mean [B, T, K], z_var [B, T, K]).
    """
    post = encode(net, batch)
    B, T, K = post.z_mean.shape
    s_cov = jax.vmap(jax.vmap(jnp.diag))(post.s_std**2)
    _, _, zm, zv = propagate(net, post.s_mean, s_cov, post.z_mean, post.z_std**2, jnp.roll(batch.dt, -1, axis=1), hyper)
    _, _, zm0, zv0 = prior_state(net, (B, 1), hyper)
    zm = jnp.concatenate([zm0, zm[:, :-1]], axis=1)
    zv = jnp.concatenate([zv0, zv[:, :-1]], axis=1)
    return zm, zv


def next_step_probs(net: Net, batch: Batch, hyper: Hyper) -> Float[Array, "B T"]:
    """P(correct) of every step from the history before it (unknown KC: mean over KCs)."""
    zm, zv = next_step_dists(net, batch, hyper)
    pk = jnp.take_along_axis(zm, batch.skill[..., None], axis=-1)[..., 0]
    vk = jnp.take_along_axis(zv, batch.skill[..., None], axis=-1)[..., 0]
    p, _ = emission_probs(pk, vk, hyper)
    p_any = jax.nn.sigmoid(zm / jnp.sqrt(1.0 + math.pi * zv / 8.0)).mean(-1)  # probit approximation
    return jnp.where(batch.known, p, p_any)


def last_index(mask: Bool[Array, "B T"]) -> Int[Array, " B"]:
    return jnp.maximum(mask.sum(axis=1) - 1, 0)


def final_state(net: Net, batch: Batch):
    """Posterior after each sequence's last real step (for forecasts and continual updates).

    Returns:
        dict of [B, ...] arrays: s_mean, s_std, z_mean, z_std, h, c, pool_sum, count.
    """
    post = encode(net, batch)
    idx = last_index(batch.mask)

    def at(x):
        return jnp.take_along_axis(x, idx[:, None, None], axis=1)[:, 0]

    return {
        "s_mean": at(post.s_mean),
        "s_std": at(post.s_std),
        "z_mean": at(post.z_mean),
        "z_std": at(post.z_std),
        "h": at(post.h),
        "c": at(post.c),
        "pool_sum": at(post.pool_sum),
        "count": batch.mask.sum(axis=1).astype(jnp.float32),
    }


def rollout(net: Net, start: dict, skill, dt, known, has_history, hyper: Hyper):
    """Open-loop H-step forecast from a start state; outcomes are never fed back.

    Args:
        start: s_mean [B, S], s_std [B, S], z_mean [B, K], z_std [B, K].
        skill, dt, known: [B, H]; dt[:, 0] is the gap from the last observed step.
        has_history: [B] bool; without history, the first step uses the n = 0 prior.

    Returns:
        (prob [B, H], positive share of MC points [B, H], z_mean [B, H, K], z_var [B, H, K]).
    """
    B = skill.shape[0]
    pm, pc, pz, pv = prior_state(net, (B,), hyper)
    s_cov = jax.vmap(jnp.diag)(start["s_std"] ** 2)
    init = (
        jnp.where(has_history[:, None], start["s_mean"], pm),
        jnp.where(has_history[:, None, None], s_cov, pc),
        jnp.where(has_history[:, None], start["z_mean"], pz),
        jnp.where(has_history[:, None], start["z_std"] ** 2, pv),
    )

    def step(carry, x):
        sm, sc, zm, zv, first = carry
        k, d, kn = x
        nsm, nsc, nzm, nzv = propagate(net, sm, sc, zm, zv, d, hyper)
        keep = (first & ~has_history)[:, None]  # first step without history: the prior itself
        sm = jnp.where(keep, sm, nsm)
        sc = jnp.where(keep[..., None], sc, nsc)
        zm = jnp.where(keep, zm, nzm)
        zv = jnp.where(keep, zv, nzv)
        pk = jnp.take_along_axis(zm, k[:, None], axis=1)[:, 0]
        vk = jnp.take_along_axis(zv, k[:, None], axis=1)[:, 0]
        p, pos = emission_probs(pk, vk, hyper)
        p_any = jax.nn.sigmoid(zm / jnp.sqrt(1.0 + math.pi * zv / 8.0)).mean(-1)
        p = jnp.where(kn, p, p_any)
        return (sm, sc, zm, zv, jnp.zeros_like(first)), (p, pos, zm, zv)

    carry = (*init, jnp.ones((B,), bool))
    _, (p, pos, zms, zvs) = jax.lax.scan(step, carry, (skill.T, dt.T, known.T))
    return p.T, pos.T, jnp.swapaxes(zms, 0, 1), jnp.swapaxes(zvs, 0, 1)


# --- continual update (posterior becomes prior) -------------------------------------------------


class Arrival(NamedTuple):
    """One new interaction per learner (B learners; ``active`` False = no arrival)."""

    skill: Int[Array, " B"]
    correct: Int[Array, " B"]
    dt: Float[Array, " B"]
    tau: Float[Array, " B"]
    known: Bool[Array, " B"]
    active: Bool[Array, " B"]


def arrival_prior(net: Net, state: dict, dt, hyper: Hyper):
    """The prior of a new step: the previous posterior propagated (the n = 0 prior for new learners).

    Traits: N(H m, H P H^T + R); knowledge: the OU map of the previous mean
    with traits H m, with the variance of the training prior p~(z) (the
    one-step OU variance, or the propagated one, see :func:`z_moments`).

    Returns:
        (s_mean [B, S], s_cov [B, S, S], z_mean [B, K], z_var [B, K]).
    """
    B = dt.shape[0]
    first = state["count"] <= 0
    pm, pc, pz, pv = prior_state(net, (B,), hyper)
    s_cov_prev = jax.vmap(jnp.diag)(state["s_std"] ** 2)
    sm, sc, _, _ = propagate(net, state["s_mean"], s_cov_prev, state["z_mean"], state["z_std"] ** 2, dt, hyper)
    A = dynamics_matrix(graph_probs(net.u, net.M), hyper)
    zm, zv, _ = z_moments(state["z_mean"], state["z_std"] ** 2, traits(sm, hyper), A, dt, hyper.propagate_z_var)
    return (
        jnp.where(first[:, None], pm, sm),
        jnp.where(first[:, None, None], pc, sc),
        jnp.where(first[:, None], pz, zm),
        jnp.where(first[:, None], pv, zv),
    )


def arrival_update(net: Net, state: dict, arr: Arrival, key, hyper: Hyper, steps: int, lr: float) -> dict:
    """Refine each learner's posterior with one new interaction, the network frozen.

    The arrival is encoded on its own (LSTM continued from the stored
    carries, pooling continued from the stored sum, standard deviations
    capped at 1); these posterior parameters then take ``steps`` Adam steps
    on w_s E log p~(s) (/ S with the official objective) + w_z E log p~(z)
    + w_y E log p(y | z_k) + lambda_s H[q(s)] + lambda_z H[q(z)], with the
    propagated previous posterior as the prior. The result is the new state
    (the next prior).
    """
    import optax

    e = embed_steps(net, arr.skill, arr.known, arr.correct, arr.tau)
    h, c = lstm_cell(net, (state["h"], state["c"]), e)
    zm0, zs0 = z_head(net, z_input(net, h, e))
    g = _leaky(net.pool_g(e))
    pool_sum = state["pool_sum"] + g
    count = state["count"] + 1.0
    pooled = pool_sum / count[:, None]
    cvec = jax.nn.softmax(c_logits(net, pooled), axis=-1)
    sm0, ss0 = s_head(net, e, cvec, pooled)
    zs0, ss0 = jnp.minimum(zs0, 1.0), jnp.minimum(ss0, 1.0)
    ps_m, ps_c, pz_m, pz_v = arrival_prior(net, state, arr.dt, hyper)
    S = sm0.shape[-1]
    act = arr.active.astype(zm0.dtype)

    def neg_objective(phi, k):
        sm, log_ss, zm, log_zs = phi
        kz, ks = jax.random.split(k)
        zsamp = zm + jnp.exp(log_zs) * jax.random.normal(kz, (hyper.mc, *zm.shape))
        ssamp = sm + jnp.exp(log_ss) * jax.random.normal(ks, (hyper.mc, *sm.shape))
        if hyper.analytic:
            lps = _mvn_expected_logpdf(sm, jnp.exp(2 * log_ss), ps_m, ps_c)
            lpz = _diag_expected_logpdf(zm, jnp.exp(2 * log_zs), pz_m, pz_v).sum(-1)
        else:
            lps = _mvn_logpdf(ssamp, ps_m, ps_c).mean(0)
            lpz = _diag_logpdf(zsamp, pz_m, pz_v).sum(-1).mean(0)
        logit = jnp.take_along_axis(zsamp, jnp.broadcast_to(arr.skill[None, :, None], (hyper.mc, zm.shape[0], 1)), axis=-1)[
            ..., 0
        ]
        lpy = (_emission_logp(logit, arr.correct[None]) * arr.known).mean(0)
        ent = hyper.lambda_s * (0.5 * LOG_2PI_E + log_ss).sum(-1) + hyper.lambda_z * (0.5 * LOG_2PI_E + log_zs).sum(-1)
        J = hyper.w_s * lps / (S if hyper.objective == "official" else 1) + hyper.w_z * lpz + hyper.w_y * lpy + ent
        return -(J * act).sum()

    opt = optax.adam(lr)
    phi = (sm0, jnp.log(ss0), zm0, jnp.log(zs0))

    def body(carry, k):
        phi, st = carry
        grads = jax.grad(neg_objective)(phi, k)
        upd, st = opt.update(grads, st, phi)
        return (optax.apply_updates(phi, upd), st), None

    (phi, _), _ = jax.lax.scan(body, (phi, opt.init(phi)), jax.random.split(key, steps))
    sm, log_ss, zm, log_zs = phi
    new = {
        "s_mean": sm,
        "s_std": jnp.exp(log_ss),
        "z_mean": zm,
        "z_std": jnp.exp(log_zs),
        "h": h,
        "c": c,
        "pool_sum": pool_sum,
        "count": count,
    }
    a = arr.active
    return {k: jnp.where(a.reshape(-1, *([1] * (v.ndim - 1))), v, state[k]) for k, v in new.items()}
