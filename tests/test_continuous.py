"""Tests for amtutor.continuous: the tanh DenseAM of Exercise 3.1.

The module is a thin builder of a HAMUX graph run by the library's one descent loop; the
independent, direct implementation of eqs. (3.8)–(3.11) it is checked against lives here, in the
tests only (`_reference_euler`, `_reference_ode`).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from amtutor import binary, continuous, data


def _reference_energy(memories, x, separation, beta):
    from amtutor.lagrangians import Tanh

    act = jnp.tanh(beta * x)
    return Tanh(beta).dual(x) + separation.energy_from_score(separation.score(memories @ act), memories.shape[1])


def _reference_current(memories, act, separation):
    return -jax.grad(lambda a: separation.energy_from_score(separation.score(memories @ a), memories.shape[1]))(act)


def _reference_euler(memories, x, separation, beta, rate, steps):
    """Eq. (3.10) written out: x <- x + (dt/tau) (I(tanh(beta x)) - x), energies from eq. (3.8)."""
    energies = [_reference_energy(memories, x, separation, beta)]
    for _ in range(steps):
        x = x + rate * (_reference_current(memories, jnp.tanh(beta * x), separation) - x)
        energies.append(_reference_energy(memories, x, separation, beta))
    return x, jnp.stack(energies)


def _reference_ode(memories, x0, separation, beta, t1, tau, saves):
    import diffrax

    def field(t, x, args):
        return (_reference_current(memories, jnp.tanh(beta * x), separation) - x) / tau

    sol = diffrax.diffeqsolve(diffrax.ODETerm(field), diffrax.Tsit5(), t0=0.0, t1=t1, dt0=None, y0=x0,
                              saveat=diffrax.SaveAt(ts=jnp.linspace(0.0, t1, saves)),
                              stepsize_controller=diffrax.PIDController(rtol=1e-5, atol=1e-5))
    return sol.ys

SEPARATIONS = {
    "quadratic": binary.quadratic(),
    "power3": binary.power(3),
    "rectified4": binary.rectified_power(4),
    "lse": binary.log_sum_exp(2.0),
}


def _setup(num_memories=3, dim=10, seed=0):
    memories = data.binary_patterns(num_memories, dim, key=jax.random.key(seed))
    x = jax.random.normal(jax.random.key(seed + 1), (dim,))
    return memories, x


def test_energy_matches_formula_3_8():
    memories, x = _setup()
    beta = 0.7
    g = np.tanh(beta * np.asarray(x, np.float64))
    lagrangian = np.sum(np.log(np.cosh(beta * np.asarray(x, np.float64)))) / beta
    m = np.asarray(memories, np.float64) @ g
    expected = g @ np.asarray(x, np.float64) - lagrangian - np.sum(m**3 / 3)
    got = continuous.tanh_energy(memories, x, binary.power(3), beta=beta)
    assert float(got) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_energy_batch_by_vmap_matches_single():
    memories, _ = _setup()
    xs = jax.random.normal(jax.random.key(5), (4, 10))
    batch = jax.vmap(lambda x: continuous.tanh_energy(memories, x, binary.quadratic(), beta=1.0))(xs)
    single = [continuous.tanh_energy(memories, x, binary.quadratic(), beta=1.0) for x in xs]
    np.testing.assert_allclose(batch, single, rtol=1e-5)  # float32 summation order differs under vmap


@pytest.mark.parametrize("name", sorted(SEPARATIONS))
def test_graph_equals_the_direct_reference_implementation(name):
    """The builder's graph + hamux.descend/solve reproduce the direct eqs. (3.8)–(3.11)."""
    memories, x = _setup(4, 10, seed=3)
    sep, beta = SEPARATIONS[name], 0.4
    assert float(continuous.tanh_energy(memories, x, sep, beta=beta)) == pytest.approx(
        float(_reference_energy(memories, x, sep, beta)), rel=1e-5, abs=1e-5)
    run = continuous.tanh_descent(memories, x, sep, beta=beta, steps=8, dt=0.5)
    ref_x, ref_e = _reference_euler(memories, x, sep, beta, 0.5, 8)
    np.testing.assert_allclose(run.final["x"], ref_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run.energies, ref_e, rtol=1e-5, atol=1e-5)
    flow = continuous.tanh_ode(memories, x, sep, beta=beta, t1=3.0, saves=7)
    np.testing.assert_allclose(flow.states["x"], _reference_ode(memories, x, sep, beta, 3.0, 1.0, 7),
                               rtol=1e-4, atol=1e-4)


def test_energy_finite_at_huge_beta():
    memories, x = _setup()
    e = continuous.tanh_energy(memories, 100.0 * x, binary.quadratic(), beta=1e4)
    assert np.isfinite(float(e))


