"""PSI-KT with the knowledge states integrated out by a Gaussian filter (``inference=filter``).

Given the traits, PSI-KT's knowledge dynamics are linear-Gaussian (the OU
transition with the graph shift) and only the emission is logistic, so a
Gaussian filter replaces the amortised encoder (``shared/spec/PSIKT.md``,
"Inference option: Gaussian filtering"). Per learner the filtered state is
x = (e_1..e_K, mu): the learner's level mu, carried as a static coordinate
(it enters the transition linearly), and each KC's deviation from it,
e_k = z_k - mu, in which coordinates the graph-free OU map is diagonal. Per step
(practised KC k, outcome y, gap dt in days):

* predict: r = exp(-alpha dt), m_z <- r m_z + (1 - r)(mu + gamma/K A^T m_z),
  P <- F P F^T + q I_z with q = sigma^2 (1 - r^2) / (2 alpha);
* predictive: P(y = 1 | past) = E[sig(z_k + b_k)] under N(m_k, P_kk)
  (Gauss-Hermite quadrature; the spec's probit line is an approximation of it);
* update: assumed-density filtering: the tilted 1-D moments of z_k (same
  quadrature) projected back through the rank-one gain s = P[:, k].

Sum of log P(y_n | past) = the sequence's marginal log-likelihood under the
filter, differentiated with respect to the population parameters (graph u
and M, alpha, sigma, gamma, the prior of mu and of z_0, KC offsets b).

Documented choices (see the README's PSI-KT section):

* alpha, sigma, gamma are population parameters; mu is per learner (inside
  the filter), so a learner's level is learnt from all of its KCs.
* ``cov="mean"`` (default): the graph shift enters the mean only; the
  covariance uses the graph-free (diagonal) transition, O(K^2) per step.
  ``cov="full"`` propagates the exact F P F^T with the graph, O(K^3) per step.
* ``kc_bias``: a per-KC offset b_k in the emission, sig(z_k + b_k) (the
  spec's emission has none; without it every KC of a learner tends to the
  same success rate).
* z_0 = mu + e_0 with e_0 ~ N(d_0, v_0 I) independent of mu ~ N(m_mu, v_mu): the
  initial knowledge starts near the learner's level, so early answers on
  any KC inform mu.
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

from kt.models.psikt import core

_GH_T, _GH_W = np.polynomial.hermite.hermgauss(32)
GH_NODES = _GH_T.astype(np.float32)
GH_WEIGHTS = (_GH_W / math.sqrt(math.pi)).astype(np.float32)  # weights of E[f(x)], x ~ N(0, 1/2) scaled below
VAR_MIN = 1e-6  # lower bound of the practised KC's predictive variance (numerical)


@dataclass(frozen=True)
class FilterHyper:
    """Static settings (hashable: part of the jit key).

    Attributes:
        n_kc: K.
        use_graph: the graph shift is on (K > 1 and ``graph``).
        cov: ``mean`` (graph in the mean only, O(K^2)) or ``full`` (exact
            F P F^T, O(K^3)).
        kc_bias: per-KC emission offsets b_k.
        grouped: rows of one question (expanded multi-KC attempts) are all
            predicted from the state before the question.
        alpha_link: ``softplus`` or ``relu``.
        graph_category: ``kt`` (A = p) or ``official`` (1 - p).
        graph_scale: ``fixed`` (the spec's shift gamma/K) or ``learned``
            (gamma/K times a learned positive scale).
        edge_bias: offset of the graph's existence logit (0 in the spec).
    """

    n_kc: int
    use_graph: bool = True
    cov: str = "mean"
    kc_bias: bool = True
    grouped: bool = False
    alpha_link: str = "softplus"
    graph_category: str = "kt"
    graph_scale: str = "fixed"
    edge_bias: float = 0.0


class FilterNet(eqx.Module):
    """Population parameters of the filtered model (nothing per learner).

    Attributes:
        u: KC embeddings of the graph [K, D]; M: [D, D] (orientation).
        a_raw: alpha = link(a_raw) + 1e-6 (per day, or per step without timestamps).
        log_s2: log sigma^2.
        g_raw: gamma = sigmoid(g_raw).
        m_mu, log_v_mu: prior of the learner level mu.
        log_q_mu: per-step variance of the level's random walk (the spec's
            time-varying traits, s_n ~ N(s_{n-1}, R) for mu).
        d0, log_v0: z_0 = mu + d0 + N(0, exp(log_v0)) per KC.
        b: per-KC emission offsets [K].
        log_gscale: log of the graph shift's scale (used with ``graph_scale=learned``).
    """

    u: Float[Array, "K D"]
    M: Float[Array, "D D"]
    a_raw: Float[Array, ""]
    log_s2: Float[Array, ""]
    g_raw: Float[Array, ""]
    m_mu: Float[Array, ""]
    log_v_mu: Float[Array, ""]
    log_q_mu: Float[Array, ""]
    d0: Float[Array, ""]
    log_v0: Float[Array, ""]
    b: Float[Array, " K"]
    log_gscale: Float[Array, ""]

    @staticmethod
    def init(seed: int, n_kc: int, dim: int = 16, graph_init_std: float = 1.0, b: np.ndarray | None = None) -> "FilterNet":
        """Initial parameters: alpha 0.5, stationary variance 0.5, gamma 0.5, mu ~ N(0, 1), z_0 ~ mu + N(0, 0.5).

        Args:
            seed: integer seed for the graph embeddings.
            n_kc: K.
            dim: D.
            graph_init_std: standard deviation of the initial u and M.
            b: initial KC offsets (default 0), e.g. each KC's logit success rate.

        Returns:
            The parameters.
        """
        rng = np.random.default_rng(seed)
        f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
        alpha = 0.5
        return FilterNet(
            u=f(rng.normal(0.0, graph_init_std, (n_kc, dim))),
            M=f(rng.normal(0.0, graph_init_std, (dim, dim))),
            a_raw=f(math.log(math.expm1(alpha))),
            log_s2=f(math.log(2 * alpha * 0.5)),
            g_raw=f(0.0),
            m_mu=f(0.0),
            log_v_mu=f(0.0),
            log_q_mu=f(math.log(1e-3)),
            d0=f(0.0),
            log_v0=f(math.log(0.5)),
            b=f(np.zeros(n_kc) if b is None else b),
            log_gscale=f(0.0),
        )


class Traits(NamedTuple):
    """Population traits (scalars); ``q_mu`` is the level's random-walk variance per step."""

    alpha: Array
    sigma2: Array
    gamma: Array
    q_mu: Array
    gscale: Array


