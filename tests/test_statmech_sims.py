"""Unit and property tests for amtutor.statmech_sims (log-sum-exp dynamics, samplers, experiments)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from amtutor import statmech as sm
from amtutor import statmech_sims as sims
from amtutor.data import gaussian_patterns, spherical_patterns

ENSEMBLES = sm.ENSEMBLES


# ------------------------------------------------------------------------------ dynamics


def test_update_is_gradient_step_on_energy():
    memories = spherical_patterns(30, 8, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (8,))
    grad = jax.grad(lambda s: sims.lse_energy(memories, s, 0.7))(x)
    np.testing.assert_allclose(sims.lse_update(memories, x, 0.7), x - grad, atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), lam=st.floats(0.05, 5.0), count=st.sampled_from([2, 20, 60]))
def test_energy_never_increases(seed, lam, count):
    memories = gaussian_patterns(count, 6, key=jax.random.key(seed))
    x = 2 * jax.random.normal(jax.random.key(seed + 1), (6,))
    energies = []
    for _ in range(10):
        energies.append(float(sims.lse_energy(memories, x, lam)))
        x = sims.lse_update(memories, x, lam)
    # float32: allow rounding-level increases relative to the energy scale
    scale = 1e-4 * (1 + np.max(np.abs(energies)))
    assert np.all(np.diff(energies) <= scale)


def test_update_batch_matches_single():
    memories = spherical_patterns(20, 5, key=jax.random.key(2))
    batch = jax.random.normal(jax.random.key(3), (4, 5))
    single = jnp.stack([sims.lse_update(memories, b, 1.3) for b in batch])
    np.testing.assert_allclose(sims.lse_update(memories, batch, 1.3), single, atol=1e-6)


# ------------------------------------------------------------------------------ samplers and experiments


def test_spherical_overlap_sampler_matches_beta_law():
    dim, n = 12, 200_000
    u = sims._sample_overlaps(jax.random.key(4), "spherical", (1, n), dim,
                            jnp.asarray(sims._spherical_overlap_table(dim), jnp.float32), jnp.ones(1))
    b = (np.asarray(u).ravel() / dim + 1) / 2
    # KS statistic of n samples has sd ~ 0.87/sqrt(n) ≈ 0.002; 0.006 is a >3σ bound.
    assert stats.kstest(b, stats.beta((dim - 1) / 2, (dim - 1) / 2).cdf).statistic < 0.006
    # the tail, which decides the log-sum-exp: Pr(q > 0.6) within 5 standard errors
    p = stats.beta.sf(0.8, (dim - 1) / 2, (dim - 1) / 2)
    assert abs(np.mean(b > 0.8) - p) < 5 * math.sqrt(p / n)


def test_gaussian_overlap_sampler_matches_normal_law():
    dim, n = 12, 200_000
    u = sims._sample_overlaps(jax.random.key(6), "gaussian", (1, n), dim, None, jnp.full(1, 1.5))
    g = np.asarray(u).ravel() / math.sqrt(dim * 1.5)
    assert stats.kstest(g, stats.norm.cdf).statistic < 0.006  # > 3σ of the KS statistic, as above
    assert abs(np.mean(g > 3) - stats.norm.sf(3)) < 5 * math.sqrt(stats.norm.sf(3) / n)


def test_binary_overlap_sampler_matches_binomial_law():
    dim, n = 9, 200_000
    levels, log_survival = sims._binary_overlap_table(dim)
    u = np.asarray(sims._sample_overlaps(jax.random.key(5), "binary", (1, n), dim,
                                       (jnp.asarray(levels, jnp.float32), jnp.asarray(log_survival, jnp.float32)),
                                       jnp.ones(1))).ravel()
    k = ((u + dim) / 2).round().astype(int)
    expected = stats.binom.pmf(np.arange(dim + 1), dim, 0.5)
    observed = np.bincount(k, minlength=dim + 1) / n
    assert np.all(np.abs(observed - expected) < 5 * np.sqrt(expected / n) + 1e-12)  # 5 standard errors


@pytest.mark.parametrize("ensemble", ENSEMBLES)
def test_rem_success_far_below_and_above_threshold(ensemble):
    a1 = sm.alpha_1(1.0, ensemble)
    low = sims.rem_success(1.0, 0.3 * a1, 16, ensemble=ensemble, trials=64, key=jax.random.key(0), fixed_norm=True)
    high = sims.rem_success(1.0, a1 + 0.4, 16, ensemble=ensemble, trials=64, key=jax.random.key(1), fixed_norm=True)
    assert low.shape == (64,) and low.mean() > 0.95 and high.mean() < 0.05


def test_rem_success_is_deterministic_and_chunking_does_not_bias():
    kwargs = dict(ensemble="spherical", trials=256)
    a = sims.rem_success(0.5, 0.387, 14, key=jax.random.key(9), **kwargs)
    b = sims.rem_success(0.5, 0.387, 14, key=jax.random.key(9), **kwargs)
    np.testing.assert_array_equal(a, b)
    # a different chunk size draws other numbers; the success fraction must agree statistically
    c = sims.rem_success(0.5, 0.387, 14, key=jax.random.key(9), max_elements=256 * 64, **kwargs)
    assert abs(a.mean() - c.mean()) < 4 * math.sqrt(0.25 * 2 / 256)


def test_retrieval_at_low_and_high_load():
    low = sims.retrieval_overlaps(1.0, 0.2, 10, ensemble="spherical", trials=16, key=jax.random.key(0))
    assert np.all(low > 0.95)  # the fixed point is ξ plus a small admixture of the others
    high = sims.retrieval_success(1.0, 1.0, 10, ensemble="spherical", trials=16, key=jax.random.key(1))
    assert not np.any(high)


def test_retrieval_padding_does_not_change_dynamics():
    # P = 40 is padded to 48 rows; compare with the unpadded update done by hand
    key = jax.random.key(3)
    memories, valid = sims._padded_patterns("gaussian", 40, 6, key)
    assert memories.shape == (48, 6) and int(valid.sum()) == 40
    x = memories[:3]
    padded = sims._iterate(memories, valid, x, 0.8, 0.0, max_steps=1)  # one step, padded set
    np.testing.assert_allclose(padded, sims.lse_update(memories[:40], x, 0.8), atol=1e-6)
    # and the update is x <- Ξᵀ softmax(λ Ξ x), written out
    direct = jax.nn.softmax(0.8 * x @ memories[:40].T, axis=-1) @ memories[:40]
    np.testing.assert_allclose(padded, direct, atol=1e-5)


@pytest.mark.parametrize("criterion", ["weight", "overlap"])
def test_one_step_success_extremes(criterion):
    out = sims.one_step_success(1.0, 0.2, 12, [0.0, 1.0], ensemble="gaussian", trials=40, key=jax.random.key(2),
                              criterion=criterion)
    assert out.shape == (2, 40)
    assert out[0].mean() < 0.1 and out[1].mean() > 0.9


def test_success_curve_reproduces_single_points():
    key = jax.random.key(11)
    curve = sims.success_curve(sims.rem_success, 0.5, [0.2, 0.5], 10, ensemble="spherical", trials=32, key=key)
    second = sims.rem_success(0.5, 0.5, 10, ensemble="spherical", trials=32, key=jax.random.fold_in(key, 1))
    assert curve[1] == second.mean()


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("lam", [0.0, -1.0])
def test_bad_lambda(lam):
    with pytest.raises(ValueError, match="lam must be > 0"):
        sims.rem_success(lam, 0.1, 10, ensemble="spherical", trials=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="lam must be > 0"):
        sims.one_step_success(lam, 0.1, 10, [0.5], ensemble="spherical", trials=4, key=jax.random.key(0))


def test_bad_alpha():
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        sims.retrieval_success(1.0, -0.1, 10, ensemble="spherical", trials=4, key=jax.random.key(0))


def test_unknown_ensemble():
    with pytest.raises(ValueError, match="unknown ensemble"):
        sims.rem_success(1.0, 0.1, 10, ensemble="Gaussian", trials=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="unknown ensemble 'binary'; choose one of gaussian, spherical"):
        sims.one_step_success(1.0, 0.1, 10, [0.5], ensemble="binary", trials=4, key=jax.random.key(0))


@pytest.mark.parametrize("dim", [0, 1])
def test_dimension_too_small(dim):
    with pytest.raises(ValueError, match="dim must be >= 2"):
        sims.rem_success(1.0, 0.1, dim, ensemble="spherical", trials=4, key=jax.random.key(0))


def test_other_bad_inputs():
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        sims.rem_success(1.0, 0.1, 10, ensemble="spherical", trials=4, key=0)
    with pytest.raises(ValueError, match="trials must be >= 1"):
        sims.retrieval_success(1.0, 0.1, 10, ensemble="spherical", trials=0, key=key)
    with pytest.raises(ValueError, match="cos_theta must lie in"):
        sims.one_step_success(1.0, 0.1, 10, [1.5], ensemble="spherical", trials=4, key=key)
    with pytest.raises(ValueError, match="unknown criterion"):
        sims.one_step_success(1.0, 0.1, 10, [0.5], ensemble="spherical", trials=4, key=key, criterion="cos")
    with pytest.raises(ValueError, match="state has 3 entries"):
        sims.lse_update(jnp.ones((4, 5)), jnp.ones(3), 1.0)
    with pytest.raises(ValueError, match="lam must be > 0"):
        sims.lse_energy(jnp.ones((4, 5)), jnp.ones(5), 0.0)


# ------------------------------------------------------------------------------ issue 19


def test_experiment_arguments_that_used_to_be_accepted_or_crash():
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="experiment must be a function such as statmech_sims.rem_success"):
        sims.success_curve("notfn", 1.0, [0.1], 10, key=key)  # was "'str' object is not callable"
    with pytest.raises(ValueError, match="alphas is empty"):
        sims.success_curve(sims.rem_success, 1.0, [], 10, key=key, ensemble="gaussian", trials=4)
    with pytest.raises(ValueError, match="alphas contains NaN"):
        sims.success_curve(sims.rem_success, 1.0, [0.1, float("nan")], 10, key=key, ensemble="gaussian", trials=4)
    for threshold in (1.5, 1.0, 0.0):  # 1.5 returned all False
        with pytest.raises(ValueError, match=r"threshold must lie in \(0.0, 1.0\)"):
            sims.retrieval_success(1.0, 0.1, 10, ensemble="gaussian", trials=4, key=key, threshold=threshold)
    with pytest.raises(ValueError, match="targets_per_set must be >= 1, got 0"):  # quietly used 1
        sims.one_step_success(1.0, 0.1, 10, [0.5], ensemble="gaussian", trials=4, key=key, targets_per_set=0)
    with pytest.raises(TypeError, match="lam must be a single number, got an array of shape \\(2,\\)"):
        sims.rem_success(jnp.array([1.0, 2.0]), 0.1, 10, ensemble="gaussian", trials=4, key=key)
    with pytest.raises(TypeError, match="alpha must be a single number here"):
        sims.rem_success(1.0, [0.1, 0.2], 10, ensemble="gaussian", trials=4, key=key)


def test_rem_success_refuses_sizes_before_allocating():
    """trials = 10**10 aborted the interpreter (XLA out of memory, 1.7 TB); now refused up front."""
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="trials = 10,000,000,000 needs at least .* more than max_elements = 2,097,152"):
        sims.rem_success(1.0, 0.1, 10, ensemble="gaussian", trials=10**10, key=key)
    with pytest.raises(ValueError, match="max_elements must be <= 2,147,483,648"):
        sims.rem_success(1.0, 0.1, 10, ensemble="gaussian", trials=4, key=key, max_elements=2**40)
    with pytest.raises(ValueError, match="Gaussian target entries .* pass fixed_norm=True"):
        sims.rem_success(1.0, 1e-6, 10**6, ensemble="gaussian", trials=4096, key=key, max_elements=2**31)


def test_lse_model_checks_its_input_through_the_graph():
    """lse_energy/lse_update run on the HAMUX graph: NaN, K = 0 and a mismatched D are refused there."""
    mem = jnp.ones((4, 5))
    for fn in (sims.lse_energy, sims.lse_update):
        with pytest.raises(ValueError, match="memories contains NaN or infinite values"):
            fn(mem.at[0, 0].set(jnp.nan), jnp.ones(5), 1.0)
        with pytest.raises(ValueError, match="state of layer 'x' contains NaN"):
            fn(mem, jnp.full(5, jnp.nan), 1.0)
        with pytest.raises(ValueError, match="memories is empty: store at least one pattern"):
            fn(jnp.ones((0, 5)), jnp.ones(5), 1.0)
        with pytest.raises(ValueError, match="state has 3 entries but memories have N = 5"):
            fn(mem, jnp.ones(3), 1.0)
        with pytest.raises(ValueError, match="memories must be 2-D"):
            fn(jnp.ones(5), jnp.ones(5), 1.0)
    with pytest.raises(ValueError, match="state must be 1-D, got shape \\(2, 5\\)"):
        sims.lse_energy(mem, jnp.ones((2, 5)), 1.0)


def test_all_patterns_success_extremes_and_ordering():
    """Far below α_c every pattern wins; at a load between α_c and α₁ a typical pattern still
    wins but some pattern of nearly every set fails; 'all' never exceeds 'typical'."""
    key = jax.random.key(0)
    low_all, low_typical = sims.all_patterns_success(1.0, 0.05, 16, ensemble="gaussian", trials=32, key=key)
    high_all, high_typical = sims.all_patterns_success(1.0, 0.3, 16, ensemble="gaussian", trials=32, key=key)
    assert low_all >= 0.9 and low_typical >= low_all
    assert high_all <= 0.1 and high_typical > 0.8
    again = sims.all_patterns_success(1.0, 0.3, 16, ensemble="gaussian", trials=32, key=key)
    assert again == (high_all, high_typical)
    spherical = sims.all_patterns_success(1.0, 0.1, 16, ensemble="spherical", trials=16, key=key)
    assert spherical[0] == 1.0  # equal norms: no short targets, α_c = α₁ for the sphere's REM
    with pytest.raises(ValueError, match="ensemble"):
        sims.all_patterns_success(1.0, 0.1, 16, ensemble="uniform", trials=4, key=key)
    with pytest.raises(ValueError, match="patterns"):
        sims.all_patterns_success(1.0, 2.0, 16, ensemble="gaussian", trials=64, key=key)
