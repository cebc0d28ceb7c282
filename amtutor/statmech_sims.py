r"""Finite-N experiments on the exponential capacity of dense associative memories.

:mod:`amtutor.statmech` holds the theory (REM rate functions, thresholds, phase boundaries, basin
edges: NumPy/SciPy, no randomness). This module holds what is *measured*: the log-sum-exp model
and three Monte-Carlo experiments that test that theory at finite N, with explicit keys.

The model (continuous state, :math:`P = e^{\alpha N}` patterns :math:`\xi^\mu\in\mathbb R^N`):

.. math:: E(x) = -\frac1\lambda \log\sum_\mu e^{\lambda\,\xi^\mu\cdot x} + \tfrac12|x|^2,
          \qquad x \leftarrow \Xi^\top \operatorname{softmax}(\lambda\,\Xi x).

Contents

* the model as a HAMUX graph, run by the library's one descent loop: :func:`lse_memory`,
  :func:`lse_energy`, :func:`lse_update`;
* experiments (JAX, explicit keys, chunked so that no ``P × N`` array is built when only overlaps
  matter): :func:`rem_success` (REM level: overlaps sampled directly), :func:`retrieval_overlaps`
  and :func:`retrieval_success` (full dynamics with stored patterns), :func:`all_patterns_success`
  (does *every* stored pattern win at the REM level, against the typical one), :func:`one_step_success`
  (basins from a controlled angle) and :func:`success_curve` (a success fraction per load).

Read a measured curve with :func:`amtutor.statmech.crossing_point` and compare it with
:func:`amtutor.statmech.alpha_1` or :func:`amtutor.statmech.basin_cos_min`.
"""

from __future__ import annotations

import math
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from scipy import special, stats

from .data import binary_patterns, gaussian_patterns, spherical_patterns
from .hamux import Graph, Layer, MemorySynapse, descend
from .lagrangians import Identity, Softmax
from .statmech import MAX_PATTERN_ELEMENTS, check_ensemble, num_patterns
from .validation import as_array, check_finite, check_int, check_key, check_positive, check_probability

__all__ = [
    "lse_memory",
    "lse_energy",
    "lse_update",
    "rem_success",
    "retrieval_overlaps",
    "retrieval_success",
    "success_curve",
    "all_patterns_success",
    "one_step_success",
]

_LN2 = math.log(2.0)


# --------------------------------------------------------------------------------------------
# Dynamics
# --------------------------------------------------------------------------------------------


LAYER = "x"  # the state's layer in :func:`lse_memory`


def lse_memory(memories: Float[Array, "P N"], lam, *, batch: int | None = None, valid=None) -> Graph:
    r"""The log-sum-exp model as a HAMUX graph: one identity layer ``"x"`` (neuron energy ½|x|²)
    and the memories on a :class:`~amtutor.hamux.MemorySynapse` with a ``Softmax(lam)`` separation,

    .. math:: E(x) = \tfrac12|x|^2 - \frac1\lambda\log\sum_\mu e^{\lambda\,\xi^\mu\cdot x}.

    An Euler step with dt = τ = 1 is :math:`x \leftarrow \Xi^\top\operatorname{softmax}(\lambda\Xi x)`,
    so the experiments below run on the library's one descent loop (:func:`amtutor.hamux.descend`).

    Args:
        memories: ``(P, N)`` patterns.
        lam: inverse temperature λ > 0.
        batch: ``None`` for one state ``(N,)``; B for B independent states ``(B, N)`` (each row
            attends to all memories on its own: the rows never interact).
        valid: optional boolean ``(P,)`` marking real rows of a padded memory set.
    """
    memories = as_array("memories", memories, ndim=2)
    shape = memories.shape[1] if batch is None else (check_int("batch", batch, minimum=1), memories.shape[1])
    return Graph({LAYER: Layer(shape, Identity())},
                 {"memories": MemorySynapse(memories, Softmax(check_positive("lam", lam)), valid=valid)},
                 [("memories", LAYER)])


def _state(name, state, memories, ndim):
    state = as_array(name, state, ndim=ndim)
    if state.shape[-1] != memories.shape[-1]:
        raise ValueError(f"{name} has {state.shape[-1]} entries but memories have N = {memories.shape[-1]}")
    return state