def traits(net: FilterNet, hyper: FilterHyper) -> Traits:
    """(alpha > 0, sigma^2 > 0, gamma in (0, 1); 0 without a graph)."""
    a = (jax.nn.softplus(net.a_raw) if hyper.alpha_link == "softplus" else jax.nn.relu(net.a_raw)) + core.ALPHA_FLOOR
    g = jax.nn.sigmoid(net.g_raw) if hyper.use_graph else jnp.zeros_like(net.g_raw)
    return Traits(a, jnp.exp(net.log_s2), g, jnp.exp(net.log_q_mu), jnp.exp(net.log_gscale))


def dynamics_graph(net: FilterNet, hyper: FilterHyper) -> Float[Array, "K K"]:
    """A (edge i -> k at [i, k]) as it enters the dynamics; zeros without a graph."""
    if not hyper.use_graph:
        return jnp.zeros((hyper.n_kc, hyper.n_kc), jnp.float32)
    p = core.graph_probs(net.u, net.M, hyper.edge_bias)
    return core.dynamics_matrix(p, core.Hyper(n_kc=hyper.n_kc, graph_category=hyper.graph_category))


def initial_state(net: FilterNet, hyper: FilterHyper) -> tuple[Float[Array, " S"], Float[Array, "S S"]]:
    """Prior mean and covariance of x_0 = (e_0, mu), S = K + 1 (independent: a diagonal covariance)."""
    K = hyper.n_kc
    m = jnp.concatenate([jnp.full((K,), net.d0), net.m_mu[None]])
    v = jnp.concatenate([jnp.full((K,), jnp.exp(net.log_v0)), jnp.exp(net.log_v_mu)[None]])
    return m, jnp.diag(v)


