r"""Associative memories as kernel sums: random features, distributed memory, KDE kernels, log-sum-ReLU.

Every memory energy of the book is a kernel sum (eq. 5.27 of the tutorial),
:math:`E_\beta(v;\Xi) = -Q\big(\sum_\mu \kappa(v, \xi^\mu)\big)` with :math:`\kappa(v,\xi)=F(\beta S[v,\xi])`.
For the distance log-sum-exp energy the kernel is the Gaussian (RBF) kernel,

.. math:: E_\beta(v;\Xi) = -\frac1\beta\log\sum_\mu e^{-\frac\beta2\lVert v-\xi^\mu\rVert^2}
          = -\frac1\beta\log\sum_\mu \kappa(\sqrt\beta\,v, \sqrt\beta\,\xi^\mu),
   \qquad \kappa(x, y) = e^{-\frac12\lVert x-y\rVert^2}.

* **Random features** (Bochner's theorem; Rahimi & Recht): a shift-invariant kernel is the Fourier
  transform of a probability measure, :math:`\kappa(x-y)=\mathbb E_\omega[\cos\omega\cdot(x-y)]`, so
  Y frequencies drawn from that measure give a feature map φ with
  :math:`\langle\varphi(x),\varphi(y)\rangle\approx\kappa(x,y)`, error :math:`O(Y^{-1/2})`
  (:func:`random_features`, :class:`RandomFeatures`).
* **Distributed memory** (DrDAM): :math:`T=\sum_\mu\varphi(\sqrt\beta\,\xi^\mu)\in\mathbb R^Y` stores
  every memory in one vector and :math:`\tilde E(v) = -\beta^{-1}\log\langle\varphi(\sqrt\beta v), T\rangle`
  approximates the energy with O(Y) parameters instead of O(DK) (:func:`distributed_memory`,
  :class:`DistributedMemorySynapse`, :func:`distributed_graph`); :func:`lse_graph` is the exact model.
  Both are HAMUX graphs (:func:`amtutor.hamux.state_energy_graph`): descend them with
  :func:`amtutor.hamux.descend` (``dt`` = the step α), or many queries at once with :func:`descent`.
* **KDE kernels** (Fig. 5.7): the eight kernels, their scale μ_κ and regularity R_κ by quadrature
  and their efficiency relative to Epanechnikov (:func:`kernel_constants`, :func:`kernel_efficiency`,
  :func:`kde`, :func:`optimal_bandwidth`).
* **Log-sum-ReLU** (eq. 5.38): the Epanechnikov energy :func:`lsr_energy`, its exact one-step
  retrieval :func:`lsr_step`, and :func:`lsr_minima`, which lists every local minimum exactly.
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float
from scipy import integrate

from . import hamux
from .lagrangians import Softmax
from .validation import (as_array, as_float_array, check_fits_float, check_int, check_key, check_positive,
                         check_probability)

__all__ = [
    "rbf_kernel",
    "RandomFeatures",
    "random_features",
    "feature_kernel",
    "feature_error",
    "distributed_memory",
    "DistributedMemorySynapse",
    "distributed_graph",
    "lse_graph",
    "lse_energy",
    "distributed_energy",
    "kernel_sum_estimate",
    "descent",
    "divergence",
    "drdam_step_limit",
    "drdam_bound",
    "KDE_KERNELS",
    "KernelConstants",
    "kernel_constants",
    "kernel_efficiency",
    "kde",
    "optimal_bandwidth",
    "lsr_energy",
    "lsr_step",
    "LSRMinima",
    "lsr_minima",
    "grid_minima",
    "count_grid_minima",
]

LAYER = hamux.STATE_LAYER  # the state's layer in lse_graph and distributed_graph
FEATURE_KINDS = ("cos", "cos_sin", "positive")
SPECTRA = ("gaussian", "laplacian")
# A kernel-sum estimate at or below this is treated as "no support" by the distributed energy:
# the log is taken of max(estimate, FLOOR) (the tutorial clips at the same value).
FLOOR = 1e-10


def _beta(beta):
    beta = check_positive("beta", beta)
    check_fits_float("beta", beta, jnp.float32)
    return beta


def _points(name, x, dim=None, ndim=(1, 2), *, against="the memories (or features)"):
    x = as_float_array(name, x, ndim=ndim)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"{name} must be points with at least one coordinate (shape (..., D)), "
                         f"got shape {tuple(x.shape)}")
    if 0 in x.shape:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): give at least one point")
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(f"{name} has {x.shape[-1]} coordinates but {against} have D = {dim}")
    return x


def _c2(c2):
    return float(check_probability("c2", c2, open_low=True, open_high=True))


def _memories(memories):
    memories = _points("memories", memories, ndim=2)
    if memories.shape[0] == 0:
        raise ValueError("memories is empty: store at least one pattern (shape (K, D) with K >= 1)")
    return memories


def rbf_kernel(x: Float[Array, "*N D"], y: Float[Array, "*N D"], *, beta: float = 1.0) -> Float[Array, "*N"]:
    r"""The Gaussian (RBF) kernel :math:`\kappa_\beta(x,y)=e^{-\frac\beta2\lVert x-y\rVert^2}`
    (broadcast over leading axes): the kernel of the distance log-sum-exp energy."""
    y = _points("y", y, ndim=None)
    x = _points("x", x, y.shape[-1], ndim=None, against="y")
    beta = _beta(beta)
    return jnp.exp(-0.5 * beta * jnp.sum((x - y) ** 2, axis=-1))


# --------------------------------------------------------------------------------------------
# Random features
# --------------------------------------------------------------------------------------------


class RandomFeatures(eqx.Module):
    r"""A random feature map :math:`\varphi:\mathbb R^D\to\mathbb R^{Y'}` with
    :math:`\langle\varphi(x),\varphi(y)\rangle\approx\kappa(x-y)`; build it with :func:`random_features`.

    ``kind``:

    * ``"cos"``: :math:`\sqrt{2/Y}\,[\cos(\omega_i\cdot x+b_i)]_{i\le Y}`, :math:`b_i\sim U(0,2\pi)`.
      The phase must be uniform over a whole period: then
      :math:`2\cos(a+b)\cos(c+b)=\cos(a-c)+\cos(a+c+2b)` averages to :math:`\cos(a-c)`. With the
      tutorial's :math:`b\sim U(0,1)` (eq. 5.30) the second term does not vanish, and its
      :math:`1/\sqrt Y` prefactor halves the kernel; Rahimi & Recht's :math:`U(0,2\pi)` and
      :math:`\sqrt{2/Y}` are the correct pair.
    * ``"cos_sin"``: :math:`\frac1{\sqrt Y}[\cos\omega_i\cdot x, \sin\omega_i\cdot x]` (2Y entries);
      :math:`\langle\varphi(x),\varphi(y)\rangle=\frac1Y\sum_i\cos\omega_i\cdot(x-y)` exactly, no phase.
    * ``"positive"`` (Performer, FAVOR+; Gaussian kernel only):
      :math:`\frac{e^{-\lVert x\rVert^2}}{\sqrt{2Y}}[e^{\omega_i\cdot x}, e^{-\omega_i\cdot x}]`, whose
      inner products are positive, so the kernel-sum estimate never goes negative.

    Attributes:
        frequencies: ``(Y, D)`` frequencies ω_i drawn from the kernel's spectral measure.
        phases: ``(Y,)`` phases b_i (``"cos"`` only; zeros otherwise).
    """

    frequencies: Float[Array, "Y D"]
    phases: Float[Array, " Y"]
    kind: str = eqx.field(static=True)

    def __init__(self, frequencies, phases, kind: str):
        frequencies = as_float_array("frequencies", frequencies, ndim=2)
        if 0 in frequencies.shape:
            raise ValueError(f"frequencies must be (Y, D) with Y, D >= 1, got shape {tuple(frequencies.shape)}")
        phases = as_float_array("phases", phases, ndim=1)
        if phases.shape[0] != frequencies.shape[0]:
            raise ValueError(f"phases must have one entry per frequency ({frequencies.shape[0]}), "
                             f"got shape {tuple(phases.shape)}")
        if not isinstance(kind, str) or kind not in FEATURE_KINDS:
            raise ValueError(f"kind must be one of {FEATURE_KINDS}, got {kind!r}")
        self.frequencies, self.phases, self.kind = frequencies, phases, kind

    @property
    def dim(self) -> int:
        """D, the input dimension."""
        return self.frequencies.shape[1]

    @property
    def size(self) -> int:
        """Y', the number of features (Y for ``"cos"``, 2Y otherwise)."""
        y = self.frequencies.shape[0]
        return y if self.kind == "cos" else 2 * y

    def __call__(self, x: Float[Array, "*N D"]) -> Float[Array, "*N Yp"]:
        if x.shape[-1] != self.dim:
            raise ValueError(f"x has {x.shape[-1]} coordinates but the features were drawn for D = {self.dim}")
        y = self.frequencies.shape[0]
        proj = x @ self.frequencies.T  # (..., Y)
        if self.kind == "cos":
            return jnp.sqrt(2.0 / y) * jnp.cos(proj + self.phases)
        if self.kind == "cos_sin":
            return jnp.concatenate([jnp.cos(proj), jnp.sin(proj)], axis=-1) / jnp.sqrt(y)
        # one exponent per entry, so that e^{-|x|^2} and e^{±ω·x} never overflow separately
        half_sq = jnp.sum(x**2, axis=-1, keepdims=True)
        return jnp.concatenate([jnp.exp(proj - half_sq), jnp.exp(-proj - half_sq)], axis=-1) / jnp.sqrt(2.0 * y)


