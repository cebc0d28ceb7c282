"""amtutor.kernels: random features, distributed memory, KDE kernels, log-sum-ReLU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import logsumexp

from amtutor import hamux, kernels

KEY = jax.random.key(0)


def test_feature_maps_estimate_their_kernels():
    """Each feature kind is an unbiased estimate of its kernel: with Y = 2^14 frequencies the error
    of one estimate has standard deviation <= 1/sqrt(Y) ~ 0.008 (cos terms are bounded by 1), so
    0.05 is over 5 standard deviations."""
    x = 0.6 * jax.random.normal(jax.random.key(1), (20, 4))
    y = 0.6 * jax.random.normal(jax.random.key(2), (20, 4))
    exact = kernels.rbf_kernel(x, y)
    for kind in kernels.FEATURE_KINDS:
        f = kernels.random_features(4, 2**14, key=KEY, kind=kind)
        assert f.size == (2**14 if kind == "cos" else 2**15)
        assert float(jnp.max(jnp.abs(kernels.feature_kernel(f, x, y) - exact))) < 0.05
    laplace = kernels.random_features(4, 2**14, key=KEY, spectrum="laplacian")
    exact_l1 = jnp.exp(-jnp.sum(jnp.abs(x - y), axis=-1))
    assert float(jnp.max(jnp.abs(kernels.feature_kernel(laplace, x, y) - exact_l1))) < 0.05


def test_cos_sin_features_are_an_exact_average_of_cosines():
    f = kernels.random_features(3, 64, key=KEY)
    x, y = jnp.array([0.1, -0.3, 0.2]), jnp.array([0.5, 0.1, -0.4])
    direct = jnp.mean(jnp.cos(f.frequencies @ (x - y)))
    assert float(kernels.feature_kernel(f, x, y)) == pytest.approx(float(direct), abs=1e-6)


def test_exact_memory_graph_matches_the_formula_in_float64():
    memories = np.random.default_rng(0).uniform(-5, 5, (8, 2))
    v = np.random.default_rng(1).uniform(-5, 5, (30, 2))
    for beta in (0.01, 1.0, 10.0):
        sq = ((v[:, None, :] - memories[None]) ** 2).sum(-1)
        direct = -logsumexp(-0.5 * beta * sq, axis=1) / beta
        got = np.asarray(kernels.lse_energy(memories, v, beta=beta))
        # float32 evaluation of values up to ~200 (beta = 0.01): relative 1e-5
        assert np.allclose(got, direct, rtol=1e-5, atol=1e-5)


def test_distributed_memory_is_a_sum_of_features_and_grows_by_addition():
    memories = jax.random.normal(jax.random.key(3), (5, 3))
    f = kernels.random_features(3, 256, key=KEY)
    trace = kernels.distributed_memory(f, memories, beta=2.0)
    assert trace.shape == (512,)
    first = kernels.distributed_memory(f, memories[:4], beta=2.0)
    added = first + f(jnp.sqrt(2.0) * memories[4])
    assert jnp.allclose(trace, added, atol=1e-5)


def test_distributed_energy_is_clipped_where_the_estimate_is_not_positive():
    memories = jnp.array([[0.0, 0.0], [1.0, 0.0]])
    f = kernels.random_features(2, 64, key=KEY)
    trace = kernels.distributed_memory(f, memories, beta=10.0)
    far = jax.random.uniform(jax.random.key(4), (200, 2), minval=5, maxval=9)
    estimate = kernels.kernel_sum_estimate(f, trace, far, beta=10.0)
    energy = kernels.distributed_energy(f, trace, far, beta=10.0)
    clipped = estimate <= kernels.FLOOR
    assert bool(clipped.any())
    assert jnp.allclose(energy[clipped], -jnp.log(kernels.FLOOR) / 10.0)
    # no gradient there: a clipped query does not move
    graph = kernels.distributed_graph(f, trace, beta=10.0)
    q = far[jnp.argmax(clipped)][None]
    assert jnp.array_equal(kernels.descent(graph, q, alpha=0.1, steps=5), q)


def test_positive_features_never_clip():
    memories = jnp.array([[0.0, 0.0], [1.0, 0.0]])
    f = kernels.random_features(2, 64, key=KEY, kind="positive")
    trace = kernels.distributed_memory(f, memories, beta=1.0)
    far = jax.random.uniform(jax.random.key(4), (200, 2), minval=2, maxval=4)
    assert bool(jnp.all(kernels.kernel_sum_estimate(f, trace, far, beta=1.0) > 0))


def test_descent_is_the_hamux_descent_and_approaches_the_exact_one():
    memories = jax.random.uniform(jax.random.key(5), (8, 2), minval=-5, maxval=5)
    queries = jax.random.uniform(jax.random.key(6), (3, 2), minval=-3, maxval=3)
    exact = kernels.lse_graph(memories, beta=1.0)
    out = kernels.descent(exact, queries, alpha=0.1, steps=50)
    one = hamux.descend(exact, {"v": queries[0]}, dt=0.1, steps=50).final["v"]
    assert jnp.allclose(out[0], one, atol=1e-5)
    path = kernels.descent(exact, queries, alpha=0.1, steps=50, record=True)
    assert path.shape == (3, 51, 2) and jnp.allclose(path[:, -1], out, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), beta=st.floats(0.05, 20.0))
def test_exact_descent_never_raises_the_energy(seed, beta):
    """With alpha <= 1/beta... the LSE energy's Hessian is at most I (its curvature is 1 minus a
    covariance), so a step alpha <= 1 is a descent step: energies may only fall (float32 slack)."""
    k1, k2 = jax.random.split(jax.random.key(seed))
    memories = jax.random.normal(k1, (6, 3))
    q = 2 * jax.random.normal(k2, (1, 3))
    graph = kernels.lse_graph(memories, beta=beta)
    path = kernels.descent(graph, q, alpha=0.5, steps=20, record=True)[0]
    energies = kernels.lse_energy(memories, path, beta=beta)
    assert bool(jnp.all(jnp.diff(energies) <= 1e-5 * (1 + jnp.abs(energies[:-1]))))


def test_kde_kernel_constants_match_closed_forms():
    """Independent check of the quadrature: the normalised kernels' mu and R in closed form."""
    closed = {
        "epanechnikov": (1 / 5, 3 / 5), "uniform": (1 / 3, 1 / 2), "triangle": (1 / 6, 2 / 3),
        "gaussian": (1 / 2, 1 / (2 * np.sqrt(np.pi / 2))), "quartic": (1 / 7, 5 / 7),
        "triweight": (1 / 9, 350 / 429), "tricube": (35 / 243, 175 / 247),
        "cosine": (1 - 8 / np.pi**2, np.pi**2 / 16),
    }
    assert set(closed) == set(kernels.KDE_KERNELS)
    for name, (mu, r) in closed.items():
        c = kernels.kernel_constants(name)
        assert c.scale == pytest.approx(mu, rel=1e-9) and c.regularity == pytest.approx(r, rel=1e-9)


