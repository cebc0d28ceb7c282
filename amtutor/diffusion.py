r"""Diffusion models as associative memories (chapter 4 of the tutorial).

**Exact energies.** For the variance-exploding (VE) forward process :math:`dx_t=\sigma\,dw_t`
(eq. 4.14) started from the empirical distribution of K training points ξ^μ, the marginal
:math:`p_t` is a mixture of Gaussians of variance σ²t around the points (eqs. 4.5–4.6), and its
energy (eq. 4.7, :func:`dm_energy`)

.. math:: E^\text{DM}(x,t)=-2\sigma^2t\log\sum_\mu\exp\Big(-\frac{\lVert x-\xi^\mu\rVert^2}{2\sigma^2t}\Big)

is the DenseAM energy (eq. 4.8, :func:`am_energy`)
:math:`E^\text{AM}(x)=-\beta^{-1}\log\sum_\mu e^{-\beta\lVert x-\xi^\mu\rVert^2}` at the
time-dependent inverse temperature β = 1/(2σ²t) (:func:`beta_of_time`); the score is
:math:`\nabla\log p_t=-\beta\nabla E^\text{AM}`. Minima of either are found by descending the
library's log-sum-exp memory graph (:func:`amtutor.kernels.lse_graph`, run by
:func:`amtutor.hamux.descend`): :func:`energy_minima`.

**The circle continuum** (eqs. 4.11–4.13): points spread uniformly on the unit circle give
:math:`E(R,\beta)=R^2+1-\beta^{-1}\log I_0(2\beta R)` (:func:`circle_energy`, computed with
``log I0(z) = log i0e(z) + z`` so that large β is stable), radial score
:math:`2(I_1/I_0-R)` (:func:`circle_score`), minimum at R* ≈ 1 − 1/(4β) (:func:`circle_minimum`).

**Learned energies.** :class:`ScoreNet` (Gaussian Fourier time embedding, an MLP, output divided
by the marginal std σ√t) trained by denoising score matching (:func:`dsm_loss`, :func:`train`,
optax Adam, EMA weights), sampled by Euler–Maruyama on the reverse SDE (:func:`sample`), and its
energy by integrating the learned score along rays from the origin (:func:`ray_energy`, fast) or by
the probability-flow ODE log-likelihood (:func:`flow_energy`, fixed-step RK4 with the exact
empirical mixture as p₁). :func:`regime_metrics` measures memorization, spurious states and
generalization from samples. The shipped circle models load with :func:`load_model`.

Functions take one example where that is natural (``ScoreNet`` is called on one ``x`` of shape
``(D,)`` and one time); energies accept one point ``(D,)`` or a batch ``(N, D)``.
"""

from __future__ import annotations

import functools
import pathlib
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import kernels
from .validation import as_float_array, check_fits_float, check_int, check_key, check_positive, check_probability

__all__ = [
    "EPS",
    "beta_of_time",
    "marginal_std",
    "dm_energy",
    "am_energy",
    "two_memory_curvature",
    "energy_minima",
    "circle_data",
    "circle_energy",
    "circle_score",
    "circle_minimum",
    "ScoreNet",
    "dsm_loss",
    "TrainResult",
    "train",
    "sample",
    "ray_energy",
    "flow_energy",
    "RegimeMetrics",
    "regime_metrics",
    "save_model",
    "load_model",
    "SHIPPED_K",
    "RECIPES",
]

EPS = 1e-5  # smallest diffusion time (t ∈ [EPS, 1]), as in the tutorial's notebook
SHIPPED_K = (2, 9, 1000)
WEIGHTS = pathlib.Path(__file__).parent / "weights"
DATA_SEED = 6  # the circle data's seed: its first two angles lie 2.3 rad apart (seed 9: 0.46)
TRAIN_SEED = 0  # the shipped models' training seed