def random_features(dim: int, num_features: int, *, key, kind: str = "cos_sin",
                    spectrum: str = "gaussian") -> RandomFeatures:
    r"""Draw a random feature map for a shift-invariant kernel (Bochner's theorem).

    Args:
        dim: D, the input dimension.
        num_features: Y, the number of frequencies (the map has Y entries for ``"cos"``, 2Y otherwise).
        key: PRNG key (keyword only).
        kind: ``"cos_sin"`` (default), ``"cos"`` or ``"positive"`` (see :class:`RandomFeatures`).
        spectrum: the kernel, through its spectral measure:

            * ``"gaussian"``: :math:`\kappa(x,y)=e^{-\frac12\lVert x-y\rVert^2}`, ω ~ N(0, I_D)
              (the Fourier transform of a Gaussian is a Gaussian);
            * ``"laplacian"``: :math:`\kappa(x,y)=e^{-\lVert x-y\rVert_1}`, each ω_j standard Cauchy
              (the Fourier transform of :math:`e^{-|t|}` is :math:`1/(\pi(1+\omega^2))`).

    For the kernel :math:`e^{-\frac\beta2\lVert x-y\rVert^2}` feed the map :math:`\sqrt\beta\,x`.
    """
    dim = check_int("dim", dim, minimum=1)
    num_features = check_int("num_features", num_features, minimum=1, maximum=10**8,
                             why="(frequencies held in memory)")
    check_key("key", key)
    if kind not in FEATURE_KINDS:
        raise ValueError(f"kind must be one of {FEATURE_KINDS}, got {kind!r}")
    if spectrum not in SPECTRA:
        raise ValueError(f"spectrum must be one of {SPECTRA}, got {spectrum!r}")
    if kind == "positive" and spectrum != "gaussian":
        raise ValueError("kind='positive' (Performer features) exists for the Gaussian kernel only: "
                         "use spectrum='gaussian'")
    if num_features * dim > 2 * 10**8:
        raise ValueError(f"num_features × dim = {num_features * dim:,} frequencies is too many to hold in memory")
    k_freq, k_phase = jax.random.split(key)
    if spectrum == "gaussian":
        freq = jax.random.normal(k_freq, (num_features, dim))
    else:
        freq = jax.random.cauchy(k_freq, (num_features, dim))
    if kind == "cos":
        phases = jax.random.uniform(k_phase, (num_features,), maxval=2 * jnp.pi)
    else:
        phases = jnp.zeros((num_features,))
    return RandomFeatures(freq, phases, kind)