def transition(
    m: Float[Array, " S"], P: Float[Array, "S S"], dt: Float[Array, ""], tr: Traits, A: Float[Array, "K K"], hyper: FilterHyper
) -> tuple[Float[Array, " S"], Float[Array, "S S"]]:
    """Predict step over a gap of ``dt`` days (the OU map of ``shared/spec/PSIKT.md``).

    In the coordinates x = (e, mu) with e = z - mu 1 the OU map is
    e <- r e + (1 - r) gamma/K A^T (e + mu 1) + noise, mu <- mu: without the
    graph term the transition matrix is diagonal, diag(r, .., r, 1).

    Args:
        m: filtered mean of (e, mu) [K + 1].
        P: covariance over (e at the slots' KCs, mu) [C + 1, C + 1] (see :func:`run`;
            C = K with the slots in KC order for the full state).
        dt: gap in days (``DT_EPS`` is added, as in the generative model).
        tr: population traits.
        A: dynamics graph.
        hyper: static settings.

    Returns:
        The predicted (mean, covariance).
    """
    K = hyper.n_kc
    C = P.shape[-1] - 1
    r = jnp.exp(-tr.alpha * (dt + core.DT_EPS))
    w = 1.0 - r
    c = tr.gamma / K * (tr.gscale if hyper.graph_scale == "learned" else 1.0)
    me, mu = m[:K], m[K]
    shift = w * c * ((me + mu) @ A) if hyper.use_graph else 0.0
    m2 = jnp.concatenate([r * me + shift, mu[None]])
    q = tr.sigma2 * (1.0 - r * r) / (2.0 * tr.alpha) + core.VAR_FLOOR
    d = jnp.concatenate([jnp.full((C,), r), jnp.ones((1,))])
    qd = jnp.concatenate([jnp.full((C,), q), tr.q_mu[None]])
    if hyper.cov == "full" and hyper.use_graph:  # needs the full state (C = K, KC order)
        F = jnp.diag(d).at[:K, :K].add(w * c * A.T).at[:K, K].add(w * c * A.sum(0))
        return m2, F @ P @ F.T + jnp.diag(qd)
    return m2, P * jnp.outer(d, d) + jnp.diag(qd)


def _nodes(mk: Array, vk: Array) -> Array:
    return mk + jnp.sqrt(2.0 * vk) * GH_NODES


def predictive(mk: Float[Array, "..."], vk: Float[Array, "..."]) -> tuple[Array, Array, Array]:
    """Outcome predictive of a logit x ~ N(mk, vk).

    Returns:
        (logit of P(y = 1) = log E[sig(x)] - log E[sig(-x)], P(y = 1), P(x > 0) (the share of
        posterior samples that predict correct, for per-sample decisions)).
    """
    vk = jnp.maximum(vk, VAR_MIN)
    x = _nodes(mk[..., None], vk[..., None])
    lp1 = jax.nn.logsumexp(jax.nn.log_sigmoid(x), b=GH_WEIGHTS, axis=-1)
    lp0 = jax.nn.logsumexp(jax.nn.log_sigmoid(-x), b=GH_WEIGHTS, axis=-1)
    share = jax.scipy.stats.norm.cdf(mk / jnp.sqrt(vk))
    return lp1 - lp0, jnp.exp(lp1), share


def tilted_moments(mk: Array, vk: Array, y: Array) -> tuple[Array, Array, Array]:
    """Mean and variance of N(x; mk, vk) sig((2y - 1) x) / Z, and log Z (Gauss-Hermite)."""
    vk = jnp.maximum(vk, VAR_MIN)
    x = _nodes(mk, vk)
    s = 2.0 * y.astype(jnp.float32) - 1.0
    logw = jnp.log(GH_WEIGHTS) + jax.nn.log_sigmoid(s * x)
    logZ = jax.nn.logsumexp(logw)
    wn = jnp.exp(logw - logZ)
    mean = jnp.sum(wn * x)
    var = jnp.sum(wn * (x - mean) ** 2)
    return mean, var, logZ


def logit_moments(
    m: Float[Array, " S"],
    P: Float[Array, "C1 C1"],
    k: Int[Array, ""],
    j: Int[Array, ""],
    bk: Float[Array, ""],
    hyper: FilterHyper,
):
    """The practised KC's logit x = z_k + b_k = e_k + mu + b_k: (mean, variance, P h) with h = e_j + e_mu.

    ``k`` indexes the KC in the mean, ``j`` its slot in the covariance.
    """
    C = P.shape[-1] - 1
    s = P[:, j] + P[:, C]
    return m[k] + m[hyper.n_kc] + bk, s[j] + s[C], s


