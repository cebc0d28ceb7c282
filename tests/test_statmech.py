"""Unit and property tests for amtutor.statmech (the REM theory)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from amtutor import statmech as sm

ENSEMBLES = sm.ENSEMBLES

# ------------------------------------------------------------------------------ rate functions


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_rate_function_is_zero_at_zero_even_and_convex(ensemble):
    q = np.linspace(-0.95, 0.95, 381)
    rate = sm.rate_function(q, ensemble)
    assert sm.rate_function(0.0, ensemble) == 0.0
    np.testing.assert_allclose(rate, rate[::-1], atol=1e-14)
    assert np.all(np.diff(rate, 2) > 0)


def test_rate_function_boundaries():
    assert math.isinf(sm.rate_function(1.0, "spherical"))
    assert sm.rate_function(1.0, "binary") == pytest.approx(math.log(2))
    assert math.isinf(sm.rate_function(1.5, "binary"))
    assert sm.rate_function(3.0, "gaussian") == pytest.approx(4.5)


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_cumulant_is_legendre_transform_of_rate(ensemble):
    # Brute force on a grid of q: the grid spacing 1e-5 bounds the error by ~λ·1e-5.
    q = np.linspace(-1 + 1e-9, 1 - 1e-9, 200_001) if ensemble != "gaussian" else np.linspace(-5, 5, 1_000_001)
    rate = sm.rate_function(q, ensemble)
    for lam in (0.1, 0.7, 1.0, 2.5):
        brute = np.max(lam * q - rate)
        assert sm.cumulant(lam, ensemble) == pytest.approx(brute, abs=1e-6)
        assert sm.tilted_overlap(lam, ensemble) == pytest.approx(q[np.argmax(lam * q - rate)], abs=1e-4)


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_tilted_overlap_is_derivative_of_cumulant(ensemble):
    lam, h = np.array([0.2, 0.9, 3.0]), 1e-6
    derivative = (sm.cumulant(lam + h, ensemble) - sm.cumulant(lam - h, ensemble)) / (2 * h)
    np.testing.assert_allclose(sm.tilted_overlap(lam, ensemble), derivative, atol=1e-7)


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_max_overlap_inverts_rate(ensemble):
    alpha = np.array([0.01, 0.2, 0.5, 0.69])
    np.testing.assert_allclose(sm.rate_function(sm.max_overlap(alpha, ensemble), ensemble), alpha, atol=1e-10)
    if ensemble == "binary":
        assert sm.max_overlap(0.8, ensemble) == 1.0


# ------------------------------------------------------------------------------ REM free energy


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_free_energy_matches_brute_force_maximisation(ensemble):
    q = np.linspace(0, 1 - 1e-12, 400_001) if ensemble != "gaussian" else np.linspace(0, 3, 600_001)
    for lam in (0.3, 1.0, 2.0):
        for alpha in (0.05, 0.3, 0.8):
            brute = np.max(sm.rem_objective(q, lam, alpha, ensemble))
            assert sm.rem_free_energy(lam, alpha, ensemble) == pytest.approx(brute, abs=2e-5)


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_free_energy_is_continuous_across_condensation(ensemble):
    for lam in (0.5, 1.5):
        a_c = sm.condensation_alpha(lam, ensemble)
        below = sm.rem_free_energy(lam, a_c * (1 - 1e-9), ensemble)
        above = sm.rem_free_energy(lam, a_c * (1 + 1e-9), ensemble)
        assert below == pytest.approx(above, abs=1e-7)
        assert sm.is_condensed(lam, a_c * 0.9, ensemble) and not sm.is_condensed(lam, a_c * 1.1, ensemble)


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_condensation_line_two_ways(ensemble):
    lam = np.array([0.3, 0.8, 1.7])
    np.testing.assert_allclose(sm.condensation_lambda(sm.condensation_alpha(lam, ensemble), ensemble), lam, rtol=1e-8)


def test_gaussian_closed_forms():
    assert sm.condensation_alpha(0.8, "gaussian") == pytest.approx(0.32)
    assert sm.condensation_lambda(0.5, "gaussian") == pytest.approx(1.0)
    assert sm.rem_free_energy(2.0, 0.5, "gaussian") == pytest.approx(2.0)  # condensed: λ√(2α)
    assert sm.rem_free_energy(0.5, 0.5, "gaussian") == pytest.approx(0.625)  # α + λ²/2


# ------------------------------------------------------------------------------ thresholds


@settings(max_examples=15, deadline=None)
@given(lam=st.floats(0.02, 20.0), ensemble=st.sampled_from(ENSEMBLES))
def test_alpha_1_closed_form_equals_numerical(lam, ensemble):
    assert sm.alpha_1(lam, ensemble) == pytest.approx(sm.alpha_1_numerical(lam, ensemble), abs=1e-8)


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_alpha_1_is_where_free_energy_meets_self_term(ensemble):
    for lam in (0.4, 1.3):
        a1 = sm.alpha_1(lam, ensemble)
        assert sm.rem_free_energy(lam, a1, ensemble) == pytest.approx(lam, abs=1e-10)
        assert sm.rem_free_energy(lam, a1 - 0.01, ensemble) < lam < sm.rem_free_energy(lam, a1 + 0.01, ensemble)


def test_gaussian_alpha_c_below_alpha_1_and_saturates():
    lam = np.array([0.25, 0.5, 1.0, 3.0])
    a_c = sm.gaussian_alpha_c(lam)
    assert np.all(a_c < sm.alpha_1(lam, "gaussian"))
    np.testing.assert_allclose(a_c[2:], math.log(2) / 4, atol=1e-10)


def test_gaussian_norm_rate():
    assert sm.gaussian_norm_rate(1.0) == 0.0
    assert sm.gaussian_norm_rate(0.5) == pytest.approx((0.5 - 1 + math.log(2)) / 2)


@pytest.mark.parametrize("ensemble", ["gaussian", "spherical"])
def test_basin_closes_at_alpha_1_and_shrinks_with_load(ensemble):
    lam = 0.8
    assert sm.basin_cos_min(lam, sm.alpha_1(lam, ensemble), ensemble) == pytest.approx(1.0)
    cos = sm.basin_cos_min(lam, np.array([0.05, 0.1, 0.2, 0.3]), ensemble)
    assert np.all(np.diff(cos) > 0) and np.all(cos < 1)


def test_num_patterns():
    assert sm.num_patterns(0.5, 10) == round(math.exp(5))
    assert sm.num_patterns(0.0, 10) == 2


# ------------------------------------------------------------------------------ reading a success curve


def test_crossing_point():
    assert sm.crossing_point([0, 1, 2], [1.0, 0.6, 0.2]) == pytest.approx(1.25)
    assert sm.crossing_point([0, 1, 2], [0.0, 0.4, 0.8], decreasing=False) == pytest.approx(1.25)
    assert math.isnan(sm.crossing_point([0, 1], [1.0, 0.9]))


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("lam", [0.0, -1.0])
def test_bad_lambda(lam):
    with pytest.raises(ValueError, match="lam must be > 0"):
        sm.alpha_1(lam, "gaussian")
    with pytest.raises(ValueError, match="lam must be > 0"):
        sm.rem_free_energy(lam, 0.1, "spherical")


def test_bad_alpha():
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        sm.rem_free_energy(1.0, -0.1, "gaussian")
    with pytest.raises(ValueError, match="alpha must be finite|alpha contains NaN"):
        sm.max_overlap(float("nan"), "gaussian")


def test_unknown_ensemble():
    with pytest.raises(ValueError, match="unknown ensemble 'bernoulli'"):
        sm.alpha_1(1.0, "bernoulli")
    with pytest.raises(ValueError, match="unknown ensemble 'binary'; choose one of gaussian, spherical"):
        sm.basin_cos_min(1.0, 0.1, "binary")
    with pytest.raises(ValueError, match="unknown ensemble 'Gaussian'"):
        sm.check_ensemble("Gaussian")
    assert sm.check_ensemble("binary") == "binary"


@pytest.mark.parametrize("dim", [0, 1])
def test_dimension_too_small(dim):
    with pytest.raises(ValueError, match="dim must be >= 2"):
        sm.num_patterns(0.1, dim)


def test_absurd_pattern_counts_are_refused():
    """P = e^(αN) = e^200 ~ 1e86 used to come back as an integer; anything that would allocate from
    it refuses before trying."""
    with pytest.raises(ValueError, match=r"alpha \* dim = 200 asks for P = e\^\(alpha\*dim\) ~ 10\^86\.9"):
        sm.num_patterns(5.0, 40)
    with pytest.raises(ValueError, match="keep alpha \\* dim <= 21.5"):
        sm.num_patterns(5.0, 1000)  # e^5000: beyond even a float
    import jax

    from amtutor import statmech_sims as sims

    key = jax.random.key(0)
    with pytest.raises(ValueError, match="asks for P"):
        sims.rem_success(1.0, 5.0, 40, ensemble="spherical", trials=4, key=key)
    # Storing the patterns themselves: 4.9e8 patterns of 40 numbers is refused by size.
    with pytest.raises(ValueError, match=r"alpha = 0.5 at dim = 40 stores P = .* array elements"):
        sims.retrieval_overlaps(1.0, 0.5, 40, ensemble="spherical", trials=4, key=key)
    with pytest.raises(ValueError, match="array elements"):
        sims.one_step_success(1.0, 0.45, 40, [0.5] * 20, ensemble="spherical", trials=64, key=key)
    assert sm.num_patterns(21.4 / 40, 40) == round(math.exp(21.4))  # the largest counts still work


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        sm.crossing_point([0, 1], [1.0])
    with pytest.raises(ValueError, match="rho must be > 0"):
        sm.gaussian_norm_rate(0.0)
    with pytest.raises(TypeError, match="q must be an array of numbers"):
        sm.rate_function("0.5", "gaussian")


# ------------------------------------------------------------------------------ issue 19


def test_bad_inputs_that_used_to_come_back_as_nan_or_raw_errors():
    nan = float("nan")
    with pytest.raises(ValueError, match="q contains NaN or infinite values"):
        sm.rem_objective(nan, 1.0, 0.1, "gaussian")  # was -inf
    with pytest.raises(TypeError, match=r"lam must be a single number here, got an array of shape \(2,\)"):
        sm.rem_objective(0.1, [1.0, 2.0], 0.1, "gaussian")  # was "only 0-dimensional arrays ..."
    with pytest.raises(TypeError, match="alpha must be a single number here"):
        sm.num_patterns([0.1, 0.2], 10)
    for call in (sm.rem_free_energy, sm.is_condensed, sm.basin_cos_min):
        with pytest.raises(ValueError, match=r"lam of shape \(2,\) and alpha of shape \(3,\).* do not broadcast"):
            call([1.0, 2.0], [0.1, 0.2, 0.3], "gaussian")  # was numpy's "shape mismatch"
    with pytest.raises(ValueError, match=r"rho of shape \(3,\) do not broadcast"):
        sm.basin_cos_min([1.0, 2.0], 0.1, "gaussian", rho=[1.0, 0.5, 0.2])
    assert sm.rem_free_energy(np.array([1.0, 2.0])[:, None], [0.1, 0.2, 0.3], "gaussian").shape == (2, 3)
    with pytest.raises(ValueError, match="math range|asks for P"):
        sm.num_patterns(1, 1000)


@pytest.mark.parametrize(
    "x, success, level, match",
    [
        ([0, float("nan"), 2], [1.0, 0.6, 0.2], 0.5, "x contains NaN or infinite values"),
        ([0, 1, 2], [1.0, float("nan"), 0.2], 0.5, "success contains NaN or infinite values"),
        ([], [], 0.5, "x and success need at least 2 points to bracket a crossing, got 0"),
        ([0.0], [1.0], 0.5, "need at least 2 points"),
        ([0, 1, 2], [1.0, 0.6, 0.2], 1.5, r"level must lie in \[0.0, 1.0\], got 1.5"),
        ([0, 1, 2], [1.0, 0.6, 0.2], float("nan"), "level must be finite"),
    ],
)
def test_crossing_point_refuses_bad_input(x, success, level, match):
    """These all came back as NaN, the documented answer for a curve that never crosses."""
    with pytest.raises(ValueError, match=match):
        sm.crossing_point(x, success, level)


def test_crossing_point_nan_means_never_crosses():
    assert math.isnan(sm.crossing_point([0, 1, 2], [1.0, 0.9, 0.8]))
    assert sm.crossing_point([0, 1, 2], [1.0, 0.9, 0.8], level=0.9) == pytest.approx(1.0)


def test_gaussian_alpha_c_at_tiny_lambda():
    """The bracket [1e-9, α₁] broke for α₁ < 1e-9 (brentq's sign error); α_c → λ as λ → 0."""
    for lam in (1e-9, 1e-12, 1e-30, 1e-300):
        value = sm.gaussian_alpha_c(lam)
        assert 0 < value <= sm.alpha_1(lam, "gaussian")
        assert value == pytest.approx(lam, rel=1e-3)
    assert sm.gaussian_alpha_c(0.5) == pytest.approx(sm.gaussian_alpha_c(0.5))  # unchanged path
    with pytest.raises(ValueError, match="lam must be >= 1e-300 for gaussian_alpha_c"):
        sm.gaussian_alpha_c(1e-310)


def _decimal():
    import decimal

    decimal.getcontext().prec = 500
    return decimal.Decimal


def test_binary_rate_is_accurate_and_non_negative_at_small_q():
    """0.5[(1+q)ln(1+q) + (1−q)ln(1−q)] cancelled: I(1e-8) was −5.5e-18. Against 500-digit decimals."""
    D = _decimal()
    for q in (1e-12, 1e-8, 1e-4, 0.1, 0.3, 0.49, 0.51, 0.9, 0.999):
        Q = D(q)
        ref = float(((1 + Q) * (1 + Q).ln() + (1 - Q) * (1 - Q).ln()) / 2)
        assert sm.rate_function(q, "binary") == pytest.approx(ref, rel=1e-14)
        assert sm.rate_function(-q, "binary") == sm.rate_function(q, "binary")
    assert sm.rate_function(1.0, "binary") == pytest.approx(math.log(2))


def test_spherical_cumulant_is_finite_and_accurate_at_large_lambda():
    """½ log1p(−q*²) hit log(0) = −∞ from λ = 1e16 (and q* = 0 from λ ~ 1e154). Against 500-digit decimals."""
    D = _decimal()
    for lam in (0.5, 3.0, 1e3, 1e4, 1.5e4, 1e8, 1e16, 1e50, 1e101, 1e200, 1e300):
        L_ = D(lam)
        q = 2 * L_ / (1 + (1 + 4 * L_ * L_).sqrt())
        ref = float(L_ * q + (1 - q * q).ln() / 2)
        assert sm.cumulant(lam, "spherical") == pytest.approx(ref, rel=1e-14)
        assert sm.tilted_overlap(lam, "spherical") == pytest.approx(float(q), rel=1e-15)
    # Λ(λ) = λ − ½ − ½ ln λ + O(1/λ) for large λ
    assert sm.cumulant(1e7, "spherical") - 1e7 == pytest.approx(-0.5 - 0.5 * math.log(1e7), abs=1e-6)


def test_gaussian_failing_norm_and_target_success_closed_forms():
    """Where the competitors' REM is not condensed at ρ_f, λρ_f = α + λ²ρ_f/2 gives
    ρ_f = α/(λ − λ²/2); at λ = 1 condensed and uncondensed branches both give ρ_f = 2α."""
    alphas = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(sm.gaussian_failing_norm(0.5, alphas), alphas / 0.375, rtol=1e-10)
    np.testing.assert_allclose(sm.gaussian_failing_norm(1.0, alphas), 2 * alphas, rtol=1e-10)
    success = sm.gaussian_target_success(0.5, alphas, 20)
    np.testing.assert_allclose(success, stats.chi2.sf(20 * alphas / 0.375, 20), rtol=1e-10)
    assert np.all(np.diff(success) < 0)  # more patterns, fewer targets long enough
    # the norm fluctuations vanish as N grows: a sharp step at α₁
    a1 = sm.alpha_1(0.5, "gaussian")
    assert sm.gaussian_target_success(0.5, a1 - 0.05, 5000) > 0.999
    assert sm.gaussian_target_success(0.5, a1 + 0.05, 5000) < 0.001
    with pytest.raises(ValueError, match="dim"):
        sm.gaussian_target_success(0.5, 0.1, 0)


def test_crossing_error():
    x = np.linspace(0.0, 1.0, 5)
    curve = np.array([1.0, 0.9, 0.5, 0.1, 0.0])
    err = sm.crossing_error(x, curve, 100)
    # near the crossing the slope is 0.8 per 0.25 in x; a binomial error of 0.05 in the middle
    # point moves the crossing by ≈ 0.05 × 0.25/0.8 ≈ 0.016, plus the neighbours' contributions
    assert 0.01 < err < 0.04
    assert sm.crossing_error(x, curve, 100) == err  # seeded
    assert sm.crossing_error(x, curve, 10_000) < err / 5  # the error falls as 1/√trials
    assert sm.crossing_error(x, np.ones(5), 100) != sm.crossing_error(x, np.ones(5), 100)  # NaN
    with pytest.raises(ValueError, match="success"):
        sm.crossing_error(x, curve * 2, 100)
    with pytest.raises(ValueError, match="trials"):
        sm.crossing_error(x, curve, 0)
    with pytest.raises(ValueError, match="x and success"):
        sm.crossing_error(x[:3], curve, 100)
