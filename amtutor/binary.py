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
=========================  =====================================  ==========================

Everything here works on the overlaps ``m = memories @ sigma`` (shape ``(K,)``): flipping bit i
changes them by :math:`-2\sigma_i\xi^\mu_i`, so asynchronous recall keeps ``m`` up to date and a
proposed flip costs O(K) instead of the O(KD) of recomputing the energy.

Public functions take one state ``(D,)`` or a batch ``(B, D)`` (batches are ``vmap``-ed) and are
compiled with ``jit``; they run on a GPU when JAX sees one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from jaxtyping import Array, Float

from .validation import (
    as_array,
    check_finite,
    check_int,
    check_key,
    check_pm1,
    check_positive,
    check_probability,
)

__all__ = [
    "Separation",
    "quadratic",
    "power",
    "rectified_power",
    "exponential",
    "log_sum_exp",
    "energy",
    "overlaps",
    "hebbian_weights",
    "hopfield_energy",
    "async_recall",
    "sync_update",
    "sync_recall",
    "is_fixed_point",
    "Recall",
    "RetrievalRate",
    "retrieval_rate",
]


@dataclass(frozen=True)
class Separation:
    r"""A separation function F with its scaling Q, as used in :math:`E = -Q[\sum_\mu F(m_\mu)]`.

    Attributes:
        name: human-readable name, e.g. ``"power n=3"``.
        score: ``m (K,) -> scalar``, an increasing function of :math:`-E` that is safe to evaluate
            in float32 (for the exponential family it is a log-sum-exp). Dynamics compare scores.
        energy_from_score: ``(score, D) -> E``, the energy itself.
        gain: ``(m, delta) -> score(m + delta) - score(m)``, computed so that large signal terms
            do not swamp small ones (used to accept or reject a flip).
    """

    name: str
    score: Callable = field(repr=False)
    energy_from_score: Callable = field(repr=False)
    gain: Callable = field(repr=False)
    params: tuple = ()

    # Frozen dataclasses hash on every field; functions are compared by identity, so two
    # equal-looking separations built by separate calls would recompile. Hash on name and params.
    def __hash__(self):
        return hash((self.name, self.params))

    def __eq__(self, other):
        return isinstance(other, Separation) and (self.name, self.params) == (other.name, other.params)


def _sum_of_F(F: Callable, name: str, params: tuple = ()) -> Separation:
    """Separation with Q = identity: score = sum_mu F(m_mu) and E = -score."""

    def score(m):
        return jnp.sum(F(m))

    def gain(m, delta):
        # Difference per memory first: F(m+d) - F(m) for the one large (retrieved) overlap is
        # exact to float32 precision on its own, and does not eat the small cross-talk terms.
        return jnp.sum(F(m + delta) - F(m))

    return Separation(name, score, lambda s, dim: -s, gain, params)


def quadratic() -> Separation:
    r"""Classical Hopfield: :math:`F(x) = x^2/2`, so :math:`E = -\tfrac12\sigma^\top T\sigma` with the Hebbian T."""
    return _sum_of_F(lambda x: 0.5 * x**2, "quadratic (Hopfield)")


def power(n: int) -> Separation:
    r"""Polynomial DenseAM: :math:`F(x) = x^n/n` (n = 2 is the classical Hopfield network)."""
    n = check_int("n", n, minimum=2)
    return _sum_of_F(lambda x: x**n / n, f"power n={n}", (n,))


def rectified_power(n: int) -> Separation:
    r"""Rectified polynomial: :math:`F(x) = \max(x,0)^n/n`. Negative overlaps cost nothing, so the
    inverted pattern −ξ is no longer a memory."""
    n = check_int("n", n, minimum=2)
    return _sum_of_F(lambda x: jnp.maximum(x, 0.0) ** n / n, f"rectified power n={n}", (n,))