def test_kde_integrates_to_one():
    sample = jax.random.normal(jax.random.key(7), (50,))
    grid = jnp.linspace(-8, 8, 8001)
    for name in kernels.KDE_KERNELS:
        density = kernels.kde(sample, grid, kernel=name, bandwidth=0.4)
        # trapezoid rule on a 0.002 grid; the kinks cost O(h^2) ~ 1e-5
        assert float(jnp.trapezoid(density, grid)) == pytest.approx(1.0, abs=1e-3)


def test_lsr_step_is_exact_where_one_memory_covers():
    memories = jnp.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    beta = 1.0  # support radius sqrt(2) < 3/2: the supports do not overlap
    v = memories + jnp.array([[0.5, -0.7], [-1.0, 0.2], [0.3, 0.9]])
    assert jnp.array_equal(kernels.lsr_step(memories, v, beta=beta), memories)
    outside = jnp.array([10.0, 10.0])
    assert jnp.array_equal(kernels.lsr_step(memories, outside, beta=beta), outside)
    assert float(kernels.lsr_energy(memories, outside, beta=beta)) == np.inf


def test_lsr_step_is_a_gradient_step_of_the_stated_size():
    memories = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.4, 0.8]])
    beta, v = 1.0, jnp.array([0.3, 0.2])
    weights = jnp.maximum(1 - 0.5 * beta * jnp.sum((v - memories) ** 2, axis=1), 0)
    eta = jnp.sum(weights) / (beta * jnp.sum(weights > 0))
    grad = jax.grad(lambda x: kernels.lsr_energy(memories, x, beta=beta))(v)
    assert jnp.allclose(kernels.lsr_step(memories, v, beta=beta), v - eta * grad, atol=1e-6)