@pytest.mark.parametrize("name", ["quadratic", "power3", "rectified4"])
def test_input_current_is_sum_xi_f(name):
    memories, x = _setup()
    g = jnp.tanh(x)
    n = {"quadratic": 2, "power3": 3, "rectified4": 4}[name]
    m = memories @ g
    f = m ** (n - 1) if name != "rectified4" else jnp.maximum(m, 0) ** (n - 1)
    np.testing.assert_allclose(continuous.input_current(memories, g, SEPARATIONS[name]),
                               memories.T @ f, rtol=1e-5, atol=1e-5)


def test_input_current_is_minus_energy_gradient_wrt_activations():
    # dE/dx̂ = x - I: the Legendre part contributes exactly x (eq. 3.3 box), checked by autodiff
    # of the energy written as a function of x̂ (x = artanh(x̂)/β).
    memories, x = _setup()
    beta = 0.5
    sep = binary.power(3)

    def energy_of_activations(g):
        return continuous.tanh_energy(memories, jnp.arctanh(g) / beta, sep, beta=beta)

    g = jnp.tanh(beta * x)
    grad = jax.grad(energy_of_activations)(g)
    np.testing.assert_allclose(grad, x - continuous.input_current(memories, g, sep), rtol=2e-3, atol=2e-3)


def test_euler_step_is_eq_3_11():
    memories, x = _setup()
    run = continuous.tanh_descent(memories, x, binary.power(3), beta=0.3, steps=1)
    expected = continuous.input_current(memories, jnp.tanh(0.3 * x), binary.power(3))
    np.testing.assert_allclose(run.final["x"], expected, rtol=1e-5)
    assert run.energies.shape == (2,) and run.states["x"].shape == (2, 10) and run.times.shape == (2,)


@pytest.mark.parametrize("name", ["quadratic", "power3", "rectified4"])
def test_large_beta_euler_step_is_sync_discrete_update(name):
    # Exercise 3.1: as beta -> infinity, x̂ = Sign(x) and one Euler step (tau = dt = 1) is the
    # synchronous discrete update (with the j = i term, as binary.sync_update computes it).
    memories = data.binary_patterns(4, 30, key=jax.random.key(3))
    sigma = data.flip_bits(memories[0], 0.2, key=jax.random.key(4))
    sep = SEPARATIONS[name]
    run = continuous.tanh_descent(memories, sigma, sep, beta=100.0, steps=1)
    discrete = binary.sync_update(memories, sigma, sep)
    x = run.final["x"]
    field_nonzero = x != 0
    assert bool(jnp.all(jnp.where(field_nonzero, jnp.sign(x) == discrete, True)))


def test_fixed_point_converges_to_discrete_as_beta_grows():
    # The chapter's claim: the continuous fixed point approaches the discrete one as beta grows.
    memories = data.binary_patterns(5, 100, key=jax.random.key(0))
    cue = data.flip_bits(memories[0], 0.2, key=jax.random.key(1))
    star = binary.async_recall(memories, cue, binary.quadratic(), key=jax.random.key(2)).final
    gaps = [
        float(jnp.mean(jnp.abs(jnp.tanh(b * _final(memories, cue, b)) - star)))
        for b in (0.02, 0.05, 0.1, 0.2)
    ]
    assert all(b <= a for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] < 1e-5


def _final(memories, cue, beta):
    return continuous.tanh_descent(memories, cue, binary.quadratic(), beta=beta, steps=30).final["x"]


def test_batch_descent_by_vmap_matches_single():
    memories, _ = _setup()
    xs = jax.random.normal(jax.random.key(8), (3, 10))
    run = lambda x: continuous.tanh_descent(memories, x, binary.quadratic(), beta=0.2, steps=5, dt=0.5)  # noqa: E731
    batch = jax.vmap(run)(xs)
    for i in range(3):
        single = run(xs[i])
        np.testing.assert_allclose(batch.final["x"][i], single.final["x"], rtol=1e-5)
        np.testing.assert_allclose(batch.energies[i], single.energies, rtol=1e-5)
    with pytest.raises(ValueError, match="for a batch, jax.vmap"):
        continuous.tanh_descent(memories, xs, binary.quadratic(), beta=0.2)


def _tolerance(energies):
    # float32 rounding of an energy of size |E| (sums of K·D^n terms): a few ulps, relative.
    return 1e-5 * (jnp.abs(energies[:-1]) + 1.0)


