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
* :func:`empirical_capacity` – the largest ``K`` at which a stored random pattern is retrieved
  with probability ≥ ``threshold`` (bisection with :func:`amtutor.capacity.largest_k`),
* :func:`predicted_capacity` – the signal-to-noise prediction for that number (eq. 2.17 with the
  error budget shared among the D bits of a pattern, or the exact per-bit tail).

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
from .capacity import exact_error_probability, k_max, largest_k
from .data import flip_bits
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
    for fraction in np.asarray(flip_fractions, dtype=float):
        check_probability("flip_fractions", float(fraction))
    check_key("key", key)
    return np.asarray(
        [
            float(jnp.mean(retrieved_exactly(memories, separation, flip_fraction=float(p), key=key,
                                             probes=probes, sweeps=sweeps)))
            for p in np.asarray(flip_fractions, dtype=float)
        ]
    )


def _pattern_sets(key, num_sets: int, num_patterns: int, dim: int) -> np.ndarray:
    """``(num_sets, num_patterns, dim)`` random ±1 patterns; set s comes from its own stream
    seeded by ``key`` and s, filled row by row, so the first K rows of a set are the same for
    every ``num_patterns`` ≥ K (a larger K only *adds* patterns). Drawn on the host: a JAX
    draw of a new shape would compile for seconds at every K of a bisection."""
    words = [int(w) for w in np.asarray(jax.random.key_data(key)).ravel()]
    sets = [np.random.default_rng([*words, s]).random((num_patterns, dim)) < 0.5
            for s in range(num_sets)]
    return np.where(np.stack(sets), 1.0, -1.0).astype(np.float32)


def _bucket(size: int) -> int:
    """The next power of two ≥ ``size``: padded shapes, so a bisection compiles a few times only."""
    return 1 << (int(size) - 1).bit_length()


