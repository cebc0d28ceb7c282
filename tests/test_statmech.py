"""Unit and property tests for amtutor.statmech (REM theory, dynamics, experiments)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from amtutor import statmech as sm
from amtutor.data import gaussian_patterns, spherical_patterns

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


# ------------------------------------------------------------------------------ dynamics


def test_update_is_gradient_step_on_energy():
    memories = spherical_patterns(30, 8, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (8,))
    grad = jax.grad(lambda s: sm.lse_energy(memories, s, 0.7))(x)
    np.testing.assert_allclose(sm.lse_update(memories, x, 0.7), x - grad, atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), lam=st.floats(0.05, 5.0), count=st.sampled_from([2, 20, 60]))
def test_energy_never_increases(seed, lam, count):
    memories = gaussian_patterns(count, 6, key=jax.random.key(seed))
    x = 2 * jax.random.normal(jax.random.key(seed + 1), (6,))
    energies = []
    for _ in range(10):
        energies.append(float(sm.lse_energy(memories, x, lam)))
        x = sm.lse_update(memories, x, lam)
    # float32: allow rounding-level increases relative to the energy scale
    scale = 1e-4 * (1 + np.max(np.abs(energies)))
    assert np.all(np.diff(energies) <= scale)


def test_update_batch_matches_single():
    memories = spherical_patterns(20, 5, key=jax.random.key(2))
    batch = jax.random.normal(jax.random.key(3), (4, 5))
    single = jnp.stack([sm.lse_update(memories, b, 1.3) for b in batch])
    np.testing.assert_allclose(sm.lse_update(memories, batch, 1.3), single, atol=1e-6)


# ------------------------------------------------------------------------------ samplers and experiments


def test_spherical_overlap_sampler_matches_beta_law():
    dim, n = 12, 200_000
    u = sm._sample_overlaps(jax.random.key(4), "spherical", (1, n), dim,
                            jnp.asarray(sm._spherical_overlap_table(dim), jnp.float32), jnp.ones(1))
    b = (np.asarray(u).ravel() / dim + 1) / 2
    # KS statistic of n samples has sd ~ 0.87/sqrt(n) ≈ 0.002; 0.006 is a >3σ bound.
    assert stats.kstest(b, stats.beta((dim - 1) / 2, (dim - 1) / 2).cdf).statistic < 0.006
    # the tail, which decides the log-sum-exp: Pr(q > 0.6) within 5 standard errors
    p = stats.beta.sf(0.8, (dim - 1) / 2, (dim - 1) / 2)
    assert abs(np.mean(b > 0.8) - p) < 5 * math.sqrt(p / n)


def test_gaussian_overlap_sampler_matches_normal_law():
    dim, n = 12, 200_000
    u = sm._sample_overlaps(jax.random.key(6), "gaussian", (1, n), dim, None, jnp.full(1, 1.5))
    g = np.asarray(u).ravel() / math.sqrt(dim * 1.5)
    assert stats.kstest(g, stats.norm.cdf).statistic < 0.006  # > 3σ of the KS statistic, as above
    assert abs(np.mean(g > 3) - stats.norm.sf(3)) < 5 * math.sqrt(stats.norm.sf(3) / n)


def test_binary_overlap_sampler_matches_binomial_law():
    dim, n = 9, 200_000
    levels, log_survival = sm._binary_overlap_table(dim)
    u = np.asarray(sm._sample_overlaps(jax.random.key(5), "binary", (1, n), dim,
                                       (jnp.asarray(levels, jnp.float32), jnp.asarray(log_survival, jnp.float32)),
                                       jnp.ones(1))).ravel()
    k = ((u + dim) / 2).round().astype(int)
    expected = stats.binom.pmf(np.arange(dim + 1), dim, 0.5)
    observed = np.bincount(k, minlength=dim + 1) / n
    assert np.all(np.abs(observed - expected) < 5 * np.sqrt(expected / n) + 1e-12)  # 5 standard errors


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_rem_success_far_below_and_above_threshold(ensemble):
    a1 = sm.alpha_1(1.0, ensemble)
    low = sm.rem_success(1.0, 0.3 * a1, 16, ensemble=ensemble, trials=64, key=jax.random.key(0), fixed_norm=True)
    high = sm.rem_success(1.0, a1 + 0.4, 16, ensemble=ensemble, trials=64, key=jax.random.key(1), fixed_norm=True)
    assert low.shape == (64,) and low.mean() > 0.95 and high.mean() < 0.05


def test_rem_success_is_deterministic_and_chunking_does_not_bias():
    kwargs = dict(ensemble="spherical", trials=256)
    a = sm.rem_success(0.5, 0.387, 14, key=jax.random.key(9), **kwargs)
    b = sm.rem_success(0.5, 0.387, 14, key=jax.random.key(9), **kwargs)
    np.testing.assert_array_equal(a, b)
    # a different chunk size draws other numbers; the success fraction must agree statistically
    c = sm.rem_success(0.5, 0.387, 14, key=jax.random.key(9), max_elements=256 * 64, **kwargs)
    assert abs(a.mean() - c.mean()) < 4 * math.sqrt(0.25 * 2 / 256)


def test_retrieval_at_low_and_high_load():
    low = sm.retrieval_overlaps(1.0, 0.2, 10, ensemble="spherical", trials=16, key=jax.random.key(0))
    assert np.all(low > 0.95)  # the fixed point is ξ plus a small admixture of the others
    high = sm.retrieval_success(1.0, 1.0, 10, ensemble="spherical", trials=16, key=jax.random.key(1))
    assert not np.any(high)


def test_retrieval_padding_does_not_change_dynamics():
    # P = 40 is padded to 48 rows; compare with the unpadded update done by hand
    key = jax.random.key(3)
    memories, valid = sm._padded_patterns("gaussian", 40, 6, key)
    assert memories.shape == (48, 6) and int(valid.sum()) == 40
    x = memories[:3]
    np.testing.assert_allclose(sm._masked_update(memories, valid, x, 0.8), sm.lse_update(memories[:40], x, 0.8),
                               atol=1e-6)


@pytest.mark.parametrize("criterion", ["weight", "overlap"])
def test_one_step_success_extremes(criterion):
    out = sm.one_step_success(1.0, 0.2, 12, [0.0, 1.0], ensemble="gaussian", trials=40, key=jax.random.key(2),
                              criterion=criterion)
    assert out.shape == (2, 40)
    assert out[0].mean() < 0.1 and out[1].mean() > 0.9


def test_success_curve_reproduces_single_points():
    key = jax.random.key(11)
    curve = sm.success_curve(sm.rem_success, 0.5, [0.2, 0.5], 10, ensemble="spherical", trials=32, key=key)
    second = sm.rem_success(0.5, 0.5, 10, ensemble="spherical", trials=32, key=jax.random.fold_in(key, 1))
    assert curve[1] == second.mean()


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
    with pytest.raises(ValueError, match="lam must be > 0"):
        sm.rem_success(lam, 0.1, 10, ensemble="spherical", trials=4, key=jax.random.key(0))


def test_bad_alpha():
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        sm.rem_free_energy(1.0, -0.1, "gaussian")
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        sm.retrieval_success(1.0, -0.1, 10, ensemble="spherical", trials=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="alpha must be finite|alpha contains NaN"):
        sm.max_overlap(float("nan"), "gaussian")


def test_unknown_ensemble():
    with pytest.raises(ValueError, match="unknown ensemble 'bernoulli'"):
        sm.alpha_1(1.0, "bernoulli")
    with pytest.raises(ValueError, match="unknown ensemble"):
        sm.rem_success(1.0, 0.1, 10, ensemble="Gaussian", trials=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="unknown ensemble 'binary'; choose one of gaussian, spherical"):
        sm.basin_cos_min(1.0, 0.1, "binary")


@pytest.mark.parametrize("dim", [0, 1])
def test_dimension_too_small(dim):
    with pytest.raises(ValueError, match="dim must be >= 2"):
        sm.rem_success(1.0, 0.1, dim, ensemble="spherical", trials=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="dim must be >= 2"):
        sm.num_patterns(0.1, dim)


def test_absurd_pattern_counts_are_refused():
    """P = e^(αN) = e^200 ~ 1e86 used to come back as an integer; anything that would allocate from
    it refuses before trying."""
    with pytest.raises(ValueError, match=r"alpha \* dim = 200 asks for P = e\^\(alpha\*dim\) ~ 10\^86\.9"):
        sm.num_patterns(5.0, 40)
    with pytest.raises(ValueError, match="keep alpha \\* dim <= 21.5"):
        sm.num_patterns(5.0, 1000)  # e^5000: beyond even a float
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="asks for P"):
        sm.rem_success(1.0, 5.0, 40, ensemble="spherical", trials=4, key=key)
    # Storing the patterns themselves: 4.9e8 patterns of 40 numbers is refused by size.
    with pytest.raises(ValueError, match=r"alpha = 0.5 at dim = 40 stores P = .* array elements"):
        sm.retrieval_overlaps(1.0, 0.5, 40, ensemble="spherical", trials=4, key=key)
    with pytest.raises(ValueError, match="array elements"):
        sm.one_step_success(1.0, 0.45, 40, [0.5] * 20, ensemble="spherical", trials=64, key=key)
    assert sm.num_patterns(21.4 / 40, 40) == round(math.exp(21.4))  # the largest counts still work


def test_other_bad_inputs():
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        sm.rem_success(1.0, 0.1, 10, ensemble="spherical", trials=4, key=0)
    with pytest.raises(ValueError, match="trials must be >= 1"):
        sm.retrieval_success(1.0, 0.1, 10, ensemble="spherical", trials=0, key=key)
    with pytest.raises(ValueError, match="cos_theta must lie in"):
        sm.one_step_success(1.0, 0.1, 10, [1.5], ensemble="spherical", trials=4, key=key)
    with pytest.raises(ValueError, match="unknown criterion"):
        sm.one_step_success(1.0, 0.1, 10, [0.5], ensemble="spherical", trials=4, key=key, criterion="cos")
    with pytest.raises(ValueError, match="same shape"):
        sm.crossing_point([0, 1], [1.0])
    with pytest.raises(ValueError, match="rho must be > 0"):
        sm.gaussian_norm_rate(0.0)
    with pytest.raises(TypeError, match="q must be an array of numbers"):
        sm.rate_function("0.5", "gaussian")
    with pytest.raises(ValueError, match="state has 3 entries"):
        sm.lse_update(jnp.ones((4, 5)), jnp.ones(3), 1.0)
    with pytest.raises(ValueError, match="lam must be > 0"):
        sm.lse_energy(jnp.ones((4, 5)), jnp.ones(5), 0.0)
