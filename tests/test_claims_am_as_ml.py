"""Every quantitative claim of book/am_as_ml.md, recomputed with the chapter's data, seeds and
settings (the fixtures are shared, module-scoped, so the expensive fits run once)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from amtutor import learning

NUM_CLASSES = 10
BETA, STEPS = 10.0, 3  # the chapter's nonparametric memory
P_BETA, P_STEPS, P_PROTOTYPES, P_ITERATIONS, P_RATE = 0.5, 2, 20, 600, 0.03  # parametric
# Measured 97.3% (issue 12, this split); the floor leaves 2.3 points for other JAX/BLAS builds
# (about 3.5 standard errors of a 450-image test set, see below).
PARAMETRIC_FLOOR = 0.95
CLUSTER_BOX, CLUSTER_ETA = 0.65, 0.2
CLAM_BETA, CLAM_ETA, CLAM_STEPS = 3.0, 0.1, 10
# Measured 1.0078 (200 iterations, every key 0..3 within 1.0079); KMeans takes the best of ten
# restarts, so ClAM's soft descent at finite β is allowed 5% above it.
CLAM_FACTOR = 1.05


@pytest.fixture(scope="module")
def digits():
    pixels, labels = load_digits(return_X_y=True)
    pixels = (pixels / 16.0).astype(np.float32)
    return train_test_split(pixels, labels, test_size=0.25, random_state=0, stratify=labels)


def _accuracy(patterns, x_test, y_test, beta, steps):
    guess = learning.am_classify(patterns, x_test, num_classes=NUM_CLASSES, beta=beta, eta=1 / beta,
                                 steps=steps)
    return float(np.mean(np.asarray(guess) == y_test))


@pytest.fixture(scope="module")
def baselines(digits):
    x_train, x_test, y_train, y_test = digits
    knn = KNeighborsClassifier(n_neighbors=1).fit(x_train, y_train).score(x_test, y_test)
    logreg = LogisticRegression(max_iter=2000).fit(x_train, y_train).score(x_test, y_test)
    return knn, logreg


def test_split_sizes(digits):
    x_train, x_test, _, _ = digits
    assert (len(x_train), len(x_test)) == (1347, 450)


def test_nonparametric_memory_matches_nearest_neighbour(digits, baselines):
    """The chapter: the memory of the training pairs vs scikit-learn's 1-NN, beside logistic
    regression. Margin: with n = 450 test images and accuracies near 0.98 the standard error of
    one accuracy is sqrt(0.98 * 0.02 / 450) = 0.66 points, so 2 points is three standard errors:
    a real gap of that size would not come from the luck of the split."""
    x_train, x_test, y_train, y_test = digits
    memories = learning.labelled_pairs(x_train, y_train, num_classes=NUM_CLASSES)
    acc = _accuracy(memories, x_test, y_test, BETA, STEPS)
    knn, logreg = baselines
    print(f"\nAM nonparametric {acc:.4f}, 1-NN {knn:.4f}, logistic regression {logreg:.4f}")
    assert abs(acc - knn) <= 0.02
    assert acc >= logreg - 0.02  # reported beside logistic regression; it is no worse


def test_accuracy_against_beta_and_depth(digits):
    x_train, x_test, y_train, y_test = digits
    memories = learning.labelled_pairs(x_train, y_train, num_classes=NUM_CLASSES)
    low = _accuracy(memories, x_test, y_test, 0.1, STEPS)
    high = [_accuracy(memories, x_test, y_test, b, STEPS) for b in (3.0, 10.0, 30.0, 100.0)]
    depth = [_accuracy(memories, x_test, y_test, BETA, t) for t in (1, 2, 4, 8)]
    print(f"\nβ = 0.1: {low:.4f}; β >= 3: {high}; T = 1..8: {depth}")
    assert low < min(high) - 0.05  # the chapter: accuracy falls at β = 0.1 (measured 89.3%)
    assert max(high) - min(high) < 0.01  # and is flat from β = 3 on (98.2-98.4%)
    assert max(depth) - min(depth) < 0.01  # "the depth hardly matters" (flat at 98.4%)


def test_one_step_is_nadaraya_watson(digits):
    """Exercise ex-ml-onestep: one step with η = 1/β is the Gaussian-kernel label average."""
    x_train, x_test, y_train, _ = digits
    memories = learning.labelled_pairs(x_train, y_train, num_classes=NUM_CLASSES)
    y1 = learning.am_predict(memories, x_test[:50], num_classes=NUM_CLASSES, beta=BETA, eta=1 / BETA, steps=1)
    x64, t64 = np.asarray(x_test[:50], np.float64), np.asarray(x_train, np.float64)
    d2 = ((x64[:, None] - t64[None]) ** 2).sum(-1)
    logits = -BETA / 2 * d2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(y1, p @ np.eye(NUM_CLASSES)[y_train], atol=1e-4)


@pytest.fixture(scope="module")
def parametric(digits):
    x_train, x_test, y_train, y_test = digits
    init = learning.initial_prototypes(x_train, y_train, num_classes=NUM_CLASSES, num_prototypes=P_PROTOTYPES,
                                       key=jax.random.key(0))
    trained = learning.train_classifier(x_train, y_train, num_classes=NUM_CLASSES, num_prototypes=P_PROTOTYPES,
                                        key=jax.random.key(0), beta=P_BETA, eta=1 / P_BETA, steps=P_STEPS,
                                        iterations=P_ITERATIONS, learning_rate=P_RATE, regularization=1e-4)
    return init, trained


def test_parametric_memory_above_floor(digits, baselines, parametric):
    _, x_test, _, y_test = digits
    init, trained = parametric
    np.testing.assert_array_equal(trained.memories.shape, (P_PROTOTYPES, 74))
    untrained = _accuracy(init, x_test, y_test, P_BETA, P_STEPS)
    acc = _accuracy(trained.memories, x_test, y_test, P_BETA, P_STEPS)
    print(f"\nAM parametric {acc:.4f} (untrained {untrained:.4f}), logistic regression {baselines[1]:.4f}")
    assert acc >= PARAMETRIC_FLOOR
    assert acc > untrained + 0.1  # training is what makes the prototypes work (76% untrained)
    assert float(trained.losses[-1]) < 0.25 * float(trained.losses[0])


@pytest.fixture(scope="module")
def square():
    centres = CLUSTER_BOX * jnp.array([[0.2, 0.25], [0.75, 0.35], [0.45, 0.8]])
    side = np.linspace(0, CLUSTER_BOX, 100)
    points = np.stack(np.meshgrid(side, side), -1).reshape(-1, 2).astype(np.float32)
    return centres, points, learning.voronoi_assignment(centres, points)


def test_basins_align_with_voronoi_as_beta_grows(square):
    centres, points, cells = square
    agree = [float(jnp.mean(learning.basin_assignment(centres, points, beta=b, eta=CLUSTER_ETA, steps=10) == cells))
             for b in (0.001, 10.0, 100.0)]
    print(f"\nbasin/Voronoi agreement at β = 0.001, 10, 100: {agree}")
    assert agree[0] < agree[1] < agree[2]
    assert agree[2] > 0.95


def test_tiny_beta_agreement_is_the_middle_cell(square):
    """Exercise ex-ml-voronoi: at β = 0.001 every point ends near the centres' mean."""
    centres, points, cells = square
    owner = learning.voronoi_assignment(centres, centres.mean(0, keepdims=True))[0]
    basins = learning.basin_assignment(centres, points, beta=0.001, eta=CLUSTER_ETA, steps=10)
    assert float(jnp.mean(basins == cells)) == pytest.approx(float(jnp.mean(cells == owner)), abs=0.005)


