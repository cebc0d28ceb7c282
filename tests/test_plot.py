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
