r"""Inference with an associative memory: clamp what you know, let the rest fall into place.

Prediction by energy minimisation (eq. 3.22 of the tutorial): hold some layers of a
:class:`~amtutor.hamux.Graph` fixed (*clamped*), let the others descend the energy, and read the
answer off the relaxed state. The ready-made model is the hierarchical memory of labelled examples,
image ↔ hidden ↔ label, with one hidden neuron per stored (image, label) pair and weights written
down from the data (no training):

.. math:: E = E_\text{image} + E_\text{hidden} + E_\text{label}
          - \sum_\mu \hat h_\mu\,\xi_\mu\cdot\hat v - \lambda\sum_\mu \hat h_\mu\,\hat\ell_{c_\mu}.

* :func:`labelled_memory` builds that graph (layers ``"image"``, ``"hidden"``, ``"label"``);
* :func:`clamped_state`: a starting state, zeros except the layers you give;
* :func:`classify`: clamp the image, relax hidden and label from zero, take the most active label;
* :func:`label_energies` and :func:`classify_by_energy`: clamp the image *and* each label in turn,
  relax the hidden layer, pick the label of lowest energy (eq. 3.22 taken literally);
* :func:`generate`: clamp a label, start the image from faint noise, relax image and hidden.

:func:`classify`, :func:`label_energies`, :func:`classify_by_energy` and :func:`generate` need a
graph with layers ``"image"`` and ``"label"`` (any graph built like :func:`labelled_memory`'s).
Every function takes one example: ``jax.vmap`` at the call site for a batch, inside ``jax.jit`` so
that the descent (one ``lax.scan``) compiles once::

    memory = labelled_memory(images, labels, num_classes=10)
    guesses = jax.jit(jax.vmap(lambda x: classify(memory, x).label))(test_images)
"""

from __future__ import annotations

import numbers
from functools import partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .hamux import (STATE_LAYER, DenseSynapse, Graph, Layer, MemorySynapse, Synapse, Trajectory, descend,
                    dot_similarity, negative_squared_distance, state_energy_graph)
from .lagrangians import Identity, Lagrangian, Softmax
from .validation import (as_array, as_float_array, check_fits_float, check_int, check_key, check_positive,
                         check_probability)

__all__ = [
    "labelled_memory",
    "clamped_state",
    "Classification",
    "classify",
    "label_energies",
    "classify_by_energy",
    "generate",
    # associative memory as a machine-learning model (chapter 5 of the tutorial)
    "GeneralMemorySynapse",
    "memory_graph",
    "memory_energy",
    "clamped_descent",
    "supervised_mask",
    "labelled_pairs",
    "am_predict",
    "am_classify",
    "TrainedMemory",
    "initial_prototypes",
    "train_classifier",
    "clam_graph",
    "clam_energy",
    "clam_descent",
    "clam_loss",
    "masked_clam_loss",
    "train_clam",
    "basin_assignment",
    "voronoi_assignment",
    "kmeans_objective",
]

States = dict  # {layer name: array of the layer's shape}


# --------------------------------------------------------------------------------------------
# The hierarchical memory of labelled images
# --------------------------------------------------------------------------------------------


def labelled_memory(images, labels, *, num_classes: int, beta: float = 0.5, label_strength: float = 10.0,
                    image_lagrangian: Lagrangian | None = None, label_beta: float = 1.0,
                    hidden_tau: float = 0.2) -> Graph:
    r"""Three layers, image ↔ hidden ↔ label, with one hidden neuron per stored (image, label) pair.

    .. math:: E = E_\text{image} + E_\text{hidden} + E_\text{label}
              - \sum_\mu \hat h_\mu\,\xi_\mu\cdot\hat v - \lambda\sum_\mu \hat h_\mu\,\hat\ell_{c_\mu}

    The hidden layer is a softmax with inverse temperature ``beta`` (a fast "which memory?" unit);
    the weights are written down from the data (no training): ``Xi`` = the images, ``labels`` =
    ``label_strength`` × one-hot(class). Clamp the image layer and relax to classify
    (:func:`classify`); clamp the label layer to generate an image of that class
    (:func:`generate`).

    Args:
        images: ``(K, D)`` stored images.
        labels: ``(K,)`` integer classes in ``[0, num_classes)``.
        num_classes: size of the label layer.
        beta: inverse temperature of the hidden softmax.
        label_strength: λ, the weight between a memory's hidden unit and its label.
        image_lagrangian: Lagrangian of the image layer (default :class:`~amtutor.lagrangians.Identity`).
        label_beta: inverse temperature of the label softmax.
        hidden_tau: time constant of the hidden layer (fast hidden units relax first).

    Returns:
        a :class:`~amtutor.hamux.Graph` with layers ``"image"`` (D), ``"hidden"`` (K) and
        ``"label"`` (``num_classes``).
    """
    images = as_float_array("images", images, ndim=2)
    labels = as_array("labels", labels, ndim=1)
    num_classes = check_int("num_classes", num_classes, minimum=1)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} entries but images has {images.shape[0]} rows")
    lab = jnp.asarray(labels)
    if not jnp.issubdtype(lab.dtype, jnp.integer) or bool(jnp.any((lab < 0) | (lab >= num_classes))):
        raise ValueError(f"labels must be integers in [0, {num_classes})")
    label_strength = check_positive("label_strength", label_strength)
    check_fits_float("label_strength", label_strength, jnp.float32)
    # checked here under their own names (Layer and Softmax would call them "tau", "beta", "lagrangian")
    beta = check_positive("beta", beta)
    label_beta = check_positive("label_beta", label_beta)
    hidden_tau = check_positive("hidden_tau", hidden_tau)
    for name, value in (("beta", beta), ("label_beta", label_beta), ("hidden_tau", hidden_tau)):
        check_fits_float(name, value, jnp.float32)
    if image_lagrangian is not None and not isinstance(image_lagrangian, Lagrangian):
        raise TypeError("image_lagrangian must be an amtutor.lagrangians.Lagrangian such as Identity() or "
                        f"Tanh(beta=1.0), or None, got {type(image_lagrangian).__name__}")
    K, D = images.shape
    return Graph(
        layers={
            "image": Layer(D, image_lagrangian if image_lagrangian is not None else Identity()),
            "hidden": Layer(K, Softmax(beta), tau=hidden_tau),
            "label": Layer(num_classes, Softmax(label_beta)),
        },
        synapses={
            "Xi": DenseSynapse(images.T),
            "labels": DenseSynapse(label_strength * jax.nn.one_hot(lab, num_classes)),
        },
        connections=[("Xi", "image", "hidden"), ("labels", "hidden", "label")],
    )


