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

:func:`descend` and :func:`solve` are the library's only continuous descent loops: every continuous
model of the book (the tanh DenseAM, the exponential-capacity model, the labelled memory, ...) is a
graph run by them. They take what later models need: clamped layers or single units (boolean
masks), time-dependent synapses (``time_dependent = True``, called with ``t`` and ``args``),
Euler–Maruyama noise with a keyword ``key``, a final-state-only mode for training through T steps,
a tolerance stop, and any diffrax solver. Array parameters are traced, so new values of β, γ, τ,
dt or the weights never recompile, and ``eqx.filter_grad`` trains them.

Ready-made synapses: :class:`DenseSynapse` (−x̂ᵀWŷ), :class:`BiasSynapse` (−b·x̂),
:class:`MemorySynapse` (every memory energy: −Q[Σ_μ F(S[ξ_μ, x̂])] with a similarity S such as the
dot product or −½‖x̂ − ξ‖² and a separation F), :class:`AttentionSynapse` (the Energy Transformer's
log-sum-exp attention), :class:`ConvSynapse` (−⟨ŷ, W ⋆ x̂⟩) and :class:`FunctionSynapse` (any
function of the activations).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Iterable, Mapping, NamedTuple, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .lagrangians import Identity, Lagrangian, Softmax, log_sum_exp, neuron_energy
from .validation import as_array, as_float_array, check_finite, check_fits_float, check_int, check_key, check_positive, check_real

__all__ = [
    "Layer",
    "Synapse",
    "DenseSynapse",
    "BiasSynapse",
    "MemorySynapse",
    "dot_similarity",
    "negative_squared_distance",
    "AttentionSynapse",
    "ConvSynapse",
    "FunctionSynapse",
    "Graph",
    "state_energy_graph",
    "Trajectory",
    "descend",
    "solve",
]

States = dict  # {layer name: array of the layer's shape}


# --------------------------------------------------------------------------------------------
# Neuron layers
# --------------------------------------------------------------------------------------------