# The training recipes of the shipped models (reproduced by ``python -m amtutor.diffusion_train``).
# EMA 0.9999 averages over ~10k steps, so it needs >= 40k steps to forget the initial weights.
RECIPES = {
    2: dict(steps=50_000, lr=1e-4, ema=0.9999),
    9: dict(steps=50_000, lr=1e-4, ema=0.9999),
    1000: dict(steps=10_000, lr=1e-3, ema=0.999),
}


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------


def _sigma(sigma):
    sigma = check_positive("sigma", sigma)
    check_fits_float("sigma", sigma, jnp.float32)
    return float(sigma)


def _beta(beta):
    beta = check_positive("beta", beta)
    check_fits_float("beta", beta, jnp.float32)
    return beta


def _time(t, name="t"):
    return float(check_probability(name, t, low=0.0, high=1.0, open_low=True))


def _memories(memories, name="memories"):
    memories = as_float_array(name, memories, ndim=2)
    if memories.shape[0] == 0:
        raise ValueError(f"{name} is empty (K = 0): give at least one point, shape (K, D) with K >= 1")
    if memories.shape[1] == 0:
        raise ValueError(f"{name} must have at least one coordinate, got shape {tuple(memories.shape)}")
    return memories


def _points(name, x, dim, ndim=(1, 2)):
    x = as_float_array(name, x, ndim=ndim)
    if 0 in x.shape:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): give at least one point")
    if x.shape[-1] != dim:
        raise ValueError(f"{name} has {x.shape[-1]} coordinates per point but the memories (or the model) "
                         f"have D = {dim}")
    return x


def _model(model):
    if not isinstance(model, ScoreNet):
        raise TypeError(f"model must be an amtutor.diffusion.ScoreNet, got {type(model).__name__}")
    return model


# --------------------------------------------------------------------------------------------
# exact energies
# --------------------------------------------------------------------------------------------


def beta_of_time(t: float, *, sigma: float = 1.0) -> float:
    """The DenseAM inverse temperature of diffusion time ``t``: β = 1/(2σ²t)."""
    t, sigma = _time(t), _sigma(sigma)
    return 1.0 / (2.0 * sigma**2 * t)


def marginal_std(t: float, *, sigma: float = 1.0) -> float:
    """The VE forward process's marginal standard deviation σ√t (the noise added by time t)."""
    t, sigma = _time(t), _sigma(sigma)
    return sigma * float(np.sqrt(t))


def _sq_dist(memories, x):
    return jnp.sum((x[..., None, :] - memories) ** 2, axis=-1)  # (*B, K)


def dm_energy(memories: Float[Array, "K D"], x: Float[Array, "*B D"], *, t: float,
              sigma: float = 1.0) -> Float[Array, "*B"]:
    r"""The empirical diffusion energy (eq. 4.7),
    :math:`E^\text{DM}(x,t)=-2\sigma^2t\log\sum_\mu\exp(-\lVert x-\xi^\mu\rVert^2/(2\sigma^2t))`.

    Computed by a max-shifted log-sum-exp in the inputs' dtype (float64 arrays stay float64 when
    JAX's x64 mode is on), so it is exact to rounding for any t ∈ (0, 1]."""
    memories = _memories(memories)
    x = _points("x", x, memories.shape[1])
    t, sigma = _time(t), _sigma(sigma)
    scale = 2.0 * sigma**2 * t
    return -scale * jax.nn.logsumexp(-_sq_dist(memories, x) / scale, axis=-1)


def am_energy(memories: Float[Array, "K D"], x: Float[Array, "*B D"], *, beta: float) -> Float[Array, "*B"]:
    r"""The DenseAM energy (eq. 4.8), :math:`E^\text{AM}(x)=-\beta^{-1}\log\sum_\mu e^{-\beta\lVert x-\xi^\mu\rVert^2}`
    (the same as :func:`dm_energy` at β = 1/(2σ²t))."""
    memories = _memories(memories)
    x = _points("x", x, memories.shape[1])
    beta = float(_beta(beta))
    return -jax.nn.logsumexp(-beta * _sq_dist(memories, x), axis=-1) / beta


