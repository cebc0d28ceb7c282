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


# ---- associative memory as a machine-learning model (chapter 5) ----------------------------

XI = jax.random.normal(jax.random.key(7), (5, 4))
V = jnp.array([0.3, -0.2, 0.5, 0.1])


def _direct_energy(xi, v, beta, similarity, separation, scaling):
    xi, v = np.asarray(xi, np.float64), np.asarray(v, np.float64)
    s = xi @ v if similarity == "dot" else -0.5 * np.sum((v - xi) ** 2, axis=1)
    z = beta * s
    if separation == "exp":
        return -logsumexp(z) if scaling == "log" else -np.sum(np.exp(z))
    total = np.sum(z**separation)
    return -np.log(total) if scaling == "log" else -total


@pytest.mark.parametrize("similarity", ["dot", "negative_squared_distance"])
@pytest.mark.parametrize("separation,scaling", [("exp", "log"), ("exp", "identity"), (2, "log"),
                                                (2, "identity"), (3, "identity")])
def test_memory_energy_is_eq_5_7(similarity, separation, scaling):
    e = learning.memory_energy(XI, V, beta=1.5, similarity=similarity, separation=separation, scaling=scaling)
    np.testing.assert_allclose(e, _direct_energy(XI, V, 1.5, similarity, separation, scaling), rtol=1e-5)


def test_clamped_descent_is_masked_gradient_descent():
    """v ← v − η m ⊙ ∇E(v) (eq. 5.9), step by step, against jax.grad of the direct formula."""
    mask = jnp.array([True, False, True, False])
    run = learning.clamped_descent(learning.memory_graph(XI, beta=2.0), V, eta=0.05, steps=6, mask=mask,
                                   record=True)
    grad = jax.grad(lambda v: -jax.nn.logsumexp(-1.0 * jnp.sum((v - XI) ** 2, axis=1)))
    v = V
    for t in range(6):
        v = v - 0.05 * jnp.where(mask, grad(v), 0.0)
        np.testing.assert_allclose(run.states["v"][t + 1], v, atol=1e-6)
    np.testing.assert_array_equal(run.final["v"][~mask], V[~mask])
    assert learning.clamped_descent(learning.memory_graph(XI, beta=2.0), V, eta=0.05, steps=6).states["v"].shape == (2, 4)


def test_supervised_mask_modes_and_pairs():
    np.testing.assert_array_equal(learning.supervised_mask(3, 2), [False] * 3 + [True] * 2)
    np.testing.assert_array_equal(learning.supervised_mask(3, 2, given="y"), [True] * 3 + [False] * 2)
    np.testing.assert_array_equal(learning.supervised_mask(3, 2, given="none"), [True] * 5)
    pairs = learning.labelled_pairs(IMAGES, LABELS, num_classes=3)
    assert pairs.shape == (6, 19)
    np.testing.assert_array_equal(pairs[:, 16:], jax.nn.one_hot(LABELS, 3))
    with pytest.raises(ValueError, match="given must be one of"):
        learning.supervised_mask(3, 2, given="both")
    with pytest.raises(ValueError, match="labels has 5 entries but x has 6 rows"):
        learning.labelled_pairs(IMAGES, LABELS[:5], num_classes=3)
    with pytest.raises(TypeError, match="labels must be integer classes"):
        learning.labelled_pairs(IMAGES, LABELS * 1.0, num_classes=3)


def test_am_classify_recovers_stored_labels_and_generation_recalls():
    pairs = learning.labelled_pairs(IMAGES, LABELS, num_classes=3)
    guess = learning.am_classify(pairs, IMAGES, num_classes=3, beta=1.0, eta=1.0, steps=3)
    np.testing.assert_array_equal(guess, LABELS)
    y = learning.am_predict(pairs, IMAGES[:2], num_classes=3, beta=1.0, eta=1.0, steps=3)
    assert y.shape == (2, 3)
    # x given y: clamp a label, the image part moves towards that class's stored images
    graph = learning.memory_graph(pairs, beta=1.0)
    start = jnp.concatenate([jnp.zeros(16), jax.nn.one_hot(2, 3)])
    out = learning.clamped_descent(graph, start, eta=1.0, steps=5,
                                   mask=learning.supervised_mask(16, 3, given="y")).final["v"]
    np.testing.assert_array_equal(out[16:], jax.nn.one_hot(2, 3))
    overlaps = IMAGES @ out[:16]
    assert int(LABELS[jnp.argmax(overlaps)]) == 2


