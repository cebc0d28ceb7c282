r"""Exponential capacity of dense associative memories: the REM theory.

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

Contents (NumPy/SciPy, vectorised over λ and α, no randomness): :func:`rate_function`,
:func:`cumulant`, :func:`tilted_overlap`, :func:`max_overlap`, :func:`rem_free_energy`,
:func:`is_condensed`, :func:`alpha_1` (closed form), :func:`alpha_1_numerical` (maximisation over
q, no closed form used), :func:`condensation_alpha`, :func:`condensation_lambda`,
:func:`gaussian_norm_rate`, :func:`gaussian_alpha_c` (first-moment / union bound),
:func:`basin_cos_min`; :func:`num_patterns` (P for a load α) and :func:`crossing_point` (where a
measured success curve crosses a level, to compare with a threshold).

The finite-N experiments that test these predictions (the log-sum-exp dynamics, REM-level and
full-dynamics retrieval, one-step basins) live in :mod:`amtutor.statmech_sims`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from .validation import as_array, check_finite, check_int, check_probability

__all__ = [
    "ENSEMBLES",
    "check_ensemble",
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
    "gaussian_failing_norm",
    "gaussian_target_success",
    "basin_cos_min",
    "num_patterns",
    "crossing_point",
    "crossing_error",
]

ENSEMBLES = ("gaussian", "spherical", "binary")
"""Pattern ensembles: i.i.d. N(0, 1) entries; uniform on the sphere |ξ|² = N; i.i.d. ±1 entries."""

_LN2 = math.log(2.0)


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def check_ensemble(ensemble, allowed=ENSEMBLES) -> str:
    """Return ``ensemble`` after checking it is one of ``allowed`` (default :data:`ENSEMBLES`)."""
    if not isinstance(ensemble, str) or ensemble not in allowed:
        raise ValueError(f"unknown ensemble {ensemble!r}; choose one of {', '.join(allowed)}")
    return ensemble


# NumPy arithmetic on a 0-d array returns a NumPy scalar: the private helpers take and give either.
Real = np.ndarray | np.floating


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


def _broadcast(**arrays):
    """Broadcast the named arrays against each other, or raise a ValueError naming them and their shapes."""
    try:
        return np.broadcast_arrays(*arrays.values())
    except ValueError:
        shapes = " and ".join(f"{n} of shape {np.shape(a)}" for n, a in arrays.items())
        raise ValueError(f"{shapes} do not broadcast against each other: give one of them as a single "
                         "number, equal shapes, or shapes that broadcast (e.g. lam[:, None] against "
                         "alpha for a grid)") from None


def _single(name: str, x: np.ndarray) -> float:
    """One number from a checked array, or a TypeError saying that this function takes one."""
    if x.ndim != 0:
        raise TypeError(f"{name} must be a single number here, got an array of shape {x.shape}")
    return float(x)


def _out(x):
    """NumPy scalar → Python float, arrays unchanged."""
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


# --------------------------------------------------------------------------------------------
# Large deviations of one overlap q = ξ^μ·ξ^1 / N (target of norm |ξ^1|² = N)
# --------------------------------------------------------------------------------------------


def _rate(q: Real, ensemble: str) -> Real:
    q = np.abs(np.asarray(q, dtype=np.float64))
    if ensemble == "gaussian":
        return q**2 / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        if ensemble == "spherical":
            out = -0.5 * np.log1p(-np.minimum(q, 1.0) ** 2)
            return np.where(q < 1, out, np.inf)
        out = 0.5 * (special.xlogy(1 + q, 1 + q) + special.xlogy(1 - q, np.maximum(1 - q, 0.0)))
        # That form cancels its O(q) terms for small q (I(1e-8) came out -5.5e-18, true 5e-17);
        # q·artanh q + ½ log1p(-q²) = q²/2 + q⁴/12 + ... cancels only half of q² there.
        small = q * np.arctanh(np.minimum(q, 0.5)) + 0.5 * np.log1p(-np.minimum(q, 0.5) ** 2)
        out = np.where(q < 0.5, small, out)
        return np.where(q <= 1, out, np.inf)


def rate_function(q, ensemble: str):
    r"""Rate :math:`I(q)` of the overlap :math:`q = \xi^\mu\cdot\xi^1/N`: :math:`\Pr(q)\asymp e^{-N I(q)}`.

    * Gaussian: :math:`q^2/2` (given :math:`|\xi^1|^2 = N`, :math:`Nq \sim \mathcal N(0, N)`);
    * spherical: :math:`-\tfrac12\ln(1-q^2)` (density :math:`\propto (1-q^2)^{(N-3)/2}`), ∞ for |q| ≥ 1;
    * binary: :math:`\tfrac12[(1+q)\ln(1+q)+(1-q)\ln(1-q)]` (Cramér for ±1 sums), ∞ for |q| > 1.

    ``q`` may be a scalar or an array; the result has its shape.
    """
    check_ensemble(ensemble)
    q = np.asarray(as_array("q", q), dtype=np.float64)
    check_finite("q", q)
    return _out(_rate(q, ensemble))


def _tilted(lam: Real, ensemble: str) -> Real:
    if ensemble == "gaussian":
        return lam
    if ensemble == "spherical":
        # (sqrt(1+4λ²) − 1)/(2λ), written without the cancellation at small λ (hypot: no overflow
        # of 4λ² beyond λ ~ 1e154, where the plain form gave q* = 0)
        with np.errstate(over="ignore"):
            return np.where(lam < 1e100, 2 * lam / (1 + np.sqrt(1 + 4 * lam**2)), 1 / (0.5 / lam + np.hypot(0.5 / lam, 1.0)))
    return np.tanh(lam)


def _cumulant(lam: Real, ensemble: str) -> Real:
    if ensemble == "gaussian":
        return lam**2 / 2
    if ensemble == "spherical":
        q = _tilted(lam, ensemble)
        # 1 − q*² rounds to 0 for λ ≳ 1e8 (log1p(−1) = −∞ from λ = 1e16): for large λ use
        # 1 − q* = (1 + 1/(s + 2λ))/(1 + s), s = √(1 + 4λ²) = 2λ·hypot(1/(2λ), 1), exactly rewritten.
        with np.errstate(over="ignore", divide="ignore"):
            s = 2 * lam * np.hypot(0.5 / lam, 1.0)
            one_minus_q = (1 + 1 / (s + 2 * lam)) / (1 + s)
            large = lam * q + 0.5 * (np.log(one_minus_q) + np.log1p(q))
            return np.where(lam < 1e4, lam * q + 0.5 * np.log1p(-(q**2)), large)
    return np.logaddexp(lam, -lam) - _LN2  # ln cosh λ, stable for large λ


def tilted_overlap(lam, ensemble: str):
    r""":math:`q^*(\lambda) = \Lambda'(\lambda)`, the overlap that dominates :math:`\sum_\mu e^{\lambda N q_\mu}`
    when the REM is not condensed: λ (Gaussian), :math:`(\sqrt{1+4\lambda^2}-1)/(2\lambda)` (spherical),
    tanh λ (binary)."""
    check_ensemble(ensemble)
    return _out(_tilted(_lam(lam), ensemble))


def cumulant(lam, ensemble: str):
    r"""Cumulant function :math:`\Lambda(\lambda) = \max_q[\lambda q - I(q)]` (Legendre transform of I).

    Gaussian λ²/2; spherical :math:`\lambda q^* + \tfrac12\ln(1-q^{*2})`; binary ln cosh λ.
    """
    check_ensemble(ensemble)
    return _out(_cumulant(_lam(lam), ensemble))


def _max_overlap(alpha: Real, ensemble: str) -> Real:
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
    check_ensemble(ensemble)
    return _out(_max_overlap(_alpha(alpha), ensemble))


def _condensed(lam, alpha, ensemble):
    return _rate(_tilted(lam, ensemble), ensemble) >= alpha


def is_condensed(lam, alpha, ensemble: str):
    r"""True where the competitors' REM is condensed (frozen): :math:`I(q^*(\lambda)) \ge \alpha`, so
    a few competitors with the largest overlap :math:`q_{\max}(\alpha)` dominate :math:`Z`."""
    check_ensemble(ensemble)
    lam, alpha = _broadcast(lam=_lam(lam), alpha=_alpha(alpha))
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
    check_ensemble(ensemble)
    lam, alpha = _broadcast(lam=_lam(lam), alpha=_alpha(alpha))
    return _out(_phi(lam, alpha, ensemble))


def rem_objective(q, lam, alpha, ensemble: str):
    r"""The function maximised in :math:`\varphi`: :math:`\alpha - I(q) + \lambda q` where the entropy
    :math:`\alpha - I(q) \ge 0`, and −∞ where no competitor has overlap q (for plots of φ(q))."""
    check_ensemble(ensemble)
    lam, alpha = _single("lam", _lam(lam)), _single("alpha", _alpha(alpha))
    q = np.asarray(as_array("q", q), dtype=np.float64)
    check_finite("q", q)
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
    check_ensemble(ensemble)
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
    check_ensemble(ensemble)
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
    check_ensemble(ensemble)
    return _out(_rate(_tilted(_lam(lam), ensemble), ensemble))


def condensation_lambda(alpha, ensemble: str):
    r"""The same line as a function of α: :math:`q^*(\lambda_c) = q_{\max}(\alpha)`. Gaussian
    :math:`\sqrt{2\alpha}`; spherical :math:`q_{\max}/(1-q_{\max}^2)`; binary artanh :math:`q_{\max}`
    (∞ once α ≥ ln 2)."""
    check_ensemble(ensemble)
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


def _failing_norm(lam: float, alpha: float) -> float:
    def excess(rho):  # ≥ 0 iff a target of norm ρ loses to the typical competitors' sum
        return float(_phi(lam * np.sqrt(rho), alpha, "gaussian")) - lam * rho

    # φ(λ√ρ, α)/ρ decreases in ρ, so failing norms form an interval (0, ρ_f].
    if excess(1e-300) <= 0:  # α = 0: one competitor, no REM sum to beat; no norm fails
        return 0.0
    high = 1.0
    while excess(high) > 0:
        high *= 2
    return optimize.brentq(excess, 1e-300, high, xtol=1e-14)


def gaussian_failing_norm(lam, alpha):
    r"""The squared norm :math:`\rho_f` (in units of N) below which a Gaussian target loses, at the
    REM level, to the typical competitors' sum: :math:`\lambda\rho_f = \varphi(\lambda\sqrt{\rho_f},\alpha)`.

    Given the target's norm ρ, the competitors' overlaps form the REM with λ rescaled to
    :math:`\lambda\sqrt\rho`, and the self term is λρ; :math:`\varphi(\lambda\sqrt\rho,\alpha)/\rho`
    falls as ρ grows, so the failing norms are exactly :math:`(0, \rho_f]`.
    """
    lam, alpha = _broadcast(lam=_lam(lam), alpha=_alpha(alpha))
    return _out(np.vectorize(_failing_norm, otypes=[np.float64])(lam, alpha))


def gaussian_target_success(lam, alpha, dim: int):
    r"""Finite-N probability that one Gaussian target is retrieved at the REM level, averaged over
    its norm: :math:`\Pr[|\xi|^2 > N\rho_f]` with :math:`|\xi|^2 \sim \chi^2_N` and :math:`\rho_f`
    from :func:`gaussian_failing_norm`.

    Only the target's norm is treated at finite N (the competitors' sum keeps its N → ∞ REM value),
    so this predicts how the norm fluctuations blur the crossing at :math:`\alpha_1`.
    """
    dim = check_int("dim", dim, minimum=1)
    return _out(special.chdtrc(dim, dim * np.asarray(gaussian_failing_norm(lam, alpha))))


def _gaussian_failure_rate(lam: float, alpha: float) -> float:
    """Exponent F of Pr(pattern 1 is not retrieved), cheapest of two mechanisms (see gaussian_alpha_c)."""
    rho_f = _failing_norm(lam, alpha)
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
    if np.any(lam < 1e-300):
        raise ValueError(f"lam must be >= 1e-300 for gaussian_alpha_c (alpha_c -> lam as lam -> 0), "
                         f"got {float(np.min(lam)):g}")

    def one(l):
        a1 = float(alpha_1(l, "gaussian"))
        # The root lies in (0, α₁); for α₁ ≲ 1e-6 (λ ≲ 1e-6) the fixed bracket [1e-9, α₁] and the
        # absolute tolerance 1e-12 no longer fit, so both scale with α₁ there.
        low, xtol = (1e-9, 1e-12) if a1 > 1e-6 else (1e-3 * a1, 1e-9 * a1)
        return optimize.brentq(lambda a: _gaussian_failure_rate(l, a) - a, low, a1, xtol=xtol)

    return _out(np.vectorize(one, otypes=[np.float64])(lam))


def basin_cos_min(lam, alpha, ensemble: str, rho=1.0):
    r"""Edge of the one-step basin of attraction: starting from :math:`x_0` with
    :math:`|x_0|^2 = N\rho` at angle θ to :math:`\xi^1`, one update lands on :math:`\xi^1` iff
    :math:`\cos\theta > \varphi(\lambda\sqrt\rho,\alpha)/(\lambda\sqrt\rho)`.

    The competitors' overlaps with :math:`x_0` are those of the REM with λ rescaled to
    :math:`\lambda\sqrt\rho`. A value ≥ 1 means no basin (α ≥ α₁). Gaussian and spherical only
    (for ±1 patterns the overlap with a generic real :math:`x_0` is not the binary rate).
    """
    check_ensemble(ensemble, ("gaussian", "spherical"))
    lam, alpha, rho = _broadcast(lam=_lam(lam), alpha=_alpha(alpha), rho=_values("rho", rho, allow_zero=False))
    scale = lam * np.sqrt(rho)
    return _out(_phi(scale, alpha, ensemble) / scale)


# --------------------------------------------------------------------------------------------
# Number of patterns at load α
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
    alpha = _single("alpha", _alpha(alpha))
    dim = check_int("dim", dim, minimum=2)
    per_pattern = check_int("per_pattern", per_pattern, minimum=0)
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


# --------------------------------------------------------------------------------------------
# Reading a success curve
# --------------------------------------------------------------------------------------------


def crossing_point(x, success, level: float = 0.5, *, decreasing: bool = True) -> float:
    """Where a measured success curve crosses ``level``, by linear interpolation between the two
    grid points that bracket the first crossing; NaN if it never crosses.

    ``decreasing=True`` for success vs α (falls through the level), ``False`` for success vs cos θ.
    NaN is the answer only for a curve that never crosses: bad input (NaN or infinite values, fewer
    than two points, a ``level`` outside [0, 1], which no success fraction can cross) raises.
    """
    x = np.asarray(as_array("x", x, ndim=1), dtype=np.float64)
    success = np.asarray(as_array("success", success, ndim=1), dtype=np.float64)
    if x.shape != success.shape:
        raise ValueError(f"x and success must have the same shape, got {x.shape} and {success.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"x and success need at least 2 points to bracket a crossing, got {x.shape[0]}")
    check_finite("x", x)
    check_finite("success", success)
    level = check_probability("level", level)
    s = success - level if decreasing else level - success
    for i in range(len(x) - 1):
        if s[i] >= 0 > s[i + 1]:
            return float(x[i] + (x[i + 1] - x[i]) * s[i] / (s[i] - s[i + 1]))
    return float("nan")


def crossing_error(x, success, trials: int, level: float = 0.5, *, seed: int = 0,
                   resamples: int = 2000) -> float:
    """Sampling error of :func:`crossing_point`: the standard deviation of the crossing when every
    measured fraction is redrawn from a binomial with ``trials`` trials at that fraction (a
    parametric bootstrap, seeded by ``seed``). Redraws that never cross are left out (NaN if none
    crosses); the error of the linear interpolation itself is not included."""
    crossing_point(x, success, level)  # checks x, success and level
    success = np.asarray(success, dtype=np.float64)
    if np.any((success < 0) | (success > 1)):
        raise ValueError("success must hold measured fractions in [0, 1]")
    trials = check_int("trials", trials, minimum=1)
    resamples = check_int("resamples", resamples, minimum=2, maximum=10**6,
                          why="each resample interpolates the whole curve")
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    redrawn = rng.binomial(trials, success, size=(resamples, len(success))) / trials
    crossings = np.array([crossing_point(x, r, level) for r in redrawn])
    if np.all(np.isnan(crossings)):
        return float("nan")
    return float(np.nanstd(crossings))