def _check_shape(shape) -> tuple[int, ...]:
    """A layer shape: one integer (a vector of that many units) or a tuple of integers, each >= 1."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    elif isinstance(shape, (tuple, list)):
        shape = tuple(shape)
    else:
        raise TypeError(f"shape must be an integer or a tuple of integers such as 64 or (8, 8), "
                        f"got {type(shape).__name__}")
    for n in shape:
        check_int("shape", n, minimum=1)
    return shape


def _scalar_leaf(name, value):
    """A positive scalar parameter stored as a float32 array leaf (refusing values float32 cannot hold)."""
    value = check_positive(name, value)
    check_fits_float(name, value, jnp.float32)
    return jnp.asarray(value, dtype=jnp.float32)


class Layer(eqx.Module):
    """A neuron layer: the ``shape`` of its state, its convex ``lagrangian`` and time constant ``tau``.

    ``neuron_energy=False`` drops the layer's own energy ⟨x, x̂⟩ − L(x) from the total, as the Energy
    Transformer does for its layer norm (eq. 3.19, where that energy is O(ε)): the layer then obeys
    τ dx/dt = −∂E_synapses/∂x̂ with no leak term −x, and the energy E_synapses(x̂(x)) still never
    increases, because dE/dt = −τ⁻¹ ∇E·(∂²L/∂x²)∇E ≤ 0 for a convex L (eqs. 3.20–3.21).
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    lagrangian: Lagrangian
    tau: Float[Array, ""]
    neuron_energy: bool = eqx.field(static=True)

    def __init__(self, shape: int | Sequence[int], lagrangian: Lagrangian, *, tau: float | Array = 1.0,
                 neuron_energy: bool = True):
        shape = _check_shape(shape)
        if not isinstance(lagrangian, Lagrangian):
            raise TypeError(
                "lagrangian must be an amtutor.lagrangians.Lagrangian such as Tanh(beta=1.0) or "
                f"Softmax(beta=2.0), got {type(lagrangian).__name__}"
            )
        if not isinstance(neuron_energy, bool):
            raise TypeError(f"neuron_energy must be True or False, got {neuron_energy!r}")
        self.shape = tuple(int(n) for n in shape)
        self.lagrangian = lagrangian
        # an array leaf: trainable, and a new value does not recompile the descent
        self.tau = _scalar_leaf("tau", tau)
        self.neuron_energy = neuron_energy

    def activation(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """x̂ = ∇L(x)."""
        return self.lagrangian.activation(x)

    def energy(self, xhat: Float[Array, "*shape"], x: Float[Array, "*shape"]) -> Float[Array, ""]:
        """Neuron energy ⟨x, x̂⟩ − L(x); its gradient with respect to ``xhat`` is ``x`` (custom JVP).
        Zero when the layer was built with ``neuron_energy=False``."""
        if not self.neuron_energy:
            return jnp.zeros((), jnp.float32)
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
    # True for an energy that depends on time: then it is called as synapse(*xhats, t=t, args=args)
    # (diffusion's beta(t), a schedule); descend/solve pass the current time and their `args`.
    time_dependent = False

    def __call__(self, *xhats) -> Float[Array, ""]:
        raise NotImplementedError

    def check(self, shapes: tuple[tuple[int, ...], ...], names: tuple[str, ...]) -> None:
        if self.time_dependent:
            return  # its energy needs the descent's args, unknown here: checked on first use
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
    if w.size == 0:
        what = "store at least one pattern" if name == "memories" else "a synapse needs at least one weight"
        raise ValueError(f"{name} is empty: {what} (shape {tuple(w.shape)})")
    check_finite(name, w)
    check_fits_float(name, w, jnp.float32)
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


def _similarity_arguments(memories, xhat):
    # Shapes are checked at trace time (free under jit); values only when concrete.
    memories = as_float_array("memories", memories, ndim=2)
    xhat = as_float_array("xhat", xhat, ndim=1)
    if memories.shape[0] == 0:
        raise ValueError("memories is empty: store at least one memory (shape (K, D), K >= 1)")
    if memories.shape[1] != xhat.shape[0]:
        raise ValueError(f"xhat has {xhat.shape[0]} entries but the memories have D = {memories.shape[1]}")
    return memories, xhat


def dot_similarity(memories: Float[Array, "K D"], xhat: Float[Array, " D"]) -> Float[Array, " K"]:
    r"""Similarity :math:`S[\xi_\mu, \hat x] = \xi_\mu\cdot\hat x` of one state to each memory."""
    memories, xhat = _similarity_arguments(memories, xhat)
    return memories @ xhat


def negative_squared_distance(memories: Float[Array, "K D"], xhat: Float[Array, " D"]) -> Float[Array, " K"]:
    r"""Similarity :math:`S[\xi_\mu, \hat x] = -\tfrac12\lVert\hat x-\xi_\mu\rVert^2` (eq. 5.7's distance form).

    Computed from the differences themselves, not as ½(‖x‖² − 2x·ξ + ‖ξ‖²), which cancels badly
    when the state is close to a memory (diffusion at small t, a converged retrieval).
    """
    memories, xhat = _similarity_arguments(memories, xhat)
    return -0.5 * jnp.sum((xhat - memories) ** 2, axis=-1)


_SIMILARITIES = {"dot": dot_similarity, "negative_squared_distance": negative_squared_distance}


def _is_score_separation(separation) -> bool:
    # amtutor.binary's separations (score + energy_from_score), without importing binary here
    return callable(getattr(separation, "score", None)) and callable(getattr(separation, "energy_from_score", None))


class MemorySynapse(Synapse):
    r"""The Dense Associative Memory energy on one layer (eqs. 3.7, 5.7):
    :math:`E = -Q\big[\sum_\mu F(S[\xi_\mu,\hat x])\big]`, one similarity S and one separation F.

    The one piece behind every memory energy of the book: the classical and dense Hopfield
    networks (``"dot"``, Identity or RectifiedPower), the modern Hopfield / log-sum-exp energy
    (``Softmax(beta)``), the distance form of the HAMUX toy and of diffusion's exact energy
    (``"negative_squared_distance"`` with ``Softmax(beta)``), and kernels (a custom similarity).

    Args:
        memories: ``(K, D)``, trainable; the layer has shape ``(D,)`` or ``(N, D)`` (N tokens each
            attend to all memories, as in the Energy Transformer's Hopfield module, eq. 3.17).
        separation: what turns the K similarities ``s`` into an energy −E:

            * a :class:`~amtutor.lagrangians.Lagrangian` L, E = −L(s): ``Identity()`` gives ½Σs²
              (classical Hopfield), ``RectifiedPower(n)`` the polynomial DenseAM, ``Softmax(beta)``
              the log-sum-exp energy :math:`-\beta^{-1}\log\sum_\mu e^{\beta s_\mu}`;
            * a function F applied to each similarity and summed, E = −Σ_μ F(s_μ);
            * a separation of :mod:`amtutor.binary` (``binary.power(3)``, ``binary.log_sum_exp(50.)``),
              on one ``(D,)`` layer: the same energy as the discrete model, on real states.
        similarity: ``"dot"`` (ξ·x̂, default), ``"negative_squared_distance"`` (−½‖x̂ − ξ‖²), or a
            function ``similarity(memories (K, D), xhat (D,)) -> (K,)`` (e.g. a kernel).
        valid: optional boolean ``(K,)``: memories marked False are ignored (padding, so that one
            compiled function serves memory sets of different sizes). Needs a ``Softmax`` or
            elementwise separation.

    A MemorySynapse is what remains of a two-layer graph (visible ↔ hidden, hidden Lagrangian =
    ``separation``, dense weights Ξᵀ) when the hidden layer is fast and sits at its equilibrium.
    """

    memories: Float[Array, "K D"]
    separation: Lagrangian | Callable
    valid: Array | None
    similarity: Callable = eqx.field(static=True)
    arity = 1

    def __init__(self, memories, separation, *, similarity: str | Callable = "dot", valid=None):
        self.memories = _weights("memories", memories, ndim=2)
        if isinstance(separation, Lagrangian) or _is_score_separation(separation):
            self.separation = separation
        elif callable(separation):
            self.separation = _Elementwise(separation)
        else:
            raise TypeError("separation must be a Lagrangian (e.g. Softmax(beta=1.0)), a function F, or an "
                            f"amtutor.binary separation, got {type(separation).__name__}")
        if isinstance(similarity, str):
            if similarity not in _SIMILARITIES:
                raise ValueError(f"similarity must be one of {sorted(_SIMILARITIES)} or a function, got {similarity!r}")
            similarity = _SIMILARITIES[similarity]
        elif not callable(similarity):
            raise TypeError(f"similarity must be a name or a function (memories, xhat) -> (K,), got {type(similarity).__name__}")
        self.similarity = similarity
        if valid is not None:
            valid = as_array("valid", valid, ndim=1)
            if valid.shape[0] != self.memories.shape[0]:
                raise ValueError(f"valid must have one entry per memory ({self.memories.shape[0]}), got shape {tuple(valid.shape)}")
            if not jnp.issubdtype(valid.dtype, jnp.bool_):
                raise TypeError(f"valid must be boolean (True = a real memory), got dtype {valid.dtype}")
            if not (isinstance(self.separation, (Softmax, _Elementwise))):
                raise TypeError("valid (masked memories) needs a Softmax or an elementwise separation F, "
                                f"got {type(self.separation).__name__}")
            valid = jnp.asarray(valid)
        self.valid = valid

    def similarities(self, xhat: Float[Array, "*N D"]) -> Float[Array, "*N K"]:
        """S[ξ_μ, x̂] for every memory (and every token of an ``(N, D)`` layer)."""
        if xhat.ndim == 1:
            return self.similarity(self.memories, xhat)
        return jax.vmap(lambda x: self.similarity(self.memories, x))(xhat)

    def __call__(self, xhat):
        s = self.similarities(xhat)  # (..., K)
        sep = self.separation
        if _is_score_separation(sep) and not isinstance(sep, Lagrangian):
            dim = self.memories.shape[1]
            one = lambda row: sep.energy_from_score(sep.score(row), dim)  # noqa: E731
            return one(s) if s.ndim == 1 else jnp.sum(jax.vmap(one)(s))
        if self.valid is None:
            return -sep(s)
        if isinstance(sep, Softmax):
            return -jnp.sum(log_sum_exp(s, sep.beta, axis=-1, where=self.valid))
        return -jnp.sum(jnp.where(self.valid, sep.F(s), 0.0))

    def check(self, shapes, names):
        (s,), (n,) = shapes, names
        if len(s) not in (1, 2) or s[-1] != self.memories.shape[1]:
            want = (self.memories.shape[1],)
            raise ValueError(
                f"memories of shape {self.memories.shape} need layer {n!r} to have shape {want} "
                f"(or (N, {want[0]}) for N tokens), but {n!r} has shape {tuple(s)}"
            )
        if len(s) == 2 and _is_score_separation(self.separation) and not isinstance(self.separation, Lagrangian):
            raise ValueError(f"a binary separation acts on one state: layer {n!r} must have shape "
                             f"({self.memories.shape[1]},), got {tuple(s)}")


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

    def __init__(self, Wq, Wk, *, beta: float | Array = 1.0, exclude_self: bool = True):
        self.Wq = _weights("Wq", Wq, ndim=3)
        self.Wk = _weights("Wk", Wk, ndim=3)
        if self.Wq.shape != self.Wk.shape:
            raise ValueError(f"Wq and Wk must have the same shape (H, Y, D), got {self.Wq.shape} and {self.Wk.shape}")
        self.beta = _scalar_leaf("beta", beta)
        self.exclude_self = bool(exclude_self)

    def __call__(self, xhat):
        keys = jnp.einsum("hyd,bd->hyb", self.Wk, xhat)
        queries = jnp.einsum("hyd,cd->hyc", self.Wq, xhat)
        scores = jnp.einsum("hyb,hyc->hbc", keys, queries)  # A, (H, N_B, N_C)
        keep = None
        if self.exclude_self:
            n = xhat.shape[0]
            keep = ~jnp.eye(n, dtype=bool)[None]  # B != C
        return -jnp.sum(log_sum_exp(scores, self.beta, axis=1, where=keep))

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
        if not isinstance(strides, (tuple, list)):
            raise TypeError(f"strides must be a pair of integers (along H, along W) such as (2, 2), "
                            f"got {type(strides).__name__}")
        if len(strides) != 2:
            raise ValueError(f"strides must be a pair of integers (along H, along W), got {tuple(strides)}")
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
    a :class:`Synapse` subclass instead). With ``time_dependent=True`` it is called as
    ``fn(*xhats, t=t, args=args)``."""

    fn: Callable = eqx.field(static=True)
    time_dependent: bool = eqx.field(static=True)

    def __init__(self, fn: Callable, *, time_dependent: bool = False):
        if not callable(fn):
            raise TypeError(f"fn must be a function of the activations, got {type(fn).__name__}")
        self.fn = fn
        self.time_dependent = bool(time_dependent)

    def __call__(self, *xhats, **time):
        return self.fn(*xhats, **time)


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
        if isinstance(connections, (str, bytes, Mapping)) or not isinstance(connections, Iterable):
            raise TypeError("connections must be a list of tuples (synapse name, layer name, ...), e.g. "
                            f"[(\"W\", \"v\", \"h\")], got {type(connections).__name__}"
                            + (f" {connections!r}" if isinstance(connections, str) else ""))
        conns = []
        for entry in connections:
            if (not isinstance(entry, (tuple, list)) or len(entry) < 2
                    or not all(isinstance(e, str) for e in entry)):
                raise ValueError(f"connections: each connection is (synapse name, layer name, ...), got {entry!r}")
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
            raise ValueError(f"synapses {sorted(unused)} are not used by any connection: add them to "
                             "connections as (synapse, layers), or drop them")
        self.layers = dict(layers)
        self.synapses = dict(synapses)
        self.connections = tuple(conns)

    # ---- states ------------------------------------------------------------------------------

    def init(self, *, key=None, scale: float = 0.1) -> States:
        """Initial states: zeros, or i.i.d. normal times ``scale`` (>= 0) when a PRNG ``key`` is given."""
        scale = check_positive("scale", scale, allow_zero=True)
        check_fits_float("scale", scale, jnp.float32)
        if key is None:
            return {n: jnp.zeros(l.shape, jnp.float32) for n, l in self.layers.items()}
        check_key("key", key)
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
            check_fits_float(f"state of layer {n!r}", x)
            out[n] = jnp.asarray(x, dtype=jnp.result_type(float))
        return out

    def _check_clamped(self, clamped) -> tuple[tuple[str, ...], dict]:
        """Split ``clamped`` into whole layers (names, static) and per-unit masks (arrays, traced).

        ``clamped`` is a layer name, a sequence of names, or a dict ``{layer: mask}`` whose boolean
        mask has the layer's shape (True = held fixed): e.g. the label units of a ``[x; y]`` state.
        """
        if isinstance(clamped, Mapping):
            masks = {}
            for n, mask in clamped.items():
                if n not in self.layers:
                    raise ValueError(f"clamped layer {n!r} is not a layer of the graph (layers: {sorted(self.layers)})")
                mask = as_array(f"clamping mask of layer {n!r}", mask)
                if tuple(mask.shape) != self.layers[n].shape:
                    raise ValueError(f"clamping mask of layer {n!r} has shape {tuple(mask.shape)}, "
                                     f"but layer {n!r} has shape {self.layers[n].shape}")
                if not jnp.issubdtype(mask.dtype, jnp.bool_):
                    raise TypeError(f"clamping mask of layer {n!r} must be boolean (True = clamped), got dtype {mask.dtype}")
                masks[n] = jnp.asarray(mask)
            return (), masks
        names = (clamped,) if isinstance(clamped, str) else tuple(clamped)
        for n in names:
            if not isinstance(n, str) or n not in self.layers:
                raise ValueError(f"clamped layer {n!r} is not a layer of the graph (layers: {sorted(self.layers)})")
        return names, {}

    # ---- energy ------------------------------------------------------------------------------

    def activations(self, xs: States) -> States:
        """x̂ for every layer."""
        return {n: layer.activation(xs[n]) for n, layer in self.layers.items()}

    def energy_terms(self, xhats: States, xs: States, *, t=0.0, args=None) -> dict:
        """Energy of every part: ``{"layers": {name: E}, "synapses": [E per connection]}``.

        ``t`` and ``args`` reach the synapses that declare ``time_dependent = True``.
        """
        layers = {n: layer.energy(xhats[n], xs[n]) for n, layer in self.layers.items()}
        synapses = [_synapse_energy(self.synapses[s], [xhats[n] for n in names], t, args)
                    for s, names in self.connections]
        return {"layers": layers, "synapses": synapses}

    def energy_from(self, xhats: States, xs: States, *, t=0.0, args=None) -> Float[Array, ""]:
        """Total energy as a function of the activations (``xhats`` must be ``activations(xs)``).

        ``jax.grad`` of this with respect to ``xhats`` is ∂E/∂x̂: the neuron terms contribute ``x``
        exactly (Legendre trick), the synapses their gradients; no activation is differentiated.
        """
        return jax.tree_util.tree_reduce(jnp.add, self.energy_terms(xhats, xs, t=t, args=args))

    def energy(self, xs: States, *, t=0.0, args=None) -> Float[Array, ""]:
        """Total energy E of the states ``xs`` (activations computed from them), at time ``t``."""
        xs = self.check_states(xs)
        return self.energy_from(self.activations(xs), xs, t=t, args=args)

    def gradient(self, xs: States, *, t=0.0, args=None) -> States:
        """∂E/∂x̂ for every layer, equal to ``x − input_currents(xs)``."""
        xs = self.check_states(xs)
        return jax.grad(partial(self.energy_from, t=t, args=args))(self.activations(xs), xs)

    def energy_and_gradient(self, xs: States, *, t=0.0, args=None):
        """``(E, ∂E/∂x̂)`` in one pass."""
        xs = self.check_states(xs)
        return jax.value_and_grad(partial(self.energy_from, t=t, args=args))(self.activations(xs), xs)

    def input_currents(self, xs: States, *, t=0.0, args=None) -> States:
        """Synaptic input current into each layer, :math:`\\mathcal{I}_\\ell = -\\sum_{s\\ni\\ell}\\nabla_{\\hat x_\\ell}E_s`."""
        return jax.tree_util.tree_map(lambda g, x: x - g, self.gradient(xs, t=t, args=args), xs)

    def velocity(self, xs: States, clamped=(), *, t=0.0, args=None) -> States:
        """dx/dt = −(∂E/∂x̂)/τ for each layer, zero for what is ``clamped`` (eq. 3.2).

        ``clamped``: layer names held fixed, or ``{layer: boolean mask}`` for single units.
        """
        xs = self.check_states(xs)
        return self._velocity(xs, *self._check_clamped(clamped), t, args)

    def _velocity(self, xs, clamped_layers, masks, t, args):
        xhats = self.activations(xs)
        free = {n: xhats[n] for n in self.layers if n not in clamped_layers}
        fixed = {n: xhats[n] for n in clamped_layers}
        # differentiate only with respect to the free layers: no work is spent on currents into
        # clamped layers (they would be thrown away)
        grads = jax.grad(lambda f: self.energy_from({**f, **fixed}, xs, t=t, args=args))(free)
        out = {}
        for n, layer in self.layers.items():
            if n in clamped_layers:
                out[n] = jnp.zeros_like(xs[n])
            else:
                v = -grads[n] / layer.tau
                out[n] = jnp.where(masks[n], 0.0, v) if n in masks else v
        return out


STATE_LAYER = "v"  # the one layer of :func:`state_energy_graph`


def state_energy_graph(shape: int | Sequence[int], synapses: Mapping[str, Synapse], *,
                       layer: str = STATE_LAYER) -> Graph:
    r"""A graph whose energy is exactly :math:`E(v)=\sum_s E_s(v)`: plain gradient descent as HAMUX.

    Machine-learning papers write the memory energy of one state ``v`` and descend it directly,
    :math:`v \leftarrow v - \eta\,\nabla_v E(v)` (eqs. 5.8–5.10 of the tutorial; no neuron
    energy). This builds that model on the library's one descent core: one layer ``layer`` with the
    :class:`~amtutor.lagrangians.Identity` Lagrangian (x̂ = v) built with ``neuron_energy=False``, and
    the given one-layer synapses. Then ``graph.energy({layer: v})`` is E(v), and :func:`descend` with
    ``dt = η`` (τ = 1) takes exactly the steps above, because ∂E_total/∂x̂ = ∇E(v). Clamping units
    (``clamped={layer: mask}``) gives the masked descent of eq. 5.9.

    Args:
        shape: the state's shape, ``D`` or ``(N, D)``.
        synapses: ``{name: Synapse}``, each joining the one layer (e.g. a :class:`MemorySynapse`).
        layer: the layer's name (default ``"v"``).
    """
    if not isinstance(synapses, Mapping) or not synapses:
        raise TypeError("synapses must be a non-empty dict {name: Synapse} (each acting on the one state)")
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a name (str), got {type(layer).__name__}")
    return Graph({layer: Layer(shape, Identity(), neuron_energy=False)}, synapses,
                 [(name, layer) for name in synapses])


def _synapse_energy(synapse, xhats, t, args):
    if synapse.time_dependent:
        return synapse(*xhats, t=t, args=args)
    return synapse(*xhats)


# --------------------------------------------------------------------------------------------
# Dynamics
# --------------------------------------------------------------------------------------------


class Trajectory(NamedTuple):
    """Result of every continuous descent in the library (:func:`descend`, :func:`solve`).

    Attributes:
        final: the last states ``{layer: array}``.
        energies: total energy at each recorded time, shape ``(T,)``; ``energies[0]`` is the start's.
        times: the recorded times, shape ``(T,)`` (Euler: ``t0`` + step × dt).
        states: the recorded states ``{layer: (T, *shape)}``, starting with the initial states.
        steps: number of steps taken (fewer than asked when a tolerance stopped the descent early;
            for :func:`solve`, the solver's accepted and rejected steps).
    """

    final: States
    energies: Float[Array, " T"]
    times: Float[Array, " T"]
    states: States
    steps: Int[Array, ""]


def _check_graph(graph):
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be an amtutor.hamux.Graph, got {type(graph).__name__}")


def _is_concrete(tree) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(tree))


def _check_noise(noise, key):
    if noise is None:
        if key is not None:
            raise ValueError("key is only used with noise: give noise=σ (or a function σ(t)) or drop key")
        return None
    if key is None:
        raise ValueError("noise needs a PRNG key: pass key=jax.random.key(0)")
    check_key("key", key)
    if callable(noise):
        return noise
    return jnp.asarray(check_positive("noise", noise, allow_zero=True), dtype=jnp.float32)


def _check_finite_result(run: "Trajectory", what: str) -> "Trajectory":
    # Concrete results only (inside jit/grad the caller owns the numbers): a diverging descent must
    # not come back as a trajectory of NaNs.
    if _is_concrete(run.final):
        bad = [n for n, x in run.final.items() if not bool(jnp.all(jnp.isfinite(x)))]
        if bad:
            raise ValueError(f"the descent diverged: the final state of layer(s) {bad} is not finite; {what}")
    return run


def descend(graph: Graph, xs: States, *, dt: float = 0.1, steps: int = 100, clamped=(),
            record_every: int | None = 1, t0: float = 0.0, args=None, noise=None, key=None,
            tol: float | None = None) -> Trajectory:
    r"""Energy descent by Euler steps, :math:`x \leftarrow x - \frac{dt}{\tau}\,\partial E/\partial\hat x`,
    for every layer (or unit) that is not ``clamped``: the one descent loop of the library.

    With τ = dt = 1 this is the DenseAM update of eq. (3.11). The energy never increases for a small
    enough ``dt`` (eq. 3.5). Runs as one ``lax.scan`` (``lax.while_loop`` with ``tol`` and no
    recording). ``dt``, ``t0``, ``noise``, the masks, ``args`` and every array in the graph (β, γ, τ,
    weights) are traced: changing their values does not recompile; ``steps``, ``record_every`` and
    the graph's structure do. Differentiable end to end (train weights through T steps with
    ``jax.grad``/optax), except with ``tol`` and ``record_every=None`` (a while loop).

    Args:
        graph: the :class:`Graph`.
        xs: initial states ``{layer: array}``; clamped layers and units keep theirs.
        dt: step size (> 0).
        steps: number of Euler steps (the most, with ``tol``).
        clamped: layer names held fixed (inputs of a prediction, eq. 3.22), or ``{layer: mask}``
            with a boolean mask of the layer's shape to hold single units (True = fixed).
        record_every: record energy and states every this many steps (``steps`` must be a multiple
            of it); step 0 is always recorded. ``None``: record only the start and the end (training
            through T steps, or a long relaxation, without storing every state).
        t0: time of the first step; step k is taken at ``t = t0 + k·dt``, and synapses that declare
            ``time_dependent = True`` receive it (e.g. diffusion's β(t)).
        args: any pytree handed to time-dependent synapses with ``t``.
        noise: σ ≥ 0 (or a function ``σ(t)``) for Euler–Maruyama steps
            :math:`x \leftarrow x - \frac{dt}{\tau}\partial E/\partial\hat x + \sigma\sqrt{dt}\,\varepsilon`,
            ε standard normal; Langevin dynamics at temperature T is σ = √(2T/τ). Needs ``key``.
        key: PRNG key for the noise (keyword only; only with ``noise``).
        tol: stop after the first step at which every free unit's speed ``|dx/dt|`` is ≤ ``tol``
            (converged; that step is still taken; ``tol = 0`` stops only at an exact fixed point). The
            result's ``steps`` says how many steps were taken; with recording, later records repeat
            the final state.

    Returns:
        a :class:`Trajectory` with ``1 + steps // record_every`` recorded points (2 with ``None``).

    Raises:
        ValueError: on bad arguments, or when the state diverges (not finite; lower ``dt``).
    """
    _check_graph(graph)
    xs = graph.check_states(xs)
    clamped_layers, masks = graph._check_clamped(clamped)
    dt = jnp.asarray(check_positive("dt", dt), dtype=jnp.float32)
    t0 = jnp.asarray(check_real("t0", t0), dtype=jnp.float32)
    steps = check_int("steps", steps, minimum=0)
    if record_every is not None:
        record_every = check_int("record_every", record_every, minimum=1)
        if steps % record_every:
            raise ValueError(f"steps ({steps}) must be a multiple of record_every ({record_every})")
    noise = _check_noise(noise, key)
    if tol is not None:
        tol = jnp.asarray(check_positive("tol", tol, allow_zero=True), dtype=jnp.float32)
    run = _descend(graph, xs, dt, t0, args, noise, key, tol, masks,
                   steps=steps, clamped_layers=clamped_layers, record_every=record_every)
    return _check_finite_result(run, f"lower dt (got dt = {float(dt) if _is_concrete(dt) else 'traced'})")


@eqx.filter_jit
def _descend(graph, xs, dt, t0, args, noise, key, tol, masks, *, steps, clamped_layers, record_every):
    free_masks = {n: ~m for n, m in masks.items()}

    def velocity(x, t):
        return graph._velocity(x, clamped_layers, masks, t, args)

    def sigma(t):
        return noise(t) if callable(noise) else noise

    def euler(x, v, t, k):
        x = jax.tree_util.tree_map(lambda a, b: a + dt * b, x, v)
        if noise is None:
            return x
        # Euler–Maruyama: independent N(0, 1) per unit, the same key never reused (fold in k)
        keys = jax.random.split(jax.random.fold_in(key, k), len(graph.layers))
        out = {}
        for sub, (n, a) in zip(keys, x.items()):
            if n in clamped_layers:
                out[n] = a
                continue
            kick = sigma(t) * jnp.sqrt(dt) * jax.random.normal(sub, a.shape, a.dtype)
            out[n] = a + (jnp.where(free_masks[n], kick, 0.0) if n in masks else kick)
        return out

    def speed(v):
        return jnp.max(jnp.stack([jnp.max(jnp.abs(a)) for a in v.values()]))

    def step(carry, _):
        x, k, done = carry
        t = t0 + k * dt
        v = velocity(x, t)
        new = euler(x, v, t, k)
        if tol is None:
            return (new, k + 1, done), None
        # Once converged, hold the state: the step that detected convergence (speed <= tol) is
        # still taken, so the result is one small step closer to the fixed point.
        x = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), x, new)
        return (x, k + jnp.where(done, 0, 1), done | (speed(v) <= tol)), None

    start = (xs, jnp.zeros((), jnp.int32), jnp.zeros((), bool))
    e0 = graph.energy_from(graph.activations(xs), xs, t=t0, args=args)

    if record_every is None:
        if tol is not None:  # early exit: a while loop (not reverse-differentiable)
            def cond(carry):
                x, k, done = carry
                return (k < steps) & ~done

            def body(carry):
                x, k, _ = carry
                t = t0 + k * dt
                v = velocity(x, t)
                return euler(x, v, t, k), k + 1, speed(v) <= tol

            final, taken, _ = jax.lax.while_loop(cond, body, start)
        else:
            (final, taken, _), _ = jax.lax.scan(step, start, None, length=steps)
        t_end = t0 + taken * dt
        e1 = graph.energy_from(graph.activations(final), final, t=t_end, args=args)
        states = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), xs, final)
        return Trajectory(final, jnp.stack([e0, e1]), jnp.stack([t0, t_end]), states, taken)

    def block(carry, _):
        carry, _ = jax.lax.scan(step, carry, None, length=record_every)
        x, k, _ = carry
        return carry, (x, graph.energy_from(graph.activations(x), x, t=t0 + k * dt, args=args))

    (final, taken, _), (path, energies) = jax.lax.scan(block, start, None, length=steps // record_every)
    states = jax.tree_util.tree_map(lambda a, p: jnp.concatenate([a[None], p]), xs, path)
    energies = jnp.concatenate([e0[None], energies])
    times = t0 + dt * record_every * jnp.arange(energies.shape[0])
    return Trajectory(final, energies, times, states, taken)


def solve(graph: Graph, xs: States, *, t1: float, t0: float = 0.0, clamped=(), saves: int = 50,
          solver=None, dt0: float | None = None, rtol: float = 1e-5, atol: float = 1e-6,
          max_steps: int = 100_000, args=None) -> Trajectory:
    """Integrate τ dx/dt = −∂E/∂x̂ from ``t0`` to ``t1`` with a diffrax ODE solver.

    The same vector field as :func:`descend` (:meth:`Graph.velocity`), integrated by ``solver``.

    Args:
        graph, xs, clamped, args: as in :func:`descend`.
        t1: final time (> t0); the states relax on the time scale τ of each layer.
        t0: start time (time-dependent synapses receive t).
        saves: number of equally spaced times (t0 and t1 included) at which states are recorded.
        solver: a diffrax solver (default ``diffrax.Tsit5()``, adaptive). A solver without an error
            estimate (``diffrax.Euler()``, ``diffrax.Heun()`` ...) takes constant steps ``dt0``.
        dt0: first (or constant) step size; ``None`` lets an adaptive solver choose.
        rtol, atol: tolerances of the adaptive step-size controller.
        max_steps: solver step budget; exhausting it raises a ``ValueError`` that says so.
    """
    import diffrax

    _check_graph(graph)
    xs = graph.check_states(xs)
    clamped_layers, masks = graph._check_clamped(clamped)
    t0 = check_real("t0", t0)
    t1 = check_real("t1", t1)
    if _is_concrete((t0, t1)) and not float(t1) > float(t0):
        raise ValueError(f"t1 must be > t0 (integrate forward in time), got t0 = {float(t0)}, t1 = {float(t1)}")
    saves = check_int("saves", saves, minimum=2)
    rtol = check_positive("rtol", rtol)
    atol = check_positive("atol", atol)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    solver = diffrax.Tsit5() if solver is None else solver
    if not isinstance(solver, diffrax.AbstractSolver):
        raise TypeError(f"solver must be a diffrax solver such as diffrax.Tsit5(), got {type(solver).__name__}")
    adaptive = isinstance(solver, diffrax.AbstractAdaptiveSolver)
    if dt0 is not None:
        dt0 = check_positive("dt0", dt0)
    elif not adaptive:
        raise ValueError(f"{type(solver).__name__} takes constant steps: give dt0")
    controller = diffrax.PIDController(rtol=rtol, atol=atol) if adaptive else diffrax.ConstantStepSize()
    # times as arrays: traced, so a new t1 (a slider, a longer run) does not recompile
    t0, t1 = (jnp.asarray(t, dtype=jnp.float32) for t in (t0, t1))
    dt0 = None if dt0 is None else jnp.asarray(dt0, dtype=jnp.float32)
    run, result = _solve(graph, xs, t0, t1, masks, args, solver, controller, dt0,
                         clamped_layers=clamped_layers, saves=saves, max_steps=max_steps)
    if _is_concrete(result) and bool(result != diffrax.RESULTS.successful):
        if bool(result == diffrax.RESULTS.max_steps_reached):
            raise ValueError(f"the solver hit max_steps={max_steps} before t1={float(t1):g}: "
                             "raise max_steps or lower t1")
        raise ValueError(f"the ODE solver failed: {diffrax.RESULTS[result]}")  # pragma: no cover
    return _check_finite_result(run, "the flow left the range of float32")


@eqx.filter_jit
def _solve(graph, xs, t0, t1, masks, args, solver, controller, dt0, *, clamped_layers, saves, max_steps):
    import diffrax

    term = diffrax.ODETerm(lambda t, x, a: graph._velocity(x, clamped_layers, masks, t, a))
    ts = jnp.linspace(t0, t1, saves)
    sol = diffrax.diffeqsolve(
        term, solver, t0=t0, t1=t1, dt0=dt0, y0=xs, args=args,
        stepsize_controller=controller, saveat=diffrax.SaveAt(ts=ts), max_steps=max_steps, throw=False,
    )
    states = sol.ys
    energies = jax.vmap(lambda x, t: graph.energy_from(graph.activations(x), x, t=t, args=args))(states, sol.ts)
    final = jax.tree_util.tree_map(lambda a: a[-1], states)
    return Trajectory(final, energies, sol.ts, states, sol.stats["num_steps"]), sol.result
