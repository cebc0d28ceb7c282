r"""Continuous dense associative memory with tanh neurons (Exercise 3.1 of the tutorial).

Each neuron has an internal state :math:`x_i` and an activation :math:`\hat x_i = \tanh(\beta x_i)`,
the gradient of the convex Lagrangian :math:`\mathcal{L}(x) = \tfrac1\beta\sum_i\log\cosh(\beta x_i)`
(eq. 3.6). With the memories :math:`\xi^\mu` (rows of ``memories``, shape ``(K, D)``) on a
self-synapse :math:`-\sum_\mu F(\xi^\mu\cdot\hat x)` the total energy is (eq. 3.8)

.. math:: E(x) = \sum_i \hat x_i x_i - \mathcal{L}(x) - \sum_\mu F\Big(\sum_j \xi^\mu_j \hat x_j\Big),

and the dynamics (eq. 3.9) are :math:`\tau\dot x = -\partial E/\partial\hat x
= \sum_\mu\xi^\mu f(\xi^\mu\cdot\hat x) - x` with f = F'. The energy never increases along them
(:math:`dE/dt = -\tau\,\dot x^\top\nabla^2\mathcal{L}\,\dot x \le 0`, eq. 3.5). An Euler step with
τ = dt = 1 gives :math:`x^{t+1} = \sum_\mu\xi^\mu f(\xi^\mu\cdot\hat x^t)` (eqs. 3.10–3.11); as
β → ∞, :math:`\hat x \to \mathrm{sign}(x)`, the neuron energy vanishes and this becomes the
synchronous discrete update :func:`amtutor.binary.sync_update`.

The neurons are :class:`amtutor.lagrangians.Tanh`. The synapse term reuses :class:`amtutor.binary.Separation` (``quadratic()``, ``power(n)``,
``rectified_power(n)``, ``log_sum_exp(beta)``, ...), evaluated on the real-valued overlaps
:math:`\xi^\mu\cdot\hat x`. The input current :math:`-\partial E/\partial\hat x` is taken by
``jax.grad`` of that same energy, so energy and dynamics cannot disagree.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from . import binary
from .lagrangians import Tanh
from .validation import as_array, check_finite, check_int, check_positive

__all__ = [
    "tanh_energy",
    "input_current",
    "Descent",
    "tanh_descent",
    "tanh_ode",
]


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _check_real_array(name, x, ndim=None):
    x = as_array(name, x, ndim=ndim)
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    check_finite(name, x)
    return jnp.asarray(x, dtype=jnp.float32)


def _check_inputs(memories, x, separation, beta):
    binary._check_separation(separation)
    memories = _check_real_array("memories", memories, ndim=2)
    x = _check_real_array("x", x, ndim=(1, 2))
    if x.shape[-1] != memories.shape[1]:
        raise ValueError(
            f"x has {x.shape[-1]} neurons but memories have D = {memories.shape[1]}: shapes must "
            f"agree (got x shape {tuple(x.shape)})"
        )
    beta = check_positive("beta", beta)
    return memories, x, beta


# --------------------------------------------------------------------------------------------
# Energy and current (single state; batches are vmap-ed)
# --------------------------------------------------------------------------------------------


def _synapse_energy(memories, activations, separation):
    return separation.energy_from_score(separation.score(memories @ activations), memories.shape[1])


def _energy_one(memories, x, separation, beta):
    neurons = Tanh(beta)  # L = (1/β) Σ log cosh(βx), eq. (3.6)
    # dual(x) = Σ x̂ x − L(x) in a closed form that does not cancel at large β|x|.
    return neurons.dual(x) + _synapse_energy(memories, neurons.activation(x), separation)


def _current_one(memories, activations, separation):
    return -jax.grad(_synapse_energy, argnums=1)(memories, activations, separation)


@partial(jax.jit, static_argnums=2)
def _energy(memories, x, separation, beta):
    if x.ndim == 1:
        return _energy_one(memories, x, separation, beta)
    return jax.vmap(_energy_one, in_axes=(None, 0, None, None))(memories, x, separation, beta)


def tanh_energy(memories, x, separation: binary.Separation, *, beta: float) -> Float[Array, "..."]:
    r"""Total energy (3.8) of the tanh DenseAM at internal state ``x``.

    Args:
        memories: real array ``(K, D)`` (±1 patterns in the tutorial).
        x: internal states ``(D,)`` or a batch ``(B, D)``.
        separation: the F of the synapse, e.g. ``binary.power(3)``.
        beta: gain of the tanh neurons (> 0).

    Returns:
        A scalar, or ``(B,)`` for a batch.
    """
    memories, x, beta = _check_inputs(memories, x, separation, beta)
    return _energy(memories, x, separation, beta)


def input_current(memories, activations, separation: binary.Separation) -> Float[Array, "... D"]:
    r"""Input current :math:`\mathcal{I} = -\partial E/\partial\hat x = \sum_\mu\xi^\mu f(\xi^\mu\cdot\hat x)`.

    Taken by autodiff of the synapse energy. ``activations`` is ``(D,)`` or ``(B, D)``.
    """
    binary._check_separation(separation)
    memories = _check_real_array("memories", memories, ndim=2)
    activations = _check_real_array("activations", activations, ndim=(1, 2))
    if activations.shape[-1] != memories.shape[1]:
        raise ValueError(
            f"activations have {activations.shape[-1]} neurons but memories have D = {memories.shape[1]}"
        )
    if activations.ndim == 1:
        return _current_one(memories, activations, separation)
    return jax.vmap(_current_one, in_axes=(None, 0, None))(memories, activations, separation)


# --------------------------------------------------------------------------------------------
# Dynamics
# --------------------------------------------------------------------------------------------


class Descent(NamedTuple):
    """Result of :func:`tanh_descent` or :func:`tanh_ode` (leading ``B`` axis for a batch).

    Attributes:
        x: final internal state ``(D,)``.
        activations: final activations :math:`\\tanh(\\beta x)`, ``(D,)``.
        energies: energy at each recorded time, ``(T,)``; ``energies[0]`` is that of ``x0``.
        trajectory: recorded activations, ``(T, D)``, starting with those of ``x0``.
        times: the recorded times, ``(T,)`` (for Euler: step number × dt).
    """

    x: jax.Array
    activations: jax.Array
    energies: jax.Array
    trajectory: jax.Array
    times: jax.Array


@partial(jax.jit, static_argnames=("separation", "steps"))
def _euler(memories, x0, separation, beta, rate, steps):
    def step(x, _):
        current = _current_one(memories, jnp.tanh(beta * x), separation)
        x = x + rate * (current - x)  # eq. (3.10): x <- x + (dt/tau) (I - x)
        return x, (_energy_one(memories, x, separation, beta), jnp.tanh(beta * x))

    def one(x_init):
        x, (energies, trajectory) = jax.lax.scan(step, x_init, None, length=steps)
        e0 = _energy_one(memories, x_init, separation, beta)
        return (
            x,
            jnp.tanh(beta * x),
            jnp.concatenate([e0[None], energies]),
            jnp.concatenate([jnp.tanh(beta * x_init)[None], trajectory]),
        )

    return jax.vmap(one)(x0)


def tanh_descent(
    memories,
    x0,
    separation: binary.Separation,
    *,
    beta: float,
    steps: int = 50,
    dt: float = 1.0,
    tau: float = 1.0,
) -> Descent:
    r"""Euler integration of the tanh DenseAM dynamics (3.9), :math:`x \leftarrow x + \tfrac{dt}{\tau}(\mathcal{I}(\hat x) - x)`.

    With the defaults ``dt = tau = 1`` each step is eq. (3.11),
    :math:`x^{t+1} = \sum_\mu\xi^\mu f(\xi^\mu\cdot\hat x^t)`: a *synchronous* update, which, like
    the discrete one, may oscillate. Smaller ``dt/tau`` follows the continuous flow, along which the
    energy never increases. Runs as one ``lax.scan``; batches of starting states are ``vmap``-ed.

    Args:
        memories: real array ``(K, D)``.
        x0: initial internal state ``(D,)`` or batch ``(B, D)``.
        separation: the F of the synapse, e.g. ``binary.quadratic()``.
        beta: tanh gain.
        steps: number of Euler steps.
        dt, tau: step size and time constant (only ``dt/tau`` matters), ``0 < dt/tau <= 1``.

    Returns:
        A :class:`Descent` with ``steps + 1`` recorded times.
    """
    memories, x0, beta = _check_inputs(memories, x0, separation, beta)
    steps = check_int("steps", steps, minimum=1)
    dt = check_positive("dt", dt)
    tau = check_positive("tau", tau)
    rate = dt / tau
    if rate > 1.0:
        raise ValueError(f"dt/tau must be <= 1 (a larger step overshoots the decay -x), got {rate}")
    batch = x0[None] if x0.ndim == 1 else x0
    x, act, energies, trajectory = _euler(memories, batch, separation, beta, rate, steps)
    times = jnp.arange(steps + 1, dtype=jnp.float32) * dt
    if x0.ndim == 1:
        return Descent(x[0], act[0], energies[0], trajectory[0], times)
    return Descent(x, act, energies, trajectory, times)


@partial(jax.jit, static_argnames=("separation", "saves", "max_steps"))
def _ode(memories, x0, separation, beta, t1, tau, rtol, atol, saves, max_steps):
    import diffrax

    times = jnp.linspace(0.0, t1, saves)

    def vector_field(t, x, args):
        return (_current_one(memories, jnp.tanh(beta * x), separation) - x) / tau

    def solve(x_init):
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(vector_field),
            diffrax.Tsit5(),
            t0=0.0,
            t1=t1,
            dt0=None,
            y0=x_init,
            saveat=diffrax.SaveAt(ts=times),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=max_steps,
        )
        xs = solution.ys
        energies = jax.vmap(lambda x: _energy_one(memories, x, separation, beta))(xs)
        return xs[-1], jnp.tanh(beta * xs[-1]), energies, jnp.tanh(beta * xs)

    return jax.vmap(solve)(x0)


def tanh_ode(
    memories,
    x0,
    separation: binary.Separation,
    *,
    beta: float,
    t1: float = 20.0,
    tau: float = 1.0,
    saves: int = 101,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 100_000,
) -> Descent:
    r"""The continuous-time dynamics :math:`\tau\dot x = \mathcal{I}(\hat x) - x` (3.9), solved by
    diffrax (Tsit5 with adaptive steps) from t = 0 to ``t1``.

    Use it to see the flow itself (energy non-increasing up to the solver tolerance) rather than
    a particular discretisation.

    Args:
        memories, x0, separation, beta: as in :func:`tanh_descent`.
        t1: final time; tau: time constant.
        saves: number of equally spaced times (0 and t1 included) at which the state is recorded.
        rtol, atol: tolerances of the step-size controller.
        max_steps: solver step budget (an error is raised if it is exhausted).

    Returns:
        A :class:`Descent` with ``saves`` recorded times.
    """
    memories, x0, beta = _check_inputs(memories, x0, separation, beta)
    t1 = check_positive("t1", t1)
    tau = check_positive("tau", tau)
    saves = check_int("saves", saves, minimum=2)
    rtol = check_positive("rtol", rtol)
    atol = check_positive("atol", atol)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    batch = x0[None] if x0.ndim == 1 else x0
    x, act, energies, trajectory = _ode(memories, batch, separation, beta, t1, tau, rtol, atol, saves, max_steps)
    times = jnp.linspace(0.0, t1, saves)
    if x0.ndim == 1:
        return Descent(x[0], act[0], energies[0], trajectory[0], times)
    return Descent(x, act, energies, trajectory, times)
