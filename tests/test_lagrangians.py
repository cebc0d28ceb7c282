"""Lagrangians: activation = ∇L, the Legendre energy and its custom derivative, convexity, stability."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from amtutor import lagrangians as L
from amtutor.hamux import Graph, Layer

D = 7


def all_lagrangians():
    """One instance of every Lagrangian, with non-trivial parameters and extreme β included."""
    return [
        L.Identity(),
        L.ReLU(),
        L.RectifiedPower(3),
        L.Sigmoid(0.5),
        L.Sigmoid(1e4),
        L.Tanh(2.0),
        L.Tanh(1e4),
        L.Exponential(0.7),
        L.Softmax(1.0),
        L.Softmax(1e4),
        L.LayerNorm(1.5, jnp.linspace(-1, 1, D), eps=1e-5),
        L.LayerNorm(0.8, 0.3, eps=1e-2),
        L.SphericalNorm(2.0, eps=1e-3),
    ]


IDS = [lag.name for lag in all_lagrangians()]


def _x(seed=0, shape=(D,), scale=1.5):
    return scale * jax.random.normal(jax.random.key(seed), shape)


@pytest.mark.parametrize("lag", all_lagrangians(), ids=IDS)
def test_activation_is_gradient_of_lagrangian(lag):
    for seed in range(3):
        x = _x(seed)
        # float32: both sides are O(1) expressions; a few ulps of difference (~1e-6) are rounding.
        np.testing.assert_allclose(lag.activation(x), jax.grad(lag)(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lag", all_lagrangians(), ids=IDS)
def test_dual_is_legendre_transform(lag):
    x = _x(1)
    direct = jnp.sum(x * lag.activation(x)) - lag(x)
    # The closed form avoids the cancellation of <x, x̂> and L(x) (each O(D·|x|)); agreement to
    # float32 resolution of those O(10) terms, i.e. ~1e-5 absolute, is all the subtraction allows.
    np.testing.assert_allclose(lag.dual(x), direct, rtol=1e-5, atol=3e-5)


@pytest.mark.parametrize("lag", all_lagrangians(), ids=IDS)
def test_energy_gradient_is_state_exactly(lag):
    """∂E/∂x̂ = x and ∂E/∂x = 0, exactly (the custom JVP returns x itself)."""
    x = _x(2)
    xhat = lag.activation(x)
    np.testing.assert_array_equal(jax.grad(L.neuron_energy, argnums=1)(lag, xhat, x), x)
    np.testing.assert_array_equal(jax.grad(L.neuron_energy, argnums=2)(lag, xhat, x), jnp.zeros_like(x))
    assert jnp.isfinite(lag.energy(x))


@pytest.mark.parametrize("lag", all_lagrangians(), ids=IDS)
def test_lagrangian_hessian_is_positive_semidefinite(lag):
    """Convexity of L, the condition for dE/dt <= 0 (eq. 3.5)."""
    if getattr(lag, "beta", 1.0) > 100:
        pytest.skip("Hessian of a saturated activation at β = 1e4 is zero to float precision")
    for seed in range(3):
        hess = jax.hessian(lag)(_x(seed, scale=1.0))
        eig = np.linalg.eigvalsh(np.asarray((hess + hess.T) / 2, dtype=np.float64))
        assert eig.min() >= -1e-5 * max(1.0, abs(eig).max())


@settings(max_examples=40, deadline=None)
@given(st.integers(0, len(all_lagrangians()) - 1), st.integers(0, 10_000), st.floats(0.0, 1.0))
def test_lagrangian_is_convex_in_the_state(index, seed, t):
    lag = all_lagrangians()[index]
    a, b = _x(seed), _x(seed + 1)
    mid = lag(t * a + (1 - t) * b)
    chord = t * lag(a) + (1 - t) * lag(b)
    assert mid <= chord + 1e-4 * (1 + abs(chord))  # float32 rounding of O(10) sums


# Elementwise activations with an explicit inverse: the neuron energy as a function of x̂ alone.
INVERTIBLE = [
    (L.Identity(), lambda y: y, (-3.0, 3.0)),
    (L.Tanh(1.5), lambda y: jnp.arctanh(y) / 1.5, (-0.95, 0.95)),
    (L.Sigmoid(2.0), lambda y: jnp.log(y / (1 - y)) / 2.0, (0.05, 0.95)),
    (L.Exponential(0.5), lambda y: jnp.log(y) / 0.5, (0.1, 3.0)),
]


def test_energy_gradient_matches_finite_differences_of_the_closed_form():
    """∂E/∂x̂ = x checked against something other than the custom JVP: central differences, in
    float64, of the closed-form energy E(x̂) = dual(inverse(x̂)), one coordinate of x̂ at a time.

    Only these activations are invertible; the next test covers the others (ReLU, softmax, layer
    norm, spherical norm), for which x̂ does not determine x."""
    h = 1e-6  # central difference: truncation h²·E⁽³⁾ ~ 1e-12, rounding eps·|E|/h ~ 1e-10
    with jax.enable_x64(True):
        for lag, inverse, (lo, hi) in INVERTIBLE:
            xhat = jax.random.uniform(jax.random.key(11), (D,), jnp.float64, lo, hi)
            x = inverse(xhat)
            np.testing.assert_allclose(lag.activation(x), xhat, rtol=1e-12)  # the inverse is right
            energy = lambda y: lag.dual(inverse(y))  # noqa: E731
            fd = np.array([(energy(xhat + h * e) - energy(xhat - h * e)) / (2 * h)
                           for e in np.eye(D)])
            custom = jax.grad(L.neuron_energy, argnums=1)(lag, xhat, x)
            assert custom.dtype == jnp.float64
            np.testing.assert_allclose(custom, fd, rtol=1e-7, atol=1e-8, err_msg=lag.name)


@pytest.mark.parametrize("index", range(len(all_lagrangians())), ids=IDS)
def test_energy_derivative_along_the_activation_matches_finite_differences(index):
    """Every Lagrangian, invertible or not: move the state along x + t·u; the activation moves by
    v = dx̂/dt and the closed-form energy E = dual(x + t·u) changes at the rate ⟨x, v⟩ (ReLU: the
    components with x_i < 0 have v_i = 0; softmax and layer norm: v ⊥ 1, so the shift of x that
    leaves x̂ unchanged does not matter). A central difference of the closed-form dual, in
    float64, against the custom JVP applied to v (v from forward-mode autodiff of the closed-form
    activation: a difference quotient of x̂ would lose the digits that ⟨x, v⟩ cancels for layer
    norm, where |x|·|v| ~ 1 but ⟨x, v⟩ ~ ε)."""
    with jax.enable_x64(True):
        lag = all_lagrangians()[index]
        # β = 1e4: states of order 1/β keep βx = O(1) (saturated, x̂ would not move at all)
        scale = 1e-4 if getattr(lag, "beta", 1.0) > 100 else 1.0
        h = 1e-4 * scale  # truncation O(h²/scale²) ~ 1e-8 relative; rounding below that
        for seed in range(3):
            kx, ku = jax.random.split(jax.random.key(20 + seed))
            x = scale * jax.random.normal(kx, (D,), jnp.float64)
            u = scale * jax.random.normal(ku, (D,), jnp.float64)
            v = jax.jvp(lag.activation, (x,), (u,))[1]
            fd = (lag.dual(x + h * u) - lag.dual(x - h * u)) / (2 * h)
            custom = jax.jvp(lambda y: L.neuron_energy(lag, y, x), (lag.activation(x),), (v,))[1]
            assert custom.dtype == jnp.float64
            # measured agreement ≤ 3e-8 relative (truncation); 1e-6 leaves a margin of 30. The
            # rates are 1e-5 to 5 (layer norm, spherical norm: O(ε), like their energies), so the
            # absolute floor of 1e-12 is far below the smallest: the check is not 0 = 0.
            assert float(custom) == pytest.approx(float(fd), rel=1e-6, abs=1e-12), (lag.name, seed)
            assert abs(float(fd)) > 1e-6


@settings(max_examples=30, deadline=None)
@given(st.integers(0, len(INVERTIBLE) - 1), st.integers(0, 10_000), st.floats(0.0, 1.0))
def test_neuron_energy_is_convex_in_the_activation(index, seed, t):
    lag, inverse, (lo, hi) = INVERTIBLE[index]
    k1, k2 = jax.random.split(jax.random.key(seed))
    a = jax.random.uniform(k1, (D,), minval=lo, maxval=hi)
    b = jax.random.uniform(k2, (D,), minval=lo, maxval=hi)
    energy = lambda y: lag.dual(inverse(y))  # noqa: E731
    assert energy(t * a + (1 - t) * b) <= t * energy(a) + (1 - t) * energy(b) + 1e-4


def test_parameter_gradient_is_envelope_derivative():
    """d/dβ of E(x̂; β) at fixed x̂ (finite difference through the inverse activation) matches the JVP."""
    y = jnp.array([-0.9, -0.3, 0.1, 0.6, 0.8])
    beta = 1.7

    def exact(b):
        return L.Tanh(b).dual(jnp.arctanh(y) / b)

    h = 1e-2
    fd = (exact(beta + h) - exact(beta - h)) / (2 * h)
    x = jnp.arctanh(y) / beta
    auto = jax.grad(lambda lag: L.neuron_energy(lag, y, x))(L.Tanh(beta)).beta
    np.testing.assert_allclose(auto, fd, rtol=1e-3)  # O(h²) error of the central difference


def test_layernorm_closed_forms():
    x = _x(3)
    gamma, eps = 1.3, 1e-3
    lag = L.LayerNorm(gamma, jnp.arange(D) * 0.1, eps=eps)
    var = jnp.var(x)
    np.testing.assert_allclose(lag.dual(x), -D * gamma * eps / jnp.sqrt(var + eps), rtol=1e-5)
    xhat = lag.activation(x)
    # γ is the spread and δ the mean of the normalised vector
    np.testing.assert_allclose(jnp.mean(xhat), jnp.mean(jnp.arange(D) * 0.1), atol=1e-5)
    np.testing.assert_allclose(jnp.std(xhat - jnp.arange(D) * 0.1), gamma * jnp.sqrt(var / (var + eps)), rtol=1e-5)


def test_axis_lagrangians_act_per_token():
    x = _x(4, shape=(3, D))
    for lag in (L.Softmax(2.0), L.LayerNorm(1.0), L.SphericalNorm(1.0)):
        rows = sum(lag(x[i]) for i in range(3))
        np.testing.assert_allclose(lag(x), rows, rtol=1e-5)
        np.testing.assert_allclose(lag.activation(x)[1], lag.activation(x[1]), rtol=1e-6, atol=1e-7)
    sm = L.Softmax(1.0).activation(x)
    np.testing.assert_allclose(sm.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(jnp.linalg.norm(L.SphericalNorm(2.0, eps=1e-8).activation(x), axis=-1), 2.0, rtol=1e-5)


def test_stable_at_beta_1e4():
    x = jnp.array([1.0, 1.0 - 1e-3, -2.0, 0.5]) * 50.0
    for lag in (L.Softmax(1e4), L.Tanh(1e4), L.Sigmoid(1e4)):
        assert jnp.all(jnp.isfinite(lag.activation(x)))
        assert jnp.isfinite(lag(x)) and jnp.isfinite(lag.energy(x))
        assert jnp.all(jnp.isfinite(jax.grad(lag)(x)))
    # the two top entries differ by 0.05·1e4 = 500 in βx: softmax is one-hot, energy -entropy/β = 0
    np.testing.assert_array_equal(L.Softmax(1e4).activation(x), jnp.array([1.0, 0, 0, 0]))
    assert L.Softmax(1e4).energy(x) == 0.0
    # tanh at saturation: y·tanh(y) − log cosh(y) → log 2, so the energy is log(2)/β per neuron
    np.testing.assert_allclose(L.Tanh(1e4).energy(x), 4 * np.log(2) / 1e4, rtol=1e-5)


def _poisoned_tanh():
    """A tanh Lagrangian whose activation refuses to be differentiated."""

    @jax.custom_jvp
    def tanh_no_grad(y):
        return jnp.tanh(y)

    @tanh_no_grad.defjvp
    def _(primals, tangents):
        raise RuntimeError("the activation was differentiated")

    class PoisonedTanh(L.Tanh):
        def activation(self, x):
            return tanh_no_grad(self.beta * x)

    return PoisonedTanh(1.0)


def test_dynamics_never_differentiate_the_activation():
    """The HAMUX gradient ∂E/∂x̂ never differentiates the activation; ∂E/∂x (through x̂) would."""
    lag = _poisoned_tanh()
    graph = Graph({"x": Layer(D, lag)}, {}, [])
    xs = {"x": _x(5)}
    np.testing.assert_array_equal(graph.gradient(xs)["x"], xs["x"])
    with pytest.raises(RuntimeError, match="differentiated"):
        jax.grad(graph.energy)(xs)


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: L.Tanh(0.0), ValueError, "beta must be > 0"),
        (lambda: L.Softmax(-1.0), ValueError, "beta must be > 0"),
        (lambda: L.Sigmoid("2"), TypeError, "beta must be a real number"),
        (lambda: L.Exponential(float("inf")), ValueError, "beta must be finite"),
        (lambda: L.RectifiedPower(1), ValueError, "n must be >= 2"),
        (lambda: L.LayerNorm(gamma=0.0), ValueError, "gamma must be > 0"),
        (lambda: L.LayerNorm(delta=jnp.ones((2, 2))), ValueError, "delta must be 0-D or 1-D"),
        (lambda: L.LayerNorm(delta=[jnp.nan]), ValueError, "delta contains NaN"),
        (lambda: L.LayerNorm(eps=0.0), ValueError, "eps must be > 0"),
        (lambda: L.SphericalNorm(eps=-1.0), ValueError, "eps must be > 0"),
        (lambda: L.Softmax(1.0, axis=0.5), TypeError, "axis must be an integer"),
    ],
)
def test_bad_parameters_raise_clear_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_neuron_energy_refuses_mismatched_shapes():
    """x̂ of shape (3,) against x of shape (4,) used to broadcast into a number; now it is refused,
    eagerly, under jit and under grad (the check is on the static shapes)."""
    tanh, xhat, x = L.Tanh(1.0), jnp.ones(3), jnp.ones(4)
    match = r"xhat and x must have the same shape.*xhat of shape \(3,\) and x of shape \(4,\)"
    with pytest.raises(ValueError, match=match):
        L.neuron_energy(tanh, xhat, x)
    with pytest.raises(ValueError, match=match):
        jax.jit(L.neuron_energy)(tanh, xhat, x)
    with pytest.raises(ValueError, match=match):
        jax.grad(L.neuron_energy, argnums=1)(tanh, xhat, x)
    with pytest.raises(ValueError, match="same shape"):
        L.neuron_energy(tanh, jnp.ones((2, 3)), jnp.ones(3))
    with pytest.raises(TypeError, match="lagrangian must be an amtutor.lagrangians.Lagrangian"):
        L.neuron_energy(jnp.tanh, x, x)


@pytest.mark.parametrize("method", ["__call__", "activation", "dual", "energy"])
def test_exponential_refuses_overflow(method):
    """e^(βx) leaves float32 at βx > 88.7: a clear error naming x and the range, not inf."""
    lag = L.Exponential(1.0)
    with pytest.raises(ValueError, match=r"x is out of range for Exponential\(beta=1\).*beta\*x > 88\.7"):
        getattr(lag, method)(jnp.array([0.0, 1e3]))
    with pytest.raises(ValueError, match=r"x > 44\.36"):  # the range scales with 1/β
        getattr(L.Exponential(2.0), method)(jnp.array([50.0]))
    with pytest.raises(ValueError, match="x contains NaN or infinite values"):
        getattr(lag, method)(jnp.array([jnp.inf]))


def test_exponential_is_finite_and_differentiable_within_its_range():
    lag = L.Exponential(1.0)
    x = jnp.array([-50.0, 0.0, 80.0])  # e^80 ≈ 5.5e34: inside float32
    for value in (lag(x), lag.activation(x), lag.dual(x), lag.energy(x)):
        assert jnp.all(jnp.isfinite(value))
    np.testing.assert_allclose(jax.grad(lag)(x), lag.activation(x), rtol=1e-6)
    # Under jit there is no check (documented): beyond the range the value is inf, not an error.
    assert jax.jit(lambda v: lag.activation(v))(jnp.array([1e3]))[0] == jnp.inf


# --------------------------------------------------------------------------------------------
# Bad input and numerical range (issue 19)
# --------------------------------------------------------------------------------------------

METHODS = ["__call__", "activation", "dual", "energy"]


@pytest.mark.parametrize("lag", all_lagrangians(), ids=IDS)
@pytest.mark.parametrize(
    "x, exc, match",
    [
        (jnp.array([1.0, jnp.nan, 0.5]), ValueError, "x contains NaN or infinite values"),
        (jnp.array([jnp.inf, 0.0, 0.5]), ValueError, "x contains NaN or infinite values"),
        (np.array([1e39, 0.0, 0.5]), ValueError, r"x has a value of magnitude 1e\+39, beyond the largest float32"),
        ("a", TypeError, "x must be an array of numbers, got str"),
        (None, TypeError, "x must be an array of numbers, got NoneType"),
        ([[1.0, 2.0], [3.0]], TypeError, "x must be an array of numbers"),
        (np.array([1 + 2j, 0, 0]), TypeError, "x must hold real numbers, got complex"),
    ],
    ids=["nan", "inf", "beyond-float32", "str", "None", "ragged", "complex"],
)
def test_every_method_refuses_bad_states(lag, x, exc, match):
    """NaN, ∞, strings, None and float64 beyond float32 used to pass through (NaN out) or fail deep
    inside jnp (e.g. 'Only integer scalar arrays ...' for Tanh().activation("a"))."""
    for method in METHODS:
        with pytest.raises(exc, match=match):
            getattr(lag, method)(x)


def test_checks_skip_traced_values():
    """Inside jit/grad/vmap nothing is checked (no host sync): NaN comes out as NaN."""
    lag = L.Tanh(1.0)
    assert jnp.isnan(jax.jit(lambda x: lag(x))(jnp.array([jnp.nan])))
    assert jnp.isnan(jax.vmap(lag.dual)(jnp.array([[jnp.nan]]))[0])
    np.testing.assert_allclose(jax.grad(lag)(jnp.array([0.3])), jnp.tanh(0.3), rtol=1e-6)


def test_low_precision_states_are_computed_in_float32():
    x16 = jnp.array([0.5, -1.0, 2.0], jnp.float16)
    for lag in (L.Identity(), L.Tanh(2.0), L.Softmax(1.0)):
        out = lag.activation(x16)
        assert out.dtype == jnp.float32
        np.testing.assert_array_equal(out, lag.activation(x16.astype(jnp.float32)))
    assert L.Identity()(jnp.array([1.0, 1.0], jnp.bfloat16)).dtype == jnp.float32


def test_neuron_energy_refuses_bad_xhat():
    """x̂ carries the gradient (∂E/∂x̂ = x); the value comes from x alone, so a bad x̂ used to pass."""
    tanh, x = L.Tanh(1.0), jnp.array([0.5, -0.2])
    with pytest.raises(TypeError, match="xhat must be an array, the activation lagrangian.activation\\(x\\), got None"):
        L.neuron_energy(tanh, None, x)
    with pytest.raises(ValueError, match="xhat contains NaN or infinite values"):
        L.neuron_energy(tanh, jnp.array([jnp.nan, 0.0]), x)
    with pytest.raises(TypeError, match="xhat must be an array of numbers, got str"):
        L.neuron_energy(tanh, "ab", x)
    with pytest.raises(ValueError, match="x contains NaN"):
        L.neuron_energy(tanh, tanh.activation(x), jnp.array([jnp.nan, 0.0]))
    with pytest.raises(TypeError, match="lagrangian must be an amtutor.lagrangians.Lagrangian, got str"):
        L.neuron_energy("tanh", x, x)
    # and a traced NaN x̂ is not checked (jit keeps working, with no sync)
    assert jnp.isfinite(jax.jit(L.neuron_energy)(tanh, jnp.array([jnp.nan, 0.0]), x))


def test_parameters_beyond_float32_are_refused():
    with pytest.raises(ValueError, match="beta has a value of magnitude 1e\\+39, beyond the largest float32"):
        L.Tanh(1e39)
    with pytest.raises(ValueError, match="gamma has a value of magnitude"):
        L.SphericalNorm(gamma=1e39)
    with pytest.raises(ValueError, match="delta has a value of magnitude 1e\\+39"):
        L.LayerNorm(delta=np.array([0.0, 1e39]))


def _log_cosh_64(y):
    y = np.abs(np.asarray(y, np.float64))
    return y + np.log1p(np.exp(-2 * y)) - np.log(2.0)


def test_tanh_lagrangian_is_accurate_at_small_beta_x():
    """log cosh y = |y| + log1p(e^{-2|y|}) − log 2 cancelled for |y| ≲ 1e-3: Tanh(1e-4)(±1) was 0
    (true 5e-5) and d/dβ at βx = 1e-6 was 7% off. Against float64 (½ log1p(sinh² y) there)."""
    y = np.array([1e-12, 1e-8, 1e-6, 1e-4, 1e-3, 0.1, 0.5, 0.99])
    ref = 0.5 * np.log1p(np.sinh(y) ** 2)  # float64, accurate at small y
    got = np.array([float(L.Tanh(1.0)(jnp.array([v]))) for v in y])
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert float(L.Tanh(1e-4)(jnp.array([1.0, -1.0]))) == pytest.approx(1e-4, rel=1e-6)
    # gradients: in x it is tanh(βx); in β it is x tanh(βx)/β − log cosh(βx)/β²
    for beta, x in [(1e-6, 1.0), (1e-4, 2.0), (0.5, 1e-3), (0.3, 1.0)]:
        gx = jax.grad(lambda v: L.Tanh(beta)(v))(jnp.array([x]))[0]
        np.testing.assert_allclose(gx, np.tanh(beta * x), rtol=1e-6)
        gb = jax.grad(lambda b: L.Tanh(b)(jnp.array([x])))(jnp.float32(beta))
        y64 = np.float64(beta) * x
        want = x * np.tanh(y64) / beta - 0.5 * np.log1p(np.sinh(y64) ** 2) / beta**2
        np.testing.assert_allclose(gb, want, rtol=1e-4)


def test_tanh_lagrangian_keeps_its_old_values_at_large_beta_x():
    """For |βx| >= 1 the overflow-free form is unchanged, bit for bit."""
    x = jnp.array([1.0, -3.0, 7.5, 40.0, -1e3])
    for beta in (1.0, 2.0, 1e4):
        y = beta * x
        old = jnp.sum(jnp.abs(y) + jnp.log1p(jnp.exp(-2.0 * jnp.abs(y))) - jnp.log(2.0)) / jnp.float32(beta)
        assert L.Tanh(beta)(x) == old


def test_sigmoid_energy_is_accurate_in_the_tail():
    """(1/β)[s log s + (1−s) log(1−s)] lost its larger term once 1 − s rounded to 0: 50% error at
    βx = 30. Against float64 over βx in [−80, 80]."""
    y = np.concatenate([-np.geomspace(80, 1e-3, 40), [0.0], np.geomspace(1e-3, 80, 40)])
    s = 1 / (1 + np.exp(-y))
    r = 1 / (1 + np.exp(y))
    ref = s * -np.log1p(np.exp(-y)) + r * -np.log1p(np.exp(y))
    ref = np.where(np.abs(y) > 30, -(np.abs(y) + 1) * np.exp(-np.abs(y)), ref)  # the tail, to O(e^{-2|y|})
    got = np.array([float(L.Sigmoid(1.0).dual(jnp.array([v]))) for v in y])
    tiny = np.abs(ref) < 1e-37  # below float32's normal range: only absolute accuracy is possible
    np.testing.assert_allclose(got[~tiny], ref[~tiny], rtol=1e-5)
    np.testing.assert_allclose(got[tiny], ref[tiny], atol=1e-44)
    assert float(L.Sigmoid(1.0).dual(jnp.array([30.0]))) == pytest.approx(-31 * np.exp(-30.0), rel=1e-5)


def test_overflowing_beta_x_gives_the_limits_not_nan():
    """x finite but βx = ±inf in float32: softmax, and the tanh/sigmoid energies, were NaN."""
    x = jnp.array([1e38, -1e38, 0.0])
    np.testing.assert_array_equal(L.Softmax(10.0).activation(x), [1.0, 0.0, 0.0])
    assert L.Softmax(10.0).dual(x) == 0.0
    np.testing.assert_allclose(L.Softmax(10.0)(x), 1e38, rtol=1e-6)
    np.testing.assert_allclose(L.Tanh(10.0).dual(x), 2 * np.log(2) / 10 + 0.0, rtol=1e-6)  # 0 contributes 0
    np.testing.assert_allclose(L.Tanh(10.0)(x), 2e38, rtol=1e-6)  # |x| − log 2/β each
    assert L.Sigmoid(10.0).dual(x) == pytest.approx(np.log(0.5) / 10, rel=1e-6)  # only x = 0 contributes
    np.testing.assert_allclose(L.Sigmoid(10.0)(x), 1e38, rtol=1e-6)
    np.testing.assert_array_equal(L.Sigmoid(10.0).activation(x), [1.0, 0.0, 0.5])
    for lag in (L.Softmax(10.0), L.Tanh(10.0), L.Sigmoid(10.0)):
        assert jnp.isfinite(lag.energy(x))


def test_states_keep_their_float_dtype():
    """The check casts only what is not a float (ints, bools) or low precision (float16, bfloat16);
    float32 stays float32 (no silent upcast when float64 is enabled), and NumPy float64 becomes JAX's float."""
    lag = L.Tanh(1.0)
    assert lag.activation(jnp.ones(3, jnp.float32)).dtype == jnp.float32
    assert lag.activation(np.ones(3)).dtype == jnp.result_type(float)
    assert lag.activation(np.arange(3)).dtype == jnp.result_type(float)