def exponential(beta: float = 1.0) -> Separation:
    r"""Exponential DenseAM (Demircigil et al.): :math:`E = -\sum_\mu e^{\beta(m_\mu - D)}`.

    The textbook energy is :math:`-\sum_\mu e^{\beta m_\mu}`; we multiply it by the constant
    :math:`e^{-\beta D}` so that it fits in float32 (``exp(2304)`` does not). A positive constant
    factor changes no decision, so the dynamics are the textbook ones. Decisions compare
    :math:`\log\sum_\mu e^{\beta m_\mu}`, which never overflows.
    """
    beta = check_positive("beta", beta)

    def score(m):
        return logsumexp(beta * m)

    def gain(m, delta):
        return logsumexp(beta * (m + delta)) - logsumexp(beta * m)

    def energy_from_score(s, dim):
        return -jnp.exp(s - beta * dim)

    return Separation(f"exponential beta={beta:g}", score, energy_from_score, gain, (beta,))


def log_sum_exp(beta: float = 1.0) -> Separation:
    r"""Log-sum-exp energy :math:`E = -\tfrac1\beta\log\sum_\mu e^{\beta m_\mu}` (Q = log).

    A monotone function of the exponential energy, so it has the same fixed points and the same
    asynchronous dynamics, and its values are readable. Stable for any β > 0 (1e4 included).
    """
    beta = check_positive("beta", beta)

    def score(m):
        return logsumexp(beta * m) / beta

    def gain(m, delta):
        return (logsumexp(beta * (m + delta)) - logsumexp(beta * m)) / beta

    return Separation(f"log-sum-exp beta={beta:g}", score, lambda s, dim: -s, gain, (beta,))


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _as_float(x):
    # ±1 data may arrive as int8 (the image cache) or bool-derived ints: compute in float32.
    return jnp.asarray(x) if jnp.issubdtype(x.dtype, jnp.floating) else jnp.asarray(x, dtype=jnp.float32)


def _check_memories(memories):
    memories = as_array("memories", memories, ndim=2)
    if memories.shape[0] == 0:
        raise ValueError("memories is empty: store at least one pattern (shape (K, D) with K >= 1)")
    check_pm1("memories", memories)
    return _as_float(memories)


def _check_state(name, state, dim):
    state = as_array(name, state, ndim=(1, 2))
    if state.shape[-1] != dim:
        raise ValueError(
            f"{name} has {state.shape[-1]} neurons but memories have D = {dim}: shapes must agree "
            f"(got {name} shape {tuple(state.shape)})"
        )
    check_pm1(name, state)
    return _as_float(state)


def _check_separation(separation):
    if not isinstance(separation, Separation):
        raise TypeError(
            "separation must be an amtutor.binary.Separation such as quadratic(), power(3) or "
            f"log_sum_exp(beta=50.0), got {type(separation).__name__}"
        )


def _batched(fn, state, *args):
    """Apply a single-state function to ``state`` of shape (D,) or (B, D)."""
    if state.ndim == 1:
        return fn(state, *args)
    return jax.vmap(fn, in_axes=(0,) + (None,) * len(args))(state, *args)


# --------------------------------------------------------------------------------------------
# Energies
# --------------------------------------------------------------------------------------------


def overlaps(memories, state) -> Float[Array, "... K"]:
    """Overlaps :math:`m_\\mu = \\xi^\\mu\\cdot\\sigma`, shape ``(K,)`` (or ``(B, K)`` for a batch)."""
    memories = _check_memories(memories)
    state = _check_state("state", state, memories.shape[1])
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
    _check_separation(separation)
    memories = _check_memories(memories)
    state = _check_state("state", state, memories.shape[1])
    return _energy(memories, state, separation)


@partial(jax.jit, static_argnums=2)
def _energy(memories, state, separation):
    def one(s):
        return separation.energy_from_score(separation.score(memories @ s), memories.shape[1])

    return _batched(one, state)


