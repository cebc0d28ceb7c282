r"""Exponential capacity of dense associative memories: REM theory and finite-N experiments.

The model (continuous state, :math:`P = e^{\alpha N}` patterns :math:`\xi^\mu\in\mathbb R^N`):

.. math:: E(x) = -\frac1\lambda \log\sum_\mu e^{\lambda\,\xi^\mu\cdot x} + \tfrac12|x|^2,
          \qquad x \leftarrow \Xi^\top \operatorname{softmax}(\lambda\,\Xi x).

Started on pattern 1, the update keeps it when the self term :math:`e^{\lambda|\xi^1|^2}` beats
:math:`Z = \sum_{\mu\ge2} e^{\lambda N q_\mu}`, with :math:`q_\mu = \xi^\mu\cdot\xi^1/N`. The
:math:`e^{\alpha N}` overlaps act as the energy levels of a Random Energy Model (REM). With the
large-deviation rate :math:`I(q)` of one overlap (:math:`\Pr \asymp e^{-N I(q)}`),

.. math:: \varphi(\lambda,\alpha) = \lim_N \tfrac1N\log Z
          = \max_{q:\,I(q)\le\alpha}\,[\alpha - I(q) + \lambda q],

non-condensed (:math:`\varphi = \alpha + \Lambda(\lambda)`, :math:`\Lambda` the cumulant function)
when the unconstrained maximiser :math:`q^*(\lambda)=\Lambda'(\lambda)` has :math:`I(q^*) < \alpha`,
condensed (:math:`\varphi = \lambda q_{\max}(\alpha)`, :math:`I(q_{\max}) = \alpha`) otherwise. A
typical pattern is retrieved iff :math:`\lambda > \varphi` (target norm :math:`|\xi^1|^2 = N`), so
:math:`\alpha_1(\lambda) = \sup\{\alpha:\varphi(\lambda,\alpha) < \lambda\}`.

Provenance: the REM route and the existence of the thresholds are Lucibello & Mézard (PRL 132,
077301, 2024); the formulas here are *derived along that route* for this book and checked
numerically (closed form = brute-force maximisation), not copied from the paper.

Contents

* theory (NumPy/SciPy, vectorised over λ and α): :func:`rate_function`, :func:`cumulant`,
  :func:`tilted_overlap`, :func:`max_overlap`, :func:`rem_free_energy`, :func:`is_condensed`,
  :func:`alpha_1` (closed form), :func:`alpha_1_numerical` (maximisation over q, no closed form
  used), :func:`condensation_alpha`, :func:`condensation_lambda`, :func:`gaussian_norm_rate`,
  :func:`gaussian_alpha_c` (first-moment / union bound), :func:`basin_cos_min`;
* dynamics (JAX): :func:`lse_energy`, :func:`lse_update`;
* experiments (JAX, explicit keys, chunked so that no ``P × N`` array is built when only overlaps
  matter): :func:`rem_success` (REM level: overlaps sampled directly), :func:`retrieval_overlaps`
  and :func:`retrieval_success` (full dynamics with stored patterns), :func:`one_step_success`
  (basins from a controlled angle), :func:`success_curve` (a success fraction per load) and
  :func:`crossing_point` (where a measured success curve crosses 50 %).
"""

from __future__ import annotations

import math
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from scipy import optimize, special, stats

from .data import binary_patterns, gaussian_patterns, spherical_patterns
from .validation import as_array, check_finite, check_int, check_key, check_positive

__all__ = [
    "ENSEMBLES",
    "rate_function",
    "cumulant",
    "tilted_overlap",
    "max_overlap",
    "rem_free_energy",
    "rem_objective",
    "is_condensed",
    "alpha_1",
    "alpha_1_numerical",
    "condensation_alpha",
    "condensation_lambda",
    "gaussian_norm_rate",
    "gaussian_alpha_c",
    "basin_cos_min",
    "num_patterns",
    "lse_energy",
    "lse_update",
    "rem_success",
    "retrieval_overlaps",
    "retrieval_success",
    "success_curve",
    "one_step_success",
    "crossing_point",
]

