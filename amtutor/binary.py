r"""Discrete dense associative memory with ±1 neurons (chapters 1–3).

The energy of a state :math:`\sigma \in \{\pm1\}^D` given memories :math:`\xi^\mu \in \{\pm1\}^D`
(the rows of ``memories``, shape ``(K, D)``) is

.. math:: E(\sigma) = -Q\Big[\sum_{\mu=1}^K F(m_\mu)\Big], \qquad m_\mu = \xi^\mu\cdot\sigma,

with a *separation function* F and a monotone *scaling* Q (eq. 2.23 of the tutorial). A
:class:`Separation` bundles the two. Ready-made ones:

=========================  =====================================  ==========================
constructor                energy                                 capacity (random patterns)
=========================  =====================================  ==========================
``quadratic()``            :math:`-\tfrac12\sum_\mu m_\mu^2`      ~ D (classical Hopfield)
``power(n)``               :math:`-\tfrac1n\sum_\mu m_\mu^n`      ~ D^(n-1)
``rectified_power(n)``     :math:`-\tfrac1n\sum_\mu \max(m_\mu,0)^n`  ~ D^(n-1), no inverted states
``exponential(beta)``      :math:`-\sum_\mu e^{\beta (m_\mu - D)}`  ~ 2^(D/2)
``log_sum_exp(beta)``      :math:`-\tfrac1\beta\log\sum_\mu e^{\beta m_\mu}`  same dynamics as exponential
``sum_of(F, name=...)``    :math:`-\sum_\mu F(m_\mu)`, your own F  depends on F
=========================  =====================================  ==========================

Separations are pytrees (:class:`equinox.Module`): β is an array leaf, so a new β reuses the
compiled code, and a custom F is compared by identity, never by its name.

Everything here works on the overlaps ``m = memories @ sigma`` (shape ``(K,)``): flipping bit i
changes them by :math:`-2\sigma_i\xi^\mu_i`, so asynchronous recall keeps ``m`` up to date and a
proposed flip costs O(K) instead of the O(KD) of recomputing the energy.

Public functions take one state ``(D,)`` or a batch ``(B, D)`` (batches are ``vmap``-ed) and are
compiled with ``jit``; they run on a GPU when JAX sees one. Input checks are the shared ones of
:mod:`amtutor.validation`; retrieval experiments over many draws live in :mod:`amtutor.retrieval`.
"""

from __future__ import annotations

import abc
from functools import partial
from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .lagrangians import log_sum_exp as _log_sum_exp
from .validation import (
    as_array,
    check_finite,
    check_int,
    check_key,
    check_pm1_memories,
    check_pm1_state,
    check_positive,
    check_separation,
)

__all__ = [
    "Separation",
    "Quadratic",
    "Power",
    "RectifiedPower",
    "Exponential",
    "LogSumExp",
    "SumOf",
    "quadratic",
    "power",
    "rectified_power",
    "exponential",
    "log_sum_exp",
    "sum_of",
    "energy",
    "overlaps",
    "hebbian_weights",
    "hopfield_energy",
    "site_order",
    "async_recall",
    "async_recall_in_order",
    "sync_update",
    "sync_recall",
    "is_fixed_point",
    "Recall",
]


class Separation(eqx.Module):
    r"""A separation function F with its scaling Q, as used in :math:`E = -Q[\sum_\mu F(m_\mu)]`.

    A separation is an :class:`equinox.Module`, i.e. a pytree: numeric parameters (β) are float32
    array leaves, so jitted code traces them (a new β does not recompile) and ``jax.grad`` can
    differentiate through them; integers (the power n) and functions (a custom F) are static
    fields, compared by value and by identity respectively. Never a name: two different F with the
    same name are two different separations.

    Methods (``m`` are the overlaps :math:`\xi^\mu\cdot\sigma`, shape ``(K,)``):

    * ``score(m)``: a scalar increasing function of :math:`-E`, safe to evaluate in float32 (for
      the exponential family it is a log-sum-exp). Dynamics compare scores.
    * ``energy_from_score(score, dim)``: the energy itself, from the score and D.
    * ``gain(m, delta)``: ``score(m + delta) - score(m)``, computed so that large signal terms do
      not swamp small ones (used to accept or reject a flip).
    * ``name``: a human-readable label, e.g. ``"power n=3"``.

    Build one with :func:`quadratic`, :func:`power`, :func:`rectified_power`, :func:`exponential`,
    :func:`log_sum_exp`, or your own F with :func:`sum_of`.
    """

    @abc.abstractmethod
    def score(self, m: Float[Array, "K"]) -> Float[Array, ""]:
        raise NotImplementedError

    def energy_from_score(self, score: Float[Array, ""], dim) -> Float[Array, ""]:
        return -score

    def gain(self, m: Float[Array, "K"], delta: Float[Array, "K"]) -> Float[Array, ""]:
        return self.score(m + delta) - self.score(m)

    @property
    def name(self) -> str:
        return type(self).__name__

    def __hash__(self):
        # Equinox hashes a module by its fields, which fails on array leaves. Hash on the structure
        # (type and static fields: n, a custom F by identity) and the *values* of the leaves, so
        # that code passing a separation as a static jit argument stays correct (one compilation
        # per distinct separation). Separations passed as pytrees need no hash at all.
        leaves, treedef = jax.tree_util.tree_flatten(self)
        return hash((treedef, tuple(np.asarray(leaf).tobytes() for leaf in leaves)))