def test_clam_matches_kmeans_on_the_toy_set():
    toy, truth = make_blobs(n_samples=300, centers=4, cluster_std=1.5, random_state=3)
    toy = ((toy - toy.mean(0)) / toy.std(0)).astype(np.float32)
    clam = learning.train_clam(toy, 4, key=jax.random.key(0), beta=CLAM_BETA, eta=CLAM_ETA, steps=CLAM_STEPS,
                               iterations=200, learning_rate=0.05)
    kmeans = KMeans(4, n_init=10, random_state=0).fit(toy)
    ratio = float(learning.kmeans_objective(clam.memories, toy)) / kmeans.inertia_
    basins = learning.basin_assignment(clam.memories, toy, beta=CLAM_BETA, eta=CLAM_ETA, steps=CLAM_STEPS)
    ari_clam = adjusted_rand_score(truth, np.asarray(basins))
    ari_kmeans = adjusted_rand_score(truth, kmeans.labels_)
    print(f"\nClAM/KMeans objective {ratio:.4f}; ARI ClAM {ari_clam:.3f}, KMeans {ari_kmeans:.3f}")
    assert 1 / CLAM_FACTOR <= ratio <= CLAM_FACTOR
    assert ari_clam > 0.9 and abs(ari_clam - ari_kmeans) < 0.05