def two_memory_curvature(beta: float, distance: float) -> float:
    r"""Second derivative of :func:`am_energy` of two memories a distance d apart, along the line
    through them, at their midpoint: :math:`E''=2-\beta d^2`. The midpoint is a (spurious) minimum
    along that line exactly when βd² < 2 (derived in the chapter)."""
    beta = float(_beta(beta))
    distance = float(check_positive("distance", distance))
    return 2.0 - beta * distance**2


def energy_minima(memories: Float[Array, "K D"], starts: Float[Array, "N D"], *, beta: float,
                  steps: int = 1000, tol: float = 1e-2) -> Float[Array, "M D"]:
    r"""The distinct local minima of :func:`am_energy` reached from ``starts`` by energy descent.

    :math:`E^\text{AM}` is twice the log-sum-exp energy of :func:`amtutor.kernels.lse_graph` at 2β,
    so the descent is that graph run by :func:`amtutor.hamux.descend` (through
    :func:`amtutor.kernels.descent`) with step α = 1: the concave–convex (CCCP) update
    :math:`x\leftarrow\sum_\mu\mathrm{softmax}_\mu(-\beta\lVert x-\xi\rVert^2)\,\xi^\mu`, which never
    raises the energy (the Hessian of the log-sum-exp energy is at most the identity) and lands on
    an isolated memory in one step. End points closer than ``tol`` are merged (a start exactly on a
    saddle, such as the midpoint of two memories, stays there: use starts off symmetry lines).
    Returns the minima ``(M, D)``, sorted by energy."""
    memories = _memories(memories)
    starts = _points("starts", starts, memories.shape[1], ndim=2)
    beta = float(_beta(beta))
    steps = check_int("steps", steps, minimum=1)
    tol = float(check_positive("tol", tol))
    graph = kernels.lse_graph(jnp.asarray(memories, jnp.float32), beta=2.0 * beta)
    ends = np.asarray(kernels.descent(graph, jnp.asarray(starts, jnp.float32), alpha=1.0, steps=steps))
    kept: list[np.ndarray] = []
    for p in ends:
        if all(np.linalg.norm(p - q) > tol for q in kept):
            kept.append(p)
    kept_arr = np.stack(kept)
    order = np.argsort(np.asarray(am_energy(memories, kept_arr, beta=beta)))
    return jnp.asarray(kept_arr[order])


# --------------------------------------------------------------------------------------------
# the unit circle
# --------------------------------------------------------------------------------------------


def circle_data(num_points: int, *, key=None, equispaced: bool = False) -> Float[Array, "K 2"]:
    """``num_points`` points on the unit circle: angles uniform on [0, 2π) drawn with ``key``
    (default: the chapter's data seed 6), or equally spaced with ``equispaced=True``."""
    num_points = check_int("num_points", num_points, minimum=1)
    if not isinstance(equispaced, (bool, np.bool_)):
        raise TypeError(f"equispaced must be True or False, got {type(equispaced).__name__}")
    if equispaced:
        angles = jnp.arange(num_points) * (2 * jnp.pi / num_points)
    else:
        key = jax.random.key(DATA_SEED) if key is None else key
        check_key("key", key)
        angles = jax.random.uniform(key, (num_points,), maxval=2 * jnp.pi)
    return jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)


def _radii(R):
    R = as_float_array("R", R)
    if R.size == 0:
        raise ValueError("R is empty: give at least one radius")
    if not isinstance(R, jax.core.Tracer) and bool(jnp.any(R < 0)):
        raise ValueError("R must be >= 0 (a radius)")
    return R


def circle_energy(R: Float[Array, "*B"], *, beta: float) -> Float[Array, "*B"]:
    r"""The continuum energy of the unit circle (eq. 4.13), :math:`E(R,\beta)=R^2+1-\beta^{-1}\log I_0(2\beta R)`,
    with :math:`\log I_0(z)=\log\mathrm{i0e}(z)+z` (no overflow for large β). → (R − 1)² as β → ∞."""
    R = _radii(R)
    beta = float(_beta(beta))
    z = 2.0 * beta * R
    return R**2 + 1.0 - (jnp.log(jax.scipy.special.i0e(z)) + z) / beta