def update(
    m: Float[Array, " S"],
    P: Float[Array, "C1 C1"],
    k: Int[Array, ""],
    y: Int[Array, ""],
    bk: Float[Array, ""],
    hyper: FilterHyper,
    moments=tilted_moments,
    j: Int[Array, ""] | None = None,
    kcs: Int[Array, " C"] | None = None,
) -> tuple[Float[Array, " S"], Float[Array, "C1 C1"], Float[Array, ""]]:
    """ADF update on the outcome ``y`` of KC ``k`` (emission sig(z_k + bk), z_k = e_k + mu).

    The 1-D tilted moments of the logit are matched exactly (up to
    quadrature) and carried to every coordinate through the Gaussian
    conditional: the rank-one gain s = P h, h = e_k + e_mu.

    Args:
        m, P: predicted mean and covariance.
        k: practised KC.
        y: outcome.
        bk: the KC's emission offset.
        hyper: static settings.
        moments: ``(mean, var, y) -> (mean, var, log Z)`` of the tilted 1-D
            distribution (a Gaussian emission here gives the Kalman update).
        j: the KC's slot in ``P`` (default ``k``: the full state).
        kcs: KC of each slot [C] (default: all KCs in order); padding slots
            hold K + 1 (dropped).

    Returns:
        (mean, covariance, log P(y | past)).
    """
    K = hyper.n_kc
    C = P.shape[-1] - 1
    j = k if j is None else j
    mk, vk, s = logit_moments(m, P, k, j, bk, hyper)
    vk = jnp.maximum(vk, VAR_MIN)
    mean, var, logZ = moments(mk, vk, y)
    gain = s * ((mean - mk) / vk)
    idx = jnp.arange(K) if kcs is None else kcs
    # KCs outside the slots have no covariance with the practised one: their means do not move.
    m2 = m.at[idx].add(gain[:C], mode="drop").at[K].add(gain[C])
    return m2, P - jnp.outer(s, s) * ((vk - var) / (vk * vk)), logZ


class Steps(NamedTuple):
    """Per-step inputs of one learner (or a batch, with a leading axis).

    Attributes:
        skill: practised KC (0 on padding).
        correct: outcome.
        dt: gap to the previous step in days (to the stored state's time for
            the first step of a continued sequence; 0 for a fresh learner).
        mask: real steps.
        new: first row of its question (always True for single-KC data).
        slot: the KC's slot in the covariance (= skill for the full state).
    """

    skill: Int[Array, "... T"]
    correct: Int[Array, "... T"]
    dt: Float[Array, "... T"]
    mask: Bool[Array, "... T"]
    new: Bool[Array, "... T"]
    slot: Int[Array, "... T"]


class Out(NamedTuple):
    """Per-step outputs of :func:`run`: logit and probability of correct, positive share, log P(y | past)."""

    logit: Array
    prob: Array
    share: Array
    loglik: Array


def run(net: FilterNet, m0: Array, P0: Array, steps: Steps, hyper: FilterHyper, remat: bool = False, kcs: Array | None = None):
    """Filter one learner's steps from the state (m0, P0).

    The covariance may be restricted to C slots, one per KC the sequence
    practises (``kcs``): in the graph-free covariance a KC never observed
    stays uncorrelated with every other coordinate (the prior is diagonal,
    the transition diagonal, and an update only moves coordinates
    correlated with the practised KC), so its covariance never enters a
    prediction and the C-slot filter gives exactly the full filter's
    outputs at O(C^2) per step (tested). The mean stays full (the graph
    shift reads every KC).

    Args:
        net: parameters.
        m0: starting mean [K + 1] (the prior or a stored state).
        P0: starting covariance [C + 1, C + 1] over the slots and mu.
        steps: per-step inputs [T] (``slot`` indexes ``P``).
        hyper: static settings.
        remat: recompute each step in the backward pass (memory: only the
            carried states are kept).
        kcs: KC of each slot [C] (K + 1 on padding slots); default: the
            full state (C = K).

    Returns:
        ((mean, covariance) after the last real step, :class:`Out` of [T] arrays).
    """
    tr = traits(net, hyper)
    A = dynamics_graph(net, hyper)
    b = net.b if hyper.kc_bias else jnp.zeros_like(net.b)

    def step(carry, x):
        m, P = carry[:2]
        k, y, dt, valid, new, j = x
        mt, Pt = transition(m, P, dt, tr, A, hyper)
        if hyper.grouped:  # siblings of a question are predicted from the state before it
            mt, Pt = jnp.where(new, mt, m), jnp.where(new, Pt, P)
            mb, Pb = jnp.where(new, mt, carry[2]), jnp.where(new, Pt, carry[3])
        else:
            mb, Pb = mt, Pt
        mk, vk, _ = logit_moments(mb, Pb, k, j, b[k], hyper)
        logit, prob, share = predictive(mk, vk)
        mu, Pu, ll = update(mt, Pt, k, y, b[k], hyper, j=j, kcs=kcs)
        new_carry = (mu, Pu, mb, Pb) if hyper.grouped else (mu, Pu)
        new_carry = tuple(jnp.where(valid, a, old) for a, old in zip(new_carry, carry))
        return new_carry, Out(logit, prob, share, jnp.where(valid, ll, 0.0))

    if remat:
        step = jax.checkpoint(step)
    xs = (steps.skill, steps.correct, steps.dt, steps.mask, steps.new, steps.slot)
    carry, out = jax.lax.scan(step, (m0, P0, m0, P0) if hyper.grouped else (m0, P0), xs)
    return carry[:2], out