def _check_features(features):
    if not isinstance(features, RandomFeatures):
        raise TypeError(f"features must be an amtutor.kernels.RandomFeatures (from random_features), "
                        f"got {type(features).__name__}")
    return features


def feature_kernel(features: RandomFeatures, x: Float[Array, "*N D"], y: Float[Array, "*N D"]) -> Float[Array, "*N"]:
    r"""The random-feature estimate :math:`\langle\varphi(x),\varphi(y)\rangle` of the kernel."""
    features = _check_features(features)
    x = _points("x", x, features.dim, ndim=None)
    y = _points("y", y, features.dim, ndim=None)
    return jnp.sum(features(x) * features(y), axis=-1)


def feature_error(dim: int, num_features: int, *, key, pairs: int = 256, draws: int = 4,
                  kind: str = "cos_sin") -> float:
    r"""Root-mean-square error of the random-feature estimate of the Gaussian kernel
    :math:`e^{-\frac12\lVert x-y\rVert^2}`, over ``pairs`` random pairs and ``draws`` independent feature
    maps (one key for everything).

    The pairs are x, y ~ N(0, I/D), so that ‖x − y‖² ≈ 2 and the kernel ≈ e⁻¹ at every D. For one
    pair the estimate is a mean of Y bounded terms, so the error falls like :math:`Y^{-1/2}`; the
    :math:`\sqrt{D/Y}` of eq. 5.29 bounds the *largest* error over a whole region instead."""
    dim = check_int("dim", dim, minimum=1)
    num_features = check_int("num_features", num_features, minimum=1)
    check_key("key", key)
    pairs = check_int("pairs", pairs, minimum=1, maximum=10**5)
    draws = check_int("draws", draws, minimum=1, maximum=1000)
    k_x, k_y, k_f = jax.random.split(key, 3)
    x = jax.random.normal(k_x, (pairs, dim)) / np.sqrt(dim)
    y = jax.random.normal(k_y, (pairs, dim)) / np.sqrt(dim)
    exact = jnp.exp(-0.5 * jnp.sum((x - y) ** 2, axis=-1))
    squared = 0.0
    for k in jax.random.split(k_f, draws):
        features = random_features(dim, num_features, key=k, kind=kind)
        squared += float(jnp.mean((jnp.sum(features(x) * features(y), axis=-1) - exact) ** 2))
    return float(np.sqrt(squared / draws))