class _SumOfF(Separation):
    """Q = identity: score = Σ_μ F(m_μ) and E = −score. Subclasses define the elementwise ``F``."""

    def F(self, x):
        raise NotImplementedError

    def score(self, m):
        return jnp.sum(self.F(m))

    def gain(self, m, delta):
        # Difference per memory first: F(m+d) - F(m) for the one large (retrieved) overlap is
        # exact to float32 precision on its own, and does not eat the small cross-talk terms.
        return jnp.sum(self.F(m + delta) - self.F(m))


class Quadratic(_SumOfF):
    """F(x) = x²/2: the classical Hopfield network."""

    def F(self, x):
        return 0.5 * x**2

    @property
    def name(self) -> str:
        return "quadratic (Hopfield)"


class _Homogeneous(_SumOfF):
    """A power separation (F(c·x) = cⁿ F(x) for c > 0), scored so that it never overflows.

    Overlaps reach D, so F(D) = Dⁿ/n leaves float32 (3.4e38) quickly: power(15) at D = 500 is
    2e39. When the largest overlap would make F exceed about 2^96, every overlap is divided by a
    power of two 2^k first (exact in floating point, so the rounding is unchanged) and the result
    is multiplied back by 2^(kn) with ``ldexp``. A gain too large for float32 then comes back as
    ±inf with the right sign, so flip decisions (which compare the sign only) stay exact, while an
    energy beyond float32 is ±inf (:func:`energy` refuses to return it). Below 2^96 nothing is
    scaled, so every result there is bit-for-bit what the plain formula gives.
    """

    n: int = eqx.field(static=True)

    def __init__(self, n: int):
        self.n = check_int("n", n, minimum=2)

    def _exponent(self, *overlaps):
        largest = jnp.max(jnp.stack([jnp.max(jnp.abs(m)) for m in overlaps] + [jnp.float32(1)]))
        exponent = jnp.ceil(jnp.log2(largest) - 96.0 / self.n)
        return jax.lax.stop_gradient(jnp.maximum(exponent, 0.0)).astype(jnp.int32)

    def _sum_scaled(self, terms, exponent):
        # 0 * 2^(kn) is an exact tie (0), never the NaN of 0 * inf.
        return jnp.where(terms == 0, 0.0, jnp.ldexp(terms, exponent * self.n))

    def score(self, m):
        k = self._exponent(m)
        return self._sum_scaled(jnp.sum(self.F(jnp.ldexp(m, -k))), k)

    def gain(self, m, delta):
        k = self._exponent(m, m + delta)
        x, y = jnp.ldexp(m, -k), jnp.ldexp(m + delta, -k)
        return self._sum_scaled(jnp.sum(self.F(y) - self.F(x)), k)


class Power(_Homogeneous):
    """F(x) = xⁿ/n (n >= 2, a static field)."""

    def F(self, x):
        return x**self.n / self.n

    @property
    def name(self) -> str:
        return f"power n={self.n}"


class RectifiedPower(_Homogeneous):
    """F(x) = max(x, 0)ⁿ/n (n >= 2, a static field)."""

    def F(self, x):
        return jnp.maximum(x, 0.0) ** self.n / self.n

    @property
    def name(self) -> str:
        return f"rectified power n={self.n}"