ENSEMBLES = ("gaussian", "spherical", "binary")
"""Pattern ensembles: i.i.d. N(0, 1) entries; uniform on the sphere |ξ|² = N; i.i.d. ±1 entries."""

_LN2 = math.log(2.0)


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_ensemble(ensemble, allowed=ENSEMBLES) -> str:
    if not isinstance(ensemble, str) or ensemble not in allowed:
        raise ValueError(f"unknown ensemble {ensemble!r}; choose one of {', '.join(allowed)}")
    return ensemble


def _values(name: str, x, *, allow_zero: bool) -> np.ndarray:
    """A scalar or array of finite numbers > 0 (or >= 0), as float64."""
    x = np.asarray(as_array(name, x), dtype=np.float64)
    check_finite(name, x)
    bad = x < 0 if allow_zero else x <= 0
    if np.any(bad):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {x[bad].flat[0]}")
    return x


def _lam(lam) -> np.ndarray:
    return _values("lam", lam, allow_zero=False)


def _alpha(alpha) -> np.ndarray:
    return _values("alpha", alpha, allow_zero=True)


def _out(x):
    """NumPy scalar → Python float, arrays unchanged."""
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


# --------------------------------------------------------------------------------------------
# Large deviations of one overlap q = ξ^μ·ξ^1 / N (target of norm |ξ^1|² = N)
# --------------------------------------------------------------------------------------------


def _rate(q: np.ndarray, ensemble: str) -> np.ndarray:
    q = np.abs(np.asarray(q, dtype=np.float64))
    if ensemble == "gaussian":
        return q**2 / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        if ensemble == "spherical":
            out = -0.5 * np.log1p(-np.minimum(q, 1.0) ** 2)
            return np.where(q < 1, out, np.inf)
        out = 0.5 * (special.xlogy(1 + q, 1 + q) + special.xlogy(1 - q, np.maximum(1 - q, 0.0)))
        return np.where(q <= 1, out, np.inf)


def rate_function(q, ensemble: str):
    r"""Rate :math:`I(q)` of the overlap :math:`q = \xi^\mu\cdot\xi^1/N`: :math:`\Pr(q)\asymp e^{-N I(q)}`.

    * Gaussian: :math:`q^2/2` (given :math:`|\xi^1|^2 = N`, :math:`Nq \sim \mathcal N(0, N)`);
    * spherical: :math:`-\tfrac12\ln(1-q^2)` (density :math:`\propto (1-q^2)^{(N-3)/2}`), ∞ for |q| ≥ 1;
    * binary: :math:`\tfrac12[(1+q)\ln(1+q)+(1-q)\ln(1-q)]` (Cramér for ±1 sums), ∞ for |q| > 1.

    ``q`` may be a scalar or an array; the result has its shape.
    """
    _check_ensemble(ensemble)
    q = np.asarray(as_array("q", q), dtype=np.float64)
    check_finite("q", q)
    return _out(_rate(q, ensemble))


def _tilted(lam: np.ndarray, ensemble: str) -> np.ndarray:
    if ensemble == "gaussian":
        return lam
    if ensemble == "spherical":
        # (sqrt(1+4λ²) − 1)/(2λ), written without the cancellation at small λ
        return 2 * lam / (1 + np.sqrt(1 + 4 * lam**2))
    return np.tanh(lam)


def _cumulant(lam: np.ndarray, ensemble: str) -> np.ndarray:
    if ensemble == "gaussian":
        return lam**2 / 2
    if ensemble == "spherical":
        q = _tilted(lam, ensemble)
        return lam * q + 0.5 * np.log1p(-(q**2))
    return np.logaddexp(lam, -lam) - _LN2  # ln cosh λ, stable for large λ