# --------------------------------------------------------------------------------------------
# Clamped inference
# --------------------------------------------------------------------------------------------


def clamped_state(graph: Graph, **values) -> States:
    """A starting state: zeros for every layer, except the layers named in ``values``.

    ``clamped_state(memory, image=x)`` gives ``{"image": x, "hidden": 0, "label": 0}`` (float32).
    Each given array must have its layer's shape.
    """
    _check_graph(graph)
    states = graph.init()
    for name, value in values.items():
        if name not in graph.layers:
            raise ValueError(f"{name!r} is not a layer of the graph (layers: {sorted(graph.layers)})")
        value = as_array(name, value)
        if tuple(value.shape) != graph.layers[name].shape:
            raise ValueError(f"{name} has shape {tuple(value.shape)}, but layer {name!r} has shape "
                             f"{graph.layers[name].shape}")
        states[name] = as_float_array(name, value)
    return states


def _check_graph(graph, layers=()):
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be an amtutor.hamux.Graph, got {type(graph).__name__}")
    missing = sorted(set(layers) - set(graph.layers))
    if missing:
        raise ValueError(f"graph needs layers {list(layers)} (as built by labelled_memory); "
                         f"missing {missing}")


def _num_classes(graph) -> int:
    shape = graph.layers["label"].shape
    if len(shape) != 1:
        raise ValueError(f"the label layer must be 1-D, got shape {shape}")
    return shape[0]


def _label_state(graph, label, label_scale):
    """``label_scale`` × one-hot(label): a label layer clamped to one class."""
    if label is None or isinstance(label, (str, bytes, float)):
        raise TypeError(f"label must be one integer class, got {type(label).__name__}")
    label = jnp.asarray(label)
    if not jnp.issubdtype(label.dtype, jnp.integer) or label.ndim != 0:
        raise TypeError(f"label must be one integer class, got dtype {label.dtype}, shape {label.shape}")
    num_classes = _num_classes(graph)
    if not isinstance(label, jax.core.Tracer) and not 0 <= int(label) < num_classes:
        raise ValueError(f"label must lie in [0, {num_classes}), got {int(label)}")
    label_scale = check_positive("label_scale", label_scale)
    return label_scale * jax.nn.one_hot(label, num_classes)


def _record_every(steps, record_every):
    """Default: record only the start and the end of the descent (``steps`` itself)."""
    if record_every is not None:
        return record_every
    return max(1, int(steps)) if isinstance(steps, numbers.Integral) else 1


class Classification(NamedTuple):
    """Result of :func:`classify`.

    Attributes:
        label: the predicted class, the most active label neuron (an int array of shape ``()``).
        activation: the label layer's activation after relaxation, shape ``(num_classes,)``.
        trajectory: the clamped descent (a :class:`~amtutor.hamux.Trajectory`).
    """

    label: Int[Array, ""]
    activation: Float[Array, " C"]
    trajectory: Trajectory


def classify(graph: Graph, image: Float[Array, " D"], *, dt: float = 0.05, steps: int = 400,
             record_every: int | None = None) -> Classification:
    """Clamp the image layer to ``image`` (shape ``(D,)``), relax hidden and label from zero, and
    read the most active label neuron.

    Args:
        graph: a graph with layers ``"image"`` and ``"label"`` (e.g. :func:`labelled_memory`).
        image: the example to classify, of the image layer's shape.
        dt, steps: Euler step and number of steps of :func:`amtutor.hamux.descend`.
        record_every: record the energy every this many steps (default: start and end only).

    Relaxation can stop in a local minimum (a label that gets ahead early reinforces itself);
    :func:`classify_by_energy` compares all labels instead.
    """
    _check_graph(graph, ("image", "label"))
    run = descend(graph, clamped_state(graph, image=image), dt=dt, steps=steps, clamped=("image",),
                  record_every=_record_every(steps, record_every))
    activation = graph.activations(run.final)["label"]
    return Classification(jnp.argmax(activation), activation, run)


