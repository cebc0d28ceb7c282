"""Unit tests for amtutor.capacity: theory against independent computations, Monte-Carlo kernels
against naive loops and against amtutor.binary, and one test per bad-input message."""

import itertools
import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from amtutor import binary, capacity
from amtutor.capacity import largest_k
from amtutor.data import binary_patterns

# ---------------------------------------------------------------------------------------------
# largest_k
# ---------------------------------------------------------------------------------------------


@given(threshold=st.integers(0, 300), k_min=st.integers(1, 50), span=st.integers(0, 300))
def test_largest_k_finds_threshold(threshold, k_min, span):
    k_max = k_min + span
    calls = []

    def ok(k):
        calls.append(k)
        return k <= threshold

    expected = min(max(threshold, k_min - 1), k_max)
    assert largest_k(ok, k_min, k_max) == expected
    assert all(k_min <= k <= k_max for k in calls)
    assert len(calls) <= span.bit_length() + 3


def test_largest_k_bad_input():
    with pytest.raises(ValueError, match="k_min"):
        largest_k(lambda k: True, 0, 5)
    with pytest.raises(ValueError, match="k_max"):
        largest_k(lambda k: True, 5, 4)
    with pytest.raises(TypeError, match="k_min"):
        largest_k(lambda k: True, 1.5, 4)
    with pytest.raises(TypeError, match="is_success"):
        largest_k(3, 1, 4)


# ---------------------------------------------------------------------------------------------
# Theory
# ---------------------------------------------------------------------------------------------


def _moment_by_enumeration(dim, order):
    """<zeta^order> by listing all 2^(D-1) sign vectors."""
    values = [sum(bits) for bits in itertools.product((-1, 1), repeat=dim - 1)]
    return float(np.mean(np.array(values, dtype=float) ** order))


@pytest.mark.parametrize("dim", [2, 3, 5, 8, 11])
@pytest.mark.parametrize("order", [0, 1, 2, 3, 4, 6, 8])
def test_overlap_moment_matches_enumeration(dim, order):
    assert capacity.overlap_moment(dim, order) == pytest.approx(_moment_by_enumeration(dim, order), rel=1e-12, abs=1e-12)


@given(dim=st.integers(2, 500))
def test_overlap_moment_closed_forms(dim):
    # Coefficients of cosh(tau)^N: <z^2> = N, <z^4> = 3N^2 - 2N, <z^6> = 15N^3 - 30N^2 + 16N.
    N = dim - 1
    assert capacity.overlap_moment(dim, 2) == N
    assert capacity.overlap_moment(dim, 4) == 3 * N**2 - 2 * N
    assert capacity.overlap_moment(dim, 6) == pytest.approx(15 * N**3 - 30 * N**2 + 16 * N, rel=1e-12)


@pytest.mark.parametrize("dim", [3, 6, 11])
def test_overlap_moment_is_derivative_of_generating_function(dim):
    # <zeta^(2p)> = d^(2p)/dtau^(2p) cosh(tau)^(D-1) at tau = 0 (eq. 2.8-2.10), by autodiff.
    derivative = lambda f: jax.grad(f)
    generating = lambda tau: jax.numpy.cosh(tau) ** (dim - 1)
    f = generating
    for order in range(1, 7):
        f = derivative(f)
        assert float(f(0.0)) == pytest.approx(capacity.overlap_moment(dim, order), rel=1e-5, abs=1e-4)


def test_overlap_moment_leading_order():
    for p in (1, 2, 3, 4):
        assert capacity.overlap_moment_leading(10_000, p) == math.prod(range(1, 2 * p, 2)) * 10_000.0**p
        ratio = capacity.overlap_moment(2_000, 2 * p) / capacity.overlap_moment_leading(2_000, p)
        assert abs(ratio - 1) < p * (p + 1) / 2_000  # O(p^2 / D) correction