def run_batch(
    net: FilterNet, m0: Array, P0: Array, steps: Steps, hyper: FilterHyper, remat: bool = False, kcs: Array | None = None
):
    """:func:`run` over a batch: ``m0`` [B, K + 1], ``P0`` [B, C + 1, C + 1], ``steps`` [B, T], ``kcs`` [B, C] or None."""
    if kcs is None:
        return jax.vmap(lambda a, b, s: run(net, a, b, s, hyper, remat))(m0, P0, steps)
    return jax.vmap(lambda a, b, s, c: run(net, a, b, s, hyper, remat, c))(m0, P0, steps, kcs)


def prior_batch(net: FilterNet, hyper: FilterHyper, B: int, C: int | None = None):
    """The prior state repeated for B learners (covariance over C slots and mu; default C = K)."""
    m, P = initial_state(net, hyper)
    if C is not None and C != hyper.n_kc:
        P = jnp.diag(jnp.concatenate([jnp.full((C,), jnp.exp(net.log_v0)), jnp.exp(net.log_v_mu)[None]]))
    return jnp.broadcast_to(m, (B, *m.shape)), jnp.broadcast_to(P, (B, *P.shape))


@dataclass(frozen=True)
class TrainLogits:
    """``logits_fn`` for :func:`kt.train.loop.fit`: every window starts from the prior.

    The loop's binary cross-entropy on these logits is exactly -log P(y_n | past)
    under the filter, so training maximises the filter's marginal likelihood
    (of each window after its first step, which the loop does not score).
    """

    hyper: FilterHyper

    def __call__(self, net: FilterNet, batch: dict, key=None):
        del key
        B, C = batch["kcs"].shape
        m0, P0 = prior_batch(net, self.hyper, B, C)
        steps = Steps(batch["skill"], batch["correct"], batch["dt"], batch["mask"], batch["new"], batch["slot"])
        _, out = run_batch(net, m0, P0, steps, self.hyper, remat=True, kcs=batch["kcs"])
        return out.logit


def forecast(net: FilterNet, m0: Array, P0: Array, skill: Array, dt: Array, hyper: FilterHyper):
    """Open-loop predictions: the predict step only, with the true future gaps.

    Args:
        net: parameters.
        m0, P0: [B, S], [B, S, S] states after each learner's history.
        skill, dt: [B, T] future KCs and gaps (days; the first from the history's last time).
        hyper: static settings.

    Returns:
        (P(correct) [B, T], positive share [B, T], predicted mean and std of z_k [B, T]).
    """
    tr = traits(net, hyper)
    A = dynamics_graph(net, hyper)
    b = net.b if hyper.kc_bias else jnp.zeros_like(net.b)

    def one(m, P, ks, ds):
        def step(carry, x):
            m, P = carry
            k, d = x
            m, P = transition(m, P, d, tr, A, hyper)
            mk, vk, _ = logit_moments(m, P, k, k, b[k], hyper)
            _, prob, share = predictive(mk, vk)
            return (m, P), (prob, share, mk - b[k], jnp.sqrt(jnp.maximum(vk, 0.0)))

        return jax.lax.scan(step, (m, P), (ks, ds))[1]

    return jax.vmap(one)(m0, P0, skill, dt)


def propagate(net: FilterNet, m0: Array, P0: Array, dt: Array, hyper: FilterHyper):
    """States [B, S], [B, S, S] carried ``dt`` [B] days ahead (no observation)."""
    tr = traits(net, hyper)
    A = dynamics_graph(net, hyper)
    return jax.vmap(lambda m, P, d: transition(m, P, d, tr, A, hyper))(m0, P0, dt)


def knowledge(m: Array, P: Array, hyper: FilterHyper) -> tuple[Array, Array]:
    """Mean and variance of every z_k = e_k + mu from states [B, S], [B, S, S] -> ([B, K], [B, K])."""
    K = hyper.n_kc
    diag = jnp.diagonal(P, axis1=-2, axis2=-1)
    return m[..., :K] + m[..., K:], diag[..., :K] + 2.0 * P[..., :K, K] + diag[..., K:]


def kc_probs(net: FilterNet, m: Array, P: Array, hyper: FilterHyper) -> Array:
    """E[sig(z_k + b_k)] for every KC of states [B, S], [B, S, S] -> [B, K]."""
    b = net.b if hyper.kc_bias else jnp.zeros_like(net.b)
    zm, zv = knowledge(m, P, hyper)
    return predictive(zm + b, zv)[1]