def _boundary_margin(memories, beta):
    """How far (in distance) the mean of any subset of memories lies from any support's edge."""
    import itertools
    radius = np.sqrt(2 / beta)
    means = [memories[list(a)].mean(0) for r in range(1, 4) for a in itertools.combinations(range(3), r)]
    return min(abs(np.linalg.norm(memories - c, axis=1) - radius).min() for c in means)


def test_lsr_minima_agree_with_a_grid_search():
    """Enumeration vs brute force on a 0.02 grid. A minimum whose mean lies within a grid step or
    two of another support's edge has a basin smaller than the grid spacing and is invisible to the
    grid (seen: a margin of 0.009), so only draws with every margin > 0.1 (5 spacings) are compared."""
    rng = np.random.default_rng(0)
    grid = np.linspace(-3, 3, 301)
    points = np.stack(np.meshgrid(grid, grid), axis=-1)
    compared = 0
    while compared < 8:
        memories = rng.uniform(-1.5, 1.5, (3, 2))
        for beta in (0.3, 1.0, 3.0):
            if _boundary_margin(memories, beta) < 0.1:
                continue
            found = kernels.lsr_minima(memories, beta=beta)
            energies = kernels.lsr_energy(memories, points, beta=beta)
            assert kernels.count_grid_minima(energies) == len(found.members), (memories, beta)
            compared += 1


def test_drdam_step_limit_and_bound():
    assert kernels.drdam_step_limit(20, beta=1.0, steps=10, c2=0.5) == pytest.approx(
        0.5 / (10 * (1 + 40 * np.exp(0.5))))
    assert kernels.drdam_step_limit(20, beta=5000.0, steps=10) == 0.0  # underflows, no overflow
    bound = kernels.drdam_bound(jnp.array([0.1, 0.2]), beta=25.0, c1=2.0, c2=0.5)
    assert jnp.allclose(bound, 2.0 * 0.5 * jnp.exp(jnp.array([0.1, 0.2]) - 0.5) / (25.0 * 0.5))


@pytest.mark.parametrize("call, match", [
    (lambda: kernels.random_features(2, 0, key=KEY), "num_features"),
    (lambda: kernels.random_features(2, 8, key=KEY, kind="relu"), "kind"),
    (lambda: kernels.random_features(2, 8, key=KEY, kind="positive", spectrum="laplacian"), "positive"),
    (lambda: kernels.random_features(2, 8, key=0), "key"),
    (lambda: kernels.lse_energy(jnp.ones((3, 2)), jnp.ones(3), beta=1.0), "v has 3"),
    (lambda: kernels.lse_energy(jnp.ones((3, 2)), jnp.ones(2), beta=0.0), "beta"),
    (lambda: kernels.lse_energy(jnp.ones((0, 2)), jnp.ones(2), beta=1.0), "memories is empty"),
    (lambda: kernels.lse_energy(jnp.ones((3, 2)), jnp.array([jnp.nan, 1.0]), beta=1.0), "v contains NaN"),
    (lambda: kernels.distributed_memory(kernels.random_features(3, 8, key=KEY), jnp.ones((2, 2)), beta=1.0),
     "D = 2"),
    (lambda: kernels.lsr_minima(jnp.ones((20, 2)), beta=1.0), "2\\^K"),
    (lambda: kernels.kde(jnp.ones(3), jnp.ones(2), kernel="box", bandwidth=1.0), "kernel"),
    (lambda: kernels.kde(jnp.ones(3), jnp.ones(2), bandwidth=-1.0), "bandwidth"),
    (lambda: kernels.drdam_bound(jnp.ones(2), beta=1.0, c1=1.0, c2=1.0), "c2"),
    (lambda: kernels.count_grid_minima(jnp.array([1.0, jnp.nan, 2.0])), "NaN"),
])
def test_bad_input_is_refused_by_name(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
