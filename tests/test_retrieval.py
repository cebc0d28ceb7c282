"""Tests for amtutor.retrieval: retrieval rates, exact retrieval, basins and capacity measurements."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from amtutor import binary, data, retrieval


def _patterns(k, d, seed=0):
    return data.binary_patterns(k, d, key=jax.random.key(seed))


def test_retrieval_rate():
    pool = data.binary_patterns(50, 200, key=jax.random.key(15))
    one = retrieval.retrieval_rate(pool, 1, binary.quadratic(), flip_fraction=0.2, draws=8, key=jax.random.key(0))
    assert float(one.exact) == 1.0 and float(one.inverted) == 0.0 and float(one.mean_overlap) == 1.0
    inv = retrieval.retrieval_rate(pool, 1, binary.quadratic(), flip_fraction=0.8, draws=8, key=jax.random.key(0))
    assert float(inv.inverted) == 1.0


def test_retrieval_rate_is_one_recall_per_draw():
    # Draw by draw: pick K patterns, flip round(flip_fraction * D) bits of the first, recall.
    pool = data.binary_patterns(30, 48, key=jax.random.key(16))
    key = jax.random.key(4)
    rate = retrieval.retrieval_rate(pool, 6, binary.power(3), flip_fraction=0.3, draws=5, key=key, sweeps=2)
    overlaps = []
    for draw_key in jax.random.split(key, 5):
        pick_key, flip_key, order_key = jax.random.split(draw_key, 3)
        memories = pool[jax.random.choice(pick_key, 30, (6,), replace=False)]
        flipped = jnp.argsort(jax.random.uniform(flip_key, (48,)))[:round(0.3 * 48)]
        query = memories[0].at[flipped].multiply(-1.0)
        order = binary.site_order(order_key, 2 * 48, 48)
        final = binary.async_recall_in_order(memories, query, binary.power(3), order).final
        overlaps.append(float(final @ memories[0]) / 48)
    assert float(rate.mean_overlap) == pytest.approx(np.mean(overlaps), abs=1e-6)
    assert float(rate.exact) == np.mean(np.array(overlaps) == 1.0)


def test_success_without_noise_is_fixed_point():
    memories = _patterns(12, 40)
    success = retrieval.retrieved_exactly(memories, binary.quadratic(), flip_fraction=0.0, key=jax.random.key(1))
    np.testing.assert_array_equal(success, binary.is_fixed_point(memories, memories, binary.quadratic()))


def test_success_matches_explicit_recall():
    memories = _patterns(5, 64)
    key = jax.random.key(3)
    success = retrieval.retrieved_exactly(memories, binary.power(3), flip_fraction=0.2, key=key, probes=4, sweeps=2)
    flip_key, order_key = jax.random.split(key)
    cues = data.flip_bits(memories[:4], 0.2, key=flip_key)
    final = binary.async_recall(memories, cues, binary.power(3), key=order_key, sweeps=2).final
    np.testing.assert_array_equal(success, jnp.all(final == memories[:4], axis=1))
    assert success.shape == (4,)


def test_few_memories_are_always_retrieved():
    memories = _patterns(2, 100)
    success = retrieval.retrieved_exactly(memories, binary.quadratic(), flip_fraction=0.2, key=jax.random.key(0))
    assert bool(jnp.all(success))


def test_basin_curve_shape_and_limits():
    memories = _patterns(3, 64)
    curve = retrieval.basin_curve(memories, binary.power(3), [0.0, 0.1, 0.5], key=jax.random.key(0), probes=3)
    assert curve.shape == (3,)
    assert curve[0] == 1.0 and curve[1] == 1.0
    # At 50% flips the cue carries no information about the pattern: exact retrieval is rare.
    assert curve[2] <= 0.5


def test_capacity_brackets_and_monotone_predicate():
    # The Hopfield capacity of 64-bit random patterns (a pattern stable w.p. 99%): a handful.
    k = retrieval.empirical_capacity(binary.quadratic(), 64, key=jax.random.key(0), k_max=40)
    assert 1 <= k < 40
    # The bisection's answer is consistent with the predicate it used at K and K + 1: the same
    # per-pattern criterion, from ceil(100 / K) independent sets of K patterns (K < 100).
    pool_key, trial_key = jax.random.split(jax.random.key(0))

    def ok(kk):
        sets = -(-100 // kk)
        memories = retrieval._pattern_sets(pool_key, sets, kk, 64)
        stable = [retrieval.retrieved_exactly(m, binary.quadratic(), flip_fraction=0.0, key=trial_key)
                  for m in memories]
        return float(jnp.mean(jnp.concatenate(stable))) >= 0.99

    assert ok(k) and not ok(k + 1)


def test_capacity_criterion_is_per_pattern_at_every_k():
    """The same per-pattern probability below and above K = probes: small K is not held to the
    stricter "every stored pattern is stable" (the bug of a min(probes, K) criterion)."""
    pool_key, _ = jax.random.split(jax.random.key(3))
    sets = retrieval._pattern_sets(pool_key, 4, 30, 16)
    # nested: the first K rows of a set do not depend on how many rows are drawn
    assert np.array_equal(sets[:, :10], retrieval._pattern_sets(pool_key, 4, 10, 16))
    assert np.all(np.abs(sets) == 1)
    # Against the exact-tail theory, which models exactly this probability: n = 2, D = 100.
    measured = retrieval.empirical_capacity(binary.quadratic(), 100, key=jax.random.key(1),
                                            k_min=2, k_max=30, probes=1000)
    exact = retrieval.predicted_capacity(2, 100, tail="exact")
    # 1000 tests estimate a 1% failure rate to 31% (relative); near threshold log q rises ~6x
    # faster than log K, so K moves by ~5% per standard error: 2.5 of them plus one integer step.
    assert abs(measured - exact) <= 0.13 * exact + 1, (measured, exact)


def test_predicted_capacity_exact_tail():
    from amtutor import capacity

    k = retrieval.predicted_capacity(3, 40, tail="exact")
    # the defining property: the union bound D P(error) <= 1% holds at K and fails at K + 1
    assert 40 * capacity.exact_error_probability(k, 40, 3) <= 0.01
    assert 40 * capacity.exact_error_probability(k + 1, 40, 3) > 0.01
    # n = 3 at D = 40: heavy-tailed cross-talk terms, below the Gaussian prediction
    assert k < retrieval.predicted_capacity(3, 40)
    with pytest.raises(ValueError, match="tail"):
        retrieval.predicted_capacity(3, 40, tail="poisson")
    with pytest.raises(TypeError):
        retrieval.predicted_capacity(3, np.array([20, 40]), tail="exact")


def test_capacity_rel_tol_grid_is_close_to_exact():
    exact = retrieval.empirical_capacity(binary.power(3), 24, key=jax.random.key(2), k_max=200)
    coarse = retrieval.empirical_capacity(binary.power(3), 24, key=jax.random.key(2), k_max=200, rel_tol=0.2)
    # The grid answer is a grid value that succeeds: at most the exact bisection answer when the
    # predicate is monotone, and within one grid step (factor 1.2, plus rounding) below it.
    assert coarse <= exact + 1 and coarse >= exact / 1.2 - 1


def test_capacity_returns_kmin_minus_one_when_nothing_works():
    # 150 patterns of 8 bits are far beyond the Hopfield capacity (~0.14 D ~ 1): K = 150 fails.
    assert retrieval.empirical_capacity(binary.quadratic(), 8, key=jax.random.key(0), k_min=150, k_max=200) == 149


@pytest.mark.parametrize("n", [2, 3, 4])
def test_predicted_capacity_formula(n):
    from scipy.stats import norm

    d = 100
    eps = norm.ppf(1 - 0.01 / d)
    double_factorial = {2: 1, 3: 3, 4: 15}[n]
    assert retrieval.predicted_capacity(n, d) == pytest.approx(d ** (n - 1) / (eps**2 * double_factorial))


def test_predicted_capacity_grows_slightly_slower_than_power():
    dims = np.array([100.0, 1000.0])
    ratio = retrieval.predicted_capacity(3, dims)
    assert ratio[1] / ratio[0] < 100 and ratio[1] / ratio[0] > 50


@settings(max_examples=10)
@given(seed=st.integers(0, 1000), noise=st.sampled_from([0.0, 0.1, 0.3]))
def test_rectified_never_retrieves_inverted_where_plain_does(seed, noise):
    """Property: a rectified power never ends on an inverted memory −ξ, even where the plain even
    power does (60% noise puts the cue nearer −ξ)."""
    memories = _patterns(3, 32, seed)
    cues = data.flip_bits(memories, 0.6 + noise / 3, key=jax.random.key(seed + 1))
    key = jax.random.key(seed + 2)
    rect = binary.async_recall(memories, cues, binary.rectified_power(4), key=key, sweeps=3).final
    assert not bool(jnp.any(jnp.all(rect[:, None, :] == -memories[None], axis=-1)))


def test_bad_inputs():
    memories = _patterns(4, 16)
    sep = binary.quadratic()
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="flip_fraction"):
        retrieval.retrieved_exactly(memories, sep, flip_fraction=1.5, key=key)
    with pytest.raises(ValueError, match="pool must contain only"):
        retrieval.retrieval_rate(memories * 0.5, 2, sep, flip_fraction=0.1, draws=2, key=key)
    with pytest.raises(ValueError, match="pool is empty"):
        retrieval.retrieval_rate(jnp.zeros((0, 16)), 1, sep, flip_fraction=0.1, draws=2, key=key)
    with pytest.raises(ValueError, match="exceeds the pool size"):
        retrieval.retrieval_rate(memories, 5, sep, flip_fraction=0.1, draws=2, key=key)
    with pytest.raises(ValueError, match="flip_fraction"):
        retrieval.retrieval_rate(memories, 2, sep, flip_fraction=-0.1, draws=2, key=key)
    with pytest.raises(TypeError, match="separation must be"):
        retrieval.retrieval_rate(memories, 2, "quadratic", flip_fraction=0.1, draws=2, key=key)
    with pytest.raises(TypeError, match="separation must be"):
        retrieval.empirical_capacity(None, 16, key=key, k_max=5)
    with pytest.raises(ValueError, match="memories must contain only"):
        retrieval.retrieved_exactly(memories * 0.5, sep, flip_fraction=0.1, key=key)
    with pytest.raises(ValueError, match="probes"):
        retrieval.retrieved_exactly(memories, sep, flip_fraction=0.1, key=key, probes=0)
    with pytest.raises(TypeError, match="key"):
        retrieval.retrieved_exactly(memories, sep, flip_fraction=0.1, key=0)
    with pytest.raises(ValueError, match="flip_fractions is empty"):
        retrieval.basin_curve(memories, sep, [], key=key)
    with pytest.raises(ValueError, match="k_max"):
        retrieval.empirical_capacity(sep, 16, key=key, k_min=10, k_max=5)
    with pytest.raises(ValueError, match="threshold"):
        retrieval.empirical_capacity(sep, 16, key=key, k_max=5, threshold=0.0)
    with pytest.raises(ValueError, match="rel_tol"):
        retrieval.empirical_capacity(sep, 16, key=key, k_max=5, rel_tol=-0.1)
    with pytest.raises(ValueError, match="n must be"):
        retrieval.predicted_capacity(1, 100)
    with pytest.raises(ValueError, match="dim must be"):
        retrieval.predicted_capacity(2, 1)


def test_empirical_capacity_with_a_power_beyond_float32():
    """power(15) at D = 500 (overlaps⁵ beyond float32): every K up to the search's top is stored
    (the capacity D^14-ish is astronomically larger); before issue 19's fix this returned 0."""
    assert retrieval.empirical_capacity(binary.power(15), 500, key=jax.random.key(0), k_max=8) == 8