def label_energies(graph: Graph, image: Float[Array, " D"], *, label_scale: float = 10.0,
                   dt: float = 0.05, steps: int = 200) -> Float[Array, " C"]:
    """Energy of each label for ``image``, shape ``(num_classes,)``: image and label (class c,
    clamped to ``label_scale`` × one-hot(c)) held fixed, the other layers relaxed from zero by
    ``steps`` Euler steps of size ``dt``. Eq. (3.22): the prediction is the label of lowest energy.
    """
    _check_graph(graph, ("image", "label"))
    num_classes = _num_classes(graph)
    label_scale = check_positive("label_scale", label_scale)

    def one(c):
        start = clamped_state(graph, image=image, label=label_scale * jax.nn.one_hot(c, num_classes))
        return descend(graph, start, dt=dt, steps=steps, clamped=("image", "label"),
                       record_every=_record_every(steps, None)).energies[-1]

    return jax.vmap(one)(jnp.arange(num_classes))


def classify_by_energy(graph: Graph, image: Float[Array, " D"], **options) -> Int[Array, ""]:
    """The label of lowest energy, ``argmin`` of :func:`label_energies` (``options`` go there)."""
    return jnp.argmin(label_energies(graph, image, **options))


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def generate(graph: Graph, label, *, key, image_scale: float = 0.1, label_scale: float = 10.0,
             dt: float = 0.05, steps: int = 400, record_every: int | None = None) -> Trajectory:
    """Clamp the label layer to class ``label`` and relax image and hidden layers from faint noise.

    The image starts as ``image_scale`` × a standard normal draw from ``key``; the label is clamped to
    ``label_scale`` × one-hot(label). The hidden softmax favours the stored examples of that class,
    the image is pulled towards their pixels, and as it sharpens one example wins (at large β).

    Returns:
        the :class:`~amtutor.hamux.Trajectory`: ``.final["image"]`` is the generated image,
        ``.states["image"]`` its path, recorded every ``record_every`` steps (default: start and
        end only).
    """
    _check_graph(graph, ("image", "label"))
    check_key("key", key)
    image_scale = check_positive("image_scale", image_scale, allow_zero=True)
    clamped_label = _label_state(graph, label, label_scale)
    image = image_scale * jax.random.normal(key, graph.layers["image"].shape)
    start = clamped_state(graph, image=image, label=clamped_label)
    return descend(graph, start, dt=dt, steps=steps, clamped=("label",),
                   record_every=_record_every(steps, record_every))


# ============================================================================================
# Associative memory as a machine-learning model (chapter 5 of the tutorial)
# ============================================================================================
#
# Everything below descends one energy of one state vector v with the library's one descent
# core: the energy is a synapse on a single Identity layer (hamux.state_energy_graph), and
# hamux.descend with dt = η takes exactly the steps v ← v − η m ⊙ ∇E(v) of eqs. 5.8–5.10,
# the units outside the mask m being clamped.

SIMILARITIES = ("dot", "negative_squared_distance")
SCALINGS = ("log", "identity")
MODES = ("x", "y", "none")  # what is given (clamped) in a supervised state z = [x; y]


def _general_similarity(name: str):
    return {"dot": dot_similarity, "negative_squared_distance": negative_squared_distance}[name]


class GeneralMemorySynapse(Synapse):
    r"""The general memory energy of eq. (5.7) on one layer,
    :math:`E_\beta(v;\Xi) = -Q\big(\sum_\mu F(\beta\,S[v,\xi^\mu])\big)` (φ = identity).

    ``memories`` ``(K, D)`` and ``beta`` are trainable leaves; ``similarity`` is ``"dot"`` or
    ``"negative_squared_distance"`` (−½‖v − ξ‖²), ``separation`` is ``"exp"`` (F = eᶻ) or an
    integer p ≥ 1 (F = zᵖ), ``scaling`` is ``"log"`` or ``"identity"`` (Q). With
    ``"exp"``/``"log"`` the energy is the log-sum-exp of eq. (5.13), computed stably.
    """

    memories: Float[Array, "K D"]
    beta: Float[Array, ""]
    similarity: str = eqx.field(static=True)
    separation: str | int = eqx.field(static=True)
    scaling: str = eqx.field(static=True)
    arity = 1

    def __init__(self, memories, *, beta, similarity="negative_squared_distance", separation="exp",
                 scaling="log"):
        self.memories = as_float_array("memories", memories, ndim=2)
        if self.memories.shape[0] == 0 or self.memories.shape[1] == 0:
            raise ValueError(f"memories is empty (shape {tuple(self.memories.shape)}): store at least one "
                             "memory of at least one coordinate")
        self.beta = jnp.asarray(_beta(beta), jnp.float32)
        self.similarity, self.separation, self.scaling = _energy_options(similarity, separation, scaling)

    def __call__(self, vhat):
        z = self.beta * _general_similarity(self.similarity)(self.memories, vhat)
        if self.separation == "exp":
            if self.scaling == "log":
                return -jax.nn.logsumexp(z)
            return -jnp.sum(jnp.exp(z))
        total = jnp.sum(z ** self.separation)
        return -jnp.log(total) if self.scaling == "log" else -total

    def check(self, shapes, names):
        (s,), (n,) = shapes, names
        if s != (self.memories.shape[1],):
            raise ValueError(f"memories of shape {self.memories.shape} need layer {n!r} to have shape "
                             f"({self.memories.shape[1]},), got {tuple(s)}")


