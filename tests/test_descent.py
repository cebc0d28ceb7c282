"""The one continuous descent core (`hamux.descend` / `hamux.solve`): trainable array parameters,
one compilation across parameter values, per-unit clamping, time-dependent energies, noise, the
final-only and tolerance modes, the solver argument, and divergence/step-limit errors."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import monitoring

from amtutor import binary
from amtutor import lagrangians as L
from amtutor.hamux import (BiasSynapse, DenseSynapse, FunctionSynapse, Graph, Layer, MemorySynapse,
                           descend, solve)

_COMPILES = []
monitoring.register_event_duration_secs_listener(
    lambda name, duration, **kw: _COMPILES.append(name) if name.endswith("backend_compile_duration") else None
)


def _memories(k=5, d=8, seed=0):
    return np.sign(np.random.default_rng(seed).standard_normal((k, d))).astype(np.float32)


def _tanh_softmax_graph(beta, gamma=1.0):
    xi = _memories()
    return Graph({"x": Layer(8, L.Tanh(beta)), "n": Layer(8, L.LayerNorm(gamma=gamma))},
                 {"M": MemorySynapse(xi, L.Softmax(beta)), "W": DenseSynapse(0.1 * np.eye(8))},
                 [("M", "x"), ("W", "x", "n")])


# ---- parameters stay arrays --------------------------------------------------------------------


def test_parameters_are_array_leaves():
    norm = L.LayerNorm(gamma=jnp.array(2.0))
    assert isinstance(norm.gamma, jax.Array)  # was a Python float: invisible to jax.grad
    assert isinstance(L.Tanh(3).beta, jax.Array) and L.Tanh(3).beta.dtype == jnp.float32
    assert isinstance(Layer(3, L.Identity(), tau=0.5).tau, jax.Array)
    grads = eqx.filter_grad(lambda lag: lag(jnp.arange(4.0)))(norm)
    assert grads.gamma is not None and float(grads.gamma) != 0.0


def test_one_optax_step_trains_beta_and_gamma_through_the_descent():
    graph = _tanh_softmax_graph(jnp.array(1.5), gamma=jnp.array(1.2))
    start = graph.init(key=jax.random.key(0), scale=0.5)
    target = jnp.linspace(-1.0, 1.0, 8)

    def loss(g):
        run = descend(g, start, dt=0.1, steps=20, record_every=None)  # final state only
        return jnp.sum((g.layers["x"].activation(run.final["x"]) - target) ** 2)

    params, static = eqx.partition(graph, eqx.is_inexact_array)
    optimiser = optax.adam(1e-2)
    state = optimiser.init(params)
    value, grads = eqx.filter_value_and_grad(lambda p: loss(eqx.combine(p, static)))(params)
    beta_grad = grads.layers["x"].lagrangian.beta
    gamma_grad = grads.layers["n"].lagrangian.gamma
    assert np.isfinite(float(value))
    assert float(jnp.abs(beta_grad)) > 0 and float(jnp.abs(gamma_grad)) > 0
    updates, state = optimiser.update(grads, state, params)
    new = eqx.combine(optax.apply_updates(params, updates), static)
    assert float(new.layers["x"].lagrangian.beta) != 1.5
    assert float(new.layers["n"].lagrangian.gamma) != pytest.approx(1.2, abs=0)


def test_descend_compiles_once_across_beta_and_dt():
    """Before this core, β and dt were Python floats, static under filter_jit: 3 values of β and 2
    of dt gave 5 compilations. Now they are traced: one compilation serves every value."""
    descend(_tanh_softmax_graph(1.0), {"x": jnp.ones(8), "n": jnp.ones(8)}, dt=0.1, steps=10)  # warm up
    _COMPILES.clear()
    for beta, dt in [(2.0, 0.1), (3.0, 0.05), (0.5, 0.2), (7.0, 0.01)]:
        run = descend(_tanh_softmax_graph(beta), {"x": jnp.ones(8), "n": jnp.ones(8)}, dt=dt, steps=10)
        assert np.all(np.isfinite(run.energies))
    assert len(_COMPILES) == 0, _COMPILES


# ---- clamping single units ---------------------------------------------------------------------


def test_per_unit_mask_holds_exactly_the_masked_units():
    graph = _tanh_softmax_graph(1.0)
    start = graph.init(key=jax.random.key(1), scale=1.0)
    mask = jnp.arange(8) >= 5  # hold the last three units of x (the "y" of an [x; y] state)
    run = descend(graph, start, dt=0.05, steps=100, clamped={"x": mask})
    np.testing.assert_array_equal(run.states["x"][:, 5:], np.broadcast_to(start["x"][5:], (101, 3)))
    assert float(jnp.max(jnp.abs(run.final["x"][:5] - start["x"][:5]))) > 1e-3
    assert float(jnp.max(jnp.abs(run.final["n"] - start["n"]))) > 1e-3  # other layers move
    assert np.all(np.diff(np.asarray(run.energies)) <= 1e-5)  # still a descent (energy, float32 slack)
    # an all-True mask equals clamping the whole layer by name
    whole = descend(graph, start, dt=0.05, steps=20, clamped=("x",))
    masked = descend(graph, start, dt=0.05, steps=20, clamped={"x": jnp.ones(8, bool)})
    np.testing.assert_allclose(whole.final["n"], masked.final["n"], rtol=1e-6)


def test_bad_masks_are_refused():
    graph = _tanh_softmax_graph(1.0)
    xs = graph.init()
    with pytest.raises(ValueError, match="clamping mask of layer 'x' has shape \\(3,\\)"):
        descend(graph, xs, clamped={"x": jnp.ones(3, bool)})
    with pytest.raises(TypeError, match="must be boolean"):
        descend(graph, xs, clamped={"x": jnp.ones(8)})
    with pytest.raises(ValueError, match="clamped layer 'z' is not a layer"):
        descend(graph, xs, clamped={"z": jnp.ones(8, bool)})


# ---- time, args, noise -------------------------------------------------------------------------


def test_time_dependent_synapse_receives_t_and_args():
    # E = -t * scale * <b, x̂> on an identity layer: x' = t·scale·b - x, so starting at 0 with dt,
    # x_{k+1} = x_k + dt (t_k scale b - x_k), t_k = t0 + k dt (an independent recursion below).
    b = jnp.array([1.0, -2.0, 0.5])
    syn = FunctionSynapse(lambda xhat, t, args: -t * args["scale"] * jnp.dot(b, xhat), time_dependent=True)
    graph = Graph({"x": Layer(3, L.Identity())}, {"E": syn}, [("E", "x")])
    run = descend(graph, {"x": jnp.zeros(3)}, dt=0.1, steps=5, t0=2.0, args={"scale": jnp.array(3.0)})
    x = np.zeros(3)
    for k in range(5):
        x = x + 0.1 * ((2.0 + 0.1 * k) * 3.0 * np.asarray(b) - x)
    np.testing.assert_allclose(run.final["x"], x, rtol=1e-5)
    np.testing.assert_allclose(run.times, 2.0 + 0.1 * np.arange(6), rtol=1e-6)
    # energies are evaluated at their own times: E(t) = ½|x|² − t·3·b·x
    e_last = 0.5 * x @ x - 2.5 * 3.0 * np.asarray(b) @ x
    assert float(run.energies[-1]) == pytest.approx(e_last, rel=1e-5)


def test_langevin_noise_has_the_euler_maruyama_stationary_variance():
    # dx = -x dt + σ dW on D independent units; the Euler–Maruyama chain x ← (1-dt) x + σ√dt ε has
    # stationary variance σ²/(2 - dt) (exact for the discrete chain). 20,000 units: the sample
    # variance has a relative standard error √(2/20000) = 1%, so 5% is a > 4-sigma tolerance.
    d, sigma, dt = 20_000, 0.7, 0.1
    graph = Graph({"x": Layer(d, L.Identity())}, {"b": BiasSynapse(jnp.zeros(d))}, [("b", "x")])
    run = descend(graph, {"x": jnp.zeros(d)}, dt=dt, steps=300, record_every=None, noise=sigma,
                  key=jax.random.key(3))
    assert float(jnp.var(run.final["x"])) == pytest.approx(sigma**2 / (2 - dt), rel=0.05)
    # reproducible with the same key, different with another; σ = 0 is the deterministic descent
    again = descend(graph, {"x": jnp.zeros(d)}, dt=dt, steps=300, record_every=None, noise=sigma,
                    key=jax.random.key(3))
    np.testing.assert_array_equal(run.final["x"], again.final["x"])
    quiet = descend(graph, {"x": jnp.ones(d)}, dt=dt, steps=10, noise=0.0, key=jax.random.key(3))
    plain = descend(graph, {"x": jnp.ones(d)}, dt=dt, steps=10)
    np.testing.assert_allclose(quiet.final["x"], plain.final["x"], rtol=1e-6)
    # a schedule σ(t)
    sched = descend(graph, {"x": jnp.zeros(d)}, dt=dt, steps=5, noise=lambda t: 0.0 * t, key=jax.random.key(4))
    np.testing.assert_allclose(sched.final["x"], 0.0)


def test_noise_and_key_go_together():
    graph = _tanh_softmax_graph(1.0)
    xs = graph.init()
    with pytest.raises(ValueError, match="noise needs a PRNG key"):
        descend(graph, xs, noise=0.1)
    with pytest.raises(ValueError, match="key is only used with noise"):
        descend(graph, xs, key=jax.random.key(0))
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        descend(graph, xs, noise=0.1, key=3)


# ---- final-only and tolerance ------------------------------------------------------------------


def test_final_only_mode_matches_the_recorded_run():
    graph = _tanh_softmax_graph(2.0)
    start = graph.init(key=jax.random.key(5), scale=0.5)
    full = descend(graph, start, dt=0.1, steps=40)
    short = descend(graph, start, dt=0.1, steps=40, record_every=None)
    np.testing.assert_allclose(short.final["x"], full.final["x"], rtol=1e-6)
    assert short.energies.shape == (2,) and short.states["x"].shape == (2, 8)
    np.testing.assert_allclose(short.energies, full.energies[jnp.array([0, -1])], rtol=1e-6)
    assert int(short.steps) == 40


def test_tolerance_stops_early_at_the_fixed_point():
    graph = _tanh_softmax_graph(2.0)
    start = graph.init(key=jax.random.key(6), scale=0.5)
    long = descend(graph, start, dt=0.2, steps=2000, record_every=None)
    early = descend(graph, start, dt=0.2, steps=2000, record_every=None, tol=1e-4)
    assert 0 < int(early.steps) < 2000
    # speed < 1e-4 and an energy that is strongly convex near the fixed point: within ~1e-3
    np.testing.assert_allclose(early.final["x"], long.final["x"], atol=2e-3)
    recorded = descend(graph, start, dt=0.2, steps=2000, record_every=100, tol=1e-4)
    assert int(recorded.steps) == int(early.steps)
    np.testing.assert_allclose(recorded.final["x"], early.final["x"], atol=1e-6)


# ---- divergence and the solver -----------------------------------------------------------------


def test_a_diverging_descent_is_an_error_not_nans():
    w = 3.0 * np.eye(4)
    graph = Graph({"x": Layer(4, L.Identity())}, {"W": DenseSynapse(w)}, [("W", "x", "x")])
    with pytest.raises(ValueError, match="the descent diverged.*lower dt"):
        descend(graph, {"x": jnp.ones(4)}, dt=1e3, steps=50)


def test_solver_is_an_argument_and_step_limits_are_explained():
    graph = _tanh_softmax_graph(1.0)
    start = graph.init(key=jax.random.key(7), scale=0.5)
    tsit = solve(graph, start, t1=3.0, saves=4)
    euler = solve(graph, start, t1=3.0, saves=4, solver=diffrax.Euler(), dt0=0.001)
    np.testing.assert_allclose(euler.final["x"], tsit.final["x"], atol=5e-3)  # Euler error O(dt0)
    assert int(euler.steps) == pytest.approx(3000, abs=2)
    with pytest.raises(ValueError, match="takes constant steps: give dt0"):
        solve(graph, start, t1=1.0, solver=diffrax.Euler())
    with pytest.raises(ValueError, match="the solver hit max_steps=2 before t1"):
        solve(graph, start, t1=1000.0, max_steps=2)
    with pytest.raises(TypeError, match="solver must be a diffrax solver"):
        solve(graph, start, t1=1.0, solver="rk4")


# ---- one memory energy -------------------------------------------------------------------------


def test_distance_similarity_with_softmax_is_the_distance_log_sum_exp():
    xi = jnp.asarray(np.random.default_rng(8).standard_normal((6, 3)), jnp.float32)
    x = jnp.array([0.3, -0.2, 1.0])
    beta = 4.0
    syn = MemorySynapse(xi, L.Softmax(beta), similarity="negative_squared_distance")
    d2 = np.sum((np.asarray(xi, np.float64) - np.asarray(x, np.float64)) ** 2, axis=1)
    direct = -np.log(np.sum(np.exp(-0.5 * beta * d2))) / beta
    assert float(syn(x)) == pytest.approx(direct, rel=1e-5)
    # custom similarity (a kernel) and masked (padded) memories
    cosine = MemorySynapse(xi, L.Softmax(beta), similarity=lambda m, v: m @ v / jnp.linalg.norm(m, axis=1))
    assert np.isfinite(float(cosine(x)))
    padded = MemorySynapse(jnp.concatenate([xi, 100 * jnp.ones((2, 3))]), L.Softmax(beta),
                           similarity="negative_squared_distance", valid=jnp.arange(8) < 6)
    assert float(padded(x)) == pytest.approx(float(syn(x)), rel=1e-6)
    elementwise = MemorySynapse(jnp.concatenate([xi, jnp.ones((1, 3))]), lambda s: s**2 / 2,
                                valid=jnp.arange(7) < 6)
    assert float(elementwise(x)) == pytest.approx(-0.5 * float(jnp.sum((xi @ x) ** 2)), rel=1e-6)


def test_binary_separations_plug_into_the_memory_synapse():
    xi = _memories(4, 10, seed=9)
    state = xi[0]
    for sep in (binary.power(3), binary.log_sum_exp(5.0), binary.exponential(0.5)):
        syn = MemorySynapse(xi, sep)
        assert float(syn(jnp.asarray(state))) == pytest.approx(float(binary.energy(xi, state, sep)), rel=1e-5)


def test_bad_memory_synapse_arguments():
    xi = _memories()
    with pytest.raises(ValueError, match="similarity must be one of"):
        MemorySynapse(xi, L.Softmax(1.0), similarity="cosine")
    with pytest.raises(ValueError, match="valid must have one entry per memory"):
        MemorySynapse(xi, L.Softmax(1.0), valid=jnp.ones(3, bool))
    with pytest.raises(TypeError, match="valid must be boolean"):
        MemorySynapse(xi, L.Softmax(1.0), valid=jnp.ones(5))
    with pytest.raises(TypeError, match="needs a Softmax or an elementwise"):
        MemorySynapse(xi, L.Identity(), valid=jnp.ones(5, bool))


def test_solve_compiles_once_across_t1():
    graph = _tanh_softmax_graph(1.0)
    start = graph.init(key=jax.random.key(9), scale=0.5)
    solve(graph, start, t1=1.0, saves=3)  # warm up
    _COMPILES.clear()
    runs = {t1: solve(graph, start, t1=t1, saves=3) for t1 in (2.0, 0.5, 3.0)}
    assert len(_COMPILES) == 0, _COMPILES  # (indexing the results below compiles small eager ops)
    for t1, run in runs.items():
        assert float(run.times[-1]) == pytest.approx(t1)
