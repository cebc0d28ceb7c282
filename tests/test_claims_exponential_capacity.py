"""Every quantitative claim of book/exponential_capacity.md, checked with the chapter's functions,
seeds and sizes (the FULL_SIZE = False defaults), against theory or an independent computation.

Statistical tolerances: a success fraction from T trials has standard error ≤ 0.5/√T. Near a
crossing the success curves fall from 1 to 0 over a few hundredths in α, so the statistical error
of a 50% point is a few thousandths; each tolerance below is several times that (stated per test).
"""

import math

import jax
import numpy as np
import pytest
from scipy import optimize

from amtutor import statmech as sm
from amtutor import statmech_sims as sims

ENSEMBLES = ("gaussian", "spherical", "binary")

# ---------------------------------------------------------------- chapter settings (keep in sync)
PHASE_N, PHASE_TRIALS = 12, 48
PHASE_LAMS = np.array([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0])
PHASE_ALPHAS = {"gaussian": np.arange(0.05, 0.86, 0.1), "spherical": np.arange(0.05, 1.26, 0.1)}
REM_TRIALS = 200
REM_OFFSETS = np.round(np.arange(-0.2, 0.2001, 0.025), 3)
REM_LAMS = (0.5, 1.0)
DYN_TRIALS, DYN_LAM = 96, 1.0
DYN_OFFSETS = np.round(np.arange(-0.25, -0.05 + 1e-4, 0.025), 3)
BASIN = dict(lam=1.0, alpha=0.3, dim=16)
BASIN_TRIALS = 512
BASIN_COS = np.round(np.arange(0.40, 0.951, 0.025), 3)
BINARY = dict(lam=1.0, dim=20)
BINARY_OFFSETS = np.array([-0.1, -0.05, 0.0, 0.05, 0.1])


# ---------------------------------------------------------------- theory


def test_closed_forms_equal_numerical_maximisation():
    """'the two routes differ by at most ...' — required to 1e-4 by the issue (we get ~1e-9)."""
    lam_grid = np.geomspace(0.05, 10, 60)
    for e in ENSEMBLES:
        assert np.max(np.abs(sm.alpha_1(lam_grid, e) - sm.alpha_1_numerical(lam_grid, e))) < 1e-4


def test_threshold_table_against_reference_values():
    """The α₁ table; reference values from shared/reference/exponential_capacity.md (4 decimals)."""
    reference = {
        "gaussian": [0.2188, 0.3750, 0.5000, 0.5000, 0.5000, 0.5000],
        "spherical": [0.2197, 0.3870, 0.6226, 0.9088, 1.2244, 1.6638],
        "binary": [0.2191, 0.3799, 0.5662, 0.6750, 0.6928, 0.6931],
    }
    lams = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 10.0])
    for e, values in reference.items():
        np.testing.assert_allclose(sm.alpha_1(lams, e), values, atol=5.1e-5)


def test_gaussian_alpha_1_is_exactly_one_half_for_lambda_at_least_one():
    lams = np.linspace(1.0, 50.0, 200)
    assert np.all(sm.alpha_1(lams, "gaussian") == 0.5)
    assert np.all(sm.alpha_1_numerical(lams[::20], "gaussian") == pytest.approx(0.5, abs=1e-10))


def test_spherical_exceeds_gaussian_and_grows_like_half_log_lambda():
    lams = np.geomspace(0.01, 100, 300)
    assert np.all(sm.alpha_1(lams, "spherical") > sm.alpha_1(lams, "gaussian"))
    # α₁ − ½ ln λ → ½: the glued value at λ = 1e4, and the slope dα₁/d ln λ → ½
    assert sm.alpha_1(1e4, "spherical") - 0.5 * math.log(1e4) == pytest.approx(0.5, abs=1e-3)
    slope = (sm.alpha_1(1e5, "spherical") - sm.alpha_1(1e4, "spherical")) / math.log(10)
    assert slope == pytest.approx(0.5, abs=1e-3)


def test_binary_tends_to_ln2_and_gaussian_saturates():
    assert sm.alpha_1(30.0, "binary") == pytest.approx(math.log(2), abs=1e-12)
    assert sm.alpha_1(1.0, "binary") == pytest.approx(1 - math.log(math.cosh(1)))