# --------------------------------------------------------------------------------------------
# Distributed memory (DrDAM) and the exact log-sum-exp memory
# --------------------------------------------------------------------------------------------


def distributed_memory(features: RandomFeatures, memories: Float[Array, "K D"], *, beta: float) -> Float[Array, " Yp"]:
    r""":math:`T=\sum_\mu\varphi(\sqrt\beta\,\xi^\mu)`: every memory superposed in one vector of Y' numbers.

    A new memory is stored by adding its features (``T + features(sqrt(beta) * xi)``); the memories
    themselves are no longer needed at inference."""
    features = _check_features(features)
    memories = _memories(memories)
    if memories.shape[1] != features.dim:
        raise ValueError(f"memories have D = {memories.shape[1]} but the features were drawn for D = {features.dim}")
    beta = _beta(beta)
    return jnp.sum(features(jnp.sqrt(beta) * memories), axis=0)


class DistributedMemorySynapse(hamux.Synapse):
    r"""The distributed-memory energy on one state,
    :math:`\tilde E(v) = -\frac1\beta\log\max\big(\langle\varphi(\sqrt\beta\,v), T\rangle, \epsilon\big)`.

    **Non-positive estimates.** With trigonometric features the estimate
    :math:`\langle\varphi(\sqrt\beta v),T\rangle` of the kernel sum is unbiased but noisy, and far
    from every memory, where the true sum is tiny, it is often ≤ 0, where the log is undefined. There the energy is
    clipped to :math:`-\log(\epsilon)/\beta` with ε = ``floor`` (1e-10) and its gradient is zero: a
    query in such a region does not move. :func:`kernel_sum_estimate` shows where this happens;
    ``"positive"`` features never produce it.

    Attributes:
        features: the :class:`RandomFeatures` (their frequencies are the synapse's fixed weights).
        trace: T, ``(Y',)``, from :func:`distributed_memory` (trainable).
        beta: inverse temperature.
        floor: ε.
    """

    features: RandomFeatures
    trace: Float[Array, " Yp"]
    beta: Float[Array, ""]
    floor: float = eqx.field(static=True)
    arity = 1

    def __init__(self, features: RandomFeatures, trace, *, beta: float, floor: float = FLOOR):
        self.features = _check_features(features)
        trace = as_float_array("trace", trace, ndim=1)
        if trace.shape[0] != features.size:
            raise ValueError(f"trace has {trace.shape[0]} entries but the features have {features.size}")
        self.trace = trace
        self.beta = jnp.asarray(_beta(beta), jnp.float32)
        self.floor = float(check_positive("floor", floor))

    def estimate(self, v: Float[Array, " D"]) -> Float[Array, ""]:
        """The kernel-sum estimate ⟨φ(√β v), T⟩."""
        return self.features(jnp.sqrt(self.beta) * v) @ self.trace

    def __call__(self, vhat):
        return -jnp.log(jnp.maximum(self.estimate(vhat), self.floor)) / self.beta

    def check(self, shapes, names):
        (s,), (n,) = shapes, names
        if s != (self.features.dim,):
            raise ValueError(f"features drawn for D = {self.features.dim} need layer {n!r} to have shape "
                             f"({self.features.dim},), got {tuple(s)}")


def lse_graph(memories: Float[Array, "K D"], *, beta: float) -> hamux.Graph:
    r"""The exact model, :math:`E_\beta(v;\Xi)=-\frac1\beta\log\sum_\mu e^{-\frac\beta2\lVert v-\xi^\mu\rVert^2}`,
    as a graph of one layer ``"v"`` (:func:`amtutor.hamux.state_energy_graph`: the library's one memory
    synapse with similarity −½‖v − ξ‖² and a ``Softmax(beta)`` separation). ``descend`` with
    ``dt = α`` takes the steps :math:`v\leftarrow v-\alpha\nabla E_\beta`."""
    memories = _memories(memories)
    synapse = hamux.MemorySynapse(memories, Softmax(_beta(beta)), similarity="negative_squared_distance")
    return hamux.state_energy_graph(memories.shape[1], {"memories": synapse})