def test_train_classifier_learns_separable_classes():
    key_a, key_b = jax.random.split(jax.random.key(11))
    x = jnp.concatenate([jax.random.normal(key_a, (30, 3)) + 2.0, jax.random.normal(key_b, (30, 3)) - 2.0])
    labels = jnp.array([0] * 30 + [1] * 30)
    init = learning.initial_prototypes(x, labels, num_classes=2, num_prototypes=4, key=jax.random.key(0))
    np.testing.assert_array_equal(jnp.argmax(init[:, 3:], 1), [0, 1, 0, 1])  # round robin over classes
    result = learning.train_classifier(x, labels, num_classes=2, num_prototypes=4, key=jax.random.key(0),
                                       beta=1.0, eta=1.0, steps=2, iterations=60, learning_rate=0.05)
    assert result.memories.shape == (4, 5) and result.losses.shape == (60,)
    assert float(result.losses[-1]) < float(result.losses[0])
    guess = learning.am_classify(result.memories, x, num_classes=2, beta=1.0, eta=1.0, steps=2)
    assert float(jnp.mean(guess == labels)) > 0.95
    with pytest.raises(ValueError, match="num_prototypes must be <= 60"):
        learning.train_classifier(x, labels, num_classes=2, num_prototypes=61, key=jax.random.key(0),
                                  beta=1.0, eta=1.0, steps=2)


def test_clam_energy_and_descent_closed_forms():
    centres = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    points = jnp.array([[0.2, 0.1], [0.9, 1.5], [-0.3, 0.4]])
    beta = 2.5
    d2 = np.sum((np.asarray(points)[:, None] - np.asarray(centres)[None]) ** 2, -1)
    np.testing.assert_allclose(learning.clam_energy(centres, points, beta=beta),
                               -logsumexp(-beta * d2, axis=1) / beta, rtol=1e-5)
    # one step: v − η · 2 Σ_j p_j (v − c_j)
    p = softmax(-beta * d2, axis=1)
    step = np.asarray(points) - 0.1 * 2 * (np.asarray(points) - p @ np.asarray(centres))
    np.testing.assert_allclose(learning.clam_descent(centres, points, beta=beta, eta=0.1, steps=1), step, atol=1e-6)
    # the loss of eq. 5.21 (mean over points) and the k-means objective
    out = learning.clam_descent(centres, points, beta=beta, eta=0.1, steps=4)
    np.testing.assert_allclose(learning.clam_loss(centres, points, beta=beta, eta=0.1, steps=4),
                               np.mean(np.sum((np.asarray(points) - np.asarray(out)) ** 2, 1)), rtol=1e-5)
    np.testing.assert_allclose(learning.kmeans_objective(centres, points), d2.min(1).sum(), rtol=1e-6)
    np.testing.assert_array_equal(learning.voronoi_assignment(centres, points), d2.argmin(1))
    # large β, enough steps: every point lands in its own Voronoi cell
    np.testing.assert_array_equal(learning.basin_assignment(centres, points, beta=100.0, eta=0.2, steps=20),
                                  d2.argmin(1))


def test_masked_clam_loss_fills_in_hidden_coordinates():
    centres = jnp.array([[0.0, 0.0, 0.0], [3.0, 3.0, 3.0]])
    points = jnp.array([[0.1, 0.0, -0.1], [2.9, 3.1, 3.0]])
    loss = learning.masked_clam_loss(centres, points, key=jax.random.key(0), beta=5.0, eta=0.2, steps=20,
                                     mask_fraction=0.3)
    assert 0.0 <= float(loss) < 0.1  # hidden coordinates refilled from the right centre
    with pytest.raises(ValueError, match="mask_fraction must lie in \\(0.0, 1.0\\)"):
        learning.masked_clam_loss(centres, points, key=jax.random.key(0), beta=5.0, eta=0.2, steps=2,
                                  mask_fraction=1.0)