def circle_score(R: Float[Array, "*B"], *, beta: float) -> Float[Array, "*B"]:
    r"""The radial force of the continuum, :math:`-\partial_R E = 2\big(I_1(2\beta R)/I_0(2\beta R)-R\big)`
    (the notebook's radial score; the score of :math:`p\propto e^{-\beta E}` is β times it), with the
    ratio from the exponentially scaled Bessel functions, stable for any β."""
    R = _radii(R)
    beta = float(_beta(beta))
    z = 2.0 * beta * R
    return 2.0 * (jax.scipy.special.i1e(z) / jax.scipy.special.i0e(z) - R)


def circle_minimum(beta: float) -> float:
    """The radius R* of the continuum's minimum, the root of I₁(2βR)/I₀(2βR) = R (bisection in
    float64); R* ≈ 1 − 1/(4β) for large β, and R* = 0 (the origin) for β ≤ 1."""
    from scipy import special

    beta = float(_beta(beta))
    f = lambda r: special.i1e(2 * beta * r) / special.i0e(2 * beta * r) - r  # noqa: E731
    lo, hi = 1e-12, 1.0
    if f(lo) <= 0:  # β <= 1: the ratio's slope at 0 is β, so no positive root
        return 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------------------------
# the score network
# --------------------------------------------------------------------------------------------