def _energy_options(similarity, separation, scaling):
    for name, value, allowed in (("similarity", similarity, SIMILARITIES), ("scaling", scaling, SCALINGS)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be one of {list(allowed)}, got {type(value).__name__}")
        if value not in allowed:
            raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    if isinstance(separation, str):
        if separation != "exp":
            raise ValueError(f"separation must be 'exp' or an integer power p >= 1, got {separation!r}")
    else:
        separation = check_int("separation", separation, minimum=1)
        if scaling == "log" and separation % 2:
            raise ValueError(f"separation = {separation} (odd) with scaling='log' can take the log of a "
                             "negative sum: use an even power, 'exp', or scaling='identity'")
    return similarity, separation, scaling


def _beta(beta, name="beta"):
    beta = check_positive(name, beta)
    check_fits_float(name, beta, jnp.float32)
    return beta


def _points(name, x, dim=None, *, ndim=2, against="the memories"):
    x = as_float_array(name, x, ndim=ndim)
    if 0 in x.shape:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): give at least one point of at least "
                         "one coordinate")
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(f"{name} has {x.shape[-1]} coordinates but {against} have D = {dim}")
    return x


def _steps(steps):
    return check_int("steps", steps, minimum=1)


def memory_graph(memories: Float[Array, "K D"], *, beta: float, similarity: str = "negative_squared_distance",
                 separation: str | int = "exp", scaling: str = "log") -> Graph:
    r"""The energy of eq. (5.7) as a one-layer HAMUX graph (layer ``"v"``): descend it with
    :func:`clamped_descent` (or :func:`amtutor.hamux.descend` with ``dt = η``).

    Args:
        memories: ``(K, D)`` stored patterns Ξ (the model's parameters).
        beta: inverse temperature β > 0.
        similarity, separation, scaling: S, F and Q of eq. (5.7), see :class:`GeneralMemorySynapse`.
    """
    synapse = GeneralMemorySynapse(memories, beta=beta, similarity=similarity, separation=separation,
                                   scaling=scaling)
    return state_energy_graph(synapse.memories.shape[1], {"memory": synapse})


def memory_energy(memories: Float[Array, "K D"], v: Float[Array, " D"], *, beta: float,
                  similarity: str = "negative_squared_distance", separation: str | int = "exp",
                  scaling: str = "log") -> Float[Array, ""]:
    r""":math:`E_\beta(v;\Xi) = -Q\big(\sum_\mu F(\beta S[v,\xi^\mu])\big)` (eq. 5.7) of one state ``(D,)``."""
    graph = memory_graph(memories, beta=beta, similarity=similarity, separation=separation, scaling=scaling)
    v = _points("v", v, graph.layers[STATE_LAYER].shape[0], ndim=1)
    return graph.energy({STATE_LAYER: v})


def _check_state_graph(graph):
    if not isinstance(graph, Graph) or list(graph.layers) != [STATE_LAYER] or len(graph.layers[STATE_LAYER].shape) != 1:
        raise TypeError("graph must be a one-layer graph of a state vector (memory_graph, clam_graph, "
                        f"hamux.state_energy_graph), got {type(graph).__name__}")
    return graph.layers[STATE_LAYER].shape[0]


def _mask(mask, dim):
    mask = as_array("mask", mask, ndim=1)
    if mask.shape != (dim,):
        raise ValueError(f"mask has shape {tuple(mask.shape)} but the state has shape ({dim},)")
    if not jnp.issubdtype(mask.dtype, jnp.bool_):
        raise TypeError(f"mask must be boolean (True = the coordinate is updated), got dtype {mask.dtype}")
    return jnp.asarray(mask)


def clamped_descent(graph: Graph, v: Float[Array, " D"], *, eta: float, steps: int, mask=None,
                    record: bool = False) -> Trajectory:
    r"""The T-layer model of eqs. (5.8)–(5.10): :math:`v^{(0)} = v`,
    :math:`v^{(t)} = v^{(t-1)} - \eta\, m\odot\nabla_v E(v^{(t-1)})`, :math:`f^m(v) = v^{(T)}`.

    Runs :func:`amtutor.hamux.descend` on ``graph`` (a one-layer graph, e.g. :func:`memory_graph`)
    with ``dt = eta``; the coordinates where ``mask`` is False are clamped (they never move).

    Args:
        graph: a one-layer graph of the state (layer ``"v"``).
        v: the initial state ``(D,)``.
        eta: step size η > 0.
        steps: T ≥ 1, the number of layers.
        mask: boolean ``(D,)``, True = updated (the tutorial's m = 1); ``None``: every coordinate.
        record: keep every state (``.states["v"]`` of shape ``(T + 1, D)``) and energy, or only the
            start and the end.

    Returns:
        the :class:`~amtutor.hamux.Trajectory`; ``.final["v"]`` is :math:`v^{(T)}`.
    """
    dim = _check_state_graph(graph)
    v = _points("v", v, dim, ndim=1, against="the graph's state")
    eta = _beta(eta, "eta")
    steps = _steps(steps)
    clamped = () if mask is None else {STATE_LAYER: ~_mask(mask, dim)}
    return descend(graph, {STATE_LAYER: v}, dt=eta, steps=steps, clamped=clamped,
                   record_every=1 if record else None)