@pytest.mark.parametrize("masked", [False, True])
def test_train_clam_finds_well_separated_centres(masked):
    # 6-D, so that the masked loss (eq. 5.23) has visible coordinates to infer the hidden ones from
    truth = jnp.repeat(jnp.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]]), 3, axis=1)
    noise = 0.3 * jax.random.normal(jax.random.key(5), (3, 40, 6))
    points = (truth[:, None] + noise).reshape(-1, 6)
    # Like Lloyd's k-means, ClAM finds a local optimum: take the first key whose random starting
    # centres (train_clam's draw, reproduced here) fall in three different blobs.
    def starts_in_every_blob(key):
        first = jax.random.choice(jax.random.split(key)[0], 120, (3,), replace=False)
        return len(set(np.asarray(first) // 40)) == 3

    key = next(k for k in map(jax.random.key, range(50)) if starts_in_every_blob(k))
    result = learning.train_clam(points, 3, key=key, beta=3.0, eta=0.1, steps=10, iterations=150,
                                 learning_rate=0.1, masked=masked)
    nearest = np.min(np.linalg.norm(np.asarray(result.memories)[:, None] - np.asarray(truth)[None], axis=-1), 0)
    # the masked loss biases the centres outwards: T = 10 steps leave the hidden coordinates
    # (started at 0) short of their centre, and the centres move out to compensate
    assert np.all(nearest < (1.0 if masked else 0.2))
    cells = np.asarray(learning.voronoi_assignment(result.memories, points)).reshape(3, 40)
    assert all(len(set(row)) == 1 for row in cells) and len(set(cells[:, 0])) == 3  # the blobs
    with pytest.raises(ValueError, match="num_clusters must be <= 120"):
        learning.train_clam(points, 121, key=jax.random.key(1), beta=3.0, eta=0.1, steps=2)
    with pytest.raises(TypeError, match="masked must be True or False"):
        learning.train_clam(points, 3, key=jax.random.key(1), beta=3.0, eta=0.1, steps=2, masked="yes")


def test_ml_errors_name_the_culprit():
    with pytest.raises(ValueError, match="similarity must be one of"):
        learning.memory_graph(XI, beta=1.0, similarity="cosine")
    with pytest.raises(ValueError, match="separation = 3 \\(odd\\) with scaling='log'"):
        learning.memory_graph(XI, beta=1.0, separation=3)
    with pytest.raises(TypeError, match="graph must be a one-layer graph"):
        learning.clamped_descent(small_memory(), V, eta=0.1, steps=2)
    with pytest.raises(TypeError, match="mask must be boolean"):
        learning.clamped_descent(learning.memory_graph(XI, beta=1.0), V, eta=0.1, steps=2, mask=np.ones(4))
    with pytest.raises(ValueError, match="eta must be > 0"):
        learning.clam_descent(XI[:, :2], XI[:, :2], beta=1.0, eta=0.0, steps=2)
    with pytest.raises(ValueError, match="points has 3 coordinates but the centres have D = 2"):
        learning.kmeans_objective(XI[:, :2], XI[:, :3])
    with pytest.raises(ValueError, match="memories have 3 coordinates, not more than num_classes = 3"):
        learning.am_predict(XI[:, :3], XI[:, :1], num_classes=3, beta=1.0, eta=1.0, steps=1)
    with pytest.raises(ValueError, match="x has 2 coordinates but the memories \\(minus the label units\\)"):
        learning.am_predict(XI, XI[:, :2], num_classes=3, beta=1.0, eta=1.0, steps=1)
    with pytest.raises(ValueError, match="the descent diverged"):
        learning.clam_descent(XI[:, :2], 100 * XI[:, :2] + 50, beta=1.0, eta=5.0, steps=30)
