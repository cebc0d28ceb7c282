"""Shared figures: they draw what they are given and name the culprit when the input is wrong."""

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

from amtutor import lagrangians as L
from amtutor import plot
from amtutor.hamux import DenseSynapse, Graph, Layer

matplotlib.use("Agg")


def two_layer_graph():
    W = 0.3 * jax.random.normal(jax.random.key(0), (6, 4))
    return Graph(layers={"v": Layer(6, L.Tanh(1.0)), "h": Layer(4, L.Softmax(1.0))},
                 synapses={"W": DenseSynapse(W)}, connections=[("W", "v", "h")])


def test_draw_graph_makes_one_patch_per_layer_and_connection():
    g = two_layer_graph()
    ax = plot.draw_graph(g, title="two layers")
    assert len(ax.patches) == len(g.layers) + len(g.connections)
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "v" in texts and "DenseSynapse" in texts and "softmax" in texts


def test_draw_graph_bad_input():
    g = two_layer_graph()
    with pytest.raises(ValueError, match="positions has no entry for layers \\['h'\\]"):
        plot.draw_graph(g, positions={"v": (0, 0)})
    with pytest.raises(TypeError, match="graph must be an amtutor.hamux.Graph"):
        plot.draw_graph({"v": 1})


def test_image_figures():
    images = jnp.where(jax.random.bernoulli(jax.random.key(1), 0.5, (3, 16)), 1.0, -1.0)
    fig = plot.image_grid(images, ncols=2, titles=["a", "b", "c"])
    assert len(fig.axes) == 4  # 2 x 2 grid, the last one switched off
    with pytest.raises(ValueError, match="not a square"):
        plot.show_image(fig.axes[0], np.ones(15))
    fig = plot.recall_figure(images, np.linspace(0, -1, 8), target=images[0])
    assert len(fig.axes) == 5  # three snapshots, the target, the energy curve


@pytest.mark.parametrize(
    "draw, exc, match",
    [
        (lambda ax: plot.image_grid(np.ones((3, 4)), ncols=0), ValueError, "ncols must be >= 1, got 0"),
        (lambda ax: plot.image_grid(np.ones((3, 4)), ncols=-2), ValueError, "ncols must be >= 1, got -2"),
        (lambda ax: plot.image_grid(np.ones((3, 4)), ncols=2.5), TypeError, "ncols must be an integer"),
        (lambda ax: plot.image_grid(np.ones((0, 4))), ValueError, "images is empty"),
        (lambda ax: plot.image_grid(np.full((3, 4), np.nan)), ValueError, "images contains NaN or infinite values"),
        (lambda ax: plot.image_grid(np.ones(4)), ValueError, "images must be 2-D or 3-D, got shape \\(4,\\)"),
        (lambda ax: plot.image_grid(np.ones((3, 4)), titles=["a"]), ValueError, "titles has 1 entries but there are 3 images"),
        (lambda ax: plot.show_image(ax, np.ones(4), side=0), ValueError, "side must be >= 1, got 0"),
        (lambda ax: plot.show_image(ax, np.ones(4), side=2.0), TypeError, "side must be an integer"),
        (lambda ax: plot.show_image(ax, np.array([1.0, np.nan, 1.0, -1.0])), ValueError, "image contains NaN"),
        (lambda ax: plot.show_image(ax, "ab"), TypeError, "image must be an array of numbers"),
        (lambda ax: plot.recall_figure(np.full((3, 4), np.nan), np.zeros(3)), ValueError, "snapshots contains NaN"),
        (lambda ax: plot.recall_figure(np.ones((3, 4)), [0.0, np.nan]), ValueError, "energies contains NaN"),
        (lambda ax: plot.recall_figure(np.ones((3, 4)), np.zeros(3), target=np.full(4, np.inf)), ValueError, "target contains NaN"),
        (lambda ax: plot.recall_figure(np.ones((3, 4)), np.zeros(3), max_panels=0), ValueError, "max_panels must be >= 1"),
    ],
)
def test_image_figures_refuse_bad_input(draw, exc, match):
    """ncols <= 0 and side = 0 were silently replaced (by 1 and the square root), NaN pixels drawn as paper."""
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    with pytest.raises(exc, match=match):
        draw(ax)
    plt.close("all")


def test_energy_curves_may_hold_infinities():
    """A separation that overflows gives ±inf energies; the curve is still drawn (off the axes)."""
    images = np.ones((2, 4))
    fig = plot.recall_figure(images, np.array([0.0, -np.inf, -np.inf]))
    assert len(fig.axes) == 3