@partial(jax.jit, static_argnames=("num_tested", "flip_fraction", "sweeps"))
def _set_successes(memory_sets, keys, separation, num_tested, flip_fraction, sweeps):
    """Which of the first ``num_tested`` patterns of each set are retrieved, ``(sets, tested)``.

    Rows of zeros pad a set to a common shape: a zero memory has overlap 0 with every state, so
    it adds the same F(0) to the score before and after any flip and changes no decision (exactly
    so for Σ F; for the log-sum-exp family the log of the sum is still compared monotonically).
    """
    def one(args):
        memories, key = args
        return retrieved_exactly(memories, separation, flip_fraction=flip_fraction, key=key,
                                 probes=num_tested, sweeps=sweeps)

    return jax.lax.map(one, (memory_sets, keys))


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
    """Largest number K of random ±1 patterns of length ``dim`` such that *a* stored pattern is
    retrieved with probability ≥ ``threshold``, searched by bisection over ``[k_min, k_max]``.

    One criterion at every K: the per-pattern retrieval probability, estimated from at least
    ``probes`` tests. For K ≥ ``probes`` one set of K random patterns is stored and its first
    ``probes`` patterns are tested; for K < ``probes`` the tests are spread over
    ``ceil(probes / K)`` independent sets of K patterns, each testing all of its K patterns. (It is
    *not* "every stored pattern is retrieved", which is a different, all-patterns criterion.)
    This is the probability that :func:`predicted_capacity` models.

    Each set of patterns is drawn from its own stream, row by row, so a larger K only *adds*
    memories to each set: success falls with K for the same draw (common random numbers),
    which keeps the bisection of :func:`amtutor.capacity.largest_k` consistent.

    With ``flip_fraction = 0`` (default) a pattern counts as retrieved when it is a fixed point of
    the dynamics, which is cheap to test; with ``flip_fraction > 0`` each test runs an
    asynchronous recall (:func:`retrieved_exactly`). With ``probes`` tests, the estimate of a
    failure probability q has standard error ``sqrt(q (1 - q) / probes)``: resolving the 1% of
    ``threshold = 0.99`` needs ``probes`` of order a thousand.

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
    flip_fraction = float(check_probability("flip_fraction", flip_fraction))
    probes = check_int("probes", probes, minimum=1)
    sweeps = check_int("sweeps", sweeps, minimum=1)
    rel_tol = check_probability("rel_tol", rel_tol, high=np.inf)
    pool_key, trial_key = jax.random.split(key)

    def is_success(k: int) -> bool:
        num_sets = -(-probes // k)  # ceil: at least `probes` tests at every K
        tested = min(k, probes)
        # pad K, the sets and the tests to powers of two (zero rows, masked out below)
        k_pad, sets_pad = _bucket(k), _bucket(num_sets)
        memory_sets = np.zeros((sets_pad, k_pad, dim), np.float32)
        memory_sets[:num_sets, :k] = _pattern_sets(pool_key, num_sets, k, dim)
        keys = jax.random.split(trial_key, sets_pad)
        success = np.asarray(_set_successes(memory_sets, keys, separation,
                                            min(k_pad, _bucket(probes)), flip_fraction, sweeps))
        return bool(success[:num_sets, :tested].mean() >= threshold)

    if rel_tol == 0.0:
        return largest_k(is_success, k_min, k_max)
    steps = int(np.ceil(np.log(k_max / k_min) / np.log1p(rel_tol))) + 1
    grid = np.unique(np.round(np.geomspace(k_min, k_max, max(steps, 2))).astype(int))
    best = largest_k(lambda i: is_success(int(grid[i - 1])), 1, len(grid))
    return int(grid[best - 1]) if best >= 1 else k_min - 1


def predicted_capacity(n: int, dim, *, threshold: float = 0.99, tail: str = "gaussian"):
    r"""Prediction of :func:`empirical_capacity` (``flip_fraction = 0``) for F(x) = xⁿ/n.

    Both criteria are per pattern: a stored pattern is retrieved (a fixed point) when none of
    its D bits flips, and by the union bound that fails with probability at most
    :math:`D\,P(\text{error})`. Asking :math:`D\,P(\text{error}) \le 1 - \text{threshold}`:

    * ``tail="gaussian"`` (default): eq. (2.17) of the tutorial,
      :math:`K_{\max} = D^{n-1}/(\epsilon^2 (2n-3)!!)` with the one-sided
      :math:`\epsilon = \Phi^{-1}(1 - (1-\text{threshold})/D)`; it grows like
      :math:`D^{n-1}/\log D`. A float (array for an array ``dim``).
    * ``tail="exact"``: the largest integer K with :math:`D\,P(\text{error}) \le
      1 - \text{threshold}` for the exact per-bit flip probability of
      :func:`amtutor.capacity.exact_error_probability` (no Gaussian approximation, the exact
      K − 1 cross-talk terms, signal and tie rule). ``dim`` must be one integer; feasible while
      the exact noise law fits the lattice of that function (a ``ValueError`` says when not).

    Args:
        n: power of the separation function (n ≥ 2).
        dim: D, a number or (Gaussian tail) an array of them.
        threshold: the per-pattern retrieval probability asked for, in (0, 1).
        tail: ``"gaussian"`` or ``"exact"``.

    Returns:
        The predicted capacity.
    """
    n = check_int("n", n, minimum=2)
    threshold = check_probability("threshold", threshold, open_low=True, open_high=True)
    if tail == "exact":
        dim = check_int("dim", dim, minimum=2)
        budget = 1.0 - float(threshold)

        def stable(k: int) -> bool:
            return dim * exact_error_probability(k, dim, n) <= budget

        upper = 2
        while stable(upper):  # bracket: the exact capacity lies below the first failing K
            upper *= 2
        return largest_k(stable, 1, upper)
    if tail != "gaussian":
        raise ValueError(f'tail must be "gaussian" or "exact", got {tail!r}')
    dim = np.asarray(as_array("dim", dim), dtype=float)
    if np.any(dim < 2):
        raise ValueError(f"dim must be >= 2, got {dim.min()}")
    epsilon = ndtri(1.0 - (1.0 - threshold) / dim)
    return k_max(dim, n, epsilon)  # eq. (2.17), written once, in amtutor.capacity