class SumOf(_SumOfF):
    """A separation from any elementwise F: E = −Σ_μ F(m_μ). F is a static field, compared by
    identity (two different functions never share compiled code, whatever their names)."""

    function: Callable = eqx.field(static=True)
    label: str = eqx.field(static=True)

    def __init__(self, function: Callable, label: str):
        if not callable(function):
            raise TypeError(f"F (function) must be a function of the overlaps, got {type(function).__name__}")
        if not isinstance(label, str):
            raise TypeError(f"name (label) must be a string, got {type(label).__name__}")
        self.function = function
        self.label = label

    def F(self, x):
        return self.function(x)

    @property
    def name(self) -> str:
        return self.label


def _beta_leaf(beta) -> Float[Array, ""]:
    return jnp.asarray(check_positive("beta", beta), dtype=jnp.float32)


def _beta_label(beta) -> str:
    return "" if isinstance(beta, jax.core.Tracer) else f" beta={float(beta):g}"


class _LogSumExpFamily(Separation):
    """Scores the smooth maximum (1/β) log Σ_μ exp(β m_μ), stable for any β > 0."""

    beta: Float[Array, ""]

    def __init__(self, beta=1.0):
        self.beta = _beta_leaf(beta)

    def score(self, m):
        return _log_sum_exp(m, self.beta)

    def gain(self, m, delta):
        return _log_sum_exp(m + delta, self.beta) - _log_sum_exp(m, self.beta)


class Exponential(_LogSumExpFamily):
    """E = −Σ_μ exp(β(m_μ − D)); β is a float32 leaf."""

    def energy_from_score(self, score, dim):
        return -jnp.exp(self.beta * (score - dim))

    @property
    def name(self) -> str:
        return "exponential" + _beta_label(self.beta)


class LogSumExp(_LogSumExpFamily):
    """E = −(1/β) log Σ_μ exp(β m_μ); β is a float32 leaf."""

    @property
    def name(self) -> str:
        return "log-sum-exp" + _beta_label(self.beta)


def quadratic() -> Separation:
    r"""Classical Hopfield: :math:`F(x) = x^2/2`, so :math:`E = -\tfrac12\sigma^\top T\sigma` with the Hebbian T."""
    return Quadratic()


def power(n: int) -> Separation:
    r"""Polynomial DenseAM: :math:`F(x) = x^n/n` (n = 2 is the classical Hopfield network)."""
    return Power(n)


def rectified_power(n: int) -> Separation:
    r"""Rectified polynomial: :math:`F(x) = \max(x,0)^n/n`. Negative overlaps cost nothing, so the
    inverted pattern −ξ is no longer a memory."""
    return RectifiedPower(n)


def exponential(beta: float | Array = 1.0) -> Separation:
    r"""Exponential DenseAM (Demircigil et al.): :math:`E = -\sum_\mu e^{\beta(m_\mu - D)}`.

    The textbook energy is :math:`-\sum_\mu e^{\beta m_\mu}`; we multiply it by the constant
    :math:`e^{-\beta D}` so that it fits in float32 (``exp(2304)`` does not). A positive constant
    factor changes no decision, so the dynamics are the textbook ones. Decisions compare
    :math:`\tfrac1\beta\log\sum_\mu e^{\beta m_\mu}` (:func:`amtutor.lagrangians.log_sum_exp`),
    which never overflows. β is stored as a float32 array: changing it does not recompile.
    """
    return Exponential(beta)


def log_sum_exp(beta: float | Array = 1.0) -> Separation:
    r"""Log-sum-exp energy :math:`E = -\tfrac1\beta\log\sum_\mu e^{\beta m_\mu}` (Q = log).

    A monotone function of the exponential energy, so it has the same fixed points and the same
    asynchronous dynamics, and its values are readable. Stable for any β > 0 (1e4 included).
    β is stored as a float32 array: changing it does not recompile.
    """
    return LogSumExp(beta)


def sum_of(F: Callable, *, name: str | None = None) -> Separation:
    r"""Your own separation function: :math:`E = -\sum_\mu F(m_\mu)` for an elementwise ``F``.

    ``F`` maps an array of overlaps to an array of the same shape, in JAX (e.g.
    ``lambda x: x**4 / 4``). It is compared by identity: two different functions are two
    different energies even under the same ``name`` (which only labels plots).

    Example::

        quartic = binary.sum_of(lambda x: x**4 / 4, name="x^4/4")
        binary.energy(memories, state, quartic)
    """
    return SumOf(F, getattr(F, "__name__", "F") if name is None else name)


