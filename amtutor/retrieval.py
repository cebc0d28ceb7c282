r"""Measuring retrieval: success rates, basins of attraction and storage capacity.

A stored pattern :math:`\xi^\mu` is *retrieved* from a query when asynchronous recall
(:func:`amtutor.binary.async_recall`) started at the query ends exactly on :math:`\xi^\mu`.
Everything here is built on that one definition (:func:`amtutor.binary.retrieval_rate` measures
it over random draws of memories from an image pool):

* :func:`retrieval_success` – which of the first ``probes`` stored patterns are retrieved from a
  copy with a fraction ``noise`` of their bits flipped (one batched recall),
* :func:`basin_curve` – retrieval probability against the fraction of flipped bits (the width of
  the basins of attraction),
* :func:`capacity` – the largest ``K`` whose random patterns are retrieved with probability
  ≥ ``threshold`` (bisection with :func:`amtutor.capacity.largest_k`),
* :func:`predicted_capacity` – the signal-to-noise prediction for that number (eq. 2.17 with the
  error budget shared among the D bits of a pattern).

With ``noise = 0`` "retrieved" means "the stored pattern is a fixed point" (no single flip lowers
the energy): recall started there never moves. That case is checked directly with
:func:`amtutor.binary.is_fixed_point`, which needs no simulation.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import factorial2, ndtri

from . import binary
from .capacity import largest_k
from .data import binary_patterns, flip_bits
from .validation import as_array, check_int, check_key, check_pm1, check_probability

__all__ = [
    "retrieval_success",
    "basin_curve",
    "capacity",
    "predicted_capacity",
]


def _check_probes(probes, num_memories):
    if probes is None:
        return num_memories
    return min(check_int("probes", probes, minimum=1), num_memories)


def retrieval_success(
    memories,
    separation: binary.Separation,
    *,
    noise: float,
    key,
    probes: int | None = None,
    sweeps: int = 3,
) -> jax.Array:
    """Which stored patterns are retrieved exactly from a corrupted copy of themselves.

    Queries are the first ``probes`` rows of ``memories``, each with an exact fraction ``noise``
    of its bits flipped (independent flips per query); all queries run in one batched
    :func:`~amtutor.binary.async_recall` of ``sweeps`` sweeps.

    Args:
        memories: ±1 array ``(K, D)``.
        separation: e.g. ``binary.quadratic()``, ``binary.rectified_power(6)``.
        noise: fraction of bits flipped in each query, in [0, 1].
        key: PRNG key (split for the flips and the visiting order).
        probes: how many patterns to query (default: all K).
        sweeps: recall length in sweeps over the D neurons.

    Returns:
        Boolean array ``(probes,)``: True where recall ended exactly on the stored pattern.
        With ``noise = 0`` this is :func:`~amtutor.binary.is_fixed_point` of each pattern.
    """
    memories = as_array("memories", memories, ndim=2)
    check_pm1("memories", memories)
    noise = check_probability("noise", noise)
    check_key("key", key)
    probes = _check_probes(probes, memories.shape[0])
    sweeps = check_int("sweeps", sweeps, minimum=1)
    memories = jnp.asarray(memories, jnp.float32)
    targets = memories[:probes]
    if round(noise * memories.shape[1]) == 0:
        # Recall started on a fixed point never moves, and one that is not moves away for good
        # (a flip that lowers the energy is accepted, and the energy never comes back up).
        return binary.is_fixed_point(memories, targets, separation)
    flip_key, order_key = jax.random.split(key)
    queries = flip_bits(targets, noise, key=flip_key)
    final = binary.async_recall(memories, queries, separation, key=order_key, sweeps=sweeps).state
    return jnp.all(final == targets, axis=-1)


def basin_curve(
    memories,
    separation: binary.Separation,
    noises: Sequence[float],
    *,
    key,
    probes: int | None = 100,
    sweeps: int = 3,
) -> np.ndarray:
    """Retrieval probability against the fraction of flipped bits: the profile of the basins.

    For each ``noise`` in ``noises`` the first ``probes`` stored patterns are queried with that
    fraction of bits flipped (:func:`retrieval_success`); the same key is reused for every noise
    level so that the curves differ only through the noise (common random numbers).

    Returns:
        ``(len(noises),)`` array of success fractions.
    """
    noises = as_array("noises", noises, ndim=1)
    if noises.size == 0:
        raise ValueError("noises is empty: give at least one fraction of flipped bits")
    check_key("key", key)
    return np.asarray(
        [
            float(jnp.mean(retrieval_success(memories, separation, noise=float(p), key=key, probes=probes, sweeps=sweeps)))
            for p in np.asarray(noises, dtype=float)
        ]
    )


def capacity(
    separation: binary.Separation,
    dim: int,
    *,
    key,
    k_max: int,
    k_min: int = 1,
    threshold: float = 0.99,
    noise: float = 0.0,
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

    With ``noise = 0`` (default) a pattern counts as retrieved when it is a fixed point of the
    dynamics, which is cheap to test; with ``noise > 0`` each test runs an asynchronous recall.
    Note that ``threshold`` applies to the probed patterns: with 100 probes, 0.99 allows one failure.

    Every new K compiles the test afresh (shapes change), so each bisection step costs a fraction
    of a second. ``rel_tol > 0`` trades precision for speed: K is then searched on the geometric
    grid k_min, k_min·(1+rel_tol), … (rounded, up to k_max), and the answer is the largest grid
    value that succeeds, within a factor 1 + rel_tol of the exact capacity.

    Returns:
        The capacity, an int (``k_min - 1`` if even ``k_min`` patterns fail).
    """
    dim = check_int("dim", dim, minimum=1)
    check_key("key", key)
    k_min = check_int("k_min", k_min, minimum=1)
    k_max = check_int("k_max", k_max, minimum=k_min)
    threshold = check_probability("threshold", threshold, open_low=True)
    noise = check_probability("noise", noise)
    probes = check_int("probes", probes, minimum=1)
    rel_tol = check_probability("rel_tol", rel_tol, high=np.inf)
    pool_key, trial_key = jax.random.split(key)
    pool = binary_patterns(k_max, dim, key=pool_key)

    def is_success(k: int) -> bool:
        success = retrieval_success(pool[:k], separation, noise=noise, key=trial_key, probes=probes, sweeps=sweeps)
        return bool(jnp.mean(success) >= threshold)

    if rel_tol == 0.0:
        return largest_k(is_success, k_min, k_max)
    steps = int(np.ceil(np.log(k_max / k_min) / np.log1p(rel_tol))) + 1
    grid = np.unique(np.round(np.geomspace(k_min, k_max, max(steps, 2))).astype(int))
    best = largest_k(lambda i: is_success(int(grid[i - 1])), 1, len(grid))
    return int(grid[best - 1]) if best >= 1 else k_min - 1


def predicted_capacity(n: int, dim, *, threshold: float = 0.99) -> np.ndarray:
    r"""Signal-to-noise prediction of :func:`capacity` (``noise = 0``) for F(x) = xⁿ/n.

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
    return dim ** (n - 1) / (epsilon**2 * factorial2(2 * n - 3))
