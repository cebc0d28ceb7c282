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
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .hamux import DenseSynapse, Graph, Layer, Trajectory, descend
from .lagrangians import Identity, Lagrangian, Softmax
from .validation import as_array, as_float_array, check_fits_float, check_int, check_key, check_positive

__all__ = [
    "labelled_memory",
    "clamped_state",
    "Classification",
    "classify",
    "label_energies",
    "classify_by_energy",
    "generate",
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