# --------------------------------------------------------------------------------------------
# Input checks (the shared checks live in amtutor.validation)
# --------------------------------------------------------------------------------------------


def _check_separation(separation):
    """Kept for :mod:`amtutor.continuous`; new code calls :func:`amtutor.validation.check_separation`."""
    return check_separation("separation", separation)


def _batched(fn, state, *args):
    """Apply a single-state function to ``state`` of shape (D,) or (B, D)."""
    if state.ndim == 1:
        return fn(state, *args)
    return jax.vmap(fn, in_axes=(0,) + (None,) * len(args))(state, *args)


# --------------------------------------------------------------------------------------------
# Energies
# --------------------------------------------------------------------------------------------


def _memories(memories):
    return check_pm1_memories("memories", memories)


def _state(name, state, memories):
    return check_pm1_state(name, state, memories.shape[1])


def overlaps(memories, state) -> Float[Array, "... K"]:
    """Overlaps :math:`m_\\mu = \\xi^\\mu\\cdot\\sigma`, shape ``(K,)`` (or ``(B, K)`` for a batch)."""
    memories = _memories(memories)
    state = _state("state", state, memories)
    return state @ memories.T


def energy(memories, state, separation: Separation) -> Float[Array, "..."]:
    """Energy :math:`E(\\sigma) = -Q[\\sum_\\mu F(\\xi^\\mu\\cdot\\sigma)]` of one state or a batch.

    Args:
        memories: ±1 array ``(K, D)``.
        state: ±1 array ``(D,)`` or ``(B, D)``.
        separation: e.g. :func:`quadratic`, :func:`power`, :func:`log_sum_exp`.

    Returns:
        A scalar, or shape ``(B,)`` for a batch.
    """
    check_separation("separation", separation)
    memories = _memories(memories)
    state = _state("state", state, memories)
    result = _energy(memories, state, separation)
    if not bool(jnp.all(jnp.isfinite(result))):
        raise ValueError(
            f"the energy of {separation.name} at D = {memories.shape[1]} is beyond float32's range "
            "(|E| > 3.4e38; power separations reach K·Dⁿ/n): use a smaller D or n, or compare "
            "states with async_recall / is_fixed_point, whose flip decisions stay exact at any size"
        )
    return result


@jax.jit
def _energy(memories, state, separation):
    def one(s):
        return separation.energy_from_score(separation.score(memories @ s), memories.shape[1])

    return _batched(one, state)


def hebbian_weights(memories) -> Float[Array, "D D"]:
    r"""Hebbian coupling matrix :math:`T_{ij} = \sum_\mu \xi^\mu_i\xi^\mu_j`, shape ``(D, D)`` (eq. 2.18)."""
    memories = _memories(memories)
    return memories.T @ memories


def hopfield_energy(weights, state) -> Float[Array, "..."]:
    r"""Classical Hopfield energy :math:`-\tfrac12\sigma^\top T\sigma` from a weight matrix ``(D, D)``."""
    weights = as_array("weights", weights, ndim=2)
    check_finite("weights", weights)
    if weights.shape[0] != weights.shape[1]:
        raise ValueError(f"weights must be square (D, D), got shape {tuple(weights.shape)}")
    state = check_pm1_state("state", state, weights.shape[0], against="weights")
    return -0.5 * jnp.einsum("...i,ij,...j->...", state, jnp.asarray(weights), state)


# --------------------------------------------------------------------------------------------
# Asynchronous dynamics
# --------------------------------------------------------------------------------------------


class Recall(NamedTuple):
    """Result of :func:`async_recall` (leading batch axis ``B`` when queries were batched).

    Attributes:
        final: final state, ``(D,)``.
        energies: the query's energy, then the energy after each proposed flip, ``(steps + 1,)``.
            An energy beyond float32's range (e.g. ``power(15)`` at D = 500, where Dⁿ/n ≈ 2e39)
            is recorded as −inf; the flips themselves are still decided exactly.
        snapshots: the state every ``record_every`` steps, ``(steps // record_every + 1, D)``,
            starting with the query itself.
        flips: number of accepted flips, an integer.
    """

    final: jax.Array
    energies: jax.Array
    snapshots: jax.Array
    flips: jax.Array