def hebbian_weights(memories) -> Float[Array, "D D"]:
    r"""Hebbian coupling matrix :math:`T_{ij} = \sum_\mu \xi^\mu_i\xi^\mu_j`, shape ``(D, D)`` (eq. 2.18)."""
    memories = _check_memories(memories)
    return memories.T @ memories


def hopfield_energy(weights, state) -> Float[Array, "..."]:
    r"""Classical Hopfield energy :math:`-\tfrac12\sigma^\top T\sigma` from a weight matrix ``(D, D)``."""
    weights = as_array("weights", weights, ndim=2)
    check_finite("weights", weights)
    if weights.shape[0] != weights.shape[1]:
        raise ValueError(f"weights must be square (D, D), got shape {tuple(weights.shape)}")
    state = _check_state("state", state, weights.shape[0])
    return -0.5 * jnp.einsum("...i,ij,...j->...", state, jnp.asarray(weights), state)


# --------------------------------------------------------------------------------------------
# Asynchronous dynamics
# --------------------------------------------------------------------------------------------


class Recall(NamedTuple):
    """Result of :func:`async_recall` (leading batch axis ``B`` when queries were batched).

    Attributes:
        state: final state, ``(D,)``.
        energies: energy after each proposed flip, ``(steps,)``; ``energies[0]`` follows the first.
        initial_energy: energy of the query, a scalar.
        snapshots: the state every ``record_every`` steps, ``(steps // record_every + 1, D)``,
            starting with the query itself.
        flips: number of accepted flips, an integer.
    """

    state: jax.Array
    energies: jax.Array
    initial_energy: jax.Array
    snapshots: jax.Array
    flips: jax.Array


def _site_order(key, steps: int, dim: int):
    """Visit sites in sweeps: each sweep is a fresh random permutation of all D neurons."""
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
    snapshots = jnp.concatenate([query[None], snaps], axis=0)
    return Recall(state, energies.reshape(-1), e0, snapshots, flips)