# --------------------------------------------------------------------------------------------
# Supervised learning: the state z = [x; y] (eqs. 5.15–5.18)
# --------------------------------------------------------------------------------------------


def supervised_mask(num_features: int, num_classes: int, *, given: str = "x") -> Array:
    """The mask m of a state z = [x; y] ``(d + k,)``, True where the coordinate is updated.

    ``given="x"``: m = [0_d; 1_k], predict y from x (eq. 5.16); ``"y"``: m = [1_d; 0_k], x from
    y (generation); ``"none"``: all ones, joint descent (completion of a corrupted pair).
    """
    d = check_int("num_features", num_features, minimum=1)
    k = check_int("num_classes", num_classes, minimum=1)
    if not isinstance(given, str):
        raise TypeError(f"given must be one of {list(MODES)}, got {type(given).__name__}")
    if given not in MODES:
        raise ValueError(f"given must be one of {list(MODES)}, got {given!r}")
    x_free, y_free = given != "x", given != "y"
    return jnp.concatenate([jnp.full(d, x_free), jnp.full(k, y_free)])


def _labels(labels, num_classes, count=None, against="x"):
    labels = as_array("labels", labels, ndim=1)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integer classes, got dtype {labels.dtype}")
    if count is not None and labels.shape[0] != count:
        raise ValueError(f"labels has {labels.shape[0]} entries but {against} has {count} rows")
    if labels.shape[0] and not isinstance(labels, jax.core.Tracer):
        low, high = int(jnp.min(labels)), int(jnp.max(labels))
        if low < 0 or high >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes}), got values from {low} to {high}")
    return jnp.asarray(labels)


def labelled_pairs(x: Float[Array, "K d"], labels: Int[Array, " K"], *, num_classes: int) -> Float[Array, "K dk"]:
    """The nonparametric memories ξ^μ = [x_μ; one-hot(c_μ)], shape ``(K, d + k)`` (section 5.2.3)."""
    num_classes = check_int("num_classes", num_classes, minimum=1)
    x = _points("x", x)
    labels = _labels(labels, num_classes, x.shape[0])
    return jnp.concatenate([x, jax.nn.one_hot(labels, num_classes, dtype=x.dtype)], axis=1)


def _supervised_options(memories, num_classes, beta, eta, steps):
    memories = _points("memories", memories)
    num_classes = check_int("num_classes", num_classes, minimum=1)
    if memories.shape[1] <= num_classes:
        raise ValueError(f"memories have {memories.shape[1]} coordinates, not more than num_classes = "
                         f"{num_classes}: a memory is [x; y] with d >= 1 features and k label units")
    return memories, num_classes, _beta(beta), _beta(eta, "eta"), _steps(steps)


def _predict_one(memories, x, num_classes, beta, eta, steps):
    """y^(T) = M v^(T) from v^(0) = [x; 1/k] with x clamped (traced values; no checks)."""
    graph = state_energy_graph(memories.shape[1], {"memory": GeneralMemorySynapse(memories, beta=beta)})
    d = memories.shape[1] - num_classes
    start = jnp.concatenate([x, jnp.full(num_classes, 1.0 / num_classes, x.dtype)])
    free = jnp.arange(memories.shape[1]) >= d
    run = descend(graph, {STATE_LAYER: start}, dt=eta, steps=steps, clamped={STATE_LAYER: ~free},
                  record_every=None)
    return run.final[STATE_LAYER][d:]


@partial(jax.jit, static_argnames=("num_classes", "steps"))
def _predict_batch(memories, x, beta, eta, *, num_classes, steps):
    return jax.vmap(lambda one: _predict_one(memories, one, num_classes, beta, eta, steps))(x)


def am_predict(memories: Float[Array, "K dk"], x: Float[Array, "B d"], *, num_classes: int, beta: float,
               eta: float, steps: int) -> Float[Array, "B k"]:
    r"""The readout :math:`g_\Xi(x) = M v^{(T)}` (eq. 5.17) for a batch of inputs ``(B, d)``.

    Each state starts at :math:`v^{(0)} = [x; \tfrac1k 1_k]` (eq. 5.15), x is clamped (mask
    :math:`[0_d; 1_k]`, eq. 5.16) and y descends the log-sum-exp energy (eq. 5.13) of ``memories``
    ``(K, d + k)`` (:func:`labelled_pairs`, or learned prototypes) for ``steps`` = T steps of size
    ``eta``. Returns the label coordinates ``(B, k)``.
    """
    memories, num_classes, beta, eta, steps = _supervised_options(memories, num_classes, beta, eta, steps)
    x = _points("x", x, memories.shape[1] - num_classes, against="the memories (minus the label units)")
    out = _predict_batch(memories, x, jnp.float32(beta), jnp.float32(eta), num_classes=num_classes, steps=steps)
    if not bool(jnp.all(jnp.isfinite(out))):
        raise ValueError(f"the descent diverged (non-finite readout): lower eta (got {eta})")
    return out