def site_order(key, steps: int, dim: int) -> Int[Array, "steps"]:
    """The visiting order of :func:`async_recall`: ``steps`` sites in sweeps over the ``dim``
    neurons, each sweep a fresh random permutation. Returns an int array ``(steps,)``."""
    check_key("key", key)
    steps = check_int("steps", steps, minimum=1)
    dim = check_int("dim", dim, minimum=1)
    return _site_order(key, steps, dim)


def _site_order(key, steps: int, dim: int):
    sweeps = -(-steps // dim)
    keys = jax.random.split(key, sweeps)
    order = jax.vmap(lambda k: jax.random.permutation(k, dim))(keys).reshape(-1)
    return order[:steps]


def _async_single(memories_t, separation, query, order, record_every):
    """Asynchronous recall of one query, visiting the sites in ``order`` (shape (steps,)).

    ``memories_t`` is ``(D, K)``: row i holds bit i of every memory, so a flip reads one row.
    """
    dim = memories_t.shape[0]

    def propose(carry, site):
        state, m, flips = carry
        delta = -2.0 * state[site] * memories_t[site]  # change of every overlap, O(K)
        accept = separation.gain(m, delta) > 0  # strictly lower energy; ties keep the bit
        state = state.at[site].set(jnp.where(accept, -state[site], state[site]))
        m = jnp.where(accept, m + delta, m)
        e = separation.energy_from_score(separation.score(m), dim)
        return (state, m, flips + accept), e

    def chunk(carry, sites):
        carry, energies = jax.lax.scan(propose, carry, sites)
        return carry, (energies, carry[0])

    m0 = query @ memories_t
    steps = order.shape[0]
    carry = (query, m0, jnp.zeros((), jnp.int32))
    (state, _, flips), (energies, snaps) = jax.lax.scan(
        chunk, carry, order.reshape(steps // record_every, record_every)
    )
    e0 = separation.energy_from_score(separation.score(m0), dim)
    energies = jnp.concatenate([e0[None], energies.reshape(-1)])
    snapshots = jnp.concatenate([query[None], snaps], axis=0)
    return Recall(state, energies, snapshots, flips)


@partial(jax.jit, static_argnames=("steps", "record_every"))
def _async_batch(memories, queries, keys, separation, steps, record_every):
    memories_t = memories.T
    dim = memories.shape[1]

    def one(query, key):
        return _async_single(memories_t, separation, query, _site_order(key, steps, dim), record_every)

    return jax.vmap(one)(queries, keys)


@partial(jax.jit, static_argnames=("record_every",))
def _async_ordered(memories, query, order, separation, record_every):
    return _async_single(memories.T, separation, query, order, record_every)


def _check_record_every(record_every, steps, dim):
    if record_every is None:
        record_every = dim if steps % dim == 0 else steps
    record_every = check_int("record_every", record_every, minimum=1)
    if steps % record_every:
        raise ValueError(f"record_every ({record_every}) must divide steps ({steps})")
    return record_every


def async_recall(
    memories,
    query,
    separation: Separation,
    *,
    key,
    steps: int | None = None,
    sweeps: int | None = None,
    record_every: int | None = None,
) -> Recall:
    """Asynchronous recall: propose single-bit flips, keep each one that lowers the energy.

    This is update (2.2) of the tutorial in its exact form (no Taylor expansion): bit i takes
    whichever sign gives the lower energy with all other bits clamped. The energy therefore never
    increases. Sites are visited in sweeps, each a random permutation of the D neurons.

    Args:
        memories: ±1 array ``(K, D)``, one stored pattern per row.
        query: ±1 starting state ``(D,)`` or a batch ``(B, D)``.
        separation: e.g. ``quadratic()``, ``rectified_power(6)``, ``log_sum_exp(50.0)``.
        key: PRNG key for the visiting order. It is split into one key per query (B keys for a
            batch, one for a single query) and query i visits ``site_order(keys[i], steps, D)``.
        steps: number of proposed flips. Give either ``steps`` or ``sweeps`` (steps = sweeps·D);
            the default is 5 sweeps.
        record_every: keep a snapshot of the state every this many steps (default: once a sweep
            when ``steps`` is a whole number of sweeps, else only the start and the end).
            Must be >= 1 and divide ``steps``.

    Returns:
        A :class:`Recall` (each field with a leading ``B`` axis when ``query`` is a batch).
    """
    check_separation("separation", separation)
    memories = _memories(memories)
    dim = memories.shape[1]
    query = _state("query", query, memories)
    check_key("key", key)
    if steps is not None and sweeps is not None:
        raise ValueError("give either steps or sweeps, not both")
    if steps is None:
        sweeps = 5 if sweeps is None else check_int("sweeps", sweeps, minimum=1)
        steps = sweeps * dim
    steps = check_int("steps", steps, minimum=1)
    record_every = _check_record_every(record_every, steps, dim)
    queries = query[None] if query.ndim == 1 else query
    keys = jax.random.split(key, queries.shape[0])
    result = _async_batch(memories, queries.astype(memories.dtype), keys, separation, steps, record_every)
    if query.ndim == 1:
        result = jax.tree_util.tree_map(lambda x: x[0], result)
    return result


def async_recall_in_order(memories, query, separation: Separation, order, *,
                          record_every: int | None = None) -> Recall:
    """Asynchronous recall of one query ``(D,)`` visiting the sites ``order`` (ints ``(steps,)``).

    The same dynamics as :func:`async_recall`, with the visiting order given explicitly: e.g.
    ``site_order(key, steps, D)`` (what :func:`async_recall` uses), or ``jnp.arange(D)`` for one
    sweep in reading order. Works under ``jit``/``vmap`` (``memories``, ``query`` and ``order``
    may be traced). ``record_every`` as in :func:`async_recall`.
    """
    check_separation("separation", separation)
    memories = _memories(memories)
    query = check_pm1_state("query", query, memories.shape[1], ndim=1)
    order = as_array("order", order, ndim=1)
    if not np.issubdtype(order.dtype, np.integer):
        raise TypeError(f"order must hold integer site indices, got dtype {order.dtype}")
    steps = check_int("steps (the length of order)", order.shape[0], minimum=1)
    record_every = _check_record_every(record_every, steps, memories.shape[1])
    return _async_ordered(memories, query.astype(memories.dtype), jnp.asarray(order), separation, record_every)


# --------------------------------------------------------------------------------------------
# Synchronous dynamics and fixed points
# --------------------------------------------------------------------------------------------


@jax.jit
def _sync_update(memories, state, separation):
    def one(s):
        # Local field h = d score / d sigma (an increasing function of -E), taken by autodiff of
        # the energy itself: for F = x^n/n it is sum_mu xi^mu f(m_mu), the standard form (2.3).
        field = jax.grad(lambda x: separation.score(memories @ x))(s)
        return jnp.where(field == 0, s, jnp.sign(field))

    return _batched(one, state)


def sync_update(memories, state, separation: Separation):
    """One synchronous update: every bit at once takes the sign of its local field.

    :math:`\\sigma_i \\leftarrow \\mathrm{sign}\\big(\\sum_\\mu \\xi^\\mu_i f(m_\\mu)\\big)`, with f = F'
    obtained by differentiating the energy. Unlike asynchronous updates, synchronous ones can
    oscillate between two states (the energy need not decrease). A zero field keeps the bit.
    """
    check_separation("separation", separation)
    memories = _memories(memories)
    state = _state("state", state, memories)
    return _sync_update(memories, state, separation)


def sync_recall(memories, state, separation: Separation, *, steps: int = 10):
    """Apply :func:`sync_update` ``steps`` times; returns the final state."""
    steps = check_int("steps", steps, minimum=1)
    check_separation("separation", separation)
    memories = _memories(memories)
    state = _state("state", state, memories)
    return jax.lax.fori_loop(0, steps, lambda _, s: _sync_update(memories, s, separation), state)


@jax.jit
def _is_fixed_point(memories, state, separation):
    def one(s):
        m = memories @ s
        deltas = -2.0 * s[:, None] * memories.T  # (D, K): overlap change for each single flip
        gains = jax.vmap(separation.gain, in_axes=(None, 0))(m, deltas)
        return jnp.all(gains <= 0)

    # One state at a time (lax.map, not vmap): each needs a (D, K) array of gains, and a batch of
    # them at once would need B times that memory (1.5 GB for 100 images against 1,629).
    return one(state) if state.ndim == 1 else jax.lax.map(one, state)


def is_fixed_point(memories, state, separation: Separation):
    """True where no single-bit flip lowers the energy (the state is stable under async recall).

    Costs O(KD) time and memory per state; a batch is processed one state after another.
    Returns a boolean scalar, or ``(B,)`` for a batch.
    """
    check_separation("separation", separation)
    memories = _memories(memories)
    state = _state("state", state, memories)
    return _is_fixed_point(memories, state, separation)
