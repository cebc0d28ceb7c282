r"""Neurons as convex Lagrangians (chapter "HAMUX", section 3.2 of the tutorial).

A neuron layer is a convex scalar function :math:`\mathcal{L}(\mathbf{x})` of its internal state
:math:`\mathbf{x}`. Everything else follows from it:

* the **activation** is its gradient, :math:`\hat{\mathbf{x}} = \nabla\mathcal{L}(\mathbf{x})`;
* the **neuron energy** is its Legendre transform,
  :math:`E(\hat{\mathbf{x}}) = \langle\mathbf{x},\hat{\mathbf{x}}\rangle - \mathcal{L}(\mathbf{x})`,
  whose gradient is the internal state: :math:`\partial E/\partial\hat{\mathbf{x}} = \mathbf{x}`.

Every Lagrangian below is an :class:`equinox.Module` (a pytree: its parameters such as β, γ, δ are
leaves that ``jax.grad`` can train) with three methods:

``L(x)``            the Lagrangian itself, a scalar (summed over the whole layer);
``L.activation(x)`` the activation in closed form (a test proves it equals ``jax.grad(L)``);
``L.dual(x)``       the neuron energy :math:`E(\hat{\mathbf{x}}(\mathbf{x}))` in a closed form that
                    stays accurate where :math:`\langle x,\hat x\rangle` and :math:`\mathcal{L}` are
                    large and nearly cancel (softmax at β = 1e4, layer-norm at small ε).

:func:`neuron_energy` wraps ``dual`` in a custom JVP so that differentiating the energy with respect
to the activation returns ``x`` directly, without differentiating through the activation function.

====================  =========================================================  ==========================
class                 Lagrangian :math:`\mathcal{L}(\mathbf{x})`                  activation
====================  =========================================================  ==========================
``Identity()``        :math:`\tfrac12\|x\|^2`                                     :math:`x`
``ReLU()``            :math:`\tfrac12\sum_i\max(x_i,0)^2`                         :math:`\max(x,0)`
``RectifiedPower(n)`` :math:`\tfrac1n\sum_i\max(x_i,0)^n`                         :math:`\max(x,0)^{n-1}`
``Sigmoid(beta)``     :math:`\tfrac1\beta\sum_i\log(1+e^{\beta x_i})`            :math:`1/(1+e^{-\beta x})`
``Tanh(beta)``        :math:`\tfrac1\beta\sum_i\log\cosh(\beta x_i)`             :math:`\tanh(\beta x)`
``Exponential(beta)`` :math:`\tfrac1\beta\sum_i e^{\beta x_i}`                   :math:`e^{\beta x}`
``Softmax(beta)``     :math:`\tfrac1\beta\log\sum_i e^{\beta x_i}`               :math:`\mathrm{softmax}(\beta x)`
``LayerNorm(...)``    :math:`D\gamma\sqrt{\tfrac1D\sum_j(x_j-\bar x)^2+\varepsilon}+\sum_j\delta_jx_j`  eq. (3.13)
``SphericalNorm(...)`` :math:`\gamma\sqrt{\|x\|^2+\varepsilon}`                   :math:`\gamma x/\sqrt{\|x\|^2+\varepsilon}`
====================  =========================================================  ==========================

``Softmax``, ``LayerNorm`` and ``SphericalNorm`` act along one axis (``axis=-1``); a layer of shape
``(N, D)`` (N tokens of D features) is normalised token by token and the Lagrangian sums over tokens.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import equinox as eqx
from jaxtyping import Array, Float

from .validation import as_array, as_float_array, check_finite, check_fits_float, check_int, check_positive

__all__ = [
    "Lagrangian",
    "Identity",
    "ReLU",
    "RectifiedPower",
    "Sigmoid",
    "Tanh",
    "Exponential",
    "Softmax",
    "LayerNorm",
    "SphericalNorm",
    "neuron_energy",
    "log_sum_exp",
]


def log_sum_exp(z: Float[Array, "..."], beta, *, axis: int = -1, where=None) -> Float[Array, "..."]:
    r"""The smooth maximum :math:`\tfrac1\beta\log\sum_i e^{\beta z_i}` along ``axis``: the one place the
    library computes a log-sum-exp energy (Softmax Lagrangian, log-sum-exp separation, attention,
    the exponential-capacity model all call it).

    Stable for any β > 0: the maximum is subtracted from ``z`` *before* multiplying by β, so the top
    term's exponent is exactly 0 (never off by rounding of a fused β·z − max(β·z)), and as β → 0 the
    result tends to :math:`\max z + \log(K)/\beta` without overflow. ``where`` (a boolean mask of
    ``z``'s shape) drops entries, e.g. padded memories; if an axis has no entry left the result is −∞.
    The gradient is the softmax of β z (over the kept entries).

    Bad input is refused by name: ``z`` must be a real array with at least one axis (−∞ entries
    are allowed, NaN and +∞ are not, on concrete values), ``axis`` an integer axis of ``z``, and
    ``beta`` one finite number > 0. Under ``jit``/``grad`` only the shapes are checked (free).
    """
    z = as_array("z", z)
    axis = check_int("axis", axis)
    if not -z.ndim <= axis < max(z.ndim, 1) or z.ndim == 0:
        raise ValueError(f"axis = {axis} is not an axis of z (shape {tuple(z.shape)})")
    if z.shape[axis] == 0 and where is None:
        raise ValueError(f"z is empty along axis {axis} (shape {tuple(z.shape)}): the log of an empty sum")
    if not isinstance(z, jax.core.Tracer) and bool(jnp.any(jnp.isnan(z) | (z == jnp.inf))):
        raise ValueError("z contains NaN or +inf values (entries of -inf, i.e. dropped terms, are allowed)")
    beta = check_positive("beta", beta)
    top = jnp.max(z, axis=axis, keepdims=True, where=where, initial=-jnp.inf)
    # A row with no finite entry would give inf - inf: shift by 0 there instead.
    top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0))
    total = jnp.sum(jnp.exp(beta * (z - top)), axis=axis, where=where)
    return jnp.squeeze(top, axis=axis) + jnp.log(total) / beta


class Lagrangian(eqx.Module):
    """A convex Lagrangian: ``L(x)`` (scalar), ``activation(x)`` = ∇L(x), ``dual(x)`` = ⟨x, x̂⟩ − L(x).

    Subclasses implement ``__call__`` and ``activation``; they override ``dual`` when a closed form
    is more accurate than the subtraction.
    """

    def __call__(self, x: Float[Array, "..."]) -> Float[Array, ""]:
        raise NotImplementedError

    def activation(self, x: Float[Array, "..."]) -> Float[Array, "..."]:
        raise NotImplementedError

    def dual(self, x: Float[Array, "..."]) -> Float[Array, ""]:
        """Neuron energy at the state ``x``: ⟨x, ∇L(x)⟩ − L(x) (the Legendre transform)."""
        return jnp.sum(x * self.activation(x)) - self(x)

    def energy(self, x: Float[Array, "..."]) -> Float[Array, ""]:
        """Neuron energy :math:`E(\\hat x)` with ``x̂ = activation(x)``; ∂E/∂x̂ = x (see :func:`neuron_energy`)."""
        return neuron_energy(self, self.activation(x), x)

    @property
    def name(self) -> str:
        """Short label for plots and diagrams, e.g. ``'tanh β=2'``."""
        return type(self).__name__.lower()


def _parameter(name: str, value) -> Float[Array, ""]:
    """A positive scalar parameter (β, γ), stored as a float32 array: a pytree leaf that ``jax.grad``
    and optax can train, and that ``jit`` traces (changing its value does not recompile)."""
    value = check_positive(name, value)
    check_fits_float(name, value, jnp.float32)
    return jnp.asarray(value, dtype=jnp.float32)


def _state(x):
    """The argument ``x`` of every method: an array of real numbers, in JAX's default float dtype.

    On concrete values (not inside ``jit``/``grad``/``vmap``, where nothing is checked and nothing
    is synchronised) NaN, infinity and finite values beyond the float dtype are refused.
    """
    return as_float_array("x", x)


def _saturated(a):
    # |βx| clamped below 1e30: e^{-2|βx|}, tanh and sigmoid are saturated long before, and the
    # clamp keeps an overflowing βx (= inf) from turning 0·∞ into NaN.
    return jnp.minimum(a, 1e30)


def _beta(beta):
    return _parameter("beta", beta)


class Identity(Lagrangian):
    r""":math:`\mathcal{L} = \tfrac12\|x\|^2`: the activation is the state itself and E = ½‖x̂‖²."""

    def __call__(self, x):
        x = _state(x)
        return 0.5 * jnp.sum(x**2)

    def activation(self, x):
        return _state(x)

    def dual(self, x):
        x = _state(x)
        return 0.5 * jnp.sum(x**2)

    @property
    def name(self):
        return "identity"


class RectifiedPower(Lagrangian):
    r""":math:`\mathcal{L} = \tfrac1n\sum_i\max(x_i,0)^n`, activation :math:`\max(x,0)^{n-1}` (n ≥ 2)."""

    n: int = eqx.field(static=True)

    def __init__(self, n: int = 2):
        self.n = check_int("n", n, minimum=2)

    def __call__(self, x):
        x = _state(x)
        return jnp.sum(jnp.maximum(x, 0.0) ** self.n) / self.n

    def activation(self, x):
        x = _state(x)
        return jnp.maximum(x, 0.0) ** (self.n - 1)

    def dual(self, x):
        x = _state(x)
        # <x, r^(n-1)> - r^n/n = (1 - 1/n) r^n with r = max(x, 0)
        return (1.0 - 1.0 / self.n) * jnp.sum(jnp.maximum(x, 0.0) ** self.n)

    @property
    def name(self):
        return f"repu n={self.n}"


class ReLU(RectifiedPower):
    r""":math:`\mathcal{L} = \tfrac12\sum_i\max(x_i,0)^2`, activation ReLU(x). Convex, not strictly:
    silent neurons (x < 0) have zero curvature, so the dynamics may drift along them."""

    def __init__(self):
        self.n = 2

    @property
    def name(self):
        return "relu"


class Sigmoid(Lagrangian):
    r""":math:`\mathcal{L} = \tfrac1\beta\sum_i\log(1+e^{\beta x_i})`, activation :math:`\sigma(\beta x)\in(0,1)`."""

    beta: Float[Array, ""]

    def __init__(self, beta: float | Array = 1.0):
        self.beta = _beta(beta)

    def __call__(self, x):
        x = _state(x)
        # softplus(βx)/β → x for large βx: where βx overflows (x finite), the limit x itself
        y = self.beta * x
        value = jnp.sum(jnp.where(jnp.isinf(y), 0.0, jax.nn.softplus(y))) / self.beta
        return value + jnp.sum(jnp.where(jnp.isinf(y), jnp.maximum(x, 0.0), 0.0))

    def activation(self, x):
        x = _state(x)
        return jax.nn.sigmoid(self.beta * x)

    def dual(self, x):
        x = _state(x)
        # x s - softplus(bx)/b = (1/b)[s log s + (1-s) log(1-s)] (negative binary entropy), written
        # with log-sigmoids so that saturated neurons (s = 0 or 1 in float32) give 0, not NaN, and
        # with 1 - s = sigmoid(-y) itself: 1 - sigmoid(y) rounds to 0 at y = 30 (true 9e-14), which
        # dropped the larger of the two terms. y is clamped to ±1e30 (see _saturated) so that an
        # overflowing βx gives 0 rather than 0·∞.
        y = jnp.clip(self.beta * x, -1e30, 1e30)
        s, rest = jax.nn.sigmoid(y), jax.nn.sigmoid(-y)
        return jnp.sum(s * jax.nn.log_sigmoid(y) + rest * jax.nn.log_sigmoid(-y)) / self.beta

    @property
    def name(self):
        return f"sigmoid β={float(self.beta):g}" if not isinstance(self.beta, jax.core.Tracer) else "sigmoid"


def _log_cosh(y):
    # log cosh y = |y| + log(1 + e^{-2|y|}) - log 2: no overflow for large |y| (β = 1e4).
    a = jnp.abs(y)
    return a + jnp.log1p(jnp.exp(-2.0 * a)) - jnp.log(2.0)


class Tanh(Lagrangian):
    r""":math:`\mathcal{L} = \tfrac1\beta\sum_i\log\cosh(\beta x_i)`, activation :math:`\tanh(\beta x)\in(-1,1)`
    (eq. 3.6). As β → ∞ the activation becomes Sign(x) and the neuron energy vanishes."""

    beta: Float[Array, ""]

    def __init__(self, beta: float | Array = 1.0):
        self.beta = _beta(beta)

    def __call__(self, x):
        x = _state(x)
        # log cosh y = |y| + log1p(e^{-2|y|}) - log 2 (no overflow at large |y|) cancels |y| against
        # log 2 for small |y| (Tanh(1e-4)(1) came out 0, true 5e-5, and its β-gradient 7% off at
        # βx = 1e-6): there ½ log1p(sinh² y) is accurate, value and gradient. Where βx overflows
        # (x finite), (1/β) log cosh(βx) is |x| - log(2)/β.
        a = jnp.abs(self.beta * x)
        s = jnp.minimum(a, 1.0)  # keeps sinh finite in the branch `where` discards
        per = jnp.where(a < 1.0, 0.5 * jnp.log1p(jnp.sinh(s) ** 2), _log_cosh(a))
        finite = jnp.isfinite(a)
        value = jnp.sum(jnp.where(finite, per, 0.0)) / self.beta
        return value + jnp.sum(jnp.where(finite, 0.0, jnp.abs(x) - jnp.log(2.0) / self.beta))

    def activation(self, x):
        x = _state(x)
        return jnp.tanh(self.beta * x)

    def dual(self, x):
        x = _state(x)
        # (1/b)[y tanh y - log cosh y] with y = bx; both terms ~|y| for large |y| and the difference
        # tends to log 2, so compute it as |y|(tanh|y| - 1) - log1p(e^{-2|y|}) + log 2 (no cancellation).
        # For small |y| that form cancels log 2 against itself; there a tanh a - ½ log1p(sinh² a)
        # is accurate (the clamp keeps sinh finite in the branch `where` discards). |y| is clamped
        # (see _saturated) so that an overflowing βx gives log(2)/β, not ∞·0.
        a = _saturated(jnp.abs(self.beta * x))
        large = a * (jnp.tanh(a) - 1.0) - jnp.log1p(jnp.exp(-2.0 * a)) + jnp.log(2.0)
        s = jnp.minimum(a, 1.0)
        small = s * jnp.tanh(s) - 0.5 * jnp.log1p(jnp.sinh(s) ** 2)
        return jnp.sum(jnp.where(a < 1.0, small, large)) / self.beta

    @property
    def name(self):
        return f"tanh β={float(self.beta):g}" if not isinstance(self.beta, jax.core.Tracer) else "tanh"


class Exponential(Lagrangian):
    r""":math:`\mathcal{L} = \tfrac1\beta\sum_i e^{\beta x_i}`, activation :math:`e^{\beta x}` (unbounded).

    **Range.** :math:`e^{\beta x}` itself leaves floating point at :math:`\beta x` above
    :math:`\log(\text{largest float})`: **88.7 in float32** (JAX's default), 709.8 in float64. No
    rewriting keeps such values finite, so on concrete inputs ``L(x)``, ``activation(x)`` and
    ``dual(x)`` (hence ``energy`` and :func:`neuron_energy`) raise a ``ValueError`` naming ``x``
    and the range instead of returning ``inf``. Inside ``jit``/``grad``/``vmap`` (traced values)
    there is no check, and values beyond the range come out as ``inf``: keep :math:`\beta x`
    below about 88 in float32 (a few less for ``dual``, whose factor :math:`x - 1/\beta` can push
    the product over), or enable float64.
    """

    beta: Float[Array, ""]

    def __init__(self, beta: float | Array = 1.0):
        self.beta = _beta(beta)

    def __call__(self, x):
        x = _state(x)
        return self._refuse_overflow(x, jnp.sum(jnp.exp(self.beta * x)) / self.beta, "L(x)")

    def activation(self, x):
        x = _state(x)
        return self._refuse_overflow(x, jnp.exp(self.beta * x), "activation(x)")

    def dual(self, x):
        x = _state(x)
        value = jnp.sum((x - 1.0 / self.beta) * jnp.exp(self.beta * x))
        return self._refuse_overflow(x, value, "the energy dual(x)")

    def _refuse_overflow(self, x, value, what):
        """``value``, or a ``ValueError`` if a finite ``x`` made it overflow (concrete values only)."""
        if isinstance(value, jax.core.Tracer) or bool(jnp.all(jnp.isfinite(value))):
            return value
        if not bool(jnp.all(jnp.isfinite(x))):
            raise ValueError("x contains NaN or infinite values")
        dtype = jnp.result_type(value)
        limit = float(jnp.log(jnp.finfo(dtype).max))
        beta = float(self.beta)
        worst = float(jnp.max(self.beta * jnp.asarray(x)))
        extra = ", and a little lower for the energy (its factor x - 1/beta)" if "dual" in what else ""
        raise ValueError(
            f"x is out of range for Exponential(beta={beta:g}): {what} overflows {dtype} at "
            f"max beta*x = {worst:g}. e^(beta*x) overflows {dtype} for beta*x > {limit:.1f}, i.e. "
            f"x > {limit / beta:.4g}: keep beta*x below that{extra} (or enable float64)")

    @property
    def name(self):
        return f"exp β={float(self.beta):g}" if not isinstance(self.beta, jax.core.Tracer) else "exp"


class Softmax(Lagrangian):
    r""":math:`\mathcal{L} = \tfrac1\beta\log\sum_i e^{\beta x_i}` (log-sum-exp along ``axis``), activation
    :math:`\mathrm{softmax}(\beta x)`. The neuron energy is :math:`\tfrac1\beta\sum_i p_i\log p_i`
    (minus the entropy over β), computed from log-softmax: stable at β = 1e4."""

    beta: Float[Array, ""]
    axis: int = eqx.field(static=True)

    def __init__(self, beta: float | Array = 1.0, axis: int = -1):
        self.beta = _beta(beta)
        self.axis = check_int("axis", axis)

    def __call__(self, x):
        x = _state(x)
        return jnp.sum(log_sum_exp(x, self.beta, axis=self.axis))

    def _logits(self, x):
        """βx, or β(x − max x) where βx overflows for a finite x (softmax is shift-invariant; the
        shifted form has no ∞ − ∞). The common case keeps βx itself, bit for bit."""
        y = self.beta * x
        shifted = self.beta * (x - jax.lax.stop_gradient(jnp.max(x, axis=self.axis, keepdims=True)))
        return jnp.where(jnp.all(jnp.isfinite(y)), y, shifted)

    def activation(self, x):
        x = _state(x)
        return jax.nn.softmax(self._logits(x), axis=self.axis)

    def dual(self, x):
        x = _state(x)
        log_p = jax.nn.log_softmax(self._logits(x), axis=self.axis)
        # p log p with p = 0 (log p = -inf, an overflowed logit) is 0
        return jnp.sum(jnp.where(jnp.isinf(log_p), 0.0, jnp.exp(log_p) * log_p)) / self.beta

    @property
    def name(self):
        return f"softmax β={float(self.beta):g}" if not isinstance(self.beta, jax.core.Tracer) else "softmax"


class LayerNorm(Lagrangian):
    r"""Layer normalisation as a neuron (eqs. 3.13–3.14):

    .. math:: \mathcal{L} = D\gamma\sqrt{\tfrac1D\textstyle\sum_j(x_j-\bar x)^2+\varepsilon}+\sum_j\delta_jx_j,
       \qquad \hat x_i = \gamma\frac{x_i-\bar x}{\sqrt{\frac1D\sum_j(x_j-\bar x)^2+\varepsilon}}+\delta_i.

    γ is a scalar (a vector γ would break convexity), δ a vector of length D (or a scalar), ε > 0.
    The neuron energy is :math:`-D\gamma\varepsilon/\sqrt{\mathrm{var}+\varepsilon}`: O(ε), which is why
    the Energy Transformer drops it (eq. 3.19).
    """

    gamma: Float[Array, ""]
    delta: Float[Array, "..."]
    eps: float = eqx.field(static=True)
    axis: int = eqx.field(static=True)

    def __init__(self, gamma: float | Array = 1.0, delta=0.0, eps: float = 1e-5, axis: int = -1):
        self.gamma = _parameter("gamma", gamma)
        delta = as_array("delta", delta, ndim=(0, 1))
        check_finite("delta", delta)
        check_fits_float("delta", delta, jnp.float32)
        self.delta = jnp.asarray(delta, dtype=jnp.float32)
        self.eps = check_positive("eps", eps)
        self.axis = check_int("axis", axis)

    def _std(self, x):
        centred = x - jnp.mean(x, axis=self.axis, keepdims=True)
        return centred, jnp.sqrt(jnp.mean(centred**2, axis=self.axis, keepdims=True) + self.eps)

    def _delta(self, x):
        # delta broadcasts along `axis` (a vector of length D); move it there if axis is not last.
        if jnp.ndim(self.delta) == 0:
            return self.delta
        return jnp.moveaxis(jnp.broadcast_to(self.delta, jnp.moveaxis(x, self.axis, -1).shape), -1, self.axis)

    def __call__(self, x):
        x = _state(x)
        _, std = self._std(x)
        dim = x.shape[self.axis]
        return dim * self.gamma * jnp.sum(std) + jnp.sum(self._delta(x) * x)

    def activation(self, x):
        x = _state(x)
        centred, std = self._std(x)
        return self.gamma * centred / std + self._delta(x)

    def dual(self, x):
        x = _state(x)
        _, std = self._std(x)
        dim = x.shape[self.axis]
        return -dim * self.gamma * self.eps * jnp.sum(1.0 / std)

    @property
    def name(self):
        return "layernorm"


class SphericalNorm(Lagrangian):
    r""":math:`\mathcal{L} = \gamma\sqrt{\|x\|^2+\varepsilon}` along ``axis``: the activation
    :math:`\gamma x/\sqrt{\|x\|^2+\varepsilon}` lies (almost) on the sphere of radius γ. Neuron energy
    :math:`-\gamma\varepsilon/\sqrt{\|x\|^2+\varepsilon}`."""

    gamma: Float[Array, ""]
    eps: float = eqx.field(static=True)
    axis: int = eqx.field(static=True)

    def __init__(self, gamma: float | Array = 1.0, eps: float = 1e-5, axis: int = -1):
        self.gamma = _parameter("gamma", gamma)
        self.eps = check_positive("eps", eps)
        self.axis = check_int("axis", axis)

    def _norm(self, x):
        return jnp.sqrt(jnp.sum(x**2, axis=self.axis, keepdims=True) + self.eps)

    def __call__(self, x):
        x = _state(x)
        return self.gamma * jnp.sum(self._norm(x))

    def activation(self, x):
        x = _state(x)
        return self.gamma * x / self._norm(x)

    def dual(self, x):
        x = _state(x)
        return -self.gamma * self.eps * jnp.sum(1.0 / self._norm(x))

    @property
    def name(self):
        return "spherical"


def neuron_energy(lagrangian: Lagrangian, xhat: Float[Array, "..."], x: Float[Array, "..."]) -> Float[Array, ""]:
    r"""Neuron energy :math:`E(\hat x) = \langle x,\hat x\rangle - \mathcal{L}(x)` with a custom derivative.

    ``xhat`` must be ``lagrangian.activation(x)``: HAMUX keeps both the state and the activation, so
    the inverse activation is never needed. Differentiation rules (the Legendre trick):

    * with respect to ``xhat``: exactly ``x`` (eq. 3.4), no differentiation through the activation;
    * with respect to ``x``: zero, because on :math:`\hat x = \nabla\mathcal{L}(x)` the two terms cancel;
    * with respect to the Lagrangian's parameters θ: :math:`-\partial\mathcal{L}/\partial\theta` at fixed x
      (the envelope theorem), so β, γ, δ can still be trained.

    ``xhat`` and ``x`` must be arrays of the same shape (checked on the static shapes, so also
    under ``jit``); a mismatch raises ``ValueError`` rather than broadcasting. On concrete values
    both must be finite (``xhat`` carries the gradient: a NaN there would corrupt it silently).
    """
    if not isinstance(lagrangian, Lagrangian):
        raise TypeError(f"lagrangian must be an amtutor.lagrangians.Lagrangian, got {type(lagrangian).__name__}")
    if xhat is None:
        raise TypeError("xhat must be an array, the activation lagrangian.activation(x), got None")
    xhat = as_float_array("xhat", xhat)
    x = as_float_array("x", x)
    if jnp.shape(xhat) != jnp.shape(x):
        raise ValueError(
            f"xhat and x must have the same shape (xhat = lagrangian.activation(x)), "
            f"got xhat of shape {tuple(jnp.shape(xhat))} and x of shape {tuple(jnp.shape(x))}")
    return _neuron_energy(lagrangian, xhat, x)


@jax.custom_jvp
def _neuron_energy(lagrangian, xhat, x):
    return lagrangian.dual(x)


@_neuron_energy.defjvp
def _neuron_energy_jvp(primals, tangents):
    lagrangian, xhat, x = primals
    d_lagrangian, d_xhat, _ = tangents
    value = lagrangian.dual(x)
    _, d_params = jax.jvp(lambda lag: lag(x), (lagrangian,), (d_lagrangian,))
    return value, jnp.sum(x * d_xhat) - d_params