def am_classify(memories: Float[Array, "K dk"], x: Float[Array, "B d"], *, num_classes: int, beta: float,
                eta: float, steps: int) -> Int[Array, " B"]:
    """The predicted classes ``(B,)``: argmax of :func:`am_predict`'s readout."""
    return jnp.argmax(am_predict(memories, x, num_classes=num_classes, beta=beta, eta=eta, steps=steps), axis=1)


class TrainedMemory(NamedTuple):
    """Result of :func:`train_classifier` and :func:`train_clam`.

    Attributes:
        memories: the learned patterns, ``(K, D)`` (prototypes [x; y], or cluster centres).
        losses: the training objective at each iteration, ``(iterations,)``.
    """

    memories: Float[Array, "K D"]
    losses: Float[Array, " I"]


def _iterations(iterations):
    return check_int("iterations", iterations, minimum=1)


def _training_options(key, beta, eta, steps, iterations, learning_rate):
    """The checked settings shared by the two trainers (prototypes and ClAM centres): the descent's
    β, step η and depth T, and the optimiser's iterations and learning rate."""
    check_key("key", key)
    return (_beta(beta), _beta(eta, "eta"), _steps(steps), _iterations(iterations),
            _beta(learning_rate, "learning_rate"))


@partial(jax.jit, static_argnames=("num_classes", "steps", "iterations"))
def _fit_classifier(init, x, labels, beta, eta, rate, reg, *, num_classes, steps, iterations):
    import optax

    opt = optax.adam(optax.cosine_decay_schedule(rate, iterations))  # decays to 0: a settled end

    def objective(memories):
        y = jax.vmap(lambda one: _predict_one(memories, one, num_classes, beta, eta, steps))(x)
        ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(y, labels))
        return ce + reg * jnp.sum(jnp.sqrt(jnp.sum(memories**2, axis=1) + 1e-12))  # λ‖Ξ‖_{2,1}

    def step(carry, _):
        memories, state = carry
        loss, grad = jax.value_and_grad(objective)(memories)
        updates, state = opt.update(grad, state, memories)
        return (optax.apply_updates(memories, updates), state), loss

    (final, _), losses = jax.lax.scan(step, (init, opt.init(init)), None, length=iterations)
    return final, losses


def train_classifier(x: Float[Array, "m d"], labels: Int[Array, " m"], *, num_classes: int,
                     num_prototypes: int, key, beta: float, eta: float, steps: int, iterations: int = 200,
                     learning_rate: float = 0.02, regularization: float = 1e-4) -> TrainedMemory:
    r"""The parametric memory (eq. 5.18): K learned prototypes [x; y] trained by backpropagation
    through the T steps of :func:`am_predict`, with Adam (optax, learning rate decayed to 0 on a cosine schedule) on the full batch.

    Objective: :math:`\frac1m\sum_i \mathrm{CE}(c_i, M v^{(T)}(x_i)) + \lambda\lVert\Xi\rVert_{2,1}`,
    the softmax cross-entropy of the readout (the label coordinates are free, so they act as
    logits) plus λ = ``regularization`` times the sum of the prototypes' norms (the
    :math:`\ell_{2,1}` norm of the tutorial). The prototypes start as ``num_prototypes // k``
    random training examples of each class (the remainder from random classes), paired with
    their one-hot labels.

    Returns:
        a :class:`TrainedMemory` (prototypes ``(K, d + k)`` and the objective per iteration).
    """
    num_classes = check_int("num_classes", num_classes, minimum=1)
    x = _points("x", x)
    labels = _labels(labels, num_classes, x.shape[0])
    num_prototypes = check_int("num_prototypes", num_prototypes, minimum=1, maximum=x.shape[0],
                               why="(at most one prototype per training example)")
    beta, eta, steps, iterations, rate = _training_options(key, beta, eta, steps, iterations, learning_rate)
    reg = check_positive("regularization", regularization, allow_zero=True)
    check_fits_float("regularization", reg, jnp.float32)
    init = initial_prototypes(x, labels, num_classes=num_classes, num_prototypes=num_prototypes, key=key)
    memories, losses = _fit_classifier(init, x, labels, jnp.float32(beta), jnp.float32(eta), jnp.float32(rate),
                                       jnp.float32(reg), num_classes=num_classes, steps=steps,
                                       iterations=iterations)
    if not bool(jnp.all(jnp.isfinite(memories))):
        raise ValueError("training diverged (non-finite prototypes): lower learning_rate or eta")
    return TrainedMemory(memories, losses)


def initial_prototypes(x: Float[Array, "m d"], labels: Int[Array, " m"], *, num_classes: int,
                       num_prototypes: int, key) -> Float[Array, "K dk"]:
    """The untrained prototypes of :func:`train_classifier`: random training pairs [x; one-hot],
    as evenly spread over the classes as ``num_prototypes`` allows (a class with too few
    examples gives what it has)."""
    num_classes = check_int("num_classes", num_classes, minimum=1)
    x = _points("x", x)
    labels = np.asarray(_labels(labels, num_classes, x.shape[0]))
    num_prototypes = check_int("num_prototypes", num_prototypes, minimum=1, maximum=x.shape[0],
                               why="(at most one prototype per training example)")
    check_key("key", key)
    rng = np.random.default_rng(np.asarray(jax.random.randint(key, (2,), 0, 2**31 - 1)))
    order = rng.permutation(x.shape[0])
    by_class = [order[labels[order] == c] for c in range(num_classes)]
    picked, rank = [], 0
    while len(picked) < num_prototypes:  # round robin over classes: ranks 0, 1, ... of each class
        for members in by_class:
            if rank < len(members) and len(picked) < num_prototypes:
                picked.append(members[rank])
        rank += 1
    picked = np.asarray(picked)
    return labelled_pairs(x[picked], jnp.asarray(labels[picked]), num_classes=num_classes)