def test_double_factorial_and_variance_formula():
    assert [capacity.double_factorial(k) for k in (1, 3, 5, 7)] == [1, 3, 15, 105]
    assert capacity.noise_variance(10, 100, 2) == 1000.0
    assert capacity.noise_variance(10, 100, 3) == 3 * 10 * 100**2
    assert capacity.noise_variance(7, 50, 4) == 15 * 7 * 50**3
    assert capacity.signal(100, 3) == 99.0**2
    assert capacity.exact_noise_variance(5, 20, 3) == 4 * capacity.overlap_moment(20, 4)


def test_gaussian_error_probability_formula():
    K, D, n = 30, 100, 2
    expected = stats.norm.sf((D - 1) / math.sqrt(K * D))
    assert capacity.gaussian_error_probability(K, D, n) == pytest.approx(expected, rel=1e-12)


def _flip_probability_by_enumeration(num_memories, dim, n):
    """P(f~(D-1) + sum_mu s_mu f~(zeta_mu) < 0), listing every (s, zeta) of every memory."""
    N = dim - 1
    zetas = [N - 2 * k for k in range(N + 1)]
    weights = [math.comb(N, k) / 2**N for k in range(N + 1)]
    field = lambda x: ((x + 1) ** n - (x - 1) ** n) / 2  # n·f~, exact integers
    total = 0.0
    terms = [(s * field(z), w / 2) for s in (-1, 1) for z, w in zip(zetas, weights)]
    for combo in itertools.product(terms, repeat=num_memories - 1):
        if field(N) + sum(v for v, _ in combo) < 0:
            total += math.prod(w for _, w in combo)
    return total


@pytest.mark.parametrize("num_memories,dim,n", [(3, 4, 2), (4, 5, 2), (3, 4, 3), (4, 5, 3), (3, 5, 4), (4, 3, 4)])
def test_exact_error_probability_matches_enumeration(num_memories, dim, n):
    expected = _flip_probability_by_enumeration(num_memories, dim, n)
    assert capacity.exact_error_probability(num_memories, dim, n) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(num_memories=st.integers(2, 60), dim=st.integers(2, 120))
def test_binomial_tail_equals_lattice_convolution(num_memories, dim):
    binomial = capacity.exact_error_probability(num_memories, dim, 2)
    lattice = capacity._lattice_tail(dim, 2, num_memories, 1 << 24)
    assert 0.0 <= binomial <= 1.0
    assert lattice == pytest.approx(binomial, abs=1e-10)


def test_exact_error_probability_single_memory_and_support_limit():
    assert capacity.exact_error_probability(1, 50, 3) == 0.0
    with pytest.raises(ValueError, match="max_support"):
        capacity.exact_error_probability(500, 200, 3, max_support=1000)


def test_exact_tail_approaches_gaussian_for_large_dim():
    # n = 2, D = 2000, K at the 1% point: the binomial tail is within 5% of the Gaussian one.
    K = round(capacity.k_max(2000, 2, capacity.epsilon_for_error_rate(0.01)))
    exact = capacity.exact_error_probability(K, 2000, 2)
    assert exact == pytest.approx(capacity.gaussian_error_probability(K, 2000, 2), rel=0.05)


def test_epsilon_and_k_max():
    assert capacity.epsilon_for_error_rate(0.01) == pytest.approx(2.326, abs=1e-3)
    assert capacity.epsilon_for_error_rate(0.01, two_sided=True) == pytest.approx(2.576, abs=1e-3)
    assert capacity.k_max(2304, 2, 2.576) == pytest.approx(2304 / 2.576**2)
    assert capacity.k_max(2304, 3, 2.576) == pytest.approx(2304**2 / (3 * 2.576**2))
    assert capacity.k_max(100, 4, 2.0) == pytest.approx(100**3 / (15 * 4.0))
    assert capacity.k_max_no_flips(2304, 2) == pytest.approx(2304 / (2 * math.log(2304)))
    assert capacity.k_max_no_flips(100, 3) == pytest.approx(100**2 / (3 * 2 * math.log(100)))