def distributed_graph(features: RandomFeatures, trace, *, beta: float, floor: float = FLOOR) -> hamux.Graph:
    r"""The distributed model :math:`\tilde E(v)` (:class:`DistributedMemorySynapse`) as a graph of one
    layer ``"v"``, to descend with :func:`amtutor.hamux.descend` beside :func:`lse_graph`."""
    synapse = DistributedMemorySynapse(features, trace, beta=beta, floor=floor)
    return hamux.state_energy_graph(features.dim, {"distributed memory": synapse})


@eqx.filter_jit
def _graph_energy(graph, v):
    one = lambda x: graph.energy({LAYER: x})  # noqa: E731
    # lax.map in batches: a grid of states times 2^16 features would not fit in memory at once
    return one(v) if v.ndim == 1 else jax.lax.map(one, v, batch_size=64)


def lse_energy(memories: Float[Array, "K D"], v: Float[Array, "*B D"], *, beta: float) -> Float[Array, "*B"]:
    """The exact energy :math:`E_\\beta(v;\\Xi)` of :func:`lse_graph` at one state ``(D,)`` or a batch ``(B, D)``."""
    memories = _memories(memories)
    v = _points("v", v, memories.shape[1])
    return _graph_energy(lse_graph(memories, beta=beta), v)


def distributed_energy(features: RandomFeatures, trace, v: Float[Array, "*B D"], *, beta: float,
                       floor: float = FLOOR) -> Float[Array, "*B"]:
    r"""The distributed energy :math:`\tilde E(v)` at one state ``(D,)`` or a batch ``(B, D)``."""
    graph = distributed_graph(features, trace, beta=beta, floor=floor)
    v = _points("v", v, features.dim)
    return _graph_energy(graph, v)


def kernel_sum_estimate(features: RandomFeatures, trace, v: Float[Array, "*B D"], *, beta: float) -> Float[Array, "*B"]:
    r""":math:`\langle\varphi(\sqrt\beta v),T\rangle`, the estimate of :math:`\sum_\mu e^{-\frac\beta2\lVert v-\xi^\mu\rVert^2}`
    (≤ 0 where the distributed energy is clipped)."""
    synapse = DistributedMemorySynapse(features, trace, beta=beta)
    v = _points("v", v, features.dim)
    return synapse.estimate(v) if v.ndim == 1 else jax.lax.map(synapse.estimate, v, batch_size=64)


@functools.partial(jax.jit, static_argnames=("steps", "record"))
def _descent(graph, queries, alpha, *, steps, record):
    def one(q):
        run = hamux.descend(graph, {LAYER: q}, dt=alpha, steps=steps, record_every=1 if record else None)
        return run.states[LAYER] if record else run.final[LAYER]
    return jax.vmap(one)(queries)


def descent(graph: hamux.Graph, queries: Float[Array, "B D"], *, alpha: float, steps: int,
            record: bool = False) -> Float[Array, "B ..."]:
    r"""Energy descent :math:`v\leftarrow v-\alpha\nabla E(v)` of many queries at once on a one-layer
    graph (:func:`lse_graph`, :func:`distributed_graph`): :func:`amtutor.hamux.descend` under
    ``jax.vmap`` and ``jax.jit``.

    Returns the final states ``(B, D)``, or with ``record=True`` every state ``(B, steps + 1, D)``."""
    if not isinstance(graph, hamux.Graph) or list(graph.layers) != [LAYER]:
        raise TypeError(f"graph must be a one-layer graph with layer {LAYER!r} (lse_graph, distributed_graph)")
    dim = graph.layers[LAYER].shape[-1]
    queries = _points("queries", queries, dim, ndim=2)
    alpha = _beta_like("alpha", alpha)
    steps = check_int("steps", steps, minimum=1)
    out = _descent(graph, queries, jnp.float32(alpha), steps=steps, record=bool(record))
    if not bool(jnp.all(jnp.isfinite(out))):
        raise ValueError(f"the descent diverged (non-finite states): lower alpha (got {alpha})")
    return out


def divergence(memories: Float[Array, "K D"], features: RandomFeatures, queries: Float[Array, "B D"], *,
               beta: float, alpha: float, steps: int) -> Float[Array, " B"]:
    r""":math:`\lVert f_\Xi(q)-f_T(q)\rVert` for each query: the distance between the outputs of
    ``steps`` descent steps of size ``alpha`` on the exact energy and on the distributed one."""
    memories = _memories(memories)
    trace = distributed_memory(features, memories, beta=beta)
    exact = descent(lse_graph(memories, beta=beta), queries, alpha=alpha, steps=steps)
    approx = descent(distributed_graph(features, trace, beta=beta), queries, alpha=alpha, steps=steps)
    return jnp.linalg.norm(exact - approx, axis=-1)