# --------------------------------------------------------------------------------------------
# Clustering with associative memory: ClAM (eqs. 5.19–5.23)
# --------------------------------------------------------------------------------------------


def _negative_square_distance_full(centres, vhat):
    # S = −‖v − c‖² (eq. 5.22 has no ½), from the differences (no cancellation near a centre)
    return -jnp.sum((vhat - centres) ** 2, axis=-1)


def clam_graph(centres: Float[Array, "k D"], *, beta: float) -> Graph:
    r"""The ClAM energy (eq. 5.22), :math:`E_\beta(v;\Xi) = -\frac1\beta\log\sum_j e^{-\beta\lVert v-c_j\rVert^2}`,
    as a one-layer graph: the library's :class:`~amtutor.hamux.MemorySynapse` with similarity
    −‖v − c‖² and a ``Softmax(beta)`` separation. Its gradient is :math:`2\sum_j p_j (v - c_j)`
    with :math:`p = \mathrm{softmax}(-\beta\lVert v-c_j\rVert^2)`."""
    centres = _points("centres", centres)
    synapse = MemorySynapse(centres, Softmax(_beta(beta)), similarity=_negative_square_distance_full)
    return state_energy_graph(centres.shape[1], {"centres": synapse})


def _clam_final(centres, v, beta, eta, steps, free=None):
    graph = state_energy_graph(centres.shape[1], {"centres": MemorySynapse(
        centres, Softmax(beta), similarity=_negative_square_distance_full)})
    clamped = () if free is None else {STATE_LAYER: ~free}
    return descend(graph, {STATE_LAYER: v}, dt=eta, steps=steps, clamped=clamped,
                   record_every=None).final[STATE_LAYER]


@partial(jax.jit, static_argnames=("steps",))
def _clam_batch(centres, points, beta, eta, *, steps):
    return jax.vmap(lambda v: _clam_final(centres, v, beta, eta, steps))(points)


def _clam_options(centres, points, beta, eta, steps):
    centres = _points("centres", centres)
    points = _points("points", points, centres.shape[1], against="the centres")
    return centres, points, _beta(beta), _beta(eta, "eta"), _steps(steps)


def clam_energy(centres: Float[Array, "k D"], points: Float[Array, "B D"], *, beta: float) -> Float[Array, " B"]:
    """The ClAM energy (eq. 5.22, :func:`clam_graph`) of a batch of points ``(B, D)``."""
    graph = clam_graph(centres, beta=beta)
    points = _points("points", points, graph.layers[STATE_LAYER].shape[0], against="the centres")
    return jax.vmap(lambda v: graph.energy({STATE_LAYER: v}))(points)


def clam_descent(centres: Float[Array, "k D"], points: Float[Array, "B D"], *, beta: float, eta: float,
                 steps: int) -> Float[Array, "B D"]:
    r""":math:`f_\Xi(x) = v^{(T)}`: ``steps`` = T descent steps of size ``eta`` on the ClAM energy from
    each point ``(B, D)`` (:func:`amtutor.hamux.descend` under ``vmap`` and ``jit``)."""
    centres, points, beta, eta, steps = _clam_options(centres, points, beta, eta, steps)
    out = _clam_batch(centres, points, jnp.float32(beta), jnp.float32(eta), steps=steps)
    if not bool(jnp.all(jnp.isfinite(out))):
        raise ValueError(f"the descent diverged (non-finite states): lower eta (got {eta})")
    return out


def _clam_loss(centres, points, beta, eta, steps):
    out = jax.vmap(lambda v: _clam_final(centres, v, beta, eta, steps))(points)
    return jnp.mean(jnp.sum((points - out) ** 2, axis=1))


def _masked_clam_loss(centres, points, key, beta, eta, steps, fraction):
    hidden = jax.random.bernoulli(key, fraction, points.shape)  # the coordinates to fill in (m̄)
    starts = jnp.where(hidden, 0.0, points)  # m ⊙ x
    out = jax.vmap(lambda v, h: _clam_final(centres, v, beta, eta, steps, free=h))(starts, hidden)
    return jnp.mean(jnp.sum((points - out) ** 2, axis=1))


def clam_loss(centres: Float[Array, "k D"], points: Float[Array, "B D"], *, beta: float, eta: float,
              steps: int) -> Float[Array, ""]:
    r"""The ClAM loss (eq. 5.21), averaged over the points: :math:`\frac1B\sum_i\lVert x_i - f_\Xi(x_i)\rVert^2`."""
    centres, points, beta, eta, steps = _clam_options(centres, points, beta, eta, steps)
    return _clam_loss(centres, points, jnp.float32(beta), jnp.float32(eta), steps)


