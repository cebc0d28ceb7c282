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
from scipy import optimize, stats
from scipy.special import logsumexp

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
    """The α₁ table (printed to 4 decimals), against the reference note's values and, independently
    of the closed forms that both rest on, against the numerical maximisation over q."""
    reference = {
        "gaussian": [0.2188, 0.3750, 0.5000, 0.5000, 0.5000, 0.5000],
        "spherical": [0.2197, 0.3870, 0.6226, 0.9088, 1.2244, 1.6638],
        "binary": [0.2191, 0.3799, 0.5662, 0.6750, 0.6928, 0.6931],
    }
    lams = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 10.0])
    for e, values in reference.items():
        np.testing.assert_allclose(sm.alpha_1(lams, e), values, atol=5.1e-5)
        # rate function only: φ by bounded maximisation over q, α₁ by a root in α
        numerical = sm.alpha_1_numerical(lams, e)
        np.testing.assert_allclose(numerical, values, atol=5.1e-5)  # the printed digits
        np.testing.assert_allclose(numerical, sm.alpha_1(lams, e), atol=1e-8)


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
    """'100% of the grid points more than 0.1 from α₁ fall on the predicted side', for both
    ensembles, as the page states. Expected, not lucky: for the Gaussian points the norm-averaged
    prediction at N = 12 gives each point at most a 0.2% chance (48 trials) of the wrong side, and
    below 1% for any of them (checked below); the spherical curves are sharper (10-90% width ≤ 0.075
    in α at N = 10), so points 0.1 away sit at success 0 or 1."""
    rho = np.linspace(1e-4, 6.0, 30_000)
    w = stats.chi2.pdf(PHASE_N * rho, PHASE_N) * PHASE_N * (rho[1] - rho[0])
    wrong = 0.0
    for lam in PHASE_LAMS:
        a1 = sm.alpha_1(lam, "gaussian")
        for a in PHASE_ALPHAS["gaussian"]:
            if abs(a - a1) > 0.1:
                p = np.sum(w * (lam * rho > sm.rem_free_energy(lam * np.sqrt(rho), a, "gaussian")))
                wrong += stats.binom.sf(PHASE_TRIALS // 2 - 1, PHASE_TRIALS, p) if a > a1 else \
                    stats.binom.cdf(PHASE_TRIALS // 2, PHASE_TRIALS, p)
    assert wrong < 0.01  # the expected number of disagreeing Gaussian points
    for j, e in enumerate(["gaussian", "spherical"]):
        success = np.array([
            sims.success_curve(sims.rem_success, lam, PHASE_ALPHAS[e], PHASE_N, ensemble=e,
                             trials=PHASE_TRIALS, key=jax.random.key(300 + 10 * i + j))
            for i, lam in enumerate(PHASE_LAMS)])
        a1 = sm.alpha_1(PHASE_LAMS, e)[:, None]
        alphas = PHASE_ALPHAS[e][None, :]
        below, above = alphas < a1 - 0.1, alphas > a1 + 0.1
        agree = ((success > 0.5) & below) | ((success < 0.5) & above)
        assert agree.sum() == (below | above).sum(), e


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
    """Full dynamics (spherical, λ = 1, 96 trials per point), the 50% points at N = 12, 16, 20 with
    their sampling errors σ (parametric bootstrap, as on the page; measured 0.0006-0.0023; the grid
    step of 0.025 allows an interpolation error of the same order, so we ask for margins of at least
    0.005 as well as 3σ). Measured shifts −0.146, −0.115, −0.095.
    * each below α₁ by more than 3σ and by more than the reference note's lower end, 0.08 (the note
      reports 0.1-0.2 at N = 12-20 from its own runs), and at most 0.2 below;
    * each step up in N larger than 3 combined σ and than 0.005;
    * 'shrinks by ~35%' while 'shift × N changes by only ~8%' (a 1/N law; the page's claim), and
      shift × N / ln N drifts the other way (from −0.71 to −0.63): we require a shrink of > 25%, a
      change of shift × N below 15%, and opposite drifts of the two scaled sequences."""
    a1 = sm.alpha_1(DYN_LAM, "spherical")
    ns = np.array([12, 16, 20])
    shifts, errors = [], []
    for n in ns:
        curve = sims.success_curve(sims.retrieval_success, DYN_LAM, a1 + DYN_OFFSETS, int(n), ensemble="spherical",
                                 trials=DYN_TRIALS, key=jax.random.key(2000 + int(n)))
        shifts.append(sm.crossing_point(DYN_OFFSETS, curve))
        errors.append(sm.crossing_error(DYN_OFFSETS, curve, DYN_TRIALS, seed=int(n)))
    shifts, errors = np.array(shifts), np.array(errors)
    assert np.all(shifts < -np.maximum(3 * errors, 0.08)) and np.all(shifts > -0.2)
    steps, step_err = np.diff(shifts), np.sqrt(errors[1:] ** 2 + errors[:-1] ** 2)
    assert np.all(steps > np.maximum(3 * step_err, 0.005))
    assert 1 - shifts[-1] / shifts[0] > 0.25
    scaled, scaled_log = shifts * ns, shifts * ns / np.log(ns)
    assert abs(scaled[-1] / scaled[0] - 1) < 0.15
    assert np.all(np.diff(scaled) < 0) and np.all(np.diff(scaled_log) > 0)


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


# ---------------------------------------------------------------- added for issue 20

GAUSS = dict(lam=0.5, dim=20)
GAUSS_OFFSETS = np.round(np.arange(-0.25, 0.201, 0.05), 3)
AC = dict(lam=1.0, dim=16, trials=64)
AC_ALPHAS = np.round(np.arange(0.05, 0.401, 0.05), 2)


def _gaussian_success_lam_half(alpha, n):
    """λ = 1/2, independently of sm.rem_free_energy: given ρ the competitors' REM at λ√ρ is never
    condensed where it matters (λ²ρ/2 < α at the failing norms), so success iff
    λρ > α + λ²ρ/2, i.e. ρ > α/(λ − λ²/2) = α/0.375; ρ ~ χ²_N/N."""
    return stats.chi2.sf(n * np.asarray(alpha) / 0.375, n)


def test_gaussian_rem_level_follows_the_norm_averaged_prediction():
    """'follows the norm-averaged prediction': all 9 points within 3 binomial standard errors
    (200 trials; measured at most 1.2σ), 'crosses where predicted' to within 0.02 (the crossing's
    own sampling error is ~0.01: the curve falls from 90% to 10% over ~0.2), and 'at α₁ + 0.1 still
    retrieved' in a fraction within 3σ of the prediction (~11%)."""
    a1 = sm.alpha_1(GAUSS["lam"], "gaussian")
    alphas = a1 + GAUSS_OFFSETS
    curve = sims.success_curve(sims.rem_success, GAUSS["lam"], alphas, GAUSS["dim"], ensemble="gaussian",
                               trials=REM_TRIALS, key=jax.random.key(7000))
    pred = _gaussian_success_lam_half(alphas, GAUSS["dim"])
    se = np.sqrt(pred * (1 - pred) / REM_TRIALS) + 1 / REM_TRIALS  # + one trial where pred ≈ 0 or 1
    assert np.all(np.abs(curve - pred) < 3 * se)
    assert abs(sm.crossing_point(GAUSS_OFFSETS, curve) - sm.crossing_point(GAUSS_OFFSETS, pred)) < 0.02
    above = GAUSS_OFFSETS == 0.1
    assert 0.05 < pred[above][0] < 0.2 and curve[above][0] > 0.03  # retrieved above α₁, not rarely
    # the library's prediction (a root of λρ = φ(λ√ρ, α) through sm.rem_free_energy) equals this
    # closed form, and a quadrature over ρ of the success condition itself (step 2e-4 in ρ)
    np.testing.assert_allclose(sm.gaussian_target_success(GAUSS["lam"], alphas, GAUSS["dim"]), pred, rtol=1e-9)
    rho = np.linspace(1e-4, 6.0, 30_000)
    w = stats.chi2.pdf(GAUSS["dim"] * rho, GAUSS["dim"]) * GAUSS["dim"] * (rho[1] - rho[0])
    quad = [np.sum(w * (0.5 * rho > sm.rem_free_energy(0.5 * np.sqrt(rho), a, "gaussian"))) for a in alphas]
    np.testing.assert_allclose(quad, pred, atol=2e-3)


def _all_retrieved_numpy(lam, alpha, dim, trials, rng):
    """The same test written again in float64 NumPy, with another random stream."""
    p = sm.num_patterns(alpha, dim)
    ok, typical = 0, 0.0
    for _ in range(trials):
        x = rng.standard_normal((p, dim))
        g = lam * x @ x.T
        own = np.diag(g).copy()
        np.fill_diagonal(g, -np.inf)
        wins = own > logsumexp(g, axis=1)
        ok += wins.all()
        typical += wins.mean()
    return ok / trials, typical / trials


def test_all_patterns_phase_at_small_n():
    """The gap between α_c and α₁ at N = 16, λ = 1 (64 draws per load; standard error ≤ 0.0625):
    all patterns retrieved in ≥ 90% of draws at α = 0.1 and in none at α = 0.3, where a typical
    pattern still is in > 85%. Each all-patterns fraction lies within 3σ + 0.05 of the independent-
    pattern estimate p₁^P (p₁ = Pr(ρ > 2α) at λ = 1: λρ > φ(λ√ρ, α) = λ√ρ √(2α) or α + λ²ρ/2 both
    reduce to ρ > 2α; the 0.05 covers the neglected strong-competitor failures and correlations),
    and the 50% points agree within 0.03 (grid step 0.05). A float64 NumPy rerun at N = 16 and
    24 with another random stream shows the same."""
    sim = np.array([sims.all_patterns_success(AC["lam"], a, AC["dim"], ensemble="gaussian", trials=AC["trials"],
                                              key=jax.random.key(3500 + i))
                    for i, a in enumerate(AC_ALPHAS)])
    p1 = stats.chi2.sf(AC["dim"] * 2 * AC_ALPHAS, AC["dim"])
    np.testing.assert_allclose(sm.gaussian_target_success(1.0, AC_ALPHAS, AC["dim"]), p1, rtol=1e-9)
    pred = p1 ** np.array([sm.num_patterns(a, AC["dim"]) for a in AC_ALPHAS])
    se = np.sqrt(np.maximum(pred * (1 - pred), 0.25 / AC["trials"]) / AC["trials"])
    assert np.all(np.abs(sim[:, 0] - pred) < 3 * se + 0.05)
    assert abs(sm.crossing_point(AC_ALPHAS, sim[:, 0]) - sm.crossing_point(AC_ALPHAS, pred)) < 0.03
    at = {a: i for i, a in enumerate(AC_ALPHAS)}
    assert sim[at[0.1], 0] >= 0.9 and sim[at[0.3], 0] == 0.0 and sim[at[0.3], 1] > 0.85
    # between the asymptotic lower bound and α₁, as the page says
    assert sm.gaussian_alpha_c(1.0) < sm.crossing_point(AC_ALPHAS, sim[:, 0]) < sm.alpha_1(1.0, "gaussian")
    rng = np.random.default_rng(2020)
    for n in (16, 24):
        low, _ = _all_retrieved_numpy(1.0, 0.1, n, 64, rng)
        high, typical = _all_retrieved_numpy(1.0, 0.3, n, 16, rng)
        assert low >= 0.9 and high == 0.0 and typical > 0.85, n