def tilted_overlap(lam, ensemble: str):
    r""":math:`q^*(\lambda) = \Lambda'(\lambda)`, the overlap that dominates :math:`\sum_\mu e^{\lambda N q_\mu}`
    when the REM is not condensed: λ (Gaussian), :math:`(\sqrt{1+4\lambda^2}-1)/(2\lambda)` (spherical),
    tanh λ (binary)."""
    _check_ensemble(ensemble)
    return _out(_tilted(_lam(lam), ensemble))


def cumulant(lam, ensemble: str):
    r"""Cumulant function :math:`\Lambda(\lambda) = \max_q[\lambda q - I(q)]` (Legendre transform of I).

    Gaussian λ²/2; spherical :math:`\lambda q^* + \tfrac12\ln(1-q^{*2})`; binary ln cosh λ.
    """
    _check_ensemble(ensemble)
    return _out(_cumulant(_lam(lam), ensemble))


def _max_overlap(alpha: np.ndarray, ensemble: str) -> np.ndarray:
    if ensemble == "gaussian":
        return np.sqrt(2 * alpha)
    if ensemble == "spherical":
        return np.sqrt(-np.expm1(-2 * alpha))

    def one(a):
        if a >= _LN2:
            return 1.0
        if a == 0:
            return 0.0
        return optimize.brentq(lambda q: _rate(q, "binary") - a, 0.0, 1.0, xtol=1e-15)

    return np.vectorize(one, otypes=[np.float64])(alpha)


def max_overlap(alpha, ensemble: str):
    r"""Largest overlap present among :math:`e^{\alpha N}` competitors: :math:`I(q_{\max}) = \alpha`.

    Gaussian :math:`\sqrt{2\alpha}`; spherical :math:`\sqrt{1-e^{-2\alpha}}`; binary by root finding
    (and 1 once α ≥ ln 2, when copies of the target itself are expected).
    """
    _check_ensemble(ensemble)
    return _out(_max_overlap(_alpha(alpha), ensemble))


def _condensed(lam, alpha, ensemble):
    return _rate(_tilted(lam, ensemble), ensemble) >= alpha


def is_condensed(lam, alpha, ensemble: str):
    r"""True where the competitors' REM is condensed (frozen): :math:`I(q^*(\lambda)) \ge \alpha`, so
    a few competitors with the largest overlap :math:`q_{\max}(\alpha)` dominate :math:`Z`."""
    _check_ensemble(ensemble)
    lam, alpha = np.broadcast_arrays(_lam(lam), _alpha(alpha))
    out = _condensed(lam, alpha, ensemble)
    return bool(out) if out.ndim == 0 else out


def _phi(lam, alpha, ensemble):
    lam, alpha = np.broadcast_arrays(lam, alpha)
    free = alpha + _cumulant(lam, ensemble)
    frozen = lam * _max_overlap(alpha, ensemble)
    return np.where(_condensed(lam, alpha, ensemble), frozen, free)


def rem_free_energy(lam, alpha, ensemble: str):
    r"""REM free energy :math:`\varphi(\lambda,\alpha) = \lim \tfrac1N \log\sum_{\mu\ge2}e^{\lambda N q_\mu}`.

    Non-condensed branch :math:`\alpha + \Lambda(\lambda)`; condensed branch :math:`\lambda q_{\max}(\alpha)`.
    Broadcasts ``lam`` (> 0) against ``alpha`` (≥ 0).
    """
    _check_ensemble(ensemble)
    return _out(_phi(_lam(lam), _alpha(alpha), ensemble))


def rem_objective(q, lam, alpha, ensemble: str):
    r"""The function maximised in :math:`\varphi`: :math:`\alpha - I(q) + \lambda q` where the entropy
    :math:`\alpha - I(q) \ge 0`, and −∞ where no competitor has overlap q (for plots of φ(q))."""
    _check_ensemble(ensemble)
    lam, alpha = float(_lam(lam)), float(_alpha(alpha))
    q = np.asarray(as_array("q", q), dtype=np.float64)
    entropy = alpha - _rate(q, ensemble)
    return _out(np.where(entropy >= 0, entropy + lam * q, -np.inf))


# --------------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------------