def lse_energy(memories: Float[Array, "P N"], state: Float[Array, " N"], lam) -> Float[Array, ""]:
    r""":math:`E(x) = -\frac1\lambda\log\sum_\mu e^{\lambda\xi^\mu\cdot x} + \frac12|x|^2` (log-sum-exp energy),
    the energy of :func:`lse_memory` (which checks ``lam`` and the memories)."""
    memories = as_array("memories", memories, ndim=2)
    state = _state("state", state, memories, 1)
    return lse_memory(memories, lam).energy({LAYER: state})


def lse_update(memories: Float[Array, "P N"], state: Float[Array, "... N"], lam) -> Float[Array, "... N"]:
    r"""One step :math:`x \leftarrow \Xi^\top\operatorname{softmax}(\lambda\Xi x)` (attention with the
    patterns as keys and values): one Euler step (dt = τ = 1) of :func:`amtutor.hamux.descend` on
    :func:`lse_memory`. It is also the concave–convex step on :func:`lse_energy`, so the energy never
    increases. ``state`` may be one state (N,) or a batch (B, N)."""
    memories = as_array("memories", memories, ndim=2)
    state = _state("state", state, memories, (1, 2))
    graph = lse_memory(memories, lam, batch=None if state.ndim == 1 else state.shape[0])
    return descend(graph, {LAYER: state}, dt=1.0, steps=1, record_every=None).final[LAYER]


# --------------------------------------------------------------------------------------------
# Experiment 1: REM level (sample the overlaps directly; no pattern is stored)
# --------------------------------------------------------------------------------------------

_TABLE_SIZE = 8192
_TABLE_MAX_LOG_SURVIVAL = 60.0  # P·e^{-60} is negligible for every P this module can afford


@lru_cache(maxsize=64)
def _spherical_overlap_table(dim: int) -> np.ndarray:
    """|q| as a function of E = −ln Pr(|q| ≥ |q|), on a uniform grid of E in [0, 60].

    For patterns uniform on the sphere, (1 + q)/2 ~ Beta((N−1)/2, (N−1)/2). Sampling |q| by the
    inverse survival function of an Exp(1) variable keeps full accuracy in the far tail (which is
    what decides the log-sum-exp), and costs one exponential and one interpolation per competitor.
    """
    a = (dim - 1) / 2
    log_survival = np.linspace(0.0, _TABLE_MAX_LOG_SURVIVAL, _TABLE_SIZE)
    # Pr(|q| ≥ t) = 2 Pr(B ≥ (1+t)/2) → B = isf(e^{-E}/2)
    b = stats.beta.isf(0.5 * np.exp(-log_survival), a, a)
    return np.clip(2 * b - 1, 0.0, 1.0)