def _beta_like(name, value):
    value = check_positive(name, value)
    check_fits_float(name, value, jnp.float32)
    return float(value)


def drdam_step_limit(num_memories: int, *, beta: float, steps: int, c2: float = 0.5) -> float:
    r"""The largest step α for which the DrDAM divergence bound holds (Hoover et al. 2024, Cor. 1, as
    quoted in the tutorial's notebook): :math:`\alpha\le C_2/\big(T(1+2K\beta e^{\beta/2})\big)`, C₂ ∈ (0, 1)."""
    num_memories = check_int("num_memories", num_memories, minimum=1)
    beta = _beta(beta)
    steps = check_int("steps", steps, minimum=1)
    c2 = _c2(c2)
    # in log space: e^{β/2} overflows float64 for β > 1419
    log_denominator = np.log(steps) + np.logaddexp(0.0, np.log(2 * num_memories * beta) + beta / 2)
    return float(c2 * np.exp(-log_denominator))


def drdam_bound(energy, *, beta: float, c1: float, c2: float = 0.5):
    r"""The DrDAM bound on :math:`\lVert f_\Xi(q)-f_T(q)\rVert` (exact vs distributed descent output),
    :math:`\frac{C_1C_2\,e^{E_\beta(q;\Xi)-1/2}}{\beta(1-C_2)}`, valid for a step within
    :func:`drdam_step_limit` and a kernel error :math:`\le C_1\sqrt{D/Y}` (Hoover et al. 2024, Cor. 1,
    in the form the tutorial's notebook quotes it).

    Args:
        energy: :math:`E_\beta(q;\Xi)` of each query (array).
        beta: inverse temperature.
        c1: the kernel-error constant C₁ (measure it: sup |κ − ⟨φ, φ⟩| × √(Y/D)).
        c2: the step constant C₂ ∈ (0, 1) used in :func:`drdam_step_limit`.
    """
    energy = as_float_array("energy", energy)
    if energy.size == 0:
        raise ValueError("energy is empty: give the energy of at least one query")
    beta = _beta(beta)
    c1 = check_positive("c1", c1, allow_zero=True)
    c2 = _c2(c2)
    return c1 * c2 * jnp.exp(energy - 0.5) / (beta * (1.0 - c2))


# --------------------------------------------------------------------------------------------
# Kernel density estimation
# --------------------------------------------------------------------------------------------

# The kernels of Fig. 5.7, unnormalised, as in the figure; each formula takes the array module
# (numpy for float64 quadrature, jax.numpy for the estimates) so that it is written once.
KDE_KERNELS = {
    "epanechnikov": lambda u, xp: xp.maximum(1 - u**2, 0.0),
    "gaussian": lambda u, xp: xp.exp(-(u**2)),
    "triangle": lambda u, xp: xp.maximum(1 - xp.abs(u), 0.0),
    "uniform": lambda u, xp: xp.where(1 - u**2 >= 0, 1.0, 0.0),
    "cosine": lambda u, xp: xp.cos(xp.pi / 2 * xp.minimum(xp.abs(u), 1.0)),
    "quartic": lambda u, xp: xp.maximum(1 - u**2, 0.0) ** 2,
    "triweight": lambda u, xp: xp.maximum(1 - u**2, 0.0) ** 3,
    "tricube": lambda u, xp: xp.maximum(1 - xp.abs(u) ** 3, 0.0) ** 3,
}
_COMPACT = {name: name != "gaussian" for name in KDE_KERNELS}


def _kernel_name(kernel):
    if kernel not in KDE_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(KDE_KERNELS)}, got {kernel!r}")
    return kernel


class KernelConstants(NamedTuple):
    """Constants of a KDE kernel κ normalised to integrate to 1 (eq. 5.33)."""

    mass: float  # ∫κ of the unnormalised formula
    scale: float  # μ_κ = ∫ u² κ(u) du
    regularity: float  # R_κ = ∫ κ(u)² du