@partial(jax.jit, static_argnames=("separation", "steps", "record_every"))
def _async_batch(memories, queries, keys, separation, steps, record_every):
    memories_t = memories.T
    dim = memories.shape[1]

    def one(query, key):
        return _async_single(memories_t, separation, query, _site_order(key, steps, dim), record_every)

    return jax.vmap(one)(queries, keys)


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
        key: PRNG key for the visiting order (one independent order per query).
        steps: number of proposed flips. Give either ``steps`` or ``sweeps`` (steps = sweeps·D);
            the default is 5 sweeps.
        record_every: keep a snapshot of the state every this many steps (default: once a sweep).
            Must divide ``steps``.

    Returns:
        A :class:`Recall` (each field with a leading ``B`` axis when ``query`` is a batch).
    """
    _check_separation(separation)
    memories = _check_memories(memories)
    dim = memories.shape[1]
    query = _check_state("query", query, dim)
    check_key("key", key)
    if steps is not None and sweeps is not None:
        raise ValueError("give either steps or sweeps, not both")
    if steps is None:
        sweeps = 5 if sweeps is None else check_int("sweeps", sweeps, minimum=1)
        steps = sweeps * dim
    steps = check_int("steps", steps, minimum=1)
    record_every = dim if record_every is None and steps % dim == 0 else (record_every or steps)
    record_every = check_int("record_every", record_every, minimum=1)
    if steps % record_every:
        raise ValueError(f"record_every ({record_every}) must divide steps ({steps})")
    queries = query[None] if query.ndim == 1 else query
    keys = jax.random.split(key, queries.shape[0])
    result = _async_batch(memories, queries.astype(memories.dtype), keys, separation, steps, record_every)
    if query.ndim == 1:
        result = jax.tree_util.tree_map(lambda x: x[0], result)
    return result


# --------------------------------------------------------------------------------------------
# Synchronous dynamics and fixed points
# --------------------------------------------------------------------------------------------


@partial(jax.jit, static_argnums=2)
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
    _check_separation(separation)
    memories = _check_memories(memories)
    state = _check_state("state", state, memories.shape[1])
    return _sync_update(memories, state, separation)


def sync_recall(memories, state, separation: Separation, *, steps: int = 10):
    """Apply :func:`sync_update` ``steps`` times; returns the final state."""
    steps = check_int("steps", steps, minimum=1)
    _check_separation(separation)
    memories = _check_memories(memories)
    state = _check_state("state", state, memories.shape[1])
    return jax.lax.fori_loop(0, steps, lambda _, s: _sync_update(memories, s, separation), state)


@partial(jax.jit, static_argnums=2)
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
    _check_separation(separation)
    memories = _check_memories(memories)
    state = _check_state("state", state, memories.shape[1])
    return _is_fixed_point(memories, state, separation)


# --------------------------------------------------------------------------------------------
# Retrieval experiments over many random draws of memories
# --------------------------------------------------------------------------------------------


class RetrievalRate(NamedTuple):
    """Outcome of :func:`retrieval_rate`, each a fraction of the draws (or a mean over them).

    Attributes:
        exact: the final state equals the stored pattern.
        inverted: the final state equals the inverted pattern −ξ.
        mean_overlap: mean of ξ·σ_final / D (1 for exact, −1 for inverted).
    """

    exact: jax.Array
    inverted: jax.Array
    mean_overlap: jax.Array


@partial(jax.jit, static_argnames=("separation", "num_memories", "num_flips", "steps", "draws"))
def _retrieval_rate(pool, key, separation, num_memories, num_flips, steps, draws):
    num_patterns, dim = pool.shape

    def one_draw(draw_key):
        pick_key, flip_key, order_key = jax.random.split(draw_key, 3)
        chosen = jax.random.choice(pick_key, num_patterns, (num_memories,), replace=False)
        memories = pool[chosen]
        target = memories[0]
        flipped = jnp.argsort(jax.random.uniform(flip_key, (dim,)))[:num_flips]
        query = target.at[flipped].multiply(-1.0)
        order = _site_order(order_key, steps, dim)
        final = _async_single(memories.T, separation, query, order, steps).state
        overlap = final @ target / dim
        return overlap == 1.0, overlap == -1.0, overlap

    exact, inverted, overlap = jax.vmap(one_draw)(jax.random.split(key, draws))
    return RetrievalRate(exact.mean(), inverted.mean(), overlap.mean())


def retrieval_rate(pool, num_memories: int, separation: Separation, *, flip_fraction: float,
                   draws: int, key, sweeps: int = 5) -> RetrievalRate:
    """How often asynchronous recall retrieves a stored pattern from a corrupted copy.

    Each of ``draws`` independent trials stores ``num_memories`` patterns drawn without replacement
    from ``pool``, flips ``round(flip_fraction * D)`` random bits of the first one, runs
    :func:`async_recall` for ``sweeps`` sweeps and compares the result with the stored pattern.

    Args:
        pool: ±1 array ``(P, D)`` to draw memories from (e.g. :func:`amtutor.data.glyph_images`).
        num_memories: K, between 1 and P.
        separation: the energy, e.g. :func:`quadratic`.
        flip_fraction: fraction of bits flipped in the query, in [0, 1].
        draws: number of independent trials.
        key: PRNG key.

    Returns:
        A :class:`RetrievalRate` of scalars.
    """
    _check_separation(separation)
    pool = _check_memories(pool)
    num_memories = check_int("num_memories", num_memories, minimum=1)
    if num_memories > pool.shape[0]:
        raise ValueError(f"num_memories ({num_memories}) exceeds the pool size ({pool.shape[0]})")
    flip_fraction = check_probability("flip_fraction", flip_fraction)
    draws = check_int("draws", draws, minimum=1)
    sweeps = check_int("sweeps", sweeps, minimum=1)
    check_key("key", key)
    num_flips = int(round(flip_fraction * pool.shape[1]))
    return _retrieval_rate(pool, key, separation, num_memories, num_flips, sweeps * pool.shape[1], draws)