class ScoreNet(eqx.Module):
    r"""The tutorial's score network :math:`s_\theta(x,t)\approx\nabla_x\log p_t(x)` for one point.

    A Gaussian Fourier embedding of t (``embed_dim`` features :math:`[\sin 2\pi Wt,\cos 2\pi Wt]`,
    W ~ N(0, ``scale``²), fixed), concatenated with x (D + ``embed_dim`` = 130 inputs for D = 2),
    then Linear → ``hidden``, three Linear(hidden, hidden) with SiLU (a LayerNorm before the last
    SiLU), Linear → D; the output is divided by the marginal std σ√t, so that the network learns
    −(noise)/std at the right scale for every t.

    Call: ``model(x, t)`` with ``x`` of shape ``(D,)`` and ``t`` a scalar; ``jax.vmap`` for batches.
    """

    frequencies: Float[Array, " E2"]
    layers: list
    norm: eqx.nn.LayerNorm
    sigma: float = eqx.field(static=True)

    def __init__(self, *, key, dim: int = 2, embed_dim: int = 128, scale: float = 16.0, hidden: int = 128,
                 sigma: float = 1.0):
        check_key("key", key)
        dim = check_int("dim", dim, minimum=1)
        embed_dim = check_int("embed_dim", embed_dim, minimum=2)
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even (sines and cosines), got {embed_dim}")
        scale = float(check_positive("scale", scale))
        hidden = check_int("hidden", hidden, minimum=1)
        self.sigma = _sigma(sigma)
        keys = jax.random.split(key, 6)
        self.frequencies = scale * jax.random.normal(keys[0], (embed_dim // 2,))
        sizes = [(dim + embed_dim, hidden), (hidden, hidden), (hidden, hidden), (hidden, hidden), (hidden, dim)]
        self.layers = [eqx.nn.Linear(i, o, key=k) for (i, o), k in zip(sizes, keys[1:])]
        self.norm = eqx.nn.LayerNorm(hidden)

    @property
    def dim(self) -> int:
        return self.layers[-1].out_features

    def __call__(self, x: Float[Array, " D"], t: Float[Array, ""]) -> Float[Array, " D"]:
        w = jax.lax.stop_gradient(self.frequencies) * t * 2 * jnp.pi
        h = jnp.concatenate([x, jnp.sin(w), jnp.cos(w)])
        h = jax.nn.silu(self.layers[0](h))
        h = jax.nn.silu(self.layers[1](h))
        h = jax.nn.silu(self.layers[2](h))
        h = jax.nn.silu(self.norm(self.layers[3](h)))
        return self.layers[4](h) / (self.sigma * jnp.sqrt(t))


def _dsm_loss(model, x0, key, eps):
    kt, kz = jax.random.split(key)
    t = jax.random.uniform(kt, (x0.shape[0],), minval=eps, maxval=1.0)
    z = jax.random.normal(kz, x0.shape)
    std = model.sigma * jnp.sqrt(t)[:, None]
    s = jax.vmap(model)(x0 + std * z, t)
    return jnp.mean(jnp.sum((s * std + z) ** 2, axis=-1))


def dsm_loss(model: ScoreNet, x0: Float[Array, "B D"], *, key, eps: float = EPS) -> Float[Array, ""]:
    r"""Denoising score matching (eq. 4.3 with λ(t) = σ²t): :math:`\mathbb E\lVert s_\theta(x_t,t)\,\sigma\sqrt t+z\rVert^2`
    with t ~ U(ε, 1), z ~ N(0, I), :math:`x_t=x_0+\sigma\sqrt t\,z`, averaged over the batch ``x0``."""
    model = _model(model)
    x0 = _points("x0", x0, model.dim, ndim=2)
    check_key("key", key)
    eps = _time(eps, "eps")
    return _dsm_loss(model, x0, key, eps)


class TrainResult(NamedTuple):
    """What :func:`train` returns.

    Attributes:
        model: the trained network (its last weights).
        ema: the exponential moving average of the weights (the model to sample).
        losses: the mean DSM loss of each chunk of steps, shape ``(steps // chunk,)``.
    """

    model: ScoreNet
    ema: ScoreNet
    losses: Float[Array, " C"]


@eqx.filter_jit
def _train_chunk(state, data, key, *, optimizer, chunk, batch, decay, eps, static):
    params, ema, opt_state = state

    def step(carry, k):
        params, ema, opt_state = carry
        kb, kl = jax.random.split(k)
        idx = jax.random.choice(kb, data.shape[0], (batch,), replace=False)
        loss, grads = jax.value_and_grad(
            lambda p: _dsm_loss(eqx.combine(p, static), data[idx], kl, eps))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        ema = jax.tree_util.tree_map(lambda e, p: decay * e + (1 - decay) * p, ema, params)
        return (params, ema, opt_state), loss

    carry, losses = jax.lax.scan(step, (params, ema, opt_state), jax.random.split(key, chunk))
    return carry, jnp.mean(losses)


def train(data: Float[Array, "K D"], *, key, steps: int = 50_000, lr: float = 1e-4, ema: float = 0.9999,
          batch: int = 500, chunk: int = 1000, eps: float = EPS, model: ScoreNet | None = None) -> TrainResult:
    """Train a :class:`ScoreNet` on ``data`` by denoising score matching (optax Adam at ``lr``).

    Each step draws min(``batch``, K) points without replacement and one t per point; the whole step
    is jitted and ``chunk`` steps run as one ``lax.scan``. ``ema`` is the decay of the weights'
    moving average (0.9999 averages over ~10⁴ steps: use ≥ 40k steps, or a smaller decay). ``model``
    starts from given weights (default: a fresh ScoreNet drawn from ``key``).
    """
    import optax

    data = _memories(data, "data")
    check_key("key", key)
    steps = check_int("steps", steps, minimum=1)
    lr = float(check_positive("lr", lr))
    ema = float(check_probability("ema", ema, open_high=True))
    batch = min(check_int("batch", batch, minimum=1), data.shape[0])
    chunk = min(check_int("chunk", chunk, minimum=1), steps)
    if steps % chunk:
        raise ValueError(f"steps ({steps}) must be a multiple of chunk ({chunk})")
    eps = _time(eps, "eps")
    init_key, key = jax.random.split(key)
    if model is None:
        model = ScoreNet(key=init_key, dim=data.shape[1])
    else:
        model = _model(model)
        if model.dim != data.shape[1]:
            raise ValueError(f"data has D = {data.shape[1]} but model has D = {model.dim}")
    params, static = eqx.partition(model, eqx.is_inexact_array)
    optimizer = optax.adam(lr)
    state = (params, jax.tree_util.tree_map(jnp.copy, params), optimizer.init(params))
    losses = []
    for k in jax.random.split(key, steps // chunk):
        # decay and eps as arrays: traced, so new values do not recompile
        state, loss = _train_chunk(state, jnp.asarray(data, jnp.float32), k, optimizer=optimizer, chunk=chunk,
                                   batch=batch, decay=jnp.float32(ema), eps=jnp.float32(eps), static=static)
        losses.append(loss)
    params, ema_params, _ = state
    return TrainResult(eqx.combine(params, static), eqx.combine(ema_params, static), jnp.stack(losses))


# --------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------

SAMPLERS = ("tweedie", "reference")


@functools.partial(eqx.filter_jit)
def _sample(model, x, key, times, dts):
    sigma = model.sigma
    score = jax.vmap(model, in_axes=(0, None))

    def step(x, inputs):
        t, dt, k = inputs
        mean = x + sigma**2 * score(x, t) * dt
        return mean + sigma * jnp.sqrt(dt) * jax.random.normal(k, x.shape), None

    n = times.shape[0]
    x, _ = jax.lax.scan(step, x, (times[:-1], dts[:-1], jax.random.split(key, n - 1)))
    return x + sigma**2 * score(x, times[-1]) * dts[-1]  # the last step is noise-free: its mean


def sample(model: ScoreNet, *, key, num: int = 1500, steps: int = 1000, sampler: str = "tweedie",
           eps: float = EPS) -> Float[Array, "N D"]:
    r"""``num`` samples of the reverse VE-SDE (eq. 4.15), :math:`dx=-\sigma^2 s_\theta(x,t)\,dt+\sigma\,d\bar w`,
    by ``steps`` Euler–Maruyama steps from x₁ ~ N(0, σ²I); the last step returns its mean (no noise).

    ``sampler="tweedie"`` (the chapter's): a uniform grid t = 1, 1 − Δ, …, Δ with Δ = 1/steps, so the
    last, noise-free step :math:`x+\sigma^2 t\,s_\theta(x,t)` at t = Δ is Tweedie's denoiser
    E[x₀ | x_t]. ``sampler="reference"``: the notebook's grid ``linspace(1, eps, steps)``; its last
    step at t = ε multiplies the network's score error by Δ/std ≈ 0.3, which sharpens memorized
    points but blurs a manifold.

    This is a reverse-time SDE driven by a learned score, which need not be the gradient of any
    scalar energy, so it is its own ``lax.scan`` rather than :func:`amtutor.hamux.descend` (which
    descends a graph's energy); energy minima are found with :func:`energy_minima`.
    """
    model = _model(model)
    check_key("key", key)
    num = check_int("num", num, minimum=1)
    steps = check_int("steps", steps, minimum=2)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    eps = _time(eps, "eps")
    if sampler == "tweedie":
        dt = 1.0 / steps
        times = jnp.linspace(1.0, dt, steps)
        dts = jnp.full(steps, dt)
    else:
        times = jnp.linspace(1.0, eps, steps)
        dts = jnp.full(steps, (1.0 - eps) / (steps - 1))
    k0, key = jax.random.split(key)
    x = model.sigma * jax.random.normal(k0, (num, model.dim))
    return _sample(model, x, key, times, dts)


# --------------------------------------------------------------------------------------------
# learned energies
# --------------------------------------------------------------------------------------------


@functools.partial(eqx.filter_jit)
def _ray_energy(model, points, t, nodes, weights):
    def one(x):
        s = jax.vmap(lambda u: model(u * x, t))(nodes)  # (n, D)
        return -jnp.sum(weights * (s @ x))
    return jax.lax.map(one, points, batch_size=256)


def ray_energy(model: ScoreNet, points: Float[Array, "N D"], *, t: float, nodes: int = 32) -> Float[Array, " N"]:
    r"""The learned energy in DenseAM units, :math:`E(x)-E(0)=-2\sigma^2t\int_0^1 s_\theta(ux,t)\cdot x\,du`
    (the score is :math:`-\beta\nabla E` with β = 1/(2σ²t)), by ``nodes``-point Gauss–Legendre
    quadrature along the ray from the origin. Exact for a conservative score; fast (one batch of
    network calls)."""
    model = _model(model)
    points = _points("points", points, model.dim, ndim=2)
    t = _time(t)
    nodes = check_int("nodes", nodes, minimum=1)
    u, w = np.polynomial.legendre.leggauss(nodes)
    u, w = (u + 1) / 2, w / 2
    scale = 2.0 * model.sigma**2 * t
    return scale * _ray_energy(model, jnp.asarray(points, jnp.float32), jnp.float32(t), jnp.asarray(u, jnp.float32),
                               jnp.asarray(w, jnp.float32))


@functools.partial(eqx.filter_jit)
def _flow(model, points, memories, t, steps):
    sigma = model.sigma

    def field(x, tau):
        s, jac = model(x, tau), jax.jacfwd(model)(x, tau)
        return -0.5 * sigma**2 * s, 0.5 * sigma**2 * jnp.trace(jac)

    def one(x):
        h = (1.0 - t) / steps

        def rk4(carry, i):
            x, acc = carry
            tau = t + i * h
            k1, a1 = field(x, tau)
            k2, a2 = field(x + 0.5 * h * k1, tau + 0.5 * h)
            k3, a3 = field(x + 0.5 * h * k2, tau + 0.5 * h)
            k4, a4 = field(x + h * k3, tau + h)
            return (x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), acc + h / 6 * (a1 + 2 * a2 + 2 * a3 + a4)), None

        (x1, acc), _ = jax.lax.scan(rk4, (x, 0.0), jnp.arange(steps))
        var = sigma**2  # p1: the data convolved with N(0, σ² · 1)
        log_p1 = jax.nn.logsumexp(-jnp.sum((x1 - memories) ** 2, -1) / (2 * var)) - jnp.log(memories.shape[0]) \
            - 0.5 * x.shape[0] * jnp.log(2 * jnp.pi * var)
        return -(log_p1 - acc)  # −log p_t(x)

    return jax.lax.map(one, points, batch_size=256)


def flow_energy(model: ScoreNet, points: Float[Array, "N D"], memories: Float[Array, "K D"], *, t: float,
                steps: int = 50) -> Float[Array, " N"]:
    r"""The learned energy :math:`-\log p_t(x)` from the probability-flow ODE (the notebook's way):
    carry x from t to 1 along :math:`dx/d\tau=-\tfrac12\sigma^2 s_\theta(x,\tau)` and accumulate
    :math:`\log p_t(x)=\log p_1(x_1)-\int_t^1\tfrac12\sigma^2\,\nabla\cdot s_\theta\,d\tau`
    (instantaneous change of variables; the divergence is the trace of the exact Jacobian), by
    ``steps`` fixed RK4 steps. p₁ is the exact marginal at t = 1, the empirical mixture of the
    training ``memories`` with variance σ², not N(0, σ²). Multiply by 2σ²t for DenseAM units."""
    model = _model(model)
    points = _points("points", points, model.dim, ndim=2)
    memories = _memories(memories)
    if memories.shape[1] != model.dim:
        raise ValueError(f"memories have D = {memories.shape[1]} but the model has D = {model.dim}")
    t = _time(t)
    steps = check_int("steps", steps, minimum=1)
    return _flow(model, jnp.asarray(points, jnp.float32), jnp.asarray(memories, jnp.float32), jnp.float32(t), steps)


# --------------------------------------------------------------------------------------------
# regime metrics
# --------------------------------------------------------------------------------------------


class RegimeMetrics(NamedTuple):
    """Memorization / spurious / generalization measures of samples of a circle model.

    Attributes:
        ang_nn_ratio: median angular distance from a sample to its nearest training point, divided
            by the same median for uniform points on the circle (≈ 0: copies; ≈ 1: as spread as
            the circle itself).
        coverage: fraction of the angle bins that hold at least a quarter of a uniform sample's count.
        off_memory: fraction of samples on the circle (|R − 1| < 0.2) but more than 0.2 rad from every
            training point: new points on the data manifold (spurious states, or generalization).
        radius_error: mean |R − 1| of the samples.
    """

    ang_nn_ratio: float
    coverage: float
    off_memory: float
    radius_error: float


def _angular_nn(angles, memory_angles):
    d = np.abs(angles[:, None] - memory_angles[None, :]) % (2 * np.pi)
    return np.min(np.minimum(d, 2 * np.pi - d), axis=1)


def regime_metrics(samples: Float[Array, "N 2"], memories: Float[Array, "K 2"], *, bins: int = 36,
                   off_angle: float = 0.2, on_circle: float = 0.2) -> RegimeMetrics:
    """The :class:`RegimeMetrics` of ``samples`` from a model trained on ``memories`` (both points
    in the plane). The uniform reference is 3600 equally spaced angles (deterministic)."""
    memories = _memories(memories)
    if memories.shape[1] != 2:
        raise ValueError(f"memories must be points in the plane, shape (K, 2), got {tuple(memories.shape)}")
    samples = np.asarray(_points("samples", samples, 2, ndim=2), np.float64)
    bins = check_int("bins", bins, minimum=1)
    off_angle = float(check_positive("off_angle", off_angle))
    on_circle = float(check_positive("on_circle", on_circle))
    memories = np.asarray(memories, np.float64)
    mem_angles = np.arctan2(memories[:, 1], memories[:, 0])
    angles = np.arctan2(samples[:, 1], samples[:, 0])
    radius = np.linalg.norm(samples, axis=1)
    nn = _angular_nn(angles, mem_angles)
    uniform = np.linspace(-np.pi, np.pi, 3600, endpoint=False)
    ratio = float(np.median(nn) / np.median(_angular_nn(uniform, mem_angles)))
    counts, _ = np.histogram(angles, bins=bins, range=(-np.pi, np.pi))
    coverage = float(np.mean(counts >= 0.25 * len(angles) / bins))
    off = float(np.mean((nn > off_angle) & (np.abs(radius - 1) < on_circle)))
    return RegimeMetrics(ratio, coverage, off, float(np.mean(np.abs(radius - 1))))


# --------------------------------------------------------------------------------------------
# shipped weights
# --------------------------------------------------------------------------------------------


def _weights_path(num_memories: int) -> pathlib.Path:
    return WEIGHTS / f"circle_K{num_memories}.eqx"


def _path(path) -> pathlib.Path:
    if not isinstance(path, (str, pathlib.Path)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    path = pathlib.Path(path)
    if path.suffix != ".eqx":
        raise ValueError(f"path must name an .eqx file (equinox weights), got {str(path)!r}")
    return path


def save_model(model: ScoreNet, path) -> pathlib.Path:
    """Write ``model``'s weights to ``path``, an ``.eqx`` file (equinox leaf serialisation; float32).
    Only default-size networks (``ScoreNet(key=...)``) can be read back by :func:`load_model`."""
    model = _model(model)
    path = _path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    eqx.tree_serialise_leaves(path, model)
    return path


def load_model(num_memories: int, *, path=None) -> ScoreNet:
    """The shipped EMA score network trained on ``num_memories`` ∈ {2, 9, 1000} circle points
    (:func:`circle_data` with its default seed), or the weights at ``path``."""
    num_memories = check_int("num_memories", num_memories, minimum=1)
    if path is None:
        if num_memories not in SHIPPED_K:
            raise ValueError(f"num_memories must be one of the shipped {SHIPPED_K}, got {num_memories} "
                             "(train others with amtutor.diffusion.train)")
        path = _weights_path(num_memories)
    path = _path(path)
    if not path.exists():
        raise ValueError(f"path {path} does not exist: run python -m amtutor.diffusion_train")
    like = ScoreNet(key=jax.random.key(0))
    return eqx.tree_deserialise_leaves(path, like)