@functools.lru_cache(maxsize=None)
def _constants(kernel):
    f = lambda u: float(KDE_KERNELS[kernel](np.float64(u), np))  # noqa: E731
    # the compact kernels have kinks at 0 and ±1: integrate each smooth piece on its own
    pieces = [(-1.0, 0.0), (0.0, 1.0)] if _COMPACT[kernel] else [(-np.inf, 0.0), (0.0, np.inf)]

    def integral(g):
        return sum(integrate.quad(g, a, b, epsabs=1e-13, epsrel=1e-12, limit=200)[0] for a, b in pieces)

    mass = integral(f)
    scale = integral(lambda u: u * u * f(u)) / mass
    regularity = integral(lambda u: f(u) ** 2) / mass**2
    return KernelConstants(mass, scale, regularity)


def kernel_constants(kernel: str) -> KernelConstants:
    r"""Mass, scale :math:`\mu_\kappa=\int u^2\kappa` and regularity :math:`R_\kappa=\int\kappa^2` of the
    normalised kernel, by adaptive quadrature in float64 (scipy)."""
    return _constants(_kernel_name(kernel))


def kernel_efficiency(kernel: str) -> float:
    r"""Efficiency relative to Epanechnikov, :math:`\frac{\sqrt{\mu_E}R_E}{\sqrt{\mu_\kappa}R_\kappa}` (scale-invariant).

    The optimal AMISE (eq. 5.37) is :math:`\frac54(\mu_\kappa R_\kappa^2)^{2/5}(\int p''^2)^{1/5}K^{-4/5}`,
    so a kernel of efficiency e needs 1/e times as many samples as Epanechnikov for the same error."""
    c, e = kernel_constants(kernel), kernel_constants("epanechnikov")
    return float(np.sqrt(e.scale) * e.regularity / (np.sqrt(c.scale) * c.regularity))


def kde(sample: Float[Array, " K"], points: Float[Array, " P"], *, kernel: str = "epanechnikov",
        bandwidth: float) -> Float[Array, " P"]:
    r"""The kernel density estimate :math:`\hat p_h(v)=\frac1{Kh}\sum_\mu\kappa\big(\frac{v-\xi^\mu}h\big)`
    (eq. 5.32) of a 1-D ``sample`` at ``points``, κ normalised to integrate to 1."""
    kernel = _kernel_name(kernel)
    sample = as_float_array("sample", sample, ndim=1)
    if sample.shape[0] == 0:
        raise ValueError("sample is empty: give at least one point")
    points = as_float_array("points", points, ndim=1)
    if points.shape[0] == 0:
        raise ValueError("points is empty: give at least one point to evaluate the density at")
    h = _beta_like("bandwidth", bandwidth)
    u = (points[:, None] - sample[None, :]) / h
    values = KDE_KERNELS[kernel](u, jnp) / kernel_constants(kernel).mass
    return jnp.mean(values, axis=1) / h


def optimal_bandwidth(kernel: str, num_samples: int, roughness: float) -> float:
    r"""The AMISE-optimal bandwidth :math:`h^*=\big(\frac{R_\kappa}{K\mu_\kappa^2\int p''^2}\big)^{1/5}` (eq. 5.36).

    ``roughness`` is :math:`\int p''(v)^2dv` of the true density (for N(0, σ²): 3/(8√π σ⁵))."""
    c = kernel_constants(kernel)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    roughness = _beta_like("roughness", roughness)
    return float((c.regularity / (num_samples * c.scale**2 * roughness)) ** 0.2)


# --------------------------------------------------------------------------------------------
# The log-sum-ReLU (Epanechnikov) energy
# --------------------------------------------------------------------------------------------


def _lsr_weights(memories, v, beta):
    # ReLU(1 - β/2 |v - ξ|²) for every memory: (..., K)
    sq = jnp.sum((v[..., None, :] - memories) ** 2, axis=-1)
    return jnp.maximum(1.0 - 0.5 * beta * sq, 0.0)


def lsr_energy(memories: Float[Array, "K D"], v: Float[Array, "*B D"], *, beta: float) -> Float[Array, "*B"]:
    r"""The log-sum-ReLU energy :math:`E(v)=-\log\sum_\mu\mathrm{ReLU}\big(1-\frac\beta2\lVert v-\xi^\mu\rVert^2\big)`
    (eq. 5.38): +inf where no memory's support (radius :math:`\sqrt{2/\beta}`) covers v."""
    memories = _memories(memories)
    v = _points("v", v, memories.shape[1], ndim=None)
    beta = _beta(beta)
    return -jnp.log(jnp.sum(_lsr_weights(memories, v, beta), axis=-1))