@given(seed=st.integers(0, 2**16), beta=st.floats(0.1, 10.0), eta=st.floats(0.005, 0.05),
       free=st.lists(st.booleans(), min_size=5, max_size=5))
def test_clamped_descent_keeps_clamps_and_never_raises_the_energy(seed, beta, eta, free):
    """For any mask: clamped coordinates never move, and with η small against the curvature
    (∇²E ≤ β I for the log-sum-exp energy, so η β ≤ 0.5 < 2) the energy never rises."""
    k_m, k_v = jax.random.split(jax.random.key(seed))
    memories = jax.random.normal(k_m, (7, 5))
    start = 2.0 * jax.random.normal(k_v, (5,))
    eta = min(eta, 0.5 / beta)
    mask = jnp.array(free)
    graph = learning.memory_graph(memories, beta=beta)
    run = learning.clamped_descent(graph, start, eta=eta, steps=40, mask=mask, record=True)
    path = np.asarray(run.states["v"])
    np.testing.assert_array_equal(path[:, ~np.asarray(free)], np.broadcast_to(np.asarray(start)[~np.asarray(free)],
                                                                             path[:, ~np.asarray(free)].shape))
    energies = np.asarray(run.energies)
    assert np.all(np.diff(energies) <= 1e-5 * (1 + np.abs(energies[:-1])))


def test_bad_input_is_refused_clearly(digits):
    x_train, _, y_train, _ = digits
    memories = learning.labelled_pairs(x_train[:20], y_train[:20], num_classes=NUM_CLASSES)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\), got values from 0 to 10"):
        learning.labelled_pairs(x_train[:3], np.array([0, 4, 10]), num_classes=NUM_CLASSES)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        learning.train_classifier(x_train[:20], y_train[:20], num_classes=3, num_prototypes=3,
                                  key=jax.random.key(0), beta=1.0, eta=1.0, steps=1)
    graph = learning.memory_graph(memories, beta=1.0)
    with pytest.raises(ValueError, match=r"mask has shape \(73,\) but the state has shape \(74,\)"):
        learning.clamped_descent(graph, memories[0], eta=0.1, steps=3, mask=np.ones(73, bool))
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        learning.clamped_descent(graph, memories[0], eta=0.1, steps=0)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        learning.am_classify(memories, x_train[:2], num_classes=NUM_CLASSES, beta=1.0, eta=1.0, steps=0)
    for beta in (0.0, -1.0):
        with pytest.raises(ValueError, match="beta must be > 0"):
            learning.am_classify(memories, x_train[:2], num_classes=NUM_CLASSES, beta=beta, eta=1.0, steps=1)
        with pytest.raises(ValueError, match="beta must be > 0"):
            learning.basin_assignment(memories[:3, :2], x_train[:2, :2], beta=beta, eta=0.1, steps=3)
