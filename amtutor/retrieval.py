r"""Measuring retrieval: success rates, basins of attraction and storage capacity.

A stored pattern :math:`\xi^\mu` is *retrieved* from a query when asynchronous recall
(:func:`amtutor.binary.async_recall`) started at the query ends exactly on :math:`\xi^\mu`.
Everything here is built on that one definition:

* :func:`retrieval_rate` – how often a pattern drawn with others from an image pool is retrieved
  from a copy with a fraction ``flip_fraction`` of its bits flipped (new draw of memories, cue
  and visiting order each trial),
* :func:`retrieved_exactly` – which of the first ``probes`` stored patterns are retrieved from a
  copy with a fraction ``flip_fraction`` of their bits flipped (one batched recall),
* :func:`basin_curve` – retrieval probability against the fraction of flipped bits (the width of
  the basins of attraction),
* :func:`empirical_capacity` – the largest ``K`` whose random patterns are retrieved with
  probability ≥ ``threshold`` (bisection with :func:`amtutor.capacity.largest_k`),
* :func:`predicted_capacity` – the signal-to-noise prediction for that number (eq. 2.17 with the
  error budget shared among the D bits of a pattern).

With ``flip_fraction = 0`` "retrieved" means "the stored pattern is a fixed point" (no single flip
lowers the energy): recall started there never moves. That case is checked directly with
:func:`amtutor.binary.is_fixed_point`, which needs no simulation.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import ndtri

from . import binary
from .capacity import k_max, largest_k
from .data import binary_patterns, flip_bits
from .validation import (
    as_array,
    check_int,
    check_key,
    check_pm1_memories,
    check_probability,
    check_separation,
)

__all__ = [
    "RetrievalRate",
    "retrieval_rate",
    "retrieved_exactly",
    "basin_curve",
    "empirical_capacity",
    "predicted_capacity",
]


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


@partial(jax.jit, static_argnames=("num_memories", "num_flips", "steps", "draws"))
def _retrieval_rate(pool, key, separation, num_memories, num_flips, steps, draws):
    num_patterns, dim = pool.shape

    def one_draw(draw_key):
        pick_key, flip_key, order_key = jax.random.split(draw_key, 3)
        chosen = jax.random.choice(pick_key, num_patterns, (num_memories,), replace=False)
        memories = pool[chosen]
        target = memories[0]
        flipped = jnp.argsort(jax.random.uniform(flip_key, (dim,)))[:num_flips]
        query = target.at[flipped].multiply(-1.0)
        order = binary.site_order(order_key, steps, dim)
        final = binary.async_recall_in_order(memories, query, separation, order, record_every=steps).final
        overlap = final @ target / dim
        return overlap == 1.0, overlap == -1.0, overlap

    exact, inverted, overlap = jax.vmap(one_draw)(jax.random.split(key, draws))
    return RetrievalRate(exact.mean(), inverted.mean(), overlap.mean())


def retrieval_rate(pool, num_memories: int, separation: binary.Separation, *, flip_fraction: float,
                   draws: int, key, sweeps: int = 5) -> RetrievalRate:
    """How often asynchronous recall retrieves a stored pattern from a corrupted copy.

    Each of ``draws`` independent trials stores ``num_memories`` patterns drawn without replacement
    from ``pool``, flips ``round(flip_fraction * D)`` random bits of the first one, runs
    :func:`~amtutor.binary.async_recall` for ``sweeps`` sweeps and compares the result with the
    stored pattern.

    Args:
        pool: ±1 array ``(P, D)`` to draw memories from (e.g. :func:`amtutor.data.glyph_images`).
        num_memories: K, between 1 and P.
        separation: the energy, e.g. :func:`amtutor.binary.quadratic`.
        flip_fraction: fraction of bits flipped in the query, in [0, 1].
        draws: number of independent trials.
        key: PRNG key.
        sweeps: recall length in sweeps over the D neurons.

    Returns:
        A :class:`RetrievalRate` of scalars.
    """
    check_separation("separation", separation)
    pool = check_pm1_memories("pool", pool)
    num_memories = check_int("num_memories", num_memories, minimum=1)
    if num_memories > pool.shape[0]:
        raise ValueError(f"num_memories ({num_memories}) exceeds the pool size ({pool.shape[0]})")
    flip_fraction = check_probability("flip_fraction", flip_fraction)
    draws = check_int("draws", draws, minimum=1)
    sweeps = check_int("sweeps", sweeps, minimum=1)
    check_key("key", key)
    num_flips = int(round(float(flip_fraction) * pool.shape[1]))
    return _retrieval_rate(pool, key, separation, num_memories, num_flips, sweeps * pool.shape[1], draws)


def _check_probes(probes, num_memories):
    if probes is None:
        return num_memories
    return min(check_int("probes", probes, minimum=1), num_memories)


def retrieved_exactly(
    memories,
    separation: binary.Separation,
    *,
    flip_fraction: float,
    key,
    probes: int | None = None,
    sweeps: int = 3,
) -> jax.Array:
    """Which stored patterns are retrieved exactly from a corrupted copy of themselves.

    Queries are the first ``probes`` rows of ``memories``, each with an exact fraction
    ``flip_fraction`` of its bits flipped (independent flips per query); all queries run in one
    batched :func:`~amtutor.binary.async_recall` of ``sweeps`` sweeps.

    Args:
        memories: ±1 array ``(K, D)``.
        separation: e.g. ``binary.quadratic()``, ``binary.rectified_power(6)``.
        flip_fraction: fraction of bits flipped in each query, in [0, 1].
        key: PRNG key (split for the flips and the visiting order).
        probes: how many patterns to query (default: all K).
        sweeps: recall length in sweeps over the D neurons.

    Returns:
        Boolean array ``(probes,)``: True where recall ended exactly on the stored pattern.
        With ``flip_fraction = 0`` this is :func:`~amtutor.binary.is_fixed_point` of each pattern.
    """
    check_separation("separation", separation)
    memories = check_pm1_memories("memories", memories)
    flip_fraction = float(check_probability("flip_fraction", flip_fraction))
    check_key("key", key)
    probes = _check_probes(probes, memories.shape[0])
    sweeps = check_int("sweeps", sweeps, minimum=1)
    memories = jnp.asarray(memories, jnp.float32)
    targets = memories[:probes]
    if round(flip_fraction * memories.shape[1]) == 0:
        # Recall started on a fixed point never moves, and one that is not moves away for good
        # (a flip that lowers the energy is accepted, and the energy never comes back up).
        return binary.is_fixed_point(memories, targets, separation)
    flip_key, order_key = jax.random.split(key)
    queries = flip_bits(targets, flip_fraction, key=flip_key)
    final = binary.async_recall(memories, queries, separation, key=order_key, sweeps=sweeps).final
    return jnp.all(final == targets, axis=-1)


def basin_curve(
    memories,
    separation: binary.Separation,
    flip_fractions: Sequence[float],
    *,
    key,
    probes: int | None = 100,
    sweeps: int = 3,
) -> np.ndarray:
    """Retrieval probability against the fraction of flipped bits: the profile of the basins.

    For each fraction in ``flip_fractions`` the first ``probes`` stored patterns are queried
    with that fraction of bits flipped (:func:`retrieved_exactly`); the same key is reused for
    every fraction so that the curves differ only through the noise (common random numbers).

    Returns:
        ``(len(flip_fractions),)`` array of success fractions.
    """
    flip_fractions = as_array("flip_fractions", flip_fractions, ndim=1)
    if flip_fractions.size == 0:
        raise ValueError("flip_fractions is empty: give at least one fraction of flipped bits")
    check_key("key", key)
    return np.asarray(
        [
            float(jnp.mean(retrieved_exactly(memories, separation, flip_fraction=float(p), key=key,
                                             probes=probes, sweeps=sweeps)))
            for p in np.asarray(flip_fractions, dtype=float)
        ]
    )


def empirical_capacity(
    separation: binary.Separation,
    dim: int,
    *,
    key,
    k_max: int,
    k_min: int = 1,
    threshold: float = 0.99,
    flip_fraction: float = 0.0,
    probes: int = 100,
    sweeps: int = 3,
    rel_tol: float = 0.0,
) -> int:
    """Largest number K of random ±1 patterns of length ``dim`` retrieved with probability
    ≥ ``threshold``, searched by bisection over ``[k_min, k_max]``.

    The candidate memories for every K are the first K rows of one pool of ``k_max`` random
    patterns, and the probed patterns are the first ``probes`` of them, so a larger K only *adds*
    memories: success falls with K for the same draw (common random numbers), which keeps the
    bisection of :func:`amtutor.capacity.largest_k` consistent.

    With ``flip_fraction = 0`` (default) a pattern counts as retrieved when it is a fixed point of
    the dynamics, which is cheap to test; with ``flip_fraction > 0`` each test runs an
    asynchronous recall (:func:`retrieved_exactly`).
    Note that ``threshold`` applies to the probed patterns: with 100 probes, 0.99 allows one failure.

    Every new K compiles the test afresh (shapes change), so each bisection step costs a fraction
    of a second. ``rel_tol > 0`` trades precision for speed: K is then searched on the geometric
    grid k_min, k_min·(1+rel_tol), … (rounded, up to k_max), and the answer is the largest grid
    value that succeeds, within a factor 1 + rel_tol of the exact capacity.

    Returns:
        The capacity, an int (``k_min - 1`` if even ``k_min`` patterns fail).
    """
    check_separation("separation", separation)
    dim = check_int("dim", dim, minimum=1)
    check_key("key", key)
    k_min = check_int("k_min", k_min, minimum=1)
    k_max = check_int("k_max", k_max, minimum=k_min)
    threshold = check_probability("threshold", threshold, open_low=True)
    flip_fraction = check_probability("flip_fraction", flip_fraction)
    probes = check_int("probes", probes, minimum=1)
    rel_tol = check_probability("rel_tol", rel_tol, high=np.inf)
    pool_key, trial_key = jax.random.split(key)
    pool = binary_patterns(k_max, dim, key=pool_key)

    def is_success(k: int) -> bool:
        success = retrieved_exactly(pool[:k], separation, flip_fraction=flip_fraction, key=trial_key,
                                    probes=probes, sweeps=sweeps)
        return bool(jnp.mean(success) >= threshold)

    if rel_tol == 0.0:
        return largest_k(is_success, k_min, k_max)
    steps = int(np.ceil(np.log(k_max / k_min) / np.log1p(rel_tol))) + 1
    grid = np.unique(np.round(np.geomspace(k_min, k_max, max(steps, 2))).astype(int))
    best = largest_k(lambda i: is_success(int(grid[i - 1])), 1, len(grid))
    return int(grid[best - 1]) if best >= 1 else k_min - 1


def predicted_capacity(n: int, dim, *, threshold: float = 0.99) -> np.ndarray | np.floating:
    r"""Signal-to-noise prediction of :func:`empirical_capacity` (``flip_fraction = 0``) for F(x) = xⁿ/n.

    Eq. (2.17) of the tutorial, :math:`K_{\max} = D^{n-1}/(\epsilon^2 (2n-3)!!)`, bounds the
    probability that *one* bit flips. A pattern is retrieved only when none of its D bits flips,
    which happens with probability about :math:`1 - D\,P(\text{error})`; asking that to be
    ≥ ``threshold`` gives :math:`P(\text{error}) \le (1-\text{threshold})/D` and
    :math:`\epsilon = \Phi^{-1}(1 - (1-\text{threshold})/D)` (one-sided tail, as in eq. 2.15).
    The result grows like :math:`D^{n-1}/\log D`.

    Args:
        n: power of the separation function (n ≥ 2).
        dim: D, a number or an array of them.

    Returns:
        The predicted capacity (float array of the shape of ``dim``).
    """
    n = check_int("n", n, minimum=2)
    dim = np.asarray(as_array("dim", dim), dtype=float)
    if np.any(dim < 2):
        raise ValueError(f"dim must be >= 2, got {dim.min()}")
    threshold = check_probability("threshold", threshold, open_low=True, open_high=True)
    epsilon = ndtri(1.0 - (1.0 - threshold) / dim)
    return k_max(dim, n, epsilon)  # eq. (2.17), written once, in amtutor.capacity