def alpha_1(lam, ensemble: str):
    r"""Typical-pattern threshold :math:`\alpha_1(\lambda)` in closed form.

    On the non-condensed branch :math:`\alpha_1 = \lambda - \Lambda(\lambda)`, valid while
    :math:`q^*(\lambda) < 1`; otherwise the REM is condensed at the threshold and
    :math:`\alpha_1 = I(1)`. Gaussian: λ − λ²/2 for λ ≤ 1, ½ for λ ≥ 1; spherical:
    :math:`\lambda(1-q^*) - \tfrac12\ln(q^*/\lambda)`; binary: λ − ln cosh λ.
    """
    _check_ensemble(ensemble)
    lam = _lam(lam)
    if ensemble == "gaussian":
        return _out(np.where(lam < 1, lam - lam**2 / 2, 0.5))
    return _out(lam - _cumulant(lam, ensemble))


def _q_max_numerical(alpha: float, ensemble: str) -> float:
    """Root of I(q) = α by bisection on the rate alone (no closed-form inverse)."""
    if alpha == 0:
        return 0.0
    top = _rate(1.0, ensemble)
    if ensemble != "gaussian" and alpha >= top:  # binary: every overlap up to 1 is populated
        return 1.0
    high = 1.0 - 1e-15 if ensemble == "spherical" else 1.0
    if ensemble == "spherical" and alpha >= _rate(high, ensemble):
        return high  # q_max = 1 to double precision
    while ensemble == "gaussian" and _rate(high, ensemble) < alpha:
        high *= 2
    return optimize.brentq(lambda q: float(_rate(q, ensemble)) - alpha, 0.0, high, xtol=1e-14)


def _phi_numerical(lam: float, alpha: float, ensemble: str) -> float:
    """max over 0 ≤ q ≤ q_max(α) of α − I(q) + λq, by bounded Brent maximisation."""
    q_max = _q_max_numerical(alpha, ensemble)
    if q_max == 0:
        return 0.0

    def objective(q):
        return alpha - float(_rate(q, ensemble)) + lam * q

    best = optimize.minimize_scalar(lambda q: -objective(q), bounds=(0.0, q_max), method="bounded",
                                    options={"xatol": 1e-12})
    return max(-best.fun, objective(q_max))


def alpha_1_numerical(lam, ensemble: str):
    r""":math:`\alpha_1(\lambda) = \sup\{\alpha:\varphi(\lambda,\alpha)<\lambda\}` computed from the rate
    function alone: φ by numerical maximisation over q, then a root in α. An independent check of
    :func:`alpha_1` (and the only route for a new ensemble without closed forms)."""
    _check_ensemble(ensemble)
    lam = _lam(lam)

    def one(l):
        # φ(λ, 0) = 0 < λ and φ(λ, α) ≥ α (q = 0 is always allowed): doubling finds a bracket.
        high = 1.0
        while _phi_numerical(l, high, ensemble) < l:
            high *= 2
        return optimize.brentq(lambda a: _phi_numerical(l, a, ensemble) - l, 0.0, high, xtol=1e-12)

    return _out(np.vectorize(one, otypes=[np.float64])(lam))


def condensation_alpha(lam, ensemble: str):
    r"""Condensation line :math:`\alpha_{\rm cond}(\lambda) = I(q^*(\lambda))`: for α below it the
    competitors' REM is frozen. Gaussian λ²/2; spherical :math:`-\tfrac12\ln(1-q^{*2})`; binary I(tanh λ)."""
    _check_ensemble(ensemble)
    return _out(_rate(_tilted(_lam(lam), ensemble), ensemble))


def condensation_lambda(alpha, ensemble: str):
    r"""The same line as a function of α: :math:`q^*(\lambda_c) = q_{\max}(\alpha)`. Gaussian
    :math:`\sqrt{2\alpha}`; spherical :math:`q_{\max}/(1-q_{\max}^2)`; binary artanh :math:`q_{\max}`
    (∞ once α ≥ ln 2)."""
    _check_ensemble(ensemble)
    q = _max_overlap(_alpha(alpha), ensemble)
    if ensemble == "gaussian":
        return _out(q)
    with np.errstate(divide="ignore"):
        if ensemble == "spherical":
            return _out(q / (1 - q**2))
        return _out(np.arctanh(q))