@lru_cache(maxsize=64)
def _binary_overlap_table(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Levels of |Σ ξ^μ_i ξ^1_i| = |2K − N| (K ~ Binomial(N, ½)) and −ln Pr(|·| ≥ level)."""
    levels = np.arange(dim % 2, dim + 1, 2, dtype=np.float64)
    k = np.arange(dim + 1)
    log_pmf = special.gammaln(dim + 1) - special.gammaln(k + 1) - special.gammaln(dim - k + 1) - dim * _LN2
    abs_u = np.abs(2 * k - dim)
    log_survival = np.array([-special.logsumexp(log_pmf[abs_u >= v]) for v in levels])
    return levels, log_survival


def _sample_overlaps(key, ensemble, shape, dim, table, norm):
    """Competitor overlaps u = ξ^μ·ξ^1 (not divided by N), shape ``shape`` = (trials, chunk).

    Inverse-survival sampling from one 32-bit draw per overlap: the low bit is the sign, the other
    31 bits give E = −ln(uniform) ~ Exp(1), and |u| solves Pr(|u| ≥ value) = e^{−E}. Building the
    uniform from integers keeps the far tail resolved down to probabilities ~2^{-32} (a float32
    uniform stops at ~2^{-24}), which matters when P = e^{αN} reaches millions.
    """
    bits = jax.random.bits(key, shape, dtype=jnp.uint32)
    sign = jnp.where((bits & 1) == 1, 1.0, -1.0)
    uniform = ((bits >> 1).astype(jnp.float32) + 0.5) * (2.0**-31)
    log_survival = -jnp.log(uniform)
    if ensemble == "gaussian":
        # Given the target (squared norm dim·norm), ξ^μ·ξ^1 ~ N(0, dim·norm); Pr(|g| ≥ t) = 2Φ(−t).
        abs_g = -jax.scipy.special.ndtri(0.5 * uniform)
        return sign * jnp.sqrt(dim * norm)[:, None] * abs_g
    if ensemble == "spherical":
        position = jnp.clip(log_survival * ((_TABLE_SIZE - 1) / _TABLE_MAX_LOG_SURVIVAL), 0, _TABLE_SIZE - 1.001)
        index = jnp.floor(position).astype(jnp.int32)
        frac = position - index
        abs_q = table[index] * (1 - frac) + table[index + 1] * frac
        return sign * dim * abs_q
    levels, level_log_survival = table
    index = jnp.searchsorted(level_log_survival, log_survival, side="right") - 1
    return sign * levels[jnp.clip(index, 0, levels.shape[0] - 1)]


@partial(jax.jit, static_argnames=("dim", "ensemble", "trials", "chunk", "fixed_norm"))
def _rem_kernel(key, lam, competitors, table, *, dim, ensemble, trials, chunk, fixed_norm):
    key_norm, key_overlaps = jax.random.split(key)
    if ensemble == "gaussian" and not fixed_norm:  # ρ = |ξ¹|²/N ~ χ²_N / N
        norm = jnp.sum(jax.random.normal(key_norm, (trials, dim)) ** 2, axis=1) / dim
    else:
        norm = jnp.ones((trials,))

    def body(c, carry):
        running_max, running_sum = carry
        u = _sample_overlaps(jax.random.fold_in(key_overlaps, c), ensemble, (trials, chunk), dim, table, norm)
        index = c * chunk + jnp.arange(chunk)
        x = jnp.where(index < competitors, lam * u, -jnp.inf)
        new_max = jnp.maximum(running_max, jnp.max(x, axis=1))
        running_sum = running_sum * jnp.exp(running_max - new_max) + jnp.sum(jnp.exp(x - new_max[:, None]), axis=1)
        return new_max, running_sum

    self_term = lam * dim * norm
    num_chunks = (competitors + chunk - 1) // chunk

    def undecided(carry):
        # Z only grows: once log Z passes the self term, that trial has failed for good. Stopping
        # when every trial has failed makes loads above threshold cheap.
        c, running_max, running_sum = carry
        return (c < num_chunks) & jnp.any(running_max + jnp.log(running_sum) < self_term)

    def step(carry):
        c, running_max, running_sum = carry
        return (c + 1, *body(c, (running_max, running_sum)))

    start = (0, jnp.full((trials,), -jnp.inf), jnp.zeros((trials,)))
    _, running_max, running_sum = jax.lax.while_loop(undecided, step, start)
    return self_term > running_max + jnp.log(running_sum)


def rem_success(lam, alpha, dim: int, *, ensemble: str, trials: int, key,
                fixed_norm: bool = False, max_elements: int = 2**21) -> np.ndarray:
    r"""REM-level retrieval test, one boolean per independent trial, shape ``(trials,)``.

    Trial t draws the target's squared norm :math:`N\rho` (χ²_N for Gaussian patterns unless
    ``fixed_norm``; exactly N otherwise) and the :math:`P-1` competitor overlaps
    :math:`u_\mu = \xi^\mu\cdot\xi^1` *directly* from their exact law (Gaussian N(0, Nρ);
    spherical N(2B−1), B ~ Beta((N−1)/2, (N−1)/2); binary 2·Binomial(N, ½) − N), and succeeds iff
    :math:`\lambda N\rho > \log\sum_\mu e^{\lambda u_\mu}`: the self term outweighs all competitors
    together (softmax weight on the target > ½).

    Overlaps are drawn in chunks of at most ``max_elements`` numbers (trials × chunk) and reduced by
    a streaming log-sum-exp, in memory O(trials × chunk). The 31-bit uniforms behind the
    sampler resolve tail probabilities down to ~10⁻⁹, ample for P = e^{αN} up to ~10⁷.

    Memory: every trial holds at least one overlap of each chunk (and, for Gaussian patterns without
    ``fixed_norm``, its ``dim`` target entries), so ``trials`` above ``max_elements``, or above what
    fits in ``MAX_PATTERN_ELEMENTS`` numbers, is refused before anything is allocated.
    """
    check_ensemble(ensemble)
    lam = float(check_positive("lam", lam))
    dim = check_int("dim", dim, minimum=2)
    trials = check_int("trials", trials, minimum=1)
    max_elements = check_int("max_elements", max_elements, minimum=1)
    check_key("key", key)
    if max_elements > MAX_PATTERN_ELEMENTS:
        raise ValueError(f"max_elements must be <= {MAX_PATTERN_ELEMENTS:,} (8 GiB of float32), got {max_elements:,}")
    if trials > max_elements:
        raise ValueError(
            f"trials = {trials:,} needs at least {trials:,} overlaps in memory at once (one chunk per trial), "
            f"more than max_elements = {max_elements:,}: lower trials (or raise max_elements, "
            f"at most {MAX_PATTERN_ELEMENTS:,})")
    norms = trials * dim if ensemble == "gaussian" and not fixed_norm else 0
    if norms > MAX_PATTERN_ELEMENTS:
        raise ValueError(
            f"trials = {trials:,} at dim = {dim} draws {norms:.3g} Gaussian target entries (more than "
            f"{MAX_PATTERN_ELEMENTS:.3g}, 8 GiB of float32): lower trials or dim, or pass fixed_norm=True")
    competitors = num_patterns(alpha, dim) - 1
    # Chunk: the largest power of two with trials × chunk ≤ max_elements, or a smaller one of two
    # fixed sizes when P is small. Few distinct sizes mean few compilations (each costs ~1 s).
    largest = 1 << max(0, (max_elements // trials).bit_length() - 1)
    chunk = next((c for c in (2**10, 2**14) if competitors <= c and c < largest), largest)
    if ensemble == "spherical":
        table = jnp.asarray(_spherical_overlap_table(dim), jnp.float32)
    elif ensemble == "binary":
        levels, log_survival = _binary_overlap_table(dim)
        table = (jnp.asarray(levels, jnp.float32), jnp.asarray(log_survival, jnp.float32))
    else:
        table = jnp.zeros(())
    return np.asarray(_rem_kernel(key, lam, competitors, table, dim=dim, ensemble=ensemble,
                                  trials=trials, chunk=chunk, fixed_norm=bool(fixed_norm)))


# --------------------------------------------------------------------------------------------
# Experiment 2: full dynamics with stored patterns
# --------------------------------------------------------------------------------------------

_SAMPLERS = {"gaussian": gaussian_patterns, "spherical": spherical_patterns, "binary": binary_patterns}


def _iterate(memories, valid, queries, lam, tol, *, max_steps):
    """Iterate the update on a batch of queries until no entry moves by more than ``tol`` (or
    ``max_steps``): :func:`amtutor.hamux.descend` with dt = 1 and a tolerance stop.

    Rows of ``memories`` with ``valid`` false are padding (so that nearby P share one compilation).
    """
    graph = lse_memory(memories, lam, batch=queries.shape[0], valid=valid)
    run = descend(graph, {LAYER: queries}, dt=1.0, steps=max_steps, record_every=None, tol=tol)
    return run.final[LAYER]


def _masked_weights(memories, valid, state, lam):
    logits = jnp.where(valid, lam * (state @ memories.T), -jnp.inf)
    return jax.nn.softmax(logits, axis=-1)


def _padded_patterns(ensemble, patterns, dim, key):
    """P patterns padded with zero rows to a size in {2^k, 3·2^(k-1)}, and the mask of real rows."""
    size = 1 << (patterns - 1).bit_length()
    if patterns <= 3 * size // 4:
        size = 3 * size // 4
    memories = _SAMPLERS[ensemble](patterns, dim, key=key)
    memories = jnp.concatenate([memories, jnp.zeros((size - patterns, dim), memories.dtype)])
    return memories, jnp.arange(size) < patterns


def _set_sizes(trials: int, per_set: int, patterns: int) -> list[int]:
    per_set = max(1, min(per_set, patterns))
    sizes = [per_set] * (trials // per_set)
    if trials % per_set:
        sizes.append(trials % per_set)
    return sizes


def _check_experiment(ensemble, lam, dim, trials, key, threshold):
    lam = float(check_positive("lam", lam))
    check_int("dim", dim, minimum=2)
    check_int("trials", trials, minimum=1)
    check_key("key", key)
    return lam, check_positive("threshold", threshold)


def retrieval_overlaps(lam, alpha, dim: int, *, ensemble: str, trials: int, key,
                       targets_per_set: int = 32, max_steps: int = 50, tol: float = 1e-5) -> np.ndarray:
    r"""Full retrieval dynamics from stored patterns; returns :math:`x_\infty\cdot\xi^\mu/|\xi^\mu|^2`
    per trial, shape ``(trials,)`` (1 = retrieved exactly, near 0 = lost).

    Stores :math:`P = e^{\alpha N}` random patterns Ξ (shape P × N: here the patterns themselves are
    needed), starts at a stored pattern :math:`\xi^\mu`, and iterates
    :math:`x \leftarrow \Xi^\top\operatorname{softmax}(\lambda\Xi x)` until no entry moves by more
    than ``tol`` (at most ``max_steps``). ``targets_per_set`` targets share one pattern set; a fresh
    set is drawn (key folded with the set index) for the next group.
    """
    check_ensemble(ensemble)
    lam, _ = _check_experiment(ensemble, lam, dim, trials, key, 1.0)
    check_int("max_steps", max_steps, minimum=1)
    check_int("targets_per_set", targets_per_set, minimum=1)
    tol = check_positive("tol", tol, allow_zero=True)  # 0: always run max_steps
    # padded patterns (P × N, at most 2P rows) and the softmax weights of the targets of one set
    patterns = num_patterns(alpha, dim, per_pattern=2 * (dim + min(targets_per_set, trials)))
    results = []
    for index, size in enumerate(_set_sizes(trials, targets_per_set, patterns)):
        memories, valid = _padded_patterns(ensemble, patterns, dim, jax.random.fold_in(key, index))
        start = memories[:size]
        final = _iterate(memories, valid, start, lam, tol, max_steps=max_steps)
        results.append(np.asarray(jnp.sum(final * start, axis=1) / jnp.sum(start * start, axis=1)))
    return np.concatenate(results)


def retrieval_success(lam, alpha, dim: int, *, ensemble: str, trials: int, key,
                      threshold: float = 0.9, **options) -> np.ndarray:
    r"""Full-dynamics retrieval, one boolean per trial: :func:`retrieval_overlaps` > ``threshold``.

    The test is :math:`x\cdot\xi^\mu/|\xi^\mu|^2 > 0.9`, not a cosine: the average of many weak
    patterns points along :math:`\xi^\mu` with a shrunken norm, and a cosine test would call it a
    success. ``threshold`` lies in (0, 1): 1 is an exact retrieval, so a threshold of 1 or more is
    (almost) never met. ``options`` go to :func:`retrieval_overlaps`.
    """
    threshold = check_probability("threshold", threshold, open_low=True, open_high=True)
    return retrieval_overlaps(lam, alpha, dim, ensemble=ensemble, trials=trials, key=key, **options) > threshold


def success_curve(experiment, lam, alphas, dim: int, *, key, **options) -> np.ndarray:
    """Success fraction of ``experiment`` (:func:`rem_success` or :func:`retrieval_success`) at each
    load in ``alphas``, shape ``(len(alphas),)``. Point i uses ``jax.random.fold_in(key, i)``, so a
    curve is reproducible point by point (the claims tests recompute single points)."""
    if not callable(experiment):
        raise TypeError("experiment must be a function such as statmech_sims.rem_success or "
                        f"statmech_sims.retrieval_success, got {type(experiment).__name__}")
    check_key("key", key)
    alphas = np.asarray(as_array("alphas", alphas, ndim=1), dtype=np.float64)
    if alphas.size == 0:
        raise ValueError("alphas is empty: give at least one load alpha")
    check_finite("alphas", alphas)
    return np.array([experiment(lam, float(a), dim, key=jax.random.fold_in(key, i), **options).mean()
                     for i, a in enumerate(alphas)])


def all_patterns_success(lam, alpha, dim: int, *, ensemble: str, trials: int, key) -> tuple[float, float]:
    r"""All patterns against a typical one, at the REM level (the first step from each pattern).

    Draws ``trials`` sets of :math:`P = e^{\alpha N}` patterns and asks, for every pattern μ of a set,
    whether its self term beats all the others together,
    :math:`\lambda|\xi^\mu|^2 > \log\sum_{\nu\ne\mu} e^{\lambda\,\xi^\nu\cdot\xi^\mu}`. Returns
    ``(all_fraction, typical_fraction)``: the fraction of sets in which every pattern wins (the
    event that :math:`\alpha_c` is about) and the fraction of all patterns that win (the event that
    :math:`\alpha_1` is about). Builds the P × P overlaps of each set: cost trials × P² × N.
    """
    check_ensemble(ensemble)
    lam, _ = _check_experiment(ensemble, lam, dim, trials, key, 1.0)
    patterns = num_patterns(alpha, dim, per_pattern=trials * max(dim, num_patterns(alpha, dim)))
    keys = jax.random.split(key, trials)
    xi = jax.vmap(lambda k: _SAMPLERS[ensemble](patterns, dim, key=k))(keys)
    all_win, typical_win = _all_patterns_wins(xi, lam)
    return float(all_win), float(typical_win)


@jax.jit
def _all_patterns_wins(xi, lam):
    gram = lam * jnp.einsum("tpi,tqi->tpq", xi, xi)
    own = jnp.diagonal(gram, axis1=1, axis2=2)
    others = jax.nn.logsumexp(jnp.where(jnp.eye(xi.shape[1], dtype=bool), -jnp.inf, gram), axis=2)
    wins = own > others
    return jnp.mean(jnp.all(wins, axis=1)), jnp.mean(wins)


# --------------------------------------------------------------------------------------------
# Experiment 3: one-step basins from a controlled angle
# --------------------------------------------------------------------------------------------


def one_step_success(lam, alpha, dim: int, cos_theta, *, ensemble: str, trials: int, key,
                     targets_per_set: int = 32, criterion: str = "weight") -> np.ndarray:
    r"""One update from :math:`x_0` at a prescribed angle to a stored pattern, shape ``(len(cos_theta), trials)``.

    :math:`x_0 = \cos\theta\,\xi^\mu + \sin\theta\,|\xi^\mu|\,v`, with v a random unit vector
    orthogonal to :math:`\xi^\mu`, so :math:`|x_0| = |\xi^\mu|` and the angle is exact. Success:

    * ``criterion="weight"`` (default): the step gives the target more than half of the softmax
      weight, i.e. :math:`e^{\lambda\xi^\mu\cdot x_0}` beats the sum over all other patterns. This
      is the finite-N form of the condition behind :func:`amtutor.statmech.basin_cos_min`, and the
      same test as :func:`rem_success`.
    * ``criterion="overlap"``: :math:`x_1\cdot\xi^\mu/|\xi^\mu|^2 > 0.9`, the test of
      :func:`retrieval_success`. Stricter at finite N: it needs most of the weight on the target,
      not half, so the measured edge sits higher (the gap shrinks like 1/N).
    """
    check_ensemble(ensemble, ("gaussian", "spherical"))
    lam, _ = _check_experiment(ensemble, lam, dim, trials, key, 1.0)
    targets_per_set = check_int("targets_per_set", targets_per_set, minimum=1)
    if criterion not in ("weight", "overlap"):
        raise ValueError(f"unknown criterion {criterion!r}; choose 'weight' or 'overlap'")
    cos_theta = np.asarray(as_array("cos_theta", cos_theta, ndim=1), dtype=np.float32)
    check_finite("cos_theta", cos_theta)
    if cos_theta.size == 0:
        raise ValueError("cos_theta is empty: give at least one starting angle")
    if np.any(np.abs(cos_theta) > 1):
        raise ValueError("cos_theta must lie in [-1, 1]")
    # padded patterns (P × N, at most 2P rows) and the weights of every angle and target of one set
    per_set = min(targets_per_set, trials)
    patterns = num_patterns(alpha, dim, per_pattern=2 * (dim + len(cos_theta) * per_set))
    cos = jnp.asarray(cos_theta)[:, None, None]
    results = []
    for index, size in enumerate(_set_sizes(trials, targets_per_set, patterns)):
        key_patterns, key_direction = jax.random.split(jax.random.fold_in(key, index))
        memories, valid = _padded_patterns(ensemble, patterns, dim, key_patterns)
        results.append(np.asarray(_one_step_kernel(memories, valid, cos, key_direction, lam,
                                                   size=size, criterion=criterion)))
    return np.concatenate(results, axis=1)


@partial(jax.jit, static_argnames=("size", "criterion"))
def _one_step_kernel(memories, valid, cos, key, lam, *, size, criterion):
    target = memories[:size]
    norm = jnp.linalg.norm(target, axis=1, keepdims=True)
    unit = target / norm
    noise = jax.random.normal(key, (cos.shape[0], size, memories.shape[1]))
    noise = noise - jnp.sum(noise * unit, axis=-1, keepdims=True) * unit
    noise = noise / jnp.linalg.norm(noise, axis=-1, keepdims=True)
    start = cos * target + jnp.sqrt(1 - cos**2) * norm * noise
    weights = _masked_weights(memories, valid, start, lam)  # (angles, size, P)
    if criterion == "weight":
        return weights[:, jnp.arange(size), jnp.arange(size)] > 0.5
    after = weights @ memories
    return jnp.sum(after * target, axis=-1) / jnp.sum(target * target, axis=-1) > 0.9
