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

This module is a thin builder: the model *is* the HAMUX graph
``Graph({"x": Layer(D, Tanh(beta), tau=tau)}, {"memories": MemorySynapse(memories, F)})``
(:func:`tanh_memory`), and its dynamics are the library's one descent loop,
:func:`amtutor.hamux.descend` (Euler) and :func:`amtutor.hamux.solve` (adaptive ODE solver). The
separation F is a separation of :mod:`amtutor.binary` (``quadratic()``, ``power(n)``,
``rectified_power(n)``, ``log_sum_exp(beta)``, ...), evaluated on the real-valued overlaps.

Functions take one state ``(D,)``; use ``jax.vmap`` at the call site for a batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from . import binary, hamux
from .lagrangians import Tanh
from .validation import (as_array, check_finite, check_fits_float, check_int, check_positive,
                         check_separation)

__all__ = [
    "tanh_memory",
    "tanh_energy",
    "input_current",
    "tanh_descent",
    "tanh_ode",
]

LAYER = "x"  # the name of the one neuron layer in the graph


def _check_real_array(name, x, ndim=None):
    x = as_array(name, x, ndim=ndim)
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    check_finite(name, x)
    check_fits_float(name, x, jnp.float32)  # float64 1e39 is finite, float32 1e39 is inf
    return jnp.asarray(x, dtype=jnp.float32)


def _check_state(name, x, dim):
    x = _check_real_array(name, x)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one state of shape ({dim},), got shape {tuple(x.shape)}; "
                         "for a batch, jax.vmap over it")
    if x.shape[0] != dim:
        raise ValueError(f"{name} has {x.shape[0]} neurons but memories have D = {dim}: shapes must agree "
                         f"(got {name} shape {tuple(x.shape)})")
    return x


def tanh_memory(memories, separation: binary.Separation, *, beta: float, tau: float = 1.0) -> hamux.Graph:
    r"""The tanh DenseAM as a HAMUX graph: one layer ``"x"`` of D tanh neurons (gain ``beta``, time
    constant ``tau``) with the memories on a self-synapse :math:`-\sum_\mu F(\xi^\mu\cdot\hat x)`.

    Args:
        memories: real array ``(K, D)`` (±1 patterns in the tutorial; the model itself takes any
            finite real memories, so they are not required to be ±1).
        separation: the F of the synapse, e.g. ``binary.power(3)``.
        beta: gain of the tanh neurons (> 0).
        tau: time constant (> 0).
    """
    check_separation("separation", separation)
    memories = _check_real_array("memories", memories, ndim=2)
    beta = check_positive("beta", beta)
    tau = check_positive("tau", tau)
    dim = memories.shape[1]
    return hamux.Graph(
        layers={LAYER: hamux.Layer(dim, Tanh(beta), tau=tau)},
        synapses={"memories": hamux.MemorySynapse(memories, separation)},
        connections=[("memories", LAYER)],
    )


def tanh_energy(memories, x, separation: binary.Separation, *, beta: float) -> Float[Array, ""]:
    r"""Total energy (3.8) of the tanh DenseAM at the internal state ``x`` (shape ``(D,)``)."""
    graph = tanh_memory(memories, separation, beta=beta)
    x = _check_state("x", x, graph.layers[LAYER].shape[0])
    return graph.energy({LAYER: x})


def input_current(memories, activations, separation: binary.Separation) -> Float[Array, " D"]:
    r"""Input current :math:`\mathcal{I} = -\partial E/\partial\hat x = \sum_\mu\xi^\mu f(\xi^\mu\cdot\hat x)`.

    Taken by autodiff of the synapse energy. ``activations`` has shape ``(D,)``.
    """
    check_separation("separation", separation)
    memories = _check_real_array("memories", memories, ndim=2)
    activations = _check_state("activations", activations, memories.shape[1])
    return -jax.grad(hamux.MemorySynapse(memories, separation))(activations)


def tanh_descent(memories, x0, separation: binary.Separation, *, beta: float, steps: int = 50,
                 dt: float = 1.0, tau: float = 1.0) -> hamux.Trajectory:
    r"""Euler integration of the tanh DenseAM dynamics (3.9), :math:`x \leftarrow x + \tfrac{dt}{\tau}(\mathcal{I}(\hat x) - x)`.

    With the defaults ``dt = tau = 1`` each step is eq. (3.11),
    :math:`x^{t+1} = \sum_\mu\xi^\mu f(\xi^\mu\cdot\hat x^t)`: a *synchronous* update, which, like
    the discrete one, may oscillate. Smaller ``dt/tau`` follows the continuous flow, along which the
    energy never increases. This is :func:`amtutor.hamux.descend` on :func:`tanh_memory`.

    Args:
        memories: real array ``(K, D)``.
        x0: initial internal state ``(D,)`` (``jax.vmap`` for a batch).
        separation: the F of the synapse, e.g. ``binary.quadratic()``.
        beta: tanh gain.
        steps: number of Euler steps (≥ 1).
        dt, tau: step size and time constant, ``0 < dt/tau <= 1`` (a larger step overshoots the decay).

    Returns:
        A :class:`amtutor.hamux.Trajectory` with ``steps + 1`` recorded states (layer ``"x"``);
        the activations are ``jnp.tanh(beta * run.final["x"])``.
    """
    graph = tanh_memory(memories, separation, beta=beta, tau=tau)
    x0 = _check_state("x0", x0, graph.layers[LAYER].shape[0])
    steps = check_int("steps", steps, minimum=1)
    dt = check_positive("dt", dt)
    rate = dt / tau
    if not isinstance(rate, jax.core.Tracer) and float(rate) > 1.0:
        raise ValueError(f"dt/tau must be <= 1 (a larger step overshoots the decay -x), got {float(rate)}")
    return hamux.descend(graph, {LAYER: x0}, dt=dt, steps=steps)


def tanh_ode(memories, x0, separation: binary.Separation, *, beta: float, t1: float = 20.0, tau: float = 1.0,
             saves: int = 101, rtol: float = 1e-5, atol: float = 1e-5, max_steps: int = 100_000) -> hamux.Trajectory:
    r"""The continuous-time dynamics :math:`\tau\dot x = \mathcal{I}(\hat x) - x` (3.9), solved by
    :func:`amtutor.hamux.solve` (diffrax Tsit5 with adaptive steps) from t = 0 to ``t1``.

    Use it to see the flow itself (energy non-increasing up to the solver tolerance) rather than
    a particular discretisation.

    Args:
        memories, x0, separation, beta: as in :func:`tanh_descent`.
        t1: final time (> 0); tau: time constant.
        saves: number of equally spaced times (0 and t1 included) at which the state is recorded.
        rtol, atol: tolerances of the step-size controller.
        max_steps: solver step budget (exhausting it raises a ValueError that says so).

    Returns:
        A :class:`amtutor.hamux.Trajectory` with ``saves`` recorded times.
    """
    graph = tanh_memory(memories, separation, beta=beta, tau=tau)
    x0 = _check_state("x0", x0, graph.layers[LAYER].shape[0])
    t1 = check_positive("t1", t1)
    return hamux.solve(graph, {LAYER: x0}, t1=t1, saves=saves, rtol=rtol, atol=atol, max_steps=max_steps)