def gaussian_norm_rate(rho):
    r"""Rate of the squared norm :math:`\rho = |\xi|^2/N` of a Gaussian pattern (χ²_N/N):
    :math:`J(\rho) = (\rho - 1 - \ln\rho)/2`."""
    rho = _values("rho", rho, allow_zero=False)
    return _out((rho - 1 - np.log(rho)) / 2)


def _gaussian_failure_rate(lam: float, alpha: float) -> float:
    """Exponent F of Pr(pattern 1 is not retrieved), cheapest of two mechanisms (see gaussian_alpha_c)."""

    def excess(rho):  # ≥ 0 iff a target of norm ρ loses to the typical competitors' sum
        return float(_phi(lam * np.sqrt(rho), alpha, "gaussian")) - lam * rho

    # φ(λ√ρ, α)/ρ decreases in ρ, so failing norms form an interval (0, ρ_f].
    high = 1.0
    while excess(high) > 0:
        high *= 2
    rho_f = optimize.brentq(excess, 1e-300, high, xtol=1e-14)
    small_target = float(gaussian_norm_rate(min(rho_f, 1.0)))
    # One competitor at overlap q = ρ beats the self term; given the target norm, q ~ N(0, ρ/N),
    # rate ρ/2, and e^{αN} tries discount α. The best target norm is ρ = 1/2 (or ρ_f if larger).
    rho_b = max(rho_f, 0.5)
    one_competitor = float(gaussian_norm_rate(rho_b)) + max(0.0, rho_b / 2 - alpha)
    return min(small_target, one_competitor)


def gaussian_alpha_c(lam):
    r"""First-moment (union-bound) estimate of :math:`\alpha_c` for Gaussian patterns: the largest α
    with :math:`e^{\alpha N}\Pr(\text{pattern 1 fails}) \to 0`.

    Failure costs :math:`e^{-NF}` with F the cheaper of (i) a target of small norm ρ, rate
    :math:`J(\rho)`, for which the typical competitors win, :math:`\varphi(\lambda\sqrt\rho,\alpha)\ge\lambda\rho`;
    (ii) a target of norm ρ and one competitor at overlap ρ, rate :math:`J(\rho) + \rho/2 - \alpha`,
    minimal at ρ = ½, where it gives :math:`\ln 2/2 - \alpha`, hence :math:`\alpha_c \le \ln 2/4`.
    Derived for this book along the REM route; a lower bound on the true α_c.
    """
    lam = _lam(lam)

    def one(l):
        a1 = float(alpha_1(l, "gaussian"))
        return optimize.brentq(lambda a: _gaussian_failure_rate(l, a) - a, 1e-9, a1, xtol=1e-12)

    return _out(np.vectorize(one, otypes=[np.float64])(lam))


def basin_cos_min(lam, alpha, ensemble: str, rho=1.0):
    r"""Edge of the one-step basin of attraction: starting from :math:`x_0` with
    :math:`|x_0|^2 = N\rho` at angle θ to :math:`\xi^1`, one update lands on :math:`\xi^1` iff
    :math:`\cos\theta > \varphi(\lambda\sqrt\rho,\alpha)/(\lambda\sqrt\rho)`.

    The competitors' overlaps with :math:`x_0` are those of the REM with λ rescaled to
    :math:`\lambda\sqrt\rho`. A value ≥ 1 means no basin (α ≥ α₁). Gaussian and spherical only
    (for ±1 patterns the overlap with a generic real :math:`x_0` is not the binary rate).
    """
    _check_ensemble(ensemble, ("gaussian", "spherical"))
    lam, alpha = _lam(lam), _alpha(alpha)
    scale = lam * np.sqrt(_values("rho", rho, allow_zero=False))
    return _out(_phi(scale, alpha, ensemble) / scale)