# One shape: every new (K, D) or separation compiles the solver again (a few seconds each), while
# beta, the memories and the start are traced values that vary freely.
@settings(max_examples=12)
@given(
    dim=st.just(8),
    num_memories=st.just(3),
    beta=st.floats(0.05, 3.0),
    name=st.sampled_from(sorted(SEPARATIONS)),
    seed=st.integers(0, 10_000),
)
def test_energy_non_increasing_along_the_flow(dim, num_memories, beta, name, seed):
    """dE/dt = -tau ẋᵀ ∇²L ẋ <= 0 (eq. 3.5): along the ODE solution the energy never goes up."""
    memories = data.binary_patterns(num_memories, dim, key=jax.random.key(seed))
    x0 = 2.0 * jax.random.normal(jax.random.key(seed + 1), (dim,))
    flow = continuous.tanh_ode(memories, x0, SEPARATIONS[name], beta=beta, t1=5.0, saves=26,
                               rtol=1e-6, atol=1e-6)
    assert bool(jnp.all(jnp.diff(flow.energies) <= _tolerance(flow.energies)))


@settings(max_examples=20)
@given(
    dim=st.integers(2, 12),
    num_memories=st.integers(1, 4),
    beta=st.floats(0.05, 3.0),
    name=st.sampled_from(sorted(SEPARATIONS)),
    seed=st.integers(0, 10_000),
)
def test_energy_non_increasing_under_small_euler_steps(dim, num_memories, beta, name, seed):
    """Euler steps small against the fastest time scale follow the flow, so E never goes up.

    The input current changes at rate ~ beta * |d I / d x̂| <= beta * K * D^(n-1) (power n), so a
    step dt = 0.1 / (1 + beta * K * D^(n-1)) stays well inside the stable range.
    """
    memories = data.binary_patterns(num_memories, dim, key=jax.random.key(seed))
    x0 = 2.0 * jax.random.normal(jax.random.key(seed + 1), (dim,))
    n = {"quadratic": 2, "power3": 3, "rectified4": 4, "lse": 2}[name]
    dt = 0.1 / (1.0 + beta * num_memories * dim ** (n - 1))
    run = continuous.tanh_descent(memories, x0, SEPARATIONS[name], beta=beta, steps=200, dt=dt)
    assert bool(jnp.all(jnp.diff(run.energies) <= _tolerance(run.energies)))


def test_bad_inputs():
    memories, x = _setup()
    sep = binary.quadratic()
    with pytest.raises(ValueError, match="beta"):
        continuous.tanh_energy(memories, x, sep, beta=0.0)
    with pytest.raises(TypeError, match="separation"):
        continuous.tanh_energy(memories, x, "quadratic", beta=1.0)
    with pytest.raises(ValueError, match="neurons"):
        continuous.tanh_energy(memories, x[:5], sep, beta=1.0)
    with pytest.raises(ValueError, match="memories must be 2-D"):
        continuous.tanh_energy(memories[0], x, sep, beta=1.0)
    with pytest.raises(ValueError, match="x0 contains NaN"):
        continuous.tanh_descent(memories, x.at[0].set(jnp.nan), sep, beta=1.0)
    with pytest.raises(ValueError, match="x contains NaN"):
        continuous.tanh_energy(memories, x.at[0].set(jnp.nan), sep, beta=1.0)
    with pytest.raises(ValueError, match="dt/tau"):
        continuous.tanh_descent(memories, x, sep, beta=1.0, dt=2.0)
    with pytest.raises(ValueError, match="steps"):
        continuous.tanh_descent(memories, x, sep, beta=1.0, steps=0)
    with pytest.raises(ValueError, match="t1"):
        continuous.tanh_ode(memories, x, sep, beta=1.0, t1=-1.0)
    with pytest.raises(ValueError, match="saves"):
        continuous.tanh_ode(memories, x, sep, beta=1.0, saves=1)
    with pytest.raises(ValueError, match="activations has 5 neurons"):
        continuous.input_current(memories, x[:5], sep)
    with pytest.raises(TypeError, match="x0 must be an array"):
        continuous.tanh_descent(memories, "x", sep, beta=1.0)


def test_values_beyond_float32_are_refused():
    """float64 1e39 passed the finiteness check and became inf in float32."""
    memories, x = _setup()
    sep = binary.quadratic()
    big = np.asarray(x, np.float64)
    big[0] = 1e39
    with pytest.raises(ValueError, match="x has a value of magnitude 1e\\+39, beyond the largest float32"):
        continuous.tanh_energy(memories, big, sep, beta=1.0)
    with pytest.raises(ValueError, match="x0 has a value of magnitude 1e\\+39"):
        continuous.tanh_descent(memories, big, sep, beta=1.0)
    mem = np.asarray(memories, np.float64)
    mem[0, 0] = -1e39
    with pytest.raises(ValueError, match="memories has a value of magnitude 1e\\+39"):
        continuous.tanh_energy(mem, x, sep, beta=1.0)
    with pytest.raises(ValueError, match="beta has a value of magnitude 1e\\+39"):
        continuous.tanh_energy(memories, x, sep, beta=1e39)
    with pytest.raises(ValueError, match="the solver hit max_steps=2 before t1"):
        continuous.tanh_ode(memories, x, sep, beta=1.0, max_steps=2)