def test_k_max_broadcasts_over_dim_and_epsilon():
    dims = np.array([50, 100.5, 400])
    eps = np.array([2.0, 2.326, 2.576])
    out = capacity.k_max(dims, 3, eps)
    assert out.shape == (3,)
    np.testing.assert_allclose(out, [capacity.k_max(50, 3, 2.0), 100.5**2 / (3 * 2.326**2),
                                     capacity.k_max(400, 3, 2.576)], rtol=1e-15)
    assert capacity.k_max(np.array([[100], [200]]), 2, eps).shape == (2, 3)
    assert isinstance(capacity.k_max(100, 2, 2.576), float)
    with pytest.raises(ValueError, match="dim must be >= 2"):
        capacity.k_max(np.array([1.5, 10]), 2, 2.0)
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        capacity.k_max(np.array([10, 20]), 2, np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="finite"):
        capacity.k_max(np.array([10, np.inf]), 2, 2.0)


def test_theory_bad_input():
    with pytest.raises(ValueError, match="n must be >= 2"):
        capacity.noise_variance(10, 100, 1)
    with pytest.raises(ValueError, match="dim must be >= 2"):
        capacity.noise_variance(10, 1, 2)
    with pytest.raises(ValueError, match="num_memories must be >= 1"):
        capacity.noise_variance(0, 100, 2)
    with pytest.raises(TypeError, match="num_memories must be an integer"):
        capacity.gaussian_error_probability(2.5, 100, 2)
    with pytest.raises(ValueError, match="n must be >= 2"):
        capacity.exact_error_probability(10, 100, 0)
    with pytest.raises(ValueError, match="dim must be >= 2"):
        capacity.signal(1, 2)
    for bad in (0.0, 0.5, 0.7, -0.01):
        with pytest.raises(ValueError, match="error_rate"):
            capacity.epsilon_for_error_rate(bad)
    with pytest.raises(ValueError, match="epsilon"):
        capacity.k_max(100, 2, 0.0)
    with pytest.raises(ValueError, match="dim must be >= 2"):
        capacity.k_max_no_flips(1, 2)
    with pytest.raises(ValueError, match="k must be >= 1"):
        capacity.double_factorial(-1)
    with pytest.raises(ValueError, match="order must be >= 0"):
        capacity.overlap_moment(10, -2)


# ---------------------------------------------------------------------------------------------
# Monte-Carlo kernels
# ---------------------------------------------------------------------------------------------


def _naive_noise(memories, n):
    xi = np.asarray(memories, dtype=np.float64)
    K, D = xi.shape
    out = np.zeros((K, D))
    for nu in range(K):
        for i in range(D):
            for mu in range(K):
                if mu != nu:
                    zeta = xi[mu] @ xi[nu] - xi[mu, i] * xi[nu, i]
                    out[nu, i] += xi[nu, i] * xi[mu, i] * zeta ** (n - 1)
    return out