def test_condensation_lines():
    """Gaussian line α = λ²/2 meets α₁ at (1, ½); spherical and binary α₁ lie above their lines."""
    assert sm.condensation_alpha(1.0, "gaussian") == pytest.approx(sm.alpha_1(1.0, "gaussian"))
    # α₁ − α_cond = λ(1 − q*) > 0; for binary patterns it is ~2λe^{-2λ}, below double precision
    # past λ ≈ 15, so the strict check stops at λ = 10 and the gap formula covers the rest.
    lams = np.geomspace(0.05, 10, 200)
    for e in ("spherical", "binary"):
        assert np.all(sm.alpha_1(lams, e) > sm.condensation_alpha(lams, e))
        gap = lams * (1 - sm.tilted_overlap(lams, e))
        np.testing.assert_allclose(sm.alpha_1(lams, e) - sm.condensation_alpha(lams, e), gap, atol=1e-12)
    below = lams[lams < 1]
    assert np.all(sm.alpha_1(below, "gaussian") > sm.condensation_alpha(below, "gaussian"))


def test_gaussian_alpha_c_values_and_saturation():
    """α_c ≥ 0.1056 (λ = 0.25), 0.1527 (λ = 0.5), ln2/4 from λ ≈ 0.70 on (reference note)."""
    assert sm.gaussian_alpha_c(0.25) == pytest.approx(0.1056, abs=5e-5)
    assert sm.gaussian_alpha_c(0.5) == pytest.approx(0.1527, abs=5e-5)
    assert sm.gaussian_alpha_c(1.0) == pytest.approx(math.log(2) / 4, abs=1e-10)
    lam_scan = np.linspace(0.5, 1.0, 501)
    saturated = np.abs(sm.gaussian_alpha_c(lam_scan) - math.log(2) / 4) < 1e-9
    glued = lam_scan[np.argmax(saturated)]
    # Independent: the short-target mechanism (non-condensed) costs J(ρ_f), ρ_f = α/(λ − λ²/2);
    # it equals ln2/4 at α = ln2/4 when λ − λ²/2 = α/ρ*, with J(ρ*) = α.
    a = math.log(2) / 4
    rho_star = optimize.brentq(lambda r: (r - 1 - math.log(r)) / 2 - a, 1e-3, 1.0)
    lam_s = 1 - math.sqrt(1 - 2 * a / rho_star)
    assert lam_s**2 * rho_star / 2 < a  # the non-condensed branch was the right one
    assert glued == pytest.approx(lam_s, abs=1.5e-3)  # scan step 1e-3
    assert np.all(sm.gaussian_alpha_c(PHASE_LAMS) < sm.alpha_1(PHASE_LAMS, "gaussian"))


def test_basin_edge_claims():
    """Predicted cos θ_min = 0.677 (reference note); it closes at α₁; in the condensed phase it is
    q_max(α) whatever λ."""
    assert sm.basin_cos_min(1.0, 0.3, "spherical") == pytest.approx(0.677, abs=5e-4)
    for lam in (0.5, 1.0, 2.0, 4.0):
        assert sm.basin_cos_min(lam, sm.alpha_1(lam, "spherical"), "spherical") == pytest.approx(1.0)
    for lam in (2.0, 4.0):  # α = 0.1 is below the condensation line for these λ
        assert sm.is_condensed(lam, 0.1, "spherical")
        assert sm.basin_cos_min(lam, 0.1, "spherical") == pytest.approx(sm.max_overlap(0.1, "spherical"))
    assert sm.basin_cos_min(0.5, 0.3, "spherical") > sm.basin_cos_min(1.0, 0.3, "spherical")


def test_binary_typical_threshold_exceeds_demircigil_all_patterns_value():
    assert sm.alpha_1(BINARY["lam"], "binary") - 0.1 > 0.5 * math.log(2)


# ---------------------------------------------------------------- simulations (chapter seeds)


def test_phase_diagram_simulation_agrees_with_theory_away_from_alpha_1():
    """'the grid points more than 0.1 from α₁ fall on the predicted side'. With 48 trials a point
    on the wrong side needs a 0.5 fraction against a true value near 0 or 1: we require ≥ 90% of
    points (the chapter measured 100%)."""
    for j, e in enumerate(["gaussian", "spherical"]):
        success = np.array([
            sims.success_curve(sims.rem_success, lam, PHASE_ALPHAS[e], PHASE_N, ensemble=e,
                             trials=PHASE_TRIALS, key=jax.random.key(300 + 10 * i + j))
            for i, lam in enumerate(PHASE_LAMS)])
        a1 = sm.alpha_1(PHASE_LAMS, e)[:, None]
        alphas = PHASE_ALPHAS[e][None, :]
        below, above = alphas < a1 - 0.1, alphas > a1 + 0.1
        agree = ((success > 0.5) & below) | ((success < 0.5) & above)
        assert agree.sum() / (below | above).sum() >= 0.9, e


