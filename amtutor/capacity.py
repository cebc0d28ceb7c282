r"""Spin-flip (signal-to-noise) capacity analysis of the binary dense associative memory.

Chapter 2.1 of the tutorial asks: store K random ±1 patterns :math:`\xi^\mu\in\{\pm1\}^D` in the
DenseAM with :math:`F(x) = x^n/n`, start the network at pattern ν, and update bit i once. Does it
stay put? The local field splits into a *signal* and a *cross-talk noise* (eq. 2.6),

.. math:: \xi^\nu_i h_i = \underbrace{f(D-1)}_{\text{signal}}
          + \underbrace{\sum_{\mu\ne\nu} \xi^\nu_i\xi^\mu_i\, f(\zeta_\mu)}_{\text{noise}},
          \qquad \zeta_\mu = \sum_{j\ne i}\xi^\mu_j\xi^\nu_j,\quad f(x) = x^{n-1},

and the bit flips when the noise beats the signal. This module holds

* the theory: :func:`signal`, :func:`noise_variance` :math:`(2n-3)!!\,K D^{n-1}` (eq. 2.14), the
  exact moments of ζ (:func:`overlap_moment`), the Gaussian tail :func:`gaussian_error_probability`
  (eq. 2.15), the exact tail :func:`exact_error_probability` (the noise is a sum of ±1 variables,
  so its law is a lattice convolution), :func:`k_max` (eq. 2.17), :func:`epsilon_for_error_rate`
  and the "no bit flips" variant :func:`k_max_no_flips`;
* Monte-Carlo estimators in JAX: :func:`crosstalk_noise` and :func:`aligned_fields` for given
  memories, :func:`measured_noise_variance`, :func:`measured_error_probability` and
  :func:`measured_capacity` for random ones (memory-bounded: patterns are processed in chunks);
* :func:`largest_k` (bisection for the largest K that still works) and :func:`fit_loglog_slope`.

Exact dynamics versus the Taylor form. The asynchronous update (2.2) compares the energies with
bit i up and down. For :math:`F(x) = x^n/n` that difference is exactly :math:`-2\,\xi^\mu_i\sigma_i
\tilde f(\zeta_\mu)` per memory, with the *discrete derivative*
:math:`\tilde f(x) = [F(x+1) - F(x-1)]/2` (so :math:`\tilde f = x` for n = 2, :math:`x^2 + 1/3` for
n = 3, :math:`x^3 + x` for n = 4). The noise *variance* follows the paper's Taylor form with
:math:`f = F'`; every statement about *bit flips* (error probabilities, capacity) uses
:math:`\tilde f`, so that it agrees exactly with :func:`amtutor.binary.is_fixed_point`. A tie (zero
energy change) keeps the bit, as in :mod:`amtutor.binary`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from scipy import stats
from scipy.special import factorial2, ndtr

from .validation import (
    as_array,
    check_int,
    check_key,
    check_pm1_memories,
    check_positive,
    check_probability,
)

__all__ = [
    "largest_k",
    "double_factorial",
    "signal",
    "noise_variance",
    "overlap_moment",
    "overlap_moment_leading",
    "exact_noise_variance",
    "gaussian_error_probability",
    "exact_error_probability",
    "moment_matched_error_probability",
    "epsilon_for_error_rate",
    "k_max",
    "k_max_no_flips",
    "crosstalk_noise",
    "aligned_fields",
    "Estimate",
    "measured_noise_variance",
    "measured_error_probability",
    "measured_capacity",
    "fit_loglog_slope",
]


# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------


def largest_k(is_success: Callable[[int], bool], k_min: int, k_max: int) -> int:
    """Largest ``K`` in ``[k_min, k_max]`` with ``is_success(K)`` true, found by bisection.

    Assumes success is monotone in ``K`` (true up to some ``K*``, false after), as it is for
    "the stored patterns are retrieved" when more and more memories are stored. Costs about
    ``log2(k_max - k_min) + 2`` calls. Returns ``k_min - 1`` when ``is_success(k_min)`` is false,
    and ``k_max`` when ``is_success(k_max)`` is true.
    """
    if not callable(is_success):
        raise TypeError(f"is_success must be callable, got {type(is_success).__name__}")
    k_min = check_int("k_min", k_min, minimum=1)
    k_max = check_int("k_max", k_max, minimum=k_min)
    if not is_success(k_min):
        return k_min - 1
    if is_success(k_max):
        return k_max
    good, bad = k_min, k_max  # invariant: is_success(good) and not is_success(bad)
    while bad - good > 1:
        mid = (good + bad) // 2
        if is_success(mid):
            good = mid
        else:
            bad = mid
    return good


# --------------------------------------------------------------------------------------------
# Theory
# --------------------------------------------------------------------------------------------


def _check_n(n):
    return check_int("n", n, minimum=2)


def _check_dim(dim):
    return check_int("dim", dim, minimum=2)


def _check_k(num_memories):
    return check_int("num_memories", num_memories, minimum=1)


def double_factorial(k: int) -> int:
    """:math:`k!! = k(k-2)(k-4)\\cdots` for an odd ``k >= 1`` (so ``(2n-3)!!`` for n >= 2)."""
    k = check_int("k", k, minimum=1)
    return int(factorial2(k, exact=True))


_LOG_FLOAT64_MAX = math.log(np.finfo(np.float64).max)


def _from_log(what: str, log_value, advice: str, direct=None):
    """The value whose natural log is ``log_value``, or a ValueError saying ``what`` is beyond
    float64's range (1.8e308).

    Theory values such as Dⁿ⁻¹ and (2n−3)!! overflow float64 long before the arguments stop
    making sense (D = 1000, n = 200), so their range is judged from logarithms. ``direct``, when
    given, computes the value the plain way; it is used whenever it does not overflow, so that
    results that are exact in floating point (9801 = 99²) stay exact.
    """
    log_value = np.asarray(log_value, dtype=float)
    if np.any(log_value > _LOG_FLOAT64_MAX):
        decades = float(np.max(log_value)) / math.log(10)
        raise ValueError(f"{what} is about 10^{decades:.1f}, beyond float64's range (1.8e308): {advice}")
    value = None
    if direct is not None:
        try:
            with np.errstate(over="raise", invalid="raise"):
                value = np.asarray(direct(), dtype=float)
        except (OverflowError, FloatingPointError):
            value = None
    if value is None or not np.all(np.isfinite(value)):
        value = np.exp(log_value)
    return float(value) if value.ndim == 0 else value


def _log_double_factorial(k: int) -> float:
    # k!! = k! / (2^h h!) with h = (k - 1)/2, for odd k
    return math.lgamma(k + 1) - math.lgamma((k + 1) / 2) - ((k - 1) / 2) * math.log(2)


_SMALLER = "use a smaller D or n"


def signal(dim: int, n: int) -> float:
    """The signal :math:`f(D-1) = (D-1)^{n-1}` of eq. (2.6): what a stored pattern says about its own bit."""
    dim, n = _check_dim(dim), _check_n(n)
    return _from_log(f"the signal (D-1)^(n-1) for dim={dim}, n={n}", (n - 1) * math.log(dim - 1), _SMALLER,
                     lambda: float(dim - 1) ** (n - 1))


def _log_noise_variance(num_memories, dim, n):
    return _log_double_factorial(2 * n - 3) + math.log(num_memories) + (n - 1) * math.log(dim)


def noise_variance(num_memories: int, dim: int, n: int) -> float:
    r"""Leading-order cross-talk noise variance :math:`\Sigma^2 = (2n-3)!!\,K D^{n-1}` (eq. 2.14)."""
    num_memories, dim, n = _check_k(num_memories), _check_dim(dim), _check_n(n)
    return _from_log(
        f"the noise variance (2n-3)!! K D^(n-1) for num_memories={num_memories}, dim={dim}, n={n}",
        _log_noise_variance(num_memories, dim, n),
        "use a smaller num_memories, D or n",
        lambda: float(double_factorial(2 * n - 3)) * num_memories * float(dim) ** (n - 1),
    )


_MAX_MOMENT_ORDER = 500  # the exact sum costs O(order³) big-integer operations at worst


def _even_block_partitions(order: int, max_blocks: int) -> list[int]:
    """T(order, j) for j <= max_blocks: the ways to split ``order`` labelled items into j blocks
    of even size."""
    table = [[0] * (max_blocks + 1) for _ in range(order + 1)]
    table[0][0] = 1
    for r in range(2, order + 1, 2):
        for j in range(1, min(r // 2, max_blocks) + 1):
            # the block holding item 1 has an even size s and s − 1 companions out of r − 1
            table[r][j] = sum(math.comb(r - 1, s - 1) * table[r - s][j - 1] for s in range(2, r + 1, 2))
    return table[order]


def overlap_moment(dim: int, order: int) -> float:
    r"""Exact :math:`\langle\zeta^{\text{order}}\rangle` for :math:`\zeta = \sum_{j=2}^{D}\xi_j`, a sum of D−1 random ±1.

    The generating function is :math:`\langle e^{\tau\zeta}\rangle = \cosh(\tau)^{D-1}` (eq. 2.9);
    its Taylor coefficients equal the binomial sums
    :math:`2^{-(D-1)}\sum_k \binom{D-1}{k}(D-1-2k)^{\text{order}}`. They are evaluated here in exact
    integer arithmetic in a form whose cost does not grow with D: expanding
    :math:`(\xi_2+\dots+\xi_D)^{\text{order}}`, only products in which every index appears an even
    number of times survive, so the moment is :math:`\sum_j T(\text{order}, j)\,(D-1)(D-2)\cdots(D-j)`
    with T the number of ways to split ``order`` items into j blocks of even size (for order 4:
    :math:`3(D-1)^2 - 2(D-1)`). Odd moments vanish. ``order`` is at most 500.
    """
    dim = _check_dim(dim)
    order = check_int("order", order, minimum=0)
    if order > _MAX_MOMENT_ORDER:
        raise ValueError(f"order must be <= {_MAX_MOMENT_ORDER} (the exact sum costs O(order³)), got {order}")
    if order % 2:
        return 0.0
    m = dim - 1
    # Refuse before the exact sum when a lower bound already overflows: every term of the sum is
    # positive, so the all-pairs term (2p-1)!! m(m-1)...(m-p+1) bounds it below, and so does
    # P(|zeta| = m) m^order = 2^(1-m) m^order (m = D-1, p = order/2).
    p = order // 2
    log_bounds = [(1 - m) * math.log(2) + order * math.log(m)]
    if p <= m:
        log_bounds.append(_log_double_factorial(2 * p - 1) + math.lgamma(m + 1) - math.lgamma(m - p + 1)
                          if p else 0.0)
    if max(log_bounds) > _LOG_FLOAT64_MAX:
        raise ValueError(f"the moment <zeta^{order}> for dim={dim} is above 10^{max(log_bounds) / math.log(10):.1f}, "
                         "beyond float64's range (1.8e308): use a smaller D or order")
    total, falling = 0, 1
    # the falling factorial (D-1)(D-2)...(D-j) vanishes once j > D-1, so only j <= D-1 blocks count
    for j, ways in enumerate(_even_block_partitions(order, min(m, p))):
        if j:
            falling *= m - j + 1
        total += ways * falling
    try:
        return float(total)  # exact integer, rounded once
    except OverflowError:
        raise ValueError(f"the moment <zeta^{order}> for dim={dim} is about 10^{math.log10(total):.1f}, "
                         "beyond float64's range (1.8e308): use a smaller D or order") from None


def overlap_moment_leading(dim: int, p: int) -> float:
    r"""Leading order of :math:`\langle\zeta^{2p}\rangle`: :math:`(2p-1)!!\,D^p` (eq. 2.10)."""
    dim = _check_dim(dim)
    p = check_int("p", p, minimum=1)
    return _from_log(f"(2p-1)!! D^p for dim={dim}, p={p}", _log_double_factorial(2 * p - 1) + p * math.log(dim),
                     "use a smaller D or p", lambda: float(double_factorial(2 * p - 1)) * float(dim) ** p)


def exact_noise_variance(num_memories: int, dim: int, n: int) -> float:
    r"""Exact variance of the Taylor-form noise of eq. (2.6): :math:`(K-1)\langle\zeta^{2n-2}\rangle`.

    The K−1 terms are independent, each with second moment :math:`\langle\zeta^{2n-2}\rangle`
    (:func:`overlap_moment`); :func:`noise_variance` is its large-K, large-D limit.
    """
    num_memories, dim, n = _check_k(num_memories), _check_dim(dim), _check_n(n)
    moment = overlap_moment(dim, 2 * n - 2)
    if num_memories > 1 and moment > np.finfo(np.float64).max / (num_memories - 1):
        raise ValueError(f"the exact noise variance for num_memories={num_memories}, dim={dim}, n={n} "
                         "is beyond float64's range (1.8e308): use a smaller num_memories, D or n")
    return (num_memories - 1) * moment


def gaussian_error_probability(num_memories: int, dim: int, n: int) -> float:
    r"""Per-bit flip probability in the Gaussian approximation (eq. 2.15).

    :math:`P = g\big(f(D-1)/\Sigma\big)` with :math:`g(y) = \int_y^\infty e^{-t^2/2}dt/\sqrt{2\pi}`,
    the one-sided tail: a bit flips only when the noise points *against* the signal. The ratio is
    formed from logarithms, so it is finite even where the signal and Σ overflow on their own.
    """
    num_memories, dim, n = _check_k(num_memories), _check_dim(dim), _check_n(n)
    log_ratio = (n - 1) * math.log(dim - 1) - 0.5 * _log_noise_variance(num_memories, dim, n)
    return float(ndtr(-math.exp(min(log_ratio, _LOG_FLOAT64_MAX))))


def _scaled_field_polynomial(n: int) -> np.ndarray:
    r"""Integer coefficients (highest power first) of :math:`n\tilde f(x) = [(x+1)^n - (x-1)^n]/2`."""
    coefficients = np.zeros(n, dtype=np.int64)  # degree n-1
    for k in range(1, n + 1, 2):  # odd powers of the ±1 survive the difference
        coefficients[k - 1] = math.comb(n, k)  # coefficient of x^(n-k)
    return coefficients


def _lattice_tail(dim: int, n: int, num_memories: int, max_support: int) -> float:
    """P(flip) from the exact law of the noise, by FFT convolution on the integer lattice."""
    m = dim - 1
    coefficients = _scaled_field_polynomial(n)
    zeta = m - 2 * np.arange(m + 1, dtype=np.int64)  # possible overlaps of D-1 random ±1
    values = np.polyval(coefficients, zeta)  # n·f~(zeta), integers
    weights = stats.binom.pmf(np.arange(m + 1), m, 0.5)
    signal_value = int(np.polyval(coefficients, m))
    # Each noise term is s·n·f~(zeta) with an independent random sign s: symmetric law.
    support = np.concatenate([values, -values])
    probs = np.concatenate([weights, weights]) / 2
    step = math.gcd(*(int(abs(v)) for v in support if v != 0)) if np.any(support != 0) else 1
    step = math.gcd(step, signal_value) or 1
    support, signal_value = support // step, signal_value // step
    half_width = int(np.max(np.abs(support)))
    terms = num_memories - 1
    if terms == 0:
        return 0.0
    length = 2 * half_width * terms + 1
    if length > max_support:
        raise ValueError(
            f"the exact noise law for num_memories={num_memories}, dim={dim}, n={n} spans "
            f"{length} lattice points, more than max_support={max_support}; use a smaller case, "
            "raise max_support, or use gaussian_error_probability / measured_error_probability"
        )
    single = np.zeros(2 * half_width + 1)
    np.add.at(single, support + half_width, probs)
    size = 1 << (length - 1).bit_length()
    law = np.fft.irfft(np.fft.rfft(single, size) ** terms, size)[:length]
    # index j <-> noise value j - half_width*terms; the bit flips iff signal + noise < 0.
    flips_below = -signal_value + half_width * terms  # first index that does NOT flip
    tail = float(np.sum(law[: max(flips_below, 0)]))
    return min(max(tail, 0.0), 1.0)  # FFT round-off can leave ~1e-16 of either sign


def exact_error_probability(num_memories: int, dim: int, n: int, *, max_support: int = 1 << 24) -> float:
    r"""Exact per-bit flip probability for K random ±1 patterns (no Gaussian approximation).

    A bit of a stored pattern flips under the exact update (2.2) iff
    :math:`\tilde f(D-1) + \sum_{\mu=2}^{K} s_\mu \tilde f(\zeta_\mu) < 0`, with independent random
    signs :math:`s_\mu` and independent :math:`\zeta_\mu` ~ sum of D−1 random ±1. For n = 2 the noise
    is a sum of (K−1)(D−1) random ±1, so the answer is a binomial tail. For n ≥ 3 the law of the
    sum is computed on the integer lattice of :math:`n\tilde f` values by FFT convolution; this is
    exact up to float64 round-off (~1e-12 here) and feasible while the lattice has at most
    ``max_support`` points (roughly :math:`2 K n D^{n-1}`), otherwise a ``ValueError`` says so.
    """
    num_memories, dim, n = _check_k(num_memories), _check_dim(dim), _check_n(n)
    max_support = check_int("max_support", max_support, minimum=1)
    if num_memories == 1:
        return 0.0
    if n == 2:
        # noise = 2B - T with B ~ Binomial(T, 1/2), T = (K-1)(D-1); flips iff noise < -(D-1).
        total = (num_memories - 1) * (dim - 1)
        # 2B - T < -(D-1)  <=>  B < (T - D + 1)/2  <=>  B <= ceil((T - D + 1)/2) - 1
        threshold = -(-(total - dim + 1) // 2) - 1
        return float(stats.binom.cdf(threshold, total, 0.5)) if threshold >= 0 else 0.0
    return _lattice_tail(dim, n, num_memories, max_support)


def moment_matched_error_probability(num_memories: int, dim: int, n: int) -> float:
    r"""Per-bit flip probability of a Gaussian with the *exact* signal and variance of update (2.2).

    The field of a bit of a stored pattern is :math:`\tilde f(D-1)` plus noise of variance
    :math:`(K-1)\langle\tilde f(\zeta)^2\rangle` (ζ a sum of D−1 random ±1, moments from
    :func:`overlap_moment`); this returns the Gaussian tail :math:`g(\text{signal}/\text{s.d.})` of
    those two exact numbers. :func:`gaussian_error_probability` uses the leading orders instead
    (signal :math:`(D-1)^{n-1}`, variance :math:`(2n-3)!!KD^{n-1}`) and
    :func:`exact_error_probability` the exact law, so the gap between this and the exact tail is
    the non-Gaussian shape of the noise alone.
    """
    num_memories, dim, n = _check_k(num_memories), _check_dim(dim), _check_n(n)
    if num_memories == 1:
        return 0.0
    coefficients = [int(c) for c in _scaled_field_polynomial(n)]  # n·f~, highest power first
    degrees = range(n - 1, -1, -1)
    signal_value = sum(c * (dim - 1) ** d for c, d in zip(coefficients, degrees))
    second_moment = sum(a * b * overlap_moment(dim, da + db)
                        for a, da in zip(coefficients, degrees)
                        for b, db in zip(coefficients, degrees))
    return float(ndtr(-signal_value / math.sqrt((num_memories - 1) * second_moment)))


def epsilon_for_error_rate(error_rate: float, *, two_sided: bool = False) -> float:
    """The ε of eq. (2.16): signal must exceed ε·Σ for a per-bit error rate ``error_rate``.

    A bit flips only when the noise points against the signal, so the honest condition is the
    one-sided quantile ``norm.isf(error_rate)`` (2.326 for 1%). ``two_sided=True`` gives the
    paper's ε ≈ 2.576 for 1%, which is ``norm.isf(error_rate / 2)``.
    """
    error_rate = check_probability("error_rate", error_rate, low=0.0, high=0.5, open_low=True, open_high=True)
    return float(stats.norm.isf(error_rate / 2 if two_sided else error_rate))


def k_max(dim, n: int, epsilon):
    """Capacity estimate :math:`K_{\\max} = D^{n-1}/(\\epsilon^2 (2n-3)!!)` (eq. 2.17).

    The one place the book writes eq. (2.17); pick ε with :func:`epsilon_for_error_rate` (2.326
    one-sided or the tutorial's 2.576 two-sided for 1%, or a per-pattern budget as in
    :func:`amtutor.retrieval.predicted_capacity`).

    Args:
        dim: D, an integer ≥ 2, or an array of D values ≥ 2 (reals allowed, e.g. for a smooth curve).
        n: the power of F(x) = xⁿ/n (n ≥ 2).
        epsilon: ε > 0, a number or an array broadcasting against ``dim``.

    Returns:
        a float when ``dim`` and ``epsilon`` are numbers, else a float array of their broadcast shape.
    """
    n = _check_n(n)
    log_df = _log_double_factorial(2 * n - 3)
    what = f"K_max = D^(n-1)/(epsilon² (2n-3)!!) for n={n}"
    if np.ndim(epsilon) == 0 and not hasattr(dim, "shape") and np.ndim(dim) == 0:
        dim = _check_dim(dim)
        epsilon = check_positive("epsilon", epsilon)
        return _from_log(what, (n - 1) * math.log(dim) - log_df - 2 * math.log(epsilon), _SMALLER,
                         lambda: float(dim) ** (n - 1) / (epsilon**2 * double_factorial(2 * n - 3)))
    dim = np.asarray(as_array("dim", dim), dtype=float)
    epsilon = np.asarray(as_array("epsilon", epsilon), dtype=float)
    if not (np.all(np.isfinite(dim)) and np.all(np.isfinite(epsilon))):
        raise ValueError("dim and epsilon must be finite")
    if np.any(dim < 2):
        raise ValueError(f"dim must be >= 2, got {dim.min()}")
    if np.any(epsilon <= 0):
        raise ValueError(f"epsilon must be > 0, got {epsilon.min()}")
    return _from_log(what, (n - 1) * np.log(dim) - log_df - 2 * np.log(epsilon), _SMALLER,
                     lambda: dim ** (n - 1) / (epsilon**2 * float(double_factorial(2 * n - 3))))


def k_max_no_flips(dim: int, n: int) -> float:
    r"""Capacity when *no* bit of a stored pattern may flip (derived in the book, not in the paper).

    Requiring :math:`D\,g(\epsilon) \lesssim 1` with :math:`g(\epsilon)\approx e^{-\epsilon^2/2}` gives
    :math:`\epsilon^2 \approx 2\ln D`, hence :math:`K_{\max} \approx D^{n-1}/(2\ln D\,(2n-3)!!)`:
    :math:`D/(2\ln D)` for the Hopfield network (n = 2), the classical result of McEliece et al.
    """
    dim, n = _check_dim(dim), _check_n(n)
    log_value = (n - 1) * math.log(dim) - math.log(2 * math.log(dim)) - _log_double_factorial(2 * n - 3)
    return _from_log(f"D^(n-1)/(2 ln D (2n-3)!!) for dim={dim}, n={n}", log_value, _SMALLER,
                     lambda: float(dim) ** (n - 1) / (2 * math.log(dim) * double_factorial(2 * n - 3)))


# --------------------------------------------------------------------------------------------
# Monte Carlo
# --------------------------------------------------------------------------------------------

_CHUNK_ELEMENTS = 1 << 22  # floats per chunk of work arrays (patterns x (K + D)): 16 MB


def _chunk_size(num_memories: int, dim: int) -> int:
    return max(1, _CHUNK_ELEMENTS // (num_memories + dim))


def _aligned_sums(memories, fn, batch_size: int, num_eval: int | None = None, real=None):
    r"""For pattern ν < ``num_eval`` and every bit i: :math:`\sum_{\mu\ne\nu} s_{\mu\nu i}\,fn(\zeta_{\mu\nu i})`.

    Here :math:`s = \xi^\mu_i\xi^\nu_i = \pm1` and :math:`\zeta = m_{\mu\nu} - s` with the overlap
    :math:`m_{\mu\nu} = \xi^\mu\cdot\xi^\nu`. Because s is a sign, :math:`s\,fn(m - s) = A(m)\,s + B(m)`
    with :math:`A = [fn(m-1) + fn(m+1)]/2` and :math:`B = [fn(m-1) - fn(m+1)]/2`, so the sum over μ
    is one matrix product, :math:`\xi^\nu_i\,(A\,\xi)_{\nu i} + \sum_\mu B_{\mu\nu}`: O(K²D) work done
    by the matmul unit instead of a (K, K, D) array. Patterns are processed ``batch_size`` at a
    time, so memory stays at ``batch_size·(K + D)`` floats. Returns shape ``(num_eval, D)``
    (default: all K patterns). ``real`` (K,) marks the memories that count (others are padding).
    """
    num_memories = memories.shape[0]
    num_eval = num_memories if num_eval is None else num_eval
    real = jnp.ones(num_memories, memories.dtype) if real is None else real.astype(memories.dtype)
    highest = jax.lax.Precision.HIGHEST  # exact integer sums in float32 (no TF32 on GPUs)

    def one(nu):
        m = jnp.dot(memories, memories[nu], precision=highest)  # (K,) overlaps with pattern nu
        weight = real * (jnp.arange(num_memories) != nu)  # drop mu = nu and padding
        a = weight * (fn(m - 1) + fn(m + 1)) / 2
        b = weight * (fn(m - 1) - fn(m + 1)) / 2
        return memories[nu] * jnp.dot(a, memories, precision=highest) + jnp.sum(b)

    if batch_size >= num_eval:  # one chunk: a plain vmap compiles faster than a one-step scan
        return jax.vmap(one)(jnp.arange(num_eval))
    return jax.lax.map(one, jnp.arange(num_eval), batch_size=batch_size)


def _taylor_noise_fn(n):
    return lambda x: x ** (n - 1)


def _scaled_field_fn(n):
    coefficients = [float(c) for c in _scaled_field_polynomial(n)]
    return lambda x: jnp.polyval(jnp.asarray(coefficients, x.dtype), x)


def _check_memories(memories):
    memories = check_pm1_memories("memories", memories)  # 2-D, non-empty, ±1, as float32
    if memories.shape[1] < 2:
        raise ValueError(f"memories must have D >= 2 neurons, got shape {tuple(memories.shape)}")
    return memories


@partial(jax.jit, static_argnames=("n", "batch_size"))
def _crosstalk_noise(memories, n, batch_size):
    return _aligned_sums(memories, _taylor_noise_fn(n), batch_size)


@partial(jax.jit, static_argnames=("n", "batch_size"))
def _aligned_fields(memories, n, batch_size):
    fn = _scaled_field_fn(n)
    return fn(jnp.float32(memories.shape[1] - 1)) + _aligned_sums(memories, fn, batch_size)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_fields_fit_float32(kind: str, num_memories: int, dim: int, n: int, subject: str):
    """Refuse a Monte-Carlo computation whose largest possible value would overflow float32.

    ``kind`` is ``"noise"`` (the Taylor-form cross-talk, up to K (D-1)^(n-1)), ``"squared noise"``
    (its square, averaged by :func:`measured_noise_variance`) or ``"field"`` (the aligned field:
    every term obeys |n f~(zeta)| <= n f~(D-1) = (D^n - (D-2)^n)/2). ``subject`` names the
    arguments in the message. Bounds are exact Python integers, so the test itself cannot overflow.
    """
    noise = num_memories * (dim - 1) ** (n - 1)
    bound, what = {
        "noise": (noise, "the cross-talk noise"),
        "squared noise": (noise**2, "the squared cross-talk noise"),
        "field": (num_memories * (dim**n - (dim - 2) ** n) // 2, "the aligned field"),
    }[kind]
    if bound > _FLOAT32_MAX:
        raise ValueError(
            f"{what} for {subject}, n={n} can reach 10^{math.log10(bound):.1f}, beyond float32's range "
            "(3.4e38): use a smaller D or n (noise_variance and gaussian_error_probability take larger ones)"
        )


def crosstalk_noise(memories, n: int) -> Float[Array, "K D"]:
    r"""The noise term of eq. (2.6) for every stored pattern ν and bit i, aligned with the signal.

    Returns :math:`\xi^\nu_i\sum_{\mu\ne\nu}\xi^\mu_i f(\sum_{j\ne i}\xi^\mu_j\xi^\nu_j)` with
    :math:`f(x) = x^{n-1}`, shape ``(K, D)``: bit i of pattern ν is in danger when this is below
    :math:`-f(D-1)`. Costs O(K²D) time and O(K·D) memory beyond the inputs.
    """
    n = _check_n(n)
    memories = _check_memories(memories)
    _check_fields_fit_float32("noise", *memories.shape, n, f"memories of shape {tuple(memories.shape)}")
    return _crosstalk_noise(memories, n, _chunk_size(*memories.shape))


def aligned_fields(memories, n: int) -> Float[Array, "K D"]:
    r"""Exact local field of every bit of every stored pattern, times the bit and times n.

    Entry (ν, i) is :math:`n\,\xi^\nu_i h_i` at state :math:`\sigma = \xi^\nu`, with the exact
    energy-difference field of the update (2.2), :math:`h_i = \sum_\mu \xi^\mu_i\tilde f(\zeta_\mu)`.
    The bit flips iff the entry is negative; zero is a tie and the bit stays. So pattern ν is a
    fixed point of :mod:`amtutor.binary` with ``power(n)`` iff row ν has no negative entry.
    The factor n keeps the values integers (exact in float32 up to 2^24).
    """
    n = _check_n(n)
    memories = _check_memories(memories)
    _check_fields_fit_float32("field", *memories.shape, n, f"memories of shape {tuple(memories.shape)}")
    return _aligned_fields(memories, n, _chunk_size(*memories.shape))


class Estimate(NamedTuple):
    """A Monte-Carlo estimate: the mean over independent trials and its standard error."""

    value: float
    stderr: float
    trials: int


def _padded_size(num_memories: int) -> int:
    """Round K up to m·2^e with 8 <= m <= 15: few compiled shapes, at most 12.5% wasted work."""
    if num_memories <= 16:
        return num_memories
    e = num_memories.bit_length() - 4
    return -(-num_memories // (1 << e)) << e


@partial(jax.jit, static_argnames=("padded", "dim", "n", "kind", "num_eval", "batch_size"))
def _trials(keys, num_memories, padded, dim, n, kind, num_eval, batch_size):
    """Per-trial statistic, shape (trials,): mean noise² or fraction of flipping bits.

    Each trial draws ``padded`` random patterns and keeps the first ``num_memories`` (the rest are
    masked out exactly), then looks at every bit of the first ``num_eval`` patterns.
    ``num_memories`` is traced, so a search over K compiles once per padded size.
    """

    def one(key):
        real = jnp.arange(padded) < num_memories
        memories = jax.random.rademacher(key, (padded, dim), dtype=jnp.float32)
        if kind == "noise":
            values = _aligned_sums(memories, _taylor_noise_fn(n), batch_size, num_eval, real) ** 2
        else:
            fn = _scaled_field_fn(n)
            fields = fn(jnp.float32(dim - 1)) + _aligned_sums(memories, fn, batch_size, num_eval, real)
            values = (fields < 0).astype(jnp.float32)
        return jnp.mean(values)

    return jax.lax.map(one, keys)


def _run_trials(num_memories, dim, n, key, trials, kind, *, padded=None, num_eval=None) -> Estimate:
    padded = _padded_size(num_memories) if padded is None else padded
    num_eval = num_memories if num_eval is None else num_eval
    batch_size = _chunk_size(padded, dim)
    keys = jax.random.split(key, trials)
    values = np.asarray(_trials(keys, num_memories, padded, dim, n, kind, num_eval, batch_size), dtype=float)
    stderr = float(values.std(ddof=1) / math.sqrt(trials))  # trials >= 2 (checked by the callers)
    return Estimate(float(values.mean()), stderr, trials)


_MAX_PATTERN_ELEMENTS = 1 << 28  # one trial's patterns, 1 GB of float32
_MAX_TRIALS = 100_000


def _check_mc_args(num_memories, dim, n, key, trials, kind):
    num_memories, dim, n = _check_k(num_memories), _check_dim(dim), _check_n(n)
    check_key("key", key)
    # two trials at least: the standard error is the spread between independent trials
    trials = check_int("trials", trials, minimum=2, maximum=_MAX_TRIALS, why="(each trial draws fresh patterns)")
    elements = _padded_size(num_memories) * dim
    if elements > _MAX_PATTERN_ELEMENTS:
        raise ValueError(f"num_memories={num_memories} patterns of dim={dim} need {4 * elements / 2**30:.1f} GB "
                         "per trial, more than the 1 GB allowed: use a smaller num_memories or dim")
    _check_fields_fit_float32("squared noise" if kind == "noise" else "field", num_memories, dim, n,
                              f"num_memories={num_memories}, dim={dim}")
    return num_memories, dim, n, trials


def measured_noise_variance(num_memories: int, dim: int, n: int, *, key, trials: int = 8) -> Estimate:
    """Monte-Carlo noise variance for K random ±1 patterns in D dimensions (compare eq. 2.14).

    Each trial draws fresh memories and averages the squared noise of :func:`crosstalk_noise`
    (its mean is 0 by symmetry) over all K·D (pattern, bit) pairs; the standard error comes from
    the spread between the independent trials, so it accounts for correlations within a trial.
    """
    num_memories, dim, n, trials = _check_mc_args(num_memories, dim, n, key, trials, "noise")
    return _run_trials(num_memories, dim, n, key, trials, "noise")


def measured_error_probability(num_memories: int, dim: int, n: int, *, key, trials: int = 8) -> Estimate:
    """Monte-Carlo fraction of bits of stored patterns that flip under one exact update (2.2).

    Compare with :func:`exact_error_probability` and :func:`gaussian_error_probability`. The
    standard error comes from the spread between the independent trials.
    """
    num_memories, dim, n, trials = _check_mc_args(num_memories, dim, n, key, trials, "error")
    return _run_trials(num_memories, dim, n, key, trials, "error")


def measured_capacity(
    dim: int,
    n: int,
    *,
    key,
    error_rate: float = 0.01,
    num_bits: int = 200_000,
    k_range: tuple[int, int] | None = None,
    patterns_per_trial: int = 32,
) -> int:
    """Largest K at which the measured per-bit flip rate of stored patterns is at most ``error_rate``.

    This is the criterion behind eq. (2.17), measured instead of approximated: :func:`largest_k`
    bisects over K in ``k_range``, and for each K the flip rate is estimated from about
    ``num_bits`` (pattern, bit) pairs: ``patterns_per_trial`` patterns (all D bits each) in each
    of ``ceil(num_bits / (patterns_per_trial·D))`` trials with fresh random memories. Every K
    reuses the same trial keys (common random numbers: the rate then grows smoothly with K), and
    the whole search compiles once: memories are drawn at the largest K and masked.

    The default ``k_range`` brackets the Gaussian prediction
    ``k_max(D, n, epsilon_for_error_rate(error_rate))`` by factors 1/2 and 2; widen it if the
    answer lands on an end.
    """
    dim, n = _check_dim(dim), _check_n(n)
    check_key("key", key)
    error_rate = check_probability("error_rate", error_rate, low=0.0, high=0.5, open_low=True, open_high=True)
    num_bits = check_int("num_bits", num_bits, minimum=1)
    patterns_per_trial = check_int("patterns_per_trial", patterns_per_trial, minimum=1)
    if k_range is None:
        predicted = k_max(dim, n, epsilon_for_error_rate(error_rate))
        k_range = (max(2, int(predicted / 2)), max(3, math.ceil(2 * predicted)))
    if not isinstance(k_range, (tuple, list)) or len(k_range) != 2:
        raise TypeError(f"k_range must be a pair (k_low, k_high), got {k_range!r}")
    k_low = check_int("k_range[0]", k_range[0], minimum=2)
    k_high = check_int("k_range[1]", k_range[1], minimum=k_low)
    num_eval = min(patterns_per_trial, k_low)
    trials = max(2, -(-num_bits // (num_eval * dim)))
    if trials > _MAX_TRIALS:
        raise ValueError(f"num_bits={num_bits:,} needs {trials:,} trials of {num_eval} patterns, more than "
                         f"{_MAX_TRIALS:,}: lower num_bits or raise patterns_per_trial")
    _check_mc_args(k_high, dim, n, key, trials, "error")  # memory and float32 range at the largest K

    def is_success(num_memories: int) -> bool:
        rate = _run_trials(num_memories, dim, n, key, trials, "error", padded=k_high, num_eval=num_eval)
        return rate.value <= error_rate

    return largest_k(is_success, k_low, k_high)


def fit_loglog_slope(x, y) -> tuple[float, float]:
    """Least-squares fit of ``log y = slope·log x + log prefactor``; returns ``(slope, prefactor)``."""
    x = np.asarray(as_array("x", x, ndim=1), dtype=float)
    y = np.asarray(as_array("y", y, ndim=1), dtype=float)
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"x and y must have the same length >= 2, got {x.size} and {y.size}")
    if np.any(x <= 0) or np.any(y <= 0) or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite and > 0 for a log-log fit")
    if np.ptp(np.log(x)) == 0:
        raise ValueError(f"x must hold at least two different values for a slope, got {x.tolist()}")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(slope), float(math.exp(intercept))