# --------------------------------------------------------------------------------------------
# Dynamics
# --------------------------------------------------------------------------------------------


MAX_PATTERNS = 2**31 - 1  # P is a 32-bit integer in the kernels
MAX_PATTERN_ELEMENTS = 2**31  # the largest array built from P patterns: 8 GiB of float32


def num_patterns(alpha, dim: int, *, per_pattern: int = 0) -> int:
    r"""Number of stored patterns :math:`P = \mathrm{round}(e^{\alpha N})`, at least 2 (one target and
    one competitor).

    Refuses with a ``ValueError``, before anything is computed or allocated, when
    :math:`e^{\alpha N}` exceeds ``MAX_PATTERNS`` (2³¹ − 1, i.e. αN > 21.5), or, when the caller
    allocates ``per_pattern`` array elements for each pattern (the experiments that store the
    patterns themselves), when P × ``per_pattern`` exceeds ``MAX_PATTERN_ELEMENTS`` (2³¹).
    """
    alpha = float(_alpha(alpha))
    dim = check_int("dim", dim, minimum=2)
    exponent = alpha * dim
    if exponent > math.log(MAX_PATTERNS) or round(math.exp(exponent)) > MAX_PATTERNS:
        raise ValueError(
            f"alpha * dim = {exponent:.4g} asks for P = e^(alpha*dim) ~ 10^{exponent / math.log(10):.1f} "
            f"patterns, more than {MAX_PATTERNS:,} (2^31 - 1): keep alpha * dim <= "
            f"{math.log(MAX_PATTERNS):.1f}")
    patterns = max(2, int(round(math.exp(exponent))))
    if per_pattern and patterns * per_pattern > MAX_PATTERN_ELEMENTS:
        raise ValueError(
            f"alpha = {alpha:g} at dim = {dim} stores P = e^(alpha*dim) = {patterns:,} patterns, "
            f"which would need {patterns * per_pattern:.3g} array elements (more than "
            f"{MAX_PATTERN_ELEMENTS:.3g}, 8 GiB of float32): lower alpha, dim or the trials per set")
    return patterns


def lse_energy(memories: Float[Array, "P N"], state: Float[Array, " N"], lam) -> Float[Array, ""]:
    r""":math:`E(x) = -\frac1\lambda\log\sum_\mu e^{\lambda\xi^\mu\cdot x} + \frac12|x|^2` (log-sum-exp energy)."""
    lam = check_positive("lam", lam)
    memories = as_array("memories", memories, ndim=2)
    state = as_array("state", state, ndim=1)
    return _lse_energy(jnp.asarray(memories), jnp.asarray(state), lam)


@jax.jit
def _lse_energy(memories, state, lam):
    return -jax.nn.logsumexp(lam * (memories @ state)) / lam + 0.5 * state @ state


def lse_update(memories: Float[Array, "P N"], state: Float[Array, "... N"], lam) -> Float[Array, "... N"]:
    r"""One step :math:`x \leftarrow \Xi^\top\operatorname{softmax}(\lambda\Xi x)` (attention with the
    patterns as keys and values). It is the concave–convex step on :func:`lse_energy`, so the energy
    never increases. ``state`` may be one state (N,) or a batch (B, N)."""
    lam = check_positive("lam", lam)
    memories = as_array("memories", memories, ndim=2)
    state = as_array("state", state, ndim=(1, 2))
    if state.shape[-1] != memories.shape[1]:
        raise ValueError(f"state has {state.shape[-1]} entries but memories have N = {memories.shape[1]}")
    return _lse_update(jnp.asarray(memories), jnp.asarray(state), lam)