def lsr_step(memories: Float[Array, "K D"], v: Float[Array, "*B D"], *, beta: float) -> Float[Array, "*B D"]:
    r"""One retrieval step of the log-sum-ReLU memory: v moves to the mean of the memories whose
    support contains it.

    Where the set A of covering memories is fixed the energy is :math:`-\log(|A|-\frac\beta2\sum_{\mu\in A}\lVert v-\xi^\mu\rVert^2)`,
    whose only stationary point is the mean of A; the step is the gradient step of size
    :math:`\eta=S(v)/(\beta|A|)` (S the kernel sum). From a point covered by one memory only, one
    step lands exactly on that memory (log-sum-exp needs β → ∞ for this). Points that no memory
    covers (infinite energy) are returned unchanged.
    """
    memories = _memories(memories)
    v = _points("v", v, memories.shape[1], ndim=None)
    beta = _beta(beta)
    covered = (_lsr_weights(memories, v, beta) > 0).astype(v.dtype)  # (..., K)
    count = jnp.sum(covered, axis=-1, keepdims=True)
    mean = covered @ memories / jnp.maximum(count, 1.0)
    return jnp.where(count > 0, mean, v)


class LSRMinima(NamedTuple):
    """Every local minimum of a log-sum-ReLU energy (from :func:`lsr_minima`)."""

    points: Float[Array, "M D"]  # the minima
    preserved: Bool[Array, " M"]  # True: the minimum is a stored memory; False: a novel (emergent) one
    members: tuple  # for each minimum, the indices of the memories whose mean it is

    @property
    def num_preserved(self) -> int:
        return int(np.sum(np.asarray(self.preserved)))

    @property
    def num_novel(self) -> int:
        return int(np.sum(~np.asarray(self.preserved)))


def lsr_minima(memories: Float[Array, "K D"], *, beta: float, max_memories: int = 16) -> LSRMinima:
    r"""All local minima of :func:`lsr_energy`, exactly, by enumerating the sets of covering memories.

    Where the set A of memories covering v is fixed, E is convex with its minimum at the mean of A;
    crossing into another support only adds a term that grows inward, which never makes a minimum.
    So the minima are exactly the means :math:`c_A` of the non-empty sets A that cover their own mean
    and nothing else: :math:`\lVert c_A-\xi^\mu\rVert^2<2/\beta` for μ ∈ A and ≥ 2/β for μ ∉ A.
    A one-element A is a preserved memory, a larger one a novel minimum. The cost is :math:`2^K`
    (``max_memories`` guards it); :func:`count_grid_minima` is a brute-force check.
    """
    memories = np.asarray(_memories(memories), np.float64)
    beta = float(_beta(beta))
    k = memories.shape[0]
    check_int("K (the number of memories)", k, maximum=check_int("max_memories", max_memories, minimum=1),
              why="(2^K subsets are enumerated)")
    radius_sq = 2.0 / beta
    points, preserved, members = [], [], []
    for size in range(1, k + 1):
        for subset in itertools.combinations(range(k), size):
            centre = memories[list(subset)].mean(axis=0)
            sq = np.sum((memories - centre) ** 2, axis=1)
            inside = sq < radius_sq
            if inside[list(subset)].all() and inside.sum() == size:
                points.append(centre)
                preserved.append(size == 1)
                members.append(subset)
    dim = memories.shape[1]
    return LSRMinima(jnp.asarray(np.reshape(points, (-1, dim)), jnp.float32), jnp.asarray(preserved, bool),
                     tuple(members))


def grid_minima(energies: Float[Array, "*grid"]) -> Bool[Array, "*grid"]:
    """Brute force: True at each finite grid point strictly lower than all its neighbours (2 in 1-D,
    8 in 2-D); edge points are never minima. ``energies``: a 1-D or 2-D grid of energy values
    (+inf allowed, for unsupported points; NaN refused)."""
    e = np.asarray(as_array("energies", energies), np.float64)
    if e.ndim not in (1, 2):
        raise ValueError(f"energies must be a 1-D or 2-D grid, got shape {e.shape}")
    if np.isnan(e).any():
        raise ValueError("energies contains NaN (+inf, for unsupported points, is allowed)")
    if min(e.shape) < 3:
        raise ValueError(f"energies must have at least 3 points along each axis, got shape {e.shape}")
    core = e[(slice(1, -1),) * e.ndim]
    is_min = np.isfinite(core)
    for shift in itertools.product((-1, 0, 1), repeat=e.ndim):
        if any(shift):
            index = tuple(slice(1 + s, e.shape[i] - 1 + s) for i, s in enumerate(shift))
            is_min &= core < e[index]
    out = np.zeros(e.shape, bool)
    out[(slice(1, -1),) * e.ndim] = is_min
    return out


def count_grid_minima(energies: Float[Array, "*grid"]) -> int:
    """The number of :func:`grid_minima` of a 1-D or 2-D grid of energies."""
    return int(grid_minima(energies).sum())
