r"""Build any associative memory from neuron layers and hypersynapses (HAMUX; chapter 3 of the tutorial).

An associative memory is a hypergraph:

* **layers** (nodes): a :class:`Layer` is a shape, a convex Lagrangian from :mod:`amtutor.lagrangians`
  and a time constant τ. Its state ``x`` evolves; its activation ``x̂ = ∇L(x)`` is what others see.
* **hypersynapses** (hyperedges): a :class:`Synapse` is a scalar energy of the activations of the
  layers it joins, any number of them, with no direction: every joined layer receives
  :math:`-\nabla_{\hat x}E_\text{synapse}`.

The :class:`Graph` energy is the sum of its parts (eq. 3.1),

.. math:: E = \sum_\ell\big[\langle x_\ell,\hat x_\ell\rangle-\mathcal{L}_\ell(x_\ell)\big]+\sum_s E_s(\hat x_{s_1},\hat x_{s_2},\dots),

and the dynamics descend it (eq. 3.2): :math:`\tau_\ell\,\dot x_\ell=-\partial E/\partial\hat x_\ell=\mathcal{I}_\ell-x_\ell`
with the input current :math:`\mathcal{I}_\ell=-\sum_{s\ni\ell}\nabla_{\hat x_\ell}E_s`. Because each
Lagrangian is convex, :math:`dE/dt=-\sum_\ell\tau_\ell\dot x_\ell^\top\nabla^2\mathcal{L}_\ell\,\dot x_\ell\le0` (eq. 3.5).

States are plain dicts ``{layer name: array}``; graphs, layers, synapses and Lagrangians are
:mod:`equinox` modules, i.e. pytrees whose arrays (weights, β, γ, δ, τ) are leaves: everything works
with ``jax.jit``, ``jax.grad`` (train the weights) and ``jax.vmap`` (batches of states). Functions take
one example; ``vmap`` at the call site for a batch::

    graph = Graph(
        layers={"v": Layer(64, Tanh(beta=1.0)), "h": Layer(20, Softmax(beta=2.0))},
        synapses={"W": DenseSynapse(W)},             # W has shape (64, 20)
        connections=[("W", "v", "h")],               # synapse name, then the layers it joins
    )
    run = descend(graph, graph.init(), dt=0.1, steps=200)   # Euler steps (lax.scan)
    sol = solve(graph, graph.init(), t1=20.0)               # adaptive ODE solver (diffrax)

Ready-made synapses: :class:`DenseSynapse` (−x̂ᵀWŷ), :class:`BiasSynapse` (−b·x̂),
:class:`MemorySynapse` (the DenseAM energy −Σ_μ F(ξ_μ·x̂)), :class:`AttentionSynapse` (the Energy
Transformer's log-sum-exp attention), :class:`ConvSynapse` (−⟨ŷ, W ⋆ x̂⟩) and :class:`FunctionSynapse`
(any function of the activations).
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from jaxtyping import Array, Float

from .lagrangians import Lagrangian, neuron_energy
from .validation import as_array, check_finite, check_int, check_positive

__all__ = [
    "Layer",
    "Synapse",
    "DenseSynapse",
    "BiasSynapse",
    "MemorySynapse",
    "AttentionSynapse",
    "ConvSynapse",
    "FunctionSynapse",
    "Graph",
    "Trajectory",
    "descend",
    "solve",
]

States = dict  # {layer name: array of the layer's shape}


# --------------------------------------------------------------------------------------------
# Neuron layers
# --------------------------------------------------------------------------------------------


class Layer(eqx.Module):
    """A neuron layer: the ``shape`` of its state, its convex ``lagrangian`` and time constant ``tau``."""

    shape: tuple[int, ...] = eqx.field(static=True)
    lagrangian: Lagrangian
    tau: Float[Array, ""]

    def __init__(self, shape: int | Sequence[int], lagrangian: Lagrangian, *, tau: float = 1.0):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        for n in shape:
            check_int("shape", n, minimum=1)
        if not isinstance(lagrangian, Lagrangian):
            raise TypeError(
                "lagrangian must be an amtutor.lagrangians.Lagrangian such as Tanh(beta=1.0) or "
                f"Softmax(beta=2.0), got {type(lagrangian).__name__}"
            )
        self.shape = tuple(int(n) for n in shape)
        self.lagrangian = lagrangian
        # an array leaf: trainable, and a new value does not recompile the descent
        self.tau = jnp.asarray(check_positive("tau", tau), dtype=jnp.float32)

    def activation(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """x̂ = ∇L(x)."""
        return self.lagrangian.activation(x)

    def energy(self, xhat: Float[Array, "*shape"], x: Float[Array, "*shape"]) -> Float[Array, ""]:
        """Neuron energy ⟨x, x̂⟩ − L(x); its gradient with respect to ``xhat`` is ``x`` (custom JVP)."""
        return neuron_energy(self.lagrangian, xhat, x)


# --------------------------------------------------------------------------------------------
# Hypersynapses
# --------------------------------------------------------------------------------------------


class Synapse(eqx.Module):
    """A hypersynapse: ``synapse(*xhats)`` is a scalar energy of the activations it joins.

    Subclass it with your parameters as fields and an ``__call__``. ``arity`` is how many layers it
    joins (``None``: any). ``check(shapes, names)`` raises a ``ValueError`` naming the layer when the
    shapes do not fit; the default evaluates the energy abstractly (``jax.eval_shape``).
    """

    arity = None  # class attribute, not a pytree field

    def __call__(self, *xhats) -> Float[Array, ""]:
        raise NotImplementedError

    def check(self, shapes: tuple[tuple[int, ...], ...], names: tuple[str, ...]) -> None:
        dummies = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
        try:
            out = jax.eval_shape(self, *dummies)
        except Exception as err:  # report which layers the synapse could not take
            joined = ", ".join(f"{n!r} {s}" for n, s in zip(names, shapes))
            raise ValueError(f"cannot evaluate the energy on layers {joined}: {err}") from err
        if out.shape != ():
            raise ValueError(f"energy must be a scalar, got shape {out.shape}")


def _weights(name, w, ndim=None):
    w = as_array(name, w, ndim=ndim)
    check_finite(name, w)
    return jnp.asarray(w, dtype=jnp.float32)


def _shape_error(what: str, layer: str, want, got) -> ValueError:
    return ValueError(f"{what} needs layer {layer!r} to have shape {tuple(want)}, but {layer!r} has shape {tuple(got)}")


class DenseSynapse(Synapse):
    r"""Dense (linear) hypersynapse :math:`E = -\hat x^\top W\hat y` between two layers.

    ``W`` has shape ``x.shape + y.shape``. Its gradient is a dense layer in both directions:
    :math:`\mathcal{I}_y = W^\top\hat x` and :math:`\mathcal{I}_x = W\hat y`. Joining a layer to itself
    (``("W", "x", "x")``) gives the classical Hopfield energy :math:`-\hat x^\top W\hat x`.
    """

    W: Float[Array, "..."]
    arity = 2

    def __init__(self, W):
        self.W = _weights("W", W)
        if self.W.ndim < 2:
            raise ValueError(f"W must have at least 2 dimensions (x.shape + y.shape), got shape {self.W.shape}")

    def __call__(self, xhat, yhat):
        return -jnp.tensordot(xhat, jnp.tensordot(self.W, yhat, axes=yhat.ndim), axes=xhat.ndim)

    def check(self, shapes, names):
        (sx, sy), (nx, ny) = shapes, names
        if self.W.shape[: len(sx)] != sx:
            raise _shape_error(f"weights W of shape {self.W.shape}", nx, self.W.shape[: len(sx)], sx)
        if self.W.shape[len(sx):] != sy:
            raise _shape_error(f"weights W of shape {self.W.shape}", ny, self.W.shape[len(sx):], sy)


class BiasSynapse(Synapse):
    r"""A constant input current ``b`` into one layer: :math:`E = -\langle b,\hat x\rangle`."""

    b: Float[Array, "..."]
    arity = 1

    def __init__(self, b):
        self.b = _weights("b", b)

    def __call__(self, xhat):
        return -jnp.sum(self.b * xhat)

    def check(self, shapes, names):
        if self.b.shape != shapes[0]:
            raise _shape_error(f"bias b of shape {self.b.shape}", names[0], self.b.shape, shapes[0])


class MemorySynapse(Synapse):
    r"""The Dense Associative Memory energy on one layer (eq. 3.7): :math:`E = -\sum_\mu F(\xi_\mu\cdot\hat x)`.

    Args:
        memories: ``(K, D)``; the layer has shape ``(D,)`` or ``(N, D)`` (N tokens each attend to all
            memories, as in the Energy Transformer's Hopfield module, eq. 3.17).
        separation: either a :class:`~amtutor.lagrangians.Lagrangian` applied to the overlaps
            ``m = Ξ x̂`` (``Identity()`` gives ½m², the classical Hopfield network; ``RectifiedPower(n)``
            the polynomial DenseAM; ``Softmax(beta)`` the log-sum-exp energy of the modern Hopfield
            network), or a scalar function F applied to each overlap and summed.

    A MemorySynapse is what remains of a two-layer graph (visible ↔ hidden, hidden Lagrangian =
    ``separation``, dense weights Ξᵀ) when the hidden layer is fast and sits at its equilibrium.
    """

    memories: Float[Array, "K D"]
    separation: Lagrangian | Callable
    arity = 1

    def __init__(self, memories, separation: Lagrangian | Callable):
        self.memories = _weights("memories", memories, ndim=2)
        if self.memories.shape[0] == 0:
            raise ValueError("memories is empty: store at least one pattern (shape (K, D) with K >= 1)")
        if not (isinstance(separation, Lagrangian) or callable(separation)):
            raise TypeError(f"separation must be a Lagrangian or a function, got {type(separation).__name__}")
        self.separation = separation if isinstance(separation, Lagrangian) else _Elementwise(separation)

    def __call__(self, xhat):
        overlaps = xhat @ self.memories.T  # (..., K)
        return -self.separation(overlaps)

    def check(self, shapes, names):
        (s,), (n,) = shapes, names
        if len(s) not in (1, 2) or s[-1] != self.memories.shape[1]:
            want = (self.memories.shape[1],)
            raise ValueError(
                f"memories of shape {self.memories.shape} need layer {n!r} to have shape {want} "
                f"(or (N, {want[0]}) for N tokens), but {n!r} has shape {tuple(s)}"
            )


class _Elementwise(eqx.Module):
    """F applied to every overlap and summed (the separation of a MemorySynapse given as a function)."""

    F: Callable = eqx.field(static=True)

    def __call__(self, m):
        return jnp.sum(self.F(m))


class AttentionSynapse(Synapse):
    r"""Energy attention on a layer of N tokens (the Energy Transformer, eqs. 3.15–3.16):

    .. math:: E = -\frac1\beta\sum_{h}\sum_{C}\log\sum_{B\ne C}\exp(\beta A_{hBC}),\quad
              A_{hBC} = \sum_\alpha K_{\alpha hB}Q_{\alpha hC},\ K = W^K\hat x,\ Q = W^Q\hat x.

    ``Wq`` and ``Wk`` have shape ``(H, Y, D)`` (heads, head dimension, token dimension); the layer has
    shape ``(N, D)``. ``exclude_self=True`` drops B = C from each sum (needs N ≥ 2). Stable for any β.
    """

    Wq: Float[Array, "H Y D"]
    Wk: Float[Array, "H Y D"]
    beta: Float[Array, ""]
    exclude_self: bool = eqx.field(static=True)
    arity = 1

    def __init__(self, Wq, Wk, *, beta: float = 1.0, exclude_self: bool = True):
        self.Wq = _weights("Wq", Wq, ndim=3)
        self.Wk = _weights("Wk", Wk, ndim=3)
        if self.Wq.shape != self.Wk.shape:
            raise ValueError(f"Wq and Wk must have the same shape (H, Y, D), got {self.Wq.shape} and {self.Wk.shape}")
        self.beta = jnp.asarray(check_positive("beta", beta), dtype=jnp.float32)
        self.exclude_self = bool(exclude_self)

    def __call__(self, xhat):
        keys = jnp.einsum("hyd,bd->hyb", self.Wk, xhat)
        queries = jnp.einsum("hyd,cd->hyc", self.Wq, xhat)
        scores = self.beta * jnp.einsum("hyb,hyc->hbc", keys, queries)  # (H, N_B, N_C)
        if self.exclude_self:
            n = xhat.shape[0]
            scores = jnp.where(jnp.eye(n, dtype=bool)[None], -jnp.inf, scores)
        return -jnp.sum(logsumexp(scores, axis=1)) / self.beta

    def check(self, shapes, names):
        (s,), (n,) = shapes, names
        d = self.Wq.shape[2]
        if len(s) != 2 or s[1] != d:
            raise ValueError(
                f"attention weights of shape {self.Wq.shape} need layer {n!r} to have shape (N, {d}) "
                f"(N tokens of dimension {d}), but {n!r} has shape {tuple(s)}"
            )
        if self.exclude_self and s[0] < 2:
            raise ValueError(f"attention with exclude_self=True needs at least 2 tokens in layer {n!r}, got {s[0]}")


class ConvSynapse(Synapse):
    r"""Convolutional hypersynapse :math:`E = -\langle\hat y, W\star\hat x\rangle` between images.

    ``W`` has shape ``(C_out, C_in, h, w)``; layer x has shape ``(H, W, C_in)`` and layer y the shape of
    the convolution's output ``(H', W', C_out)``. The current into y is the convolution of x̂; the
    current into x is the transposed convolution of ŷ (autodiff gives both).
    """

    W: Float[Array, "Cout Cin h w"]
    strides: tuple[int, int] = eqx.field(static=True)
    padding: str = eqx.field(static=True)
    arity = 2

    def __init__(self, W, *, strides: tuple[int, int] = (1, 1), padding: str = "SAME"):
        self.W = _weights("W", W, ndim=4)
        self.strides = tuple(check_int("strides", s, minimum=1) for s in strides)
        if padding not in ("SAME", "VALID"):
            raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
        self.padding = padding

    def convolve(self, xhat: Float[Array, "H W Cin"]) -> Float[Array, "H2 W2 Cout"]:
        out = jax.lax.conv_general_dilated(
            xhat[None], self.W, window_strides=self.strides, padding=self.padding,
            dimension_numbers=("NHWC", "OIHW", "NHWC"),
        )
        return out[0]

    def __call__(self, xhat, yhat):
        return -jnp.sum(yhat * self.convolve(xhat))

    def check(self, shapes, names):
        (sx, sy), (nx, ny) = shapes, names
        if len(sx) != 3 or sx[2] != self.W.shape[1]:
            raise ValueError(
                f"conv weights of shape {self.W.shape} need layer {nx!r} to have shape (H, W, {self.W.shape[1]}), "
                f"but {nx!r} has shape {tuple(sx)}"
            )
        out = jax.eval_shape(self.convolve, jax.ShapeDtypeStruct(sx, jnp.float32)).shape
        if tuple(sy) != out:
            raise _shape_error(f"conv weights of shape {self.W.shape} on {nx!r}", ny, out, sy)


class FunctionSynapse(Synapse):
    """Any scalar energy ``fn(*xhats)`` as a hypersynapse (``fn`` is static: put trainable weights in
    a :class:`Synapse` subclass instead)."""

    fn: Callable = eqx.field(static=True)

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise TypeError(f"fn must be a function of the activations, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, *xhats):
        return self.fn(*xhats)


# --------------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------------


class Graph(eqx.Module):
    """Layers joined by hypersynapses; the total energy is the sum of all their energies (eq. 3.1).

    Args:
        layers: ``{name: Layer}``.
        synapses: ``{name: Synapse}``.
        connections: one entry per use of a synapse, ``(synapse name, layer name, layer name, ...)``
            in the order the synapse takes its arguments. The same synapse may be used by several
            connections (shared weights) and a layer may appear twice (a self-connection).

    Raises ``ValueError`` naming the culprit when a connection refers to a missing layer or synapse,
    joins the wrong number of layers, or when a synapse's weights do not fit its layers' shapes.
    """

    layers: dict[str, Layer]
    synapses: dict[str, Synapse]
    connections: tuple[tuple[str, tuple[str, ...]], ...] = eqx.field(static=True)

    def __init__(self, layers: Mapping[str, Layer], synapses: Mapping[str, Synapse], connections):
        if not isinstance(layers, Mapping) or not layers:
            raise TypeError("layers must be a non-empty dict {name: Layer}")
        if not isinstance(synapses, Mapping):
            raise TypeError("synapses must be a dict {name: Synapse}")
        for name, layer in layers.items():
            if not isinstance(name, str) or not isinstance(layer, Layer):
                raise TypeError(f"layers must map names (str) to Layer objects; entry {name!r} is {type(layer).__name__}")
        for name, syn in synapses.items():
            if not isinstance(name, str) or not isinstance(syn, Synapse):
                raise TypeError(f"synapses must map names (str) to Synapse objects; entry {name!r} is {type(syn).__name__}")
        conns = []
        for entry in connections:
            if isinstance(entry, str) or len(entry) < 2 or not all(isinstance(e, str) for e in entry):
                raise ValueError(f"each connection is (synapse name, layer name, ...), got {entry!r}")
            syn_name, layer_names = entry[0], tuple(entry[1:])
            if syn_name not in synapses:
                raise ValueError(f"connection {entry!r} uses synapse {syn_name!r}, which is not in synapses "
                                 f"(known: {sorted(synapses)})")
            for ln in layer_names:
                if ln not in layers:
                    raise ValueError(f"synapse {syn_name!r} connects layer {ln!r}, which is not a layer of the graph "
                                     f"(layers: {sorted(layers)})")
            syn = synapses[syn_name]
            if syn.arity is not None and syn.arity != len(layer_names):
                raise ValueError(f"synapse {syn_name!r} ({type(syn).__name__}) joins {syn.arity} layer(s), "
                                 f"but the connection lists {len(layer_names)}: {layer_names}")
            try:
                syn.check(tuple(layers[ln].shape for ln in layer_names), layer_names)
            except ValueError as err:
                raise ValueError(f"synapse {syn_name!r}: {err}") from None
            conns.append((syn_name, layer_names))
        unused = set(synapses) - {c[0] for c in conns}
        if unused:
            raise ValueError(f"synapses {sorted(unused)} are not used by any connection")
        self.layers = dict(layers)
        self.synapses = dict(synapses)
        self.connections = tuple(conns)

    # ---- states ------------------------------------------------------------------------------

    def init(self, *, key=None, scale: float = 0.1) -> States:
        """Initial states: zeros, or i.i.d. normal times ``scale`` when a PRNG ``key`` is given."""
        if key is None:
            return {n: jnp.zeros(l.shape, jnp.float32) for n, l in self.layers.items()}
        keys = jax.random.split(key, len(self.layers))
        return {n: scale * jax.random.normal(k, l.shape) for k, (n, l) in zip(keys, self.layers.items())}

    def check_states(self, xs, name: str = "xs") -> States:
        """Return ``xs`` as float arrays after checking it has one array per layer, of the layer's shape."""
        if not isinstance(xs, Mapping):
            raise TypeError(f"{name} must be a dict {{layer name: state array}}, got {type(xs).__name__}")
        missing, extra = set(self.layers) - set(xs), set(xs) - set(self.layers)
        if missing or extra:
            raise ValueError(f"{name} must have one state per layer {sorted(self.layers)}; "
                             f"missing {sorted(missing)}, unknown {sorted(extra)}")
        out = {}
        for n, layer in self.layers.items():
            x = as_array(f"state of layer {n!r}", xs[n])
            if tuple(x.shape) != layer.shape:
                raise ValueError(f"state of layer {n!r} has shape {tuple(x.shape)}, but layer {n!r} has shape {layer.shape}")
            check_finite(f"state of layer {n!r}", x)
            out[n] = jnp.asarray(x, dtype=jnp.result_type(float))
        return out

    def _check_clamped(self, clamped) -> tuple[str, ...]:
        clamped = (clamped,) if isinstance(clamped, str) else tuple(clamped)
        for n in clamped:
            if n not in self.layers:
                raise ValueError(f"clamped layer {n!r} is not a layer of the graph (layers: {sorted(self.layers)})")
        return clamped

    # ---- energy ------------------------------------------------------------------------------

    def activations(self, xs: States) -> States:
        """x̂ for every layer."""
        return {n: layer.activation(xs[n]) for n, layer in self.layers.items()}

    def energy_terms(self, xhats: States, xs: States) -> dict:
        """Energy of every part: ``{"layers": {name: E}, "synapses": [E per connection]}``."""
        layers = {n: layer.energy(xhats[n], xs[n]) for n, layer in self.layers.items()}
        synapses = [self.synapses[s](*(xhats[n] for n in names)) for s, names in self.connections]
        return {"layers": layers, "synapses": synapses}

    def energy_from(self, xhats: States, xs: States) -> Float[Array, ""]:
        """Total energy as a function of the activations (``xhats`` must be ``activations(xs)``).

        ``jax.grad`` of this with respect to ``xhats`` is ∂E/∂x̂: the neuron terms contribute ``x``
        exactly (Legendre trick), the synapses their gradients; no activation is differentiated.
        """
        return jax.tree_util.tree_reduce(jnp.add, self.energy_terms(xhats, xs))

    def energy(self, xs: States) -> Float[Array, ""]:
        """Total energy E of the states ``xs`` (activations computed from them)."""
        xs = self.check_states(xs)
        return self.energy_from(self.activations(xs), xs)

    def gradient(self, xs: States) -> States:
        """∂E/∂x̂ for every layer, equal to ``x − input_currents(xs)``."""
        xs = self.check_states(xs)
        return jax.grad(self.energy_from)(self.activations(xs), xs)

    def energy_and_gradient(self, xs: States):
        """``(E, ∂E/∂x̂)`` in one pass."""
        xs = self.check_states(xs)
        return jax.value_and_grad(self.energy_from)(self.activations(xs), xs)

    def input_currents(self, xs: States) -> States:
        """Synaptic input current into each layer, :math:`\\mathcal{I}_\\ell = -\\sum_{s\\ni\\ell}\\nabla_{\\hat x_\\ell}E_s`."""
        return jax.tree_util.tree_map(lambda g, x: x - g, self.gradient(xs), xs)

    def velocity(self, xs: States, clamped: Sequence[str] = ()) -> States:
        """dx/dt = −(∂E/∂x̂)/τ for each layer, zero for the ``clamped`` layers (eq. 3.2)."""
        xs = self.check_states(xs)
        clamped = self._check_clamped(clamped)
        xhats = self.activations(xs)
        free = {n: xhats[n] for n in self.layers if n not in clamped}
        fixed = {n: xhats[n] for n in clamped}
        # differentiate only with respect to the free layers: no work is spent on currents into
        # clamped layers (they would be thrown away)
        grads = jax.grad(lambda f: self.energy_from({**f, **fixed}, xs))(free)
        return {n: jnp.zeros_like(xs[n]) if n in clamped else -grads[n] / layer.tau
                for n, layer in self.layers.items()}


# --------------------------------------------------------------------------------------------
# Dynamics
# --------------------------------------------------------------------------------------------


class Trajectory(NamedTuple):
    """Result of :func:`descend` or :func:`solve`.

    Attributes:
        final: the last states ``{layer: array}``.
        energies: total energy at each recorded time, shape ``(T,)``.
        times: the recorded times, shape ``(T,)`` (Euler: step × dt).
        states: the recorded states ``{layer: (T, *shape)}``.
    """

    final: States
    energies: Float[Array, " T"]
    times: Float[Array, " T"]
    states: States


def _check_graph(graph):
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be an amtutor.hamux.Graph, got {type(graph).__name__}")


def descend(graph: Graph, xs: States, *, dt: float = 0.1, steps: int = 100, clamped: Sequence[str] = (),
            record_every: int = 1) -> Trajectory:
    """Energy descent by Euler steps: ``x ← x − (dt/τ) ∂E/∂x̂`` for every layer not ``clamped``.

    With τ = dt = 1 this is the DenseAM update of eq. (3.11). The energy never increases for a small
    enough ``dt`` (eq. 3.5). Runs as one ``lax.scan``, compiled once per (graph structure, steps).

    Args:
        graph: the :class:`Graph`.
        xs: initial states ``{layer: array}``; clamped layers keep theirs.
        dt: step size (> 0).
        steps: number of Euler steps.
        clamped: names of layers held fixed (inputs of a prediction, eq. 3.22).
        record_every: record the energy and the states every this many steps (``steps`` must be a
            multiple of it); step 0 is always recorded.

    Returns:
        a :class:`Trajectory` with ``1 + steps // record_every`` recorded points.
    """
    _check_graph(graph)
    xs = graph.check_states(xs)
    clamped = graph._check_clamped(clamped)
    dt = check_positive("dt", dt)
    steps = check_int("steps", steps, minimum=0)
    record_every = check_int("record_every", record_every, minimum=1)
    if steps % record_every:
        raise ValueError(f"steps ({steps}) must be a multiple of record_every ({record_every})")
    return _descend(graph, xs, dt, steps, clamped, record_every)


@eqx.filter_jit
def _descend(graph, xs, dt, steps, clamped, record_every):
    def step(x, _):
        v = graph.velocity(x, clamped)
        return jax.tree_util.tree_map(lambda a, b: a + dt * b, x, v), None

    def block(x, _):
        x, _ = jax.lax.scan(step, x, None, length=record_every)
        return x, (x, graph.energy(x))

    final, (path, energies) = jax.lax.scan(block, xs, None, length=steps // record_every)
    states = jax.tree_util.tree_map(lambda a, p: jnp.concatenate([a[None], p]), xs, path)
    energies = jnp.concatenate([graph.energy(xs)[None], energies])
    times = dt * record_every * jnp.arange(energies.shape[0])
    return Trajectory(final, energies, times, states)


def solve(graph: Graph, xs: States, *, t1: float, clamped: Sequence[str] = (), saves: int = 50,
          rtol: float = 1e-5, atol: float = 1e-6, max_steps: int = 100_000) -> Trajectory:
    """Integrate τ dx/dt = −∂E/∂x̂ from t = 0 to ``t1`` with an adaptive ODE solver (diffrax Tsit5).

    Args:
        graph, xs, clamped: as in :func:`descend`.
        t1: final time (> 0); the states relax on the time scale τ of each layer.
        saves: number of equally spaced times (0 and t1 included) at which states are recorded.
        rtol, atol: tolerances of the step-size controller.
        max_steps: solver step budget.
    """
    _check_graph(graph)
    xs = graph.check_states(xs)
    clamped = graph._check_clamped(clamped)
    t1 = check_positive("t1", t1)
    saves = check_int("saves", saves, minimum=2)
    rtol = check_positive("rtol", rtol)
    atol = check_positive("atol", atol)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    return _solve(graph, xs, t1, clamped, saves, rtol, atol, max_steps)


@eqx.filter_jit
def _solve(graph, xs, t1, clamped, saves, rtol, atol, max_steps):
    import diffrax

    term = diffrax.ODETerm(lambda t, x, args: graph.velocity(x, clamped))
    ts = jnp.linspace(0.0, t1, saves)
    sol = diffrax.diffeqsolve(
        term, diffrax.Tsit5(), t0=0.0, t1=t1, dt0=None, y0=xs,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        saveat=diffrax.SaveAt(ts=ts), max_steps=max_steps,
    )
    states = sol.ys
    energies = jax.vmap(graph.energy)(states)
    final = jax.tree_util.tree_map(lambda a: a[-1], states)
    return Trajectory(final, energies, sol.ts, states)