def _fraction(mask_fraction):
    return check_probability("mask_fraction", mask_fraction, open_low=True, open_high=True)


def masked_clam_loss(centres: Float[Array, "k D"], points: Float[Array, "B D"], *, key, beta: float, eta: float,
                     steps: int, mask_fraction: float = 0.3) -> Float[Array, ""]:
    r"""The self-supervised masked loss (eq. 5.23), one draw of the masks:
    :math:`\frac1B\sum_i\lVert x_i - f^{\bar m_i}_\Xi(m_i\odot x_i)\rVert^2`.

    Each coordinate is hidden (set to 0 and left free) with probability ``mask_fraction``; the
    others are clamped to their values; the descent fills the hidden ones in.
    """
    centres, points, beta, eta, steps = _clam_options(centres, points, beta, eta, steps)
    check_key("key", key)
    fraction = _fraction(mask_fraction)
    return _masked_clam_loss(centres, points, key, jnp.float32(beta), jnp.float32(eta), steps,
                             jnp.float32(fraction))


@partial(jax.jit, static_argnames=("steps", "iterations", "masked"))
def _fit_clam(init, points, key, beta, eta, rate, fraction, *, steps, iterations, masked):
    import optax

    opt = optax.adam(optax.cosine_decay_schedule(rate, iterations))  # decays to 0: a settled end

    def step(carry, k):
        centres, state = carry
        if masked:
            loss, grad = jax.value_and_grad(_masked_clam_loss)(centres, points, k, beta, eta, steps, fraction)
        else:
            loss, grad = jax.value_and_grad(_clam_loss)(centres, points, beta, eta, steps)
        updates, state = opt.update(grad, state, centres)
        return (optax.apply_updates(centres, updates), state), loss

    keys = jax.random.split(key, iterations)
    (final, _), losses = jax.lax.scan(step, (init, opt.init(init)), keys)
    return final, losses


def train_clam(points: Float[Array, "m D"], num_clusters: int, *, key, beta: float, eta: float, steps: int,
               iterations: int = 200, learning_rate: float = 0.05, masked: bool = False,
               mask_fraction: float = 0.3) -> TrainedMemory:
    r"""Clustering with associative memory (ClAM): learn ``num_clusters`` centres by minimising
    the loss of eq. (5.21) (or the masked loss of eq. 5.23 with ``masked=True``, fresh masks at
    every iteration) by backpropagation through the T = ``steps`` descent steps, with Adam
    (optax, learning rate decayed to 0 on a cosine schedule) on the full batch. The centres start at random points of the data (from ``key``).

    Returns:
        a :class:`TrainedMemory` (centres ``(k, D)`` and the loss per iteration); assign points
        with :func:`basin_assignment` or :func:`voronoi_assignment`.
    """
    points = _points("points", points)
    num_clusters = check_int("num_clusters", num_clusters, minimum=1, maximum=points.shape[0],
                             why="(at most one cluster per point)")
    beta, eta, steps, iterations, rate = _training_options(key, beta, eta, steps, iterations, learning_rate)
    if not isinstance(masked, (bool, np.bool_)):
        raise TypeError(f"masked must be True or False, got {type(masked).__name__}")
    fraction = _fraction(mask_fraction)
    k_init, k_fit = jax.random.split(key)
    init = points[jax.random.choice(k_init, points.shape[0], (num_clusters,), replace=False)]
    centres, losses = _fit_clam(init, points, k_fit, jnp.float32(beta), jnp.float32(eta), jnp.float32(rate),
                                jnp.float32(fraction), steps=steps, iterations=iterations, masked=bool(masked))
    if not bool(jnp.all(jnp.isfinite(centres))):
        raise ValueError("training diverged (non-finite centres): lower learning_rate or eta")
    return TrainedMemory(centres, losses)


def voronoi_assignment(centres: Float[Array, "k D"], points: Float[Array, "B D"]) -> Int[Array, " B"]:
    """The index of the nearest centre of each point ``(B,)``: its Voronoi cell (k-means' assignment)."""
    centres = _points("centres", centres)
    points = _points("points", points, centres.shape[1], against="the centres")
    return jnp.argmin(jnp.sum((points[:, None, :] - centres[None]) ** 2, axis=-1), axis=1)


def basin_assignment(centres: Float[Array, "k D"], points: Float[Array, "B D"], *, beta: float, eta: float,
                     steps: int) -> Int[Array, " B"]:
    """The basin of each point ``(B,)``: the centre nearest to where T = ``steps`` descent steps on
    the ClAM energy take it (:func:`clam_descent`)."""
    centres = _points("centres", centres)
    return voronoi_assignment(centres, clam_descent(centres, points, beta=beta, eta=eta, steps=steps))


def kmeans_objective(centres: Float[Array, "k D"], points: Float[Array, "B D"]) -> Float[Array, ""]:
    r"""The k-means objective (eq. 5.19), :math:`\sum_i\min_j\lVert x_i - c_j\rVert^2` (scikit-learn's
    ``inertia_``)."""
    centres = _points("centres", centres)
    points = _points("points", points, centres.shape[1], against="the centres")
    return jnp.sum(jnp.min(jnp.sum((points[:, None, :] - centres[None]) ** 2, axis=-1), axis=1))