def _rem_curve(i, lam, n):
    a1 = sm.alpha_1(lam, "spherical")
    return sims.success_curve(sims.rem_success, lam, a1 + REM_OFFSETS, n, ensemble="spherical",
                            trials=REM_TRIALS, key=jax.random.key(1000 * (i + 1) + n))


def _width(curve):
    return sm.crossing_point(REM_OFFSETS, curve, 0.1) - sm.crossing_point(REM_OFFSETS, curve, 0.9)


@pytest.mark.parametrize("i, lam", list(enumerate(REM_LAMS)))
def test_rem_level_crossing_at_alpha_1_and_sharpening(i, lam):
    """Spherical, N = 20: the 50% point is within ±0.05 of α₁ (issue). 200 trials give a standard
    error ≤ 0.035 per point; the curve falls 1 → 0 within ~0.05, so the crossing is known to
    ~0.002 (measured offsets −0.002 and −0.011). Sharpening: the 10–90% width at N = 20 is below
    that at N = 10 (measured 0.040 vs 0.075 and 0.022 vs 0.065: differences of ≥ 1.4 grid steps)."""
    curve_20 = _rem_curve(i, lam, 20)
    assert abs(sm.crossing_point(REM_OFFSETS, curve_20)) < 0.05
    assert _width(curve_20) < _width(_rem_curve(i, lam, 10))


def test_full_dynamics_crossing_below_alpha_1_and_moving_up_with_n():
    """Full dynamics (spherical, λ = 1, 96 trials per point): the 50% points at N = 12, 16, 20 are
    all below α₁ and increase with N. Measured shifts −0.146, −0.115, −0.095; each is known to
    ~0.005 (standard error 0.05 per point, curves falling within ~0.05), so the measured gaps
    (0.031, 0.020) are ≥ 3σ, and the 12-vs-20 gap (0.05) is ~7σ above zero and we require > 0.02."""
    a1 = sm.alpha_1(DYN_LAM, "spherical")
    shifts = []
    for n in (12, 16, 20):
        curve = sims.success_curve(sims.retrieval_success, DYN_LAM, a1 + DYN_OFFSETS, n, ensemble="spherical",
                                 trials=DYN_TRIALS, key=jax.random.key(2000 + n))
        shifts.append(sm.crossing_point(DYN_OFFSETS, curve))
    assert all(s < 0 for s in shifts)
    assert shifts[0] < shifts[1] < shifts[2]
    assert shifts[2] - shifts[0] > 0.02


def test_basin_measurement_matches_prediction():
    """One step at N = 16, λ = 1, α = 0.3 (512 starts per angle, standard error ≤ 0.022; curve
    rises 0 → 1 over ~0.2 in cos θ, so the 50% point is known to ~0.005): the weight test crosses
    within ±0.05 of cos θ_min (issue); the overlap test crosses higher (chapter)."""
    predicted = sm.basin_cos_min(BASIN["lam"], BASIN["alpha"], "spherical")
    crossings = {}
    for criterion in ("weight", "overlap"):
        measured = sims.one_step_success(BASIN["lam"], BASIN["alpha"], BASIN["dim"], BASIN_COS,
                                       ensemble="spherical", trials=BASIN_TRIALS, key=jax.random.key(4000),
                                       criterion=criterion).mean(axis=1)
        crossings[criterion] = sm.crossing_point(BASIN_COS, measured, decreasing=False)
    assert abs(crossings["weight"] - predicted) < 0.05
    assert crossings["overlap"] > crossings["weight"] + 0.02


def test_binary_rem_level():
    """Binary, λ = 1, N = 20: retrieved in ≥ 90% of 200 trials at α₁ − 0.1 (> ½ ln 2), and the 50%
    point within ±0.05 of α₁ (measured +0.008)."""
    a1 = sm.alpha_1(BINARY["lam"], "binary")
    curve = sims.success_curve(sims.rem_success, BINARY["lam"], a1 + BINARY_OFFSETS, BINARY["dim"],
                             ensemble="binary", trials=REM_TRIALS, key=jax.random.key(5000))
    assert a1 + BINARY_OFFSETS[0] > 0.5 * math.log(2)
    assert curve[0] >= 0.9
    assert abs(sm.crossing_point(BINARY_OFFSETS, curve)) < 0.05