@jax.jit
def _lse_update(memories, state, lam):
    weights = jax.nn.softmax(lam * (state @ memories.T), axis=-1)
    return weights @ memories


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
    """
    _check_ensemble(ensemble)
    lam = float(_lam(lam))
    dim = check_int("dim", dim, minimum=2)
    trials = check_int("trials", trials, minimum=1)
    check_int("max_elements", max_elements, minimum=1)
    check_key("key", key)
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


@partial(jax.jit, static_argnames=("max_steps",))
def _iterate(memories, valid, queries, lam, tol, *, max_steps):
    """Iterate the update on a batch until no entry moves by more than ``tol`` (or max_steps).

    Rows of ``memories`` with ``valid`` false are padding (so that nearby P share one compilation).
    """

    def cond(carry):
        step, _, change = carry
        return (step < max_steps) & (change > tol)

    def body(carry):
        step, x, _ = carry
        new = _masked_update(memories, valid, x, lam)
        return step + 1, new, jnp.max(jnp.abs(new - x))

    _, x, _ = jax.lax.while_loop(cond, body, (0, queries, jnp.inf))
    return x


def _masked_weights(memories, valid, state, lam):
    logits = jnp.where(valid, lam * (state @ memories.T), -jnp.inf)
    return jax.nn.softmax(logits, axis=-1)


def _masked_update(memories, valid, state, lam):
    return _masked_weights(memories, valid, state, lam) @ memories


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
    lam = float(_lam(lam))
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
    _check_ensemble(ensemble)
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
    success. ``options`` go to :func:`retrieval_overlaps`.
    """
    threshold = check_positive("threshold", threshold)
    return retrieval_overlaps(lam, alpha, dim, ensemble=ensemble, trials=trials, key=key, **options) > threshold


def success_curve(experiment, lam, alphas, dim: int, *, key, **options) -> np.ndarray:
    """Success fraction of ``experiment`` (:func:`rem_success` or :func:`retrieval_success`) at each
    load in ``alphas``, shape ``(len(alphas),)``. Point i uses ``jax.random.fold_in(key, i)``, so a
    curve is reproducible point by point (the claims tests recompute single points)."""
    check_key("key", key)
    alphas = np.asarray(as_array("alphas", alphas, ndim=1), dtype=np.float64)
    return np.array([experiment(lam, float(a), dim, key=jax.random.fold_in(key, i), **options).mean()
                     for i, a in enumerate(alphas)])


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
      is the finite-N form of the condition behind :func:`basin_cos_min`, and the same test as
      :func:`rem_success`.
    * ``criterion="overlap"``: :math:`x_1\cdot\xi^\mu/|\xi^\mu|^2 > 0.9`, the test of
      :func:`retrieval_success`. Stricter at finite N: it needs most of the weight on the target,
      not half, so the measured edge sits higher (the gap shrinks like 1/N).
    """
    _check_ensemble(ensemble, ("gaussian", "spherical"))
    lam, _ = _check_experiment(ensemble, lam, dim, trials, key, 1.0)
    if criterion not in ("weight", "overlap"):
        raise ValueError(f"unknown criterion {criterion!r}; choose 'weight' or 'overlap'")
    cos_theta = np.asarray(as_array("cos_theta", cos_theta, ndim=1), dtype=np.float32)
    check_finite("cos_theta", cos_theta)
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


# --------------------------------------------------------------------------------------------
# Reading a success curve
# --------------------------------------------------------------------------------------------


def crossing_point(x, success, level: float = 0.5, *, decreasing: bool = True) -> float:
    """Where a measured success curve crosses ``level``, by linear interpolation between the two
    grid points that bracket the first crossing; NaN if it never crosses.

    ``decreasing=True`` for success vs α (falls through the level), ``False`` for success vs cos θ.
    """
    x = np.asarray(as_array("x", x, ndim=1), dtype=np.float64)
    success = np.asarray(as_array("success", success, ndim=1), dtype=np.float64)
    if x.shape != success.shape:
        raise ValueError(f"x and success must have the same shape, got {x.shape} and {success.shape}")
    s = success - level if decreasing else level - success
    for i in range(len(x) - 1):
        if s[i] >= 0 > s[i + 1]:
            return float(x[i] + (x[i + 1] - x[i]) * s[i] / (s[i] - s[i + 1]))
    return float("nan")