@pytest.mark.parametrize("n", [2, 3, 4])
def test_crosstalk_noise_matches_naive_loop(n):
    memories = binary_patterns(6, 9, key=jax.random.key(n))
    np.testing.assert_allclose(capacity.crosstalk_noise(memories, n), _naive_noise(memories, n), rtol=1e-6)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_aligned_fields_are_energy_differences(n):
    # n·xi_i·h_i must equal (n/2)·(E(flipped) - E(pattern)), from amtutor.binary's energy.
    memories = binary_patterns(5, 8, key=jax.random.key(10 + n))
    fields = np.asarray(capacity.aligned_fields(memories, n))
    sep = binary.power(n)
    for nu in range(5):
        pattern = np.asarray(memories[nu])
        flipped = np.tile(pattern, (8, 1))
        flipped[np.arange(8), np.arange(8)] *= -1
        de = np.asarray(binary.energy(memories, flipped, sep)) - float(binary.energy(memories, pattern, sep))
        np.testing.assert_allclose(fields[nu], n * de / 2, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("n,num_memories", [(2, 10), (3, 70), (4, 250)])
def test_aligned_fields_agree_with_is_fixed_point(n, num_memories):
    memories = binary_patterns(num_memories, 30, key=jax.random.key(n))
    stable = np.asarray(capacity.aligned_fields(memories, n) >= 0).all(axis=1)
    np.testing.assert_array_equal(stable, np.asarray(binary.is_fixed_point(memories, memories, binary.power(n))))


def test_chunking_and_padding_do_not_change_the_sums():
    memories = binary_patterns(13, 20, key=jax.random.key(3))
    fn = capacity._scaled_field_fn(3)
    full = capacity._aligned_sums(memories, fn, 13)
    np.testing.assert_array_equal(capacity._aligned_sums(memories, fn, 1), full)
    # Extra random rows marked as padding by `real` are removed exactly.
    extra = binary_patterns(7, 20, key=jax.random.key(4))
    padded = jax.numpy.concatenate([memories, extra])
    real = jax.numpy.arange(20) < 13
    np.testing.assert_array_equal(capacity._aligned_sums(padded, fn, 4, 13, real), full)


def test_measured_noise_variance_matches_exact_variance():
    est = capacity.measured_noise_variance(60, 80, 2, key=jax.random.key(0), trials=16)
    exact = capacity.exact_noise_variance(60, 80, 2)
    assert abs(est.value - exact) < 4 * est.stderr
    assert est.trials == 16


def test_measured_error_probability_matches_exact_tail():
    est = capacity.measured_error_probability(7, 11, 3, key=jax.random.key(5), trials=1000)
    assert abs(est.value - capacity.exact_error_probability(7, 11, 3)) < 4 * est.stderr


def test_measured_capacity_matches_exact_tail_search():
    # The same criterion with the exact flip probability in place of the Monte-Carlo estimate.
    exact = largest_k(lambda K: capacity.exact_error_probability(K, 60, 2) <= 0.01, 2, 60)
    measured = capacity.measured_capacity(60, 2, key=jax.random.key(0), num_bits=100_000)
    assert abs(measured - exact) <= 1


def test_fit_loglog_slope_recovers_power_law():
    x = np.array([10.0, 20, 40, 80])
    slope, prefactor = capacity.fit_loglog_slope(x, 0.3 * x**2.5)
    assert slope == pytest.approx(2.5)
    assert prefactor == pytest.approx(0.3)


def test_monte_carlo_bad_input():
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="key"):
        capacity.measured_noise_variance(10, 20, 2, key=0)
    with pytest.raises(ValueError, match="trials"):
        capacity.measured_error_probability(10, 20, 2, key=key, trials=0)
    with pytest.raises(ValueError, match="n must be >= 2"):
        capacity.measured_error_probability(10, 20, 1, key=key)
    with pytest.raises(ValueError, match="num_memories"):
        capacity.measured_noise_variance(0, 20, 2, key=key)
    with pytest.raises(ValueError, match="dim"):
        capacity.measured_capacity(1, 2, key=key)
    with pytest.raises(ValueError, match="error_rate"):
        capacity.measured_capacity(50, 2, key=key, error_rate=0.6)
    with pytest.raises(TypeError, match="k_range"):
        capacity.measured_capacity(50, 2, key=key, k_range=5)
    with pytest.raises(ValueError, match="memories must contain only"):
        capacity.crosstalk_noise(np.array([[1.0, 0.0], [1.0, -1.0]]), 2)
    with pytest.raises(ValueError, match="memories must be 2-D"):
        capacity.aligned_fields(np.ones(5), 2)
    with pytest.raises(ValueError, match="D >= 2"):
        capacity.aligned_fields(np.ones((3, 1)), 2)
    with pytest.raises(ValueError, match="log-log"):
        capacity.fit_loglog_slope([1.0, 2.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        capacity.fit_loglog_slope([1.0, 2.0], [1.0])


@pytest.mark.parametrize("num_memories, dim, n", [(5, 25, 2), (7, 11, 3), (25, 20, 3), (6, 8, 4)])
def test_moment_matched_error_probability_by_enumeration(num_memories, dim, n):
    # Independent of the library's polynomial: the exact field f~(x) = [F(x+1) - F(x-1)]/2 with
    # F(x) = x^n/n, its second moment over the binomial law of zeta by direct summation.
    def field(x):
        return ((x + 1.0) ** n - (x - 1.0) ** n) / (2 * n)

    m = dim - 1
    zeta = m - 2 * np.arange(m + 1)
    second = float(np.sum(stats.binom.pmf(np.arange(m + 1), m, 0.5) * field(zeta) ** 2))
    expected = stats.norm.sf(field(m) / np.sqrt((num_memories - 1) * second))
    got = capacity.moment_matched_error_probability(num_memories, dim, n)
    assert got == pytest.approx(expected, rel=1e-9)
    assert capacity.moment_matched_error_probability(1, dim, n) == 0.0
    with pytest.raises(ValueError, match="n"):
        capacity.moment_matched_error_probability(num_memories, dim, 1)


# ------------------------------------------------------------------ issue 19: range and size errors


@pytest.mark.parametrize("dim", [2, 3, 7, 30])
def test_overlap_moment_equals_the_binomial_sum(dim):
    """The even-block-partition form is exact: it equals 2^-(D-1) Σ_k C(D-1, k)(D-1-2k)^order in
    integer arithmetic (Fractions avoid any rounding), for every order up to 12."""
    from fractions import Fraction

    m = dim - 1
    for order in range(13):
        direct = Fraction(sum(math.comb(m, k) * (m - 2 * k) ** order for k in range(m + 1)), 2**m)
        assert capacity.overlap_moment(dim, order) == float(direct), (dim, order)


def test_overlap_moment_at_huge_dimension_is_exact_and_immediate():
    """<ζ²> = D − 1 and <ζ⁴> = 3(D−1)² − 2(D−1) at D = 10⁷ (the binomial sum would take minutes);
    an order whose moment overflows float64 is refused by a ValueError, not an OverflowError."""
    assert capacity.overlap_moment(10**7, 2) == 10**7 - 1
    assert capacity.overlap_moment(10**7, 4) == 3 * (10**7 - 1) ** 2 - 2 * (10**7 - 1)
    with pytest.raises(ValueError, match="beyond float64"):
        capacity.overlap_moment(10**7, 200)
    with pytest.raises(ValueError, match="order must be <= 500"):
        capacity.overlap_moment(100, 502)


@pytest.mark.parametrize("call, match", [
    (lambda: capacity.signal(10**6, 60), "signal.*beyond float64"),
    (lambda: capacity.noise_variance(10, 10**6, 60), "noise variance.*beyond float64"),
    (lambda: capacity.overlap_moment_leading(10**6, 60), "beyond float64"),
])
def test_theory_values_beyond_float64_are_refused_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_theory_values_that_fit_stay_exact_and_tiny_results_stay_finite():
    """Computed in log space only to judge the range: values that fit are the plain formulas."""
    assert capacity.signal(100, 3) == 99.0**2
    assert capacity.noise_variance(50, 100, 3) == 3 * 50 * 100.0**2
    # the union-bound capacity at n = 200 is astronomically small but representable: no overflow,
    # no NaN (it used to raise OverflowError inside the Gaussian tail)
    value = retrieval_predicted(200, 100)
    assert np.isfinite(value) and 0 < value < 1e-30


def retrieval_predicted(n, dim):
    from amtutor import retrieval

    return float(retrieval.predicted_capacity(n, dim))


def test_monte_carlo_sizes_are_checked_before_any_work():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="trials must be >= 2"):
        capacity.measured_noise_variance(8, 16, 2, key=key, trials=1)  # no standard error from one
    with pytest.raises(ValueError, match="trials must be <= 100,000"):
        capacity.measured_error_probability(8, 16, 2, key=key, trials=10**6)
    with pytest.raises(ValueError, match="GB|memory"):
        capacity.measured_noise_variance(10**5, 10**4, 2, key=key, trials=2)
    with pytest.raises(ValueError, match="at least two different values"):
        capacity.fit_loglog_slope([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
