"""Clamped inference with the labelled memory: structure, classification two ways, generation, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp, softmax

from amtutor import lagrangians as L
from amtutor import learning
from amtutor.data import binary_patterns
from amtutor.hamux import DenseSynapse, Graph, Layer

IMAGES = binary_patterns(6, 16, key=jax.random.key(50))
LABELS = jnp.array([0, 1, 2, 0, 1, 2])


def small_memory(**options):
    return learning.labelled_memory(IMAGES, LABELS, num_classes=3, beta=2.0, label_strength=5.0, **options)


def test_labelled_memory_structure_and_errors():
    g = small_memory()
    assert list(g.layers) == ["image", "hidden", "label"]
    assert g.layers["hidden"].shape == (6,) and g.layers["label"].shape == (3,)
    np.testing.assert_array_equal(g.synapses["labels"].W, 5.0 * jax.nn.one_hot(LABELS, 3))
    np.testing.assert_array_equal(g.synapses["Xi"].W, IMAGES.T)
    with pytest.raises(ValueError, match="labels has 5 entries but images has 6 rows"):
        learning.labelled_memory(IMAGES, LABELS[:5], num_classes=3)
    with pytest.raises(ValueError, match="labels must be integers in \\[0, 2\\)"):
        learning.labelled_memory(IMAGES, LABELS, num_classes=2)
    with pytest.raises(ValueError, match="label_strength must be > 0"):
        learning.labelled_memory(IMAGES, LABELS, num_classes=3, label_strength=0.0)
    with pytest.raises(ValueError, match="images contains NaN"):
        learning.labelled_memory(IMAGES * jnp.nan, LABELS, num_classes=3)


def test_clamped_state_is_zeros_except_the_given_layers():
    g = small_memory()
    xs = learning.clamped_state(g, image=IMAGES[2])
    np.testing.assert_array_equal(xs["image"], IMAGES[2])
    assert xs["image"].dtype == jnp.float32
    assert not np.any(xs["hidden"]) and not np.any(xs["label"])
    with pytest.raises(ValueError, match="'pixels' is not a layer"):
        learning.clamped_state(g, pixels=IMAGES[0])
    with pytest.raises(ValueError, match="label has shape \\(4,\\), but layer 'label' has shape \\(3,\\)"):
        learning.clamped_state(g, label=jnp.zeros(4))


def test_classify_recovers_the_labels_of_stored_images():
    g = small_memory()
    for i in range(6):
        result = learning.classify(g, IMAGES[i], dt=0.05, steps=300)
        assert int(result.label) == int(LABELS[i])
        assert result.activation.shape == (3,)
        assert result.trajectory.energies.shape == (2,)  # default: start and end only
        assert float(result.trajectory.energies[-1]) < float(result.trajectory.energies[0])
        np.testing.assert_array_equal(result.trajectory.final["image"], IMAGES[i])  # clamped
    # batched with vmap under jit, recording every 50 steps
    batch = jax.jit(jax.vmap(lambda x: learning.classify(g, x, steps=300, record_every=50)))(IMAGES)
    np.testing.assert_array_equal(batch.label, LABELS)
    assert batch.trajectory.energies.shape == (6, 7)


def test_label_energies_equal_the_closed_form():
    """With image and label clamped, the relaxed hidden layer gives E = E_image + E_label − lse/β."""
    g = small_memory()
    p = np.asarray(IMAGES[1], np.float64) * 0.8
    table = np.asarray(learning.label_energies(g, p, label_scale=10.0, steps=200))
    Xi, C = np.asarray(IMAGES, np.float64), np.eye(3)[np.asarray(LABELS)]
    lhat = softmax(10.0 * np.eye(3), axis=1)
    e_label = np.sum(lhat * np.log(lhat), axis=1)  # softmax neuron energy (β = 1)
    h = (Xi @ p)[None, :] + 5.0 * lhat @ C.T  # (3 labels, K)
    closed = 0.5 * p @ p + e_label - logsumexp(2.0 * h, axis=1) / 2.0
    np.testing.assert_allclose(table, closed, rtol=1e-4, atol=1e-4)
    assert int(learning.classify_by_energy(g, p)) == int(np.argmin(closed)) == 1


def test_generate_recalls_a_stored_example_of_the_clamped_class():
    images = binary_patterns(9, 32, key=jax.random.key(3))
    labels = jnp.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    g = learning.labelled_memory(images, labels, num_classes=3, beta=2.0)
    for c in range(3):
        run = learning.generate(g, c, key=jax.random.key(c), steps=400, record_every=100)
        assert run.states["image"].shape == (5, 32)
        np.testing.assert_allclose(run.final["label"], 10.0 * jax.nn.one_hot(c, 3))  # clamped
        overlap = np.asarray(images) @ np.asarray(run.final["image"]) / 32
        assert int(labels[np.argmax(overlap)]) == c and overlap.max() > 0.9
        assert np.all(np.diff(np.asarray(run.energies)) <= 1e-5)
    # the same draw under vmap and jit (one compilation for all classes)
    batch = jax.jit(jax.vmap(lambda c, k: learning.generate(g, c, key=k).final["image"]))(
        jnp.arange(3), jnp.stack([jax.random.key(c) for c in range(3)]))
    single = learning.generate(g, 1, key=jax.random.key(1)).final["image"]
    np.testing.assert_allclose(batch[1], single, atol=1e-6)


def test_any_graph_with_image_and_label_layers_works():
    W = 0.5 * jax.random.normal(jax.random.key(0), (16, 3))
    g = Graph(layers={"image": Layer(16, L.Identity()), "label": Layer(3, L.Softmax(1.0))},
              synapses={"W": DenseSynapse(W)}, connections=[("W", "image", "label")])
    x = jax.random.normal(jax.random.key(1), (16,))
    result = learning.classify(g, x, steps=400)
    # relaxed: label state = Wᵀ x (the only input current), so the guess is argmax of Wᵀ x
    np.testing.assert_allclose(result.trajectory.final["label"], W.T @ x, atol=1e-3)
    assert int(result.label) == int(jnp.argmax(W.T @ x))


def test_errors_name_the_culprit():
    g = small_memory()
    plain = Graph(layers={"v": Layer(4, L.Tanh(1.0))}, synapses={"W": DenseSynapse(jnp.eye(4))},
                  connections=[("W", "v", "v")])
    with pytest.raises(TypeError, match="graph must be an amtutor.hamux.Graph"):
        learning.classify({"image": 1}, IMAGES[0])
    with pytest.raises(ValueError, match="missing \\['image', 'label'\\]"):
        learning.classify(plain, IMAGES[0])
    with pytest.raises(ValueError, match="image has shape \\(15,\\)"):
        learning.classify(g, IMAGES[0][:15])
    with pytest.raises(ValueError, match="label must lie in \\[0, 3\\), got 3"):
        learning.generate(g, 3, key=jax.random.key(0))
    with pytest.raises(TypeError, match="label must be one integer class"):
        learning.generate(g, 1.5, key=jax.random.key(0))
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        learning.generate(g, 1, key=0)
    with pytest.raises(ValueError, match="label_scale must be > 0"):
        learning.label_energies(g, IMAGES[0], label_scale=0.0)
    with pytest.raises(ValueError, match="dt must be > 0"):
        learning.classify(g, IMAGES[0], dt=0.0)


def test_labelled_memory_names_its_own_arguments():
    """hidden_tau=-1 said "tau", label_beta=nan "beta", image_lagrangian="tanh" "lagrangian", and
    images beyond float32 "W" (the synapse it became)."""
    images, labels = np.ones((2, 3)), [0, 1]
    cases = [
        (dict(hidden_tau=-1.0), ValueError, "hidden_tau must be > 0, got -1.0"),
        (dict(label_beta=float("nan")), ValueError, "label_beta must be finite, got nan"),
        (dict(beta=0.0), ValueError, "beta must be > 0"),
        (dict(image_lagrangian="tanh"), TypeError, "image_lagrangian must be an amtutor.lagrangians.Lagrangian .* got str"),
        (dict(label_strength=1e39), ValueError, "label_strength has a value of magnitude 1e\\+39"),
    ]
    for options, exc, match in cases:
        with pytest.raises(exc, match=match):
            learning.labelled_memory(images, labels, num_classes=2, **options)
    with pytest.raises(ValueError, match="images has a value of magnitude 1e\\+39, beyond the largest float32"):
        learning.labelled_memory(np.full((2, 3), 1e39), labels, num_classes=2)
    with pytest.raises(ValueError, match="images contains NaN"):
        learning.labelled_memory(np.full((2, 3), np.nan), labels, num_classes=2)


def test_clamped_values_and_keys_are_checked():
    g = small_memory()
    with pytest.raises(ValueError, match="image contains NaN or infinite values"):
        learning.clamped_state(g, image=IMAGES[0].at[0].set(jnp.nan))
    with pytest.raises(ValueError, match="image contains NaN"):
        learning.classify(g, IMAGES[0].at[0].set(jnp.nan))
    with pytest.raises(ValueError, match="key must be one key, not a batch of keys"):
        learning.generate(g, 1, key=jax.random.split(jax.random.key(0), 2))
    # traced values are not checked: vmap over a batch still works
    labels = jax.vmap(lambda x: learning.classify(g, x, steps=20).label)(IMAGES[:2])
    assert labels.shape == (2,)
