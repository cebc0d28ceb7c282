"""Every number the diffusion chapter (book/diffusion.md) states, checked with the chapter's seeds.

The shipped models are sampled exactly as in the page (key 1, 1500 samples, 1000 Euler-Maruyama
steps, the Tweedie-ending sampler), so the thresholds here are the page's numbers with margins.
The margins come from three training seeds (0 = shipped, 1, 2; data seed 6) run with
``python -m amtutor.diffusion_train --seed s``:

    K = 2:    ang_nn_ratio 0.090-0.097  coverage 0.19       off-memory 0.045-0.061
    K = 9:    ang_nn_ratio 0.607-0.611  coverage 0.86-0.92  off-memory 0.234-0.239
    K = 1000: ang_nn_ratio 0.97-1.06    coverage 1.00       off-memory 0.000  mean |R-1| 0.022-0.023
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import logsumexp

from amtutor import diffusion

T_EVAL = 0.15  # the tutorial's (and the page's) evaluation time
BETA_EVAL = diffusion.beta_of_time(T_EVAL)


# ---- E_DM = E_AM at beta = 1/(2 sigma^2 t) -----------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(log_t=st.floats(-5, 0), K=st.integers(1, 40), D=st.integers(1, 12),
       sigma=st.floats(0.3, 3.0), seed=st.integers(0, 2**16))
def test_dm_energy_is_the_dense_am_energy(log_t, K, D, sigma, seed):
    t = 10.0**log_t
    rng = np.random.default_rng(seed)
    xi, x = rng.standard_normal((K, D)), rng.standard_normal((5, D))
    beta = diffusion.beta_of_time(t, sigma=sigma)
    with jax.enable_x64(True):
        e_dm = np.asarray(diffusion.dm_energy(xi, x, t=t, sigma=sigma))
        e_am = np.asarray(diffusion.am_energy(xi, x, beta=beta))
    # eq. 4.8 written out independently (SciPy), in float64
    direct = -logsumexp(-beta * np.sum((x[:, None] - xi[None]) ** 2, -1), axis=1) / beta
    # float64 rounding of sums of squares of O(10) numbers: relative 1e-12 leaves 1000x headroom
    np.testing.assert_allclose(e_dm, direct, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(e_am, direct, rtol=1e-12, atol=1e-12)


# ---- two memories: the midpoint is a minimum exactly when beta d^2 < 2 ------------------------------


def _numerical_hessian(f, x, h=1e-4):
    n = len(x)
    H = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.eye(n)[i] * h, np.eye(n)[j] * h
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h * h)
    return H


@pytest.mark.parametrize("d", [0.3, 1.0, 2.0])
@pytest.mark.parametrize("side", [0.9, 1.1])
def test_midpoint_is_a_minimum_exactly_below_the_threshold(d, side):
    beta = side * 2 / d**2  # 10 % either side of beta d^2 = 2
    two = np.array([[-d / 2, 0.0, 0.0], [d / 2, 0.0, 0.0]])
    with jax.enable_x64(True):
        f = lambda x: float(diffusion.am_energy(two, x, beta=beta))  # noqa: E731
        H = _numerical_hessian(f, np.zeros(3))
    eig = np.linalg.eigvalsh(H)
    # the formula: eigenvalues 2 - beta d^2 (along the line) and 2, 2; finite differences with
    # h = 1e-4 in float64 are good to ~1e-7, far below the 0.2 gap of a 10 % step in beta
    np.testing.assert_allclose(sorted(eig), sorted([2 - beta * d**2, 2, 2]), atol=1e-5)
    assert (eig.min() > 0) == (side < 1)
    assert diffusion.two_memory_curvature(beta, d) == pytest.approx(2 - beta * d**2)


def test_chapter_two_memory_minima_counts():
    # the page: d = 1, starts off the mirror line; one minimum at beta = 1.9, two at 2.1
    two = np.array([[-0.5, 0.0], [0.5, 0.0]], np.float32)
    starts = np.stack(np.meshgrid(np.linspace(-1, 1, 6), np.linspace(-0.5, 0.5, 3)), -1)
    starts = starts.reshape(-1, 2).astype(np.float32)
    assert len(diffusion.energy_minima(two, starts, beta=1.9)) == 1
    assert len(diffusion.energy_minima(two, starts, beta=2.1)) == 2


# ---- the circle continuum ---------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.5, 3.0, 20.0])
def test_continuum_energy_is_a_monte_carlo_average_over_the_circle(beta):
    rng = np.random.default_rng(0)
    phi = rng.uniform(0, 2 * np.pi, 400_000)
    y = np.stack([np.cos(phi), np.sin(phi)], 1)
    radii = np.array([0.0, 0.4, 0.9, 1.0, 1.3])
    weights = [np.exp(-beta * np.sum((np.array([r, 0.0]) - y) ** 2, 1)) for r in radii]
    mc = np.array([-np.log(np.mean(w)) / beta for w in weights])
    # standard error of -log(mean)/beta: std(w) / (mean(w) sqrt(n) beta); allow 5 of them
    err = np.array([np.std(w) / (np.mean(w) * np.sqrt(len(w)) * beta) for w in weights])
    with jax.enable_x64(True):
        exact = np.asarray(diffusion.circle_energy(radii, beta=beta))
    assert np.all(np.abs(mc - exact) < 5 * err + 1e-12), (mc, exact, err)


def test_continuum_tends_to_the_squared_distance_to_the_circle():
    radii = np.linspace(0.0, 2.0, 201)
    gaps = []
    with jax.enable_x64(True):
        for beta in (10.0, 100.0, 1e3, 1e4):
            gaps.append(float(np.max(np.abs(np.asarray(diffusion.circle_energy(radii, beta=beta))
                                            - (radii - 1) ** 2))))
    # E - (R-1)^2 = -log(i0e(2 beta R))/beta ~ log(4 pi beta R)/(2 beta): 6e-4 at beta = 1e4
    assert all(a > b for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 1e-3


def test_ring_minimum_radius():
    # the page: R* = 0.914 at beta = 10/3 (approximation 0.925), 0.9898 at beta = 25
    assert diffusion.circle_minimum(BETA_EVAL) == pytest.approx(0.9138, abs=5e-4)
    assert diffusion.circle_minimum(25.0) == pytest.approx(0.9898, abs=5e-5)
    # R* = 1 - 1/(4 beta) - 3/(32 beta^2) + O(beta^-3): the second-order term bounds the error
    for beta in (5.0, 10.0, 100.0, 1000.0):  # (the coefficient is 0.13 at beta = 3, 0.094 at infinity)
        assert abs(1 - diffusion.circle_minimum(beta) - 1 / (4 * beta)) < 0.13 / beta**2


def _grid75():
    g = np.linspace(-1.5, 1.5, 75)
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)


def _exact_vs_continuum(angles):
    grid = _grid75()
    with jax.enable_x64(True):
        xi = np.stack([np.cos(angles), np.sin(angles)], 1)
        exact = np.asarray(diffusion.am_energy(xi, grid, beta=BETA_EVAL))
        cont = np.asarray(diffusion.circle_energy(np.linalg.norm(grid, axis=1), beta=BETA_EVAL))
    return float(np.max(np.abs(exact - exact.min() - (cont - cont.min()))))


@pytest.mark.parametrize("K", [100, 400, 1000])
def test_equispaced_points_are_the_continuum(K):
    # the page: 1e-15 for K = 1000. Trapezoid rule on a periodic analytic integrand: the error
    # is ~I_K(2 beta R) / I_0, below 1e-60 here; 1e-6 is the bound
    assert _exact_vs_continuum(2 * np.pi * np.arange(K) / K) < 1e-6


def test_random_points_differ_from_the_continuum_by_ripples():
    x = np.asarray(diffusion.circle_data(1000), np.float64)
    gap = _exact_vs_continuum(np.arctan2(x[:, 1], x[:, 0]))
    # the page: 0.067 (a prototype with other angles: 0.072); the bound is 0.15, and the
    # ripples are real: well above the equispaced 1e-15
    assert 0.01 < gap < 0.15


# ---- the shipped models, on the chapter's sampler -----------------------------------------------------


@functools.lru_cache(maxsize=None)
def _metrics(K, sampler="tweedie"):
    model = diffusion.load_model(K)
    x = diffusion.sample(model, key=jax.random.key(1), num=1500, sampler=sampler)
    return diffusion.regime_metrics(x, diffusion.circle_data(K))


def test_k2_memorizes():
    m = _metrics(2)
    # samples copy the two points: 0.09 measured on every seed; 0.2 is twice that
    assert m.ang_nn_ratio < 0.2
    # two well-separated points fill at most 2 x 3 bins of 36 with their blur (0.19 measured)
    assert m.coverage <= 0.3
    # almost nothing lands between them (0.045-0.061 measured); K = 9 puts 0.23 there
    assert m.off_memory < 0.09


def test_k9_is_in_between_with_spurious_mass():
    m = _metrics(9)
    # 0.61 on every seed: far from copies (0.09) and from the ring (~1); the window is the issue's
    assert 0.25 <= m.ang_nn_ratio <= 0.7
    # the spurious arcs: 0.234-0.239 measured, 2.5x the K = 2 and K = 1000 levels (<= 0.06)
    assert m.off_memory > 0.09


def test_k1000_generalizes_to_the_ring():
    m = _metrics(1000)
    # as spread as uniform points (0.97-1.06 measured): > 0.8 leaves room for seed noise
    assert m.ang_nn_ratio > 0.8
    # every bin holds its share (1.00 on all seeds); 0.95 allows one or two thin bins
    assert m.coverage >= 0.95
    # the Tweedie-ending sampler keeps the ring sharp: 0.022 measured, the bound is the issue's
    assert m.radius_error < 0.05


def test_reference_sampler_blurs_the_ring_and_sharpens_memories():
    # the page: mean |R - 1| 0.022 -> 0.138 (K = 1000) and 0.099 -> 0.036 (K = 2); 2x either way
    # is far outside the seed spread (0.022-0.023 and 0.099-0.108)
    assert _metrics(1000, "reference").radius_error > 2 * _metrics(1000).radius_error
    assert _metrics(2, "reference").radius_error < 0.5 * _metrics(2).radius_error


# ---- learned energies -----------------------------------------------------------------------------------


def test_learned_energy_matches_the_exact_one_where_the_model_generalizes():
    grid = _grid75().astype(np.float32)
    gaps = {}
    for K in diffusion.SHIPPED_K:
        e = np.asarray(diffusion.ray_energy(diffusion.load_model(K), grid, t=T_EVAL))
        exact = np.asarray(diffusion.am_energy(diffusion.circle_data(K), grid, beta=BETA_EVAL))
        gaps[K] = float(np.mean(np.abs(e - e.min() - (exact - exact.min()))))
    # the page: 0.009 (K = 1000) against 0.042 (K = 9) and 0.051 (K = 2)
    assert gaps[1000] < 0.02 and gaps[1000] < 0.5 * min(gaps[2], gaps[9])


def test_flow_and_ray_energies_agree_for_the_ring():
    g = np.linspace(-1.5, 1.5, 15)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2).astype(np.float32)
    model = diffusion.load_model(1000)
    flow = 2 * T_EVAL * np.asarray(
        diffusion.flow_energy(model, grid, diffusion.circle_data(1000), t=T_EVAL, steps=30))
    ray = np.asarray(diffusion.ray_energy(model, grid, t=T_EVAL))
    # the page: mean 0.010 on an energy range of ~1.5; 0.03 allows for the RK4 step
    assert np.mean(np.abs(flow - flow.min() - (ray - ray.min()))) < 0.03


def test_learned_k9_energy_merges_memories_at_t_002():
    # the page: 4 minima along the unit circle for 9 points, the farthest 0.196 rad from any point
    angles = np.linspace(-np.pi, np.pi, 2000, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    e = np.asarray(diffusion.ray_energy(diffusion.load_model(9), ring, t=0.02))
    minima = angles[(e < np.roll(e, 1)) & (e < np.roll(e, -1))]
    x = np.asarray(diffusion.circle_data(9))
    mem = np.arctan2(x[:, 1], x[:, 0])
    dist = [np.min(np.abs((mem - a + np.pi) % (2 * np.pi) - np.pi)) for a in minima]
    assert len(minima) < 9  # fewer wells than points: merged
    assert max(dist) > 0.1  # a well that is no training point (0.196 measured; grid step 0.003)


def test_exact_k9_landscape_at_t_002():
    # the page: 8 minima, 2 of them more than 0.05 from every training point
    side = np.linspace(-1.2, 1.2, 16)
    starts = np.stack(np.meshgrid(side, side), -1).reshape(-1, 2).astype(np.float32)
    xi = diffusion.circle_data(9)
    m = np.asarray(diffusion.energy_minima(xi, starts, beta=diffusion.beta_of_time(0.02)))
    gap = np.min(np.linalg.norm(m[:, None] - np.asarray(xi)[None], axis=-1), 1)
    assert len(m) == 8 and int(np.sum(gap > 0.05)) == 2
