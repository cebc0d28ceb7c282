"""Figures shared by the chapters: binary images, recall sequences with their energy curves, HAMUX graphs.

matplotlib is imported inside the functions that draw, so importing this module stays cheap; the
models (:mod:`amtutor.binary`, :mod:`amtutor.hamux`, ...) never import it.
"""

from __future__ import annotations

from typing import Mapping

import numbers

import numpy as np

__all__ = ["show_image", "image_grid", "recall_figure", "draw_graph"]

# Checks written with NumPy alone: importing amtutor.validation would import JAX, and drawing a
# NumPy image must stay cheap.


def _count(name: str, value, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _values(name: str, x, *, ndim=None, curve: bool = False) -> np.ndarray:
    """``x`` as a float array of finite numbers (a NaN pixel would be drawn as paper, silently).

    ``curve=True`` (an energy curve): may be empty and may hold ±inf (drawn off the axes), not NaN.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    if np.iscomplexobj(x):
        raise TypeError(f"{name} must hold real numbers, got complex values: pass x.real or abs(x)")
    try:
        x = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from err
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if ndim is not None and x.ndim not in allowed:
        raise ValueError(f"{name} must be {' or '.join(f'{d}-D' for d in allowed)}, got shape {x.shape}")
    if curve:
        if np.any(np.isnan(x)):
            raise ValueError(f"{name} contains NaN values")
        return x
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _as_square(image, side: int | None, name: str = "image"):
    image = _values(name, image).ravel()
    side = _count("side", side, allow_none=True)
    side = side or int(round(np.sqrt(image.size)))
    if side * side != image.size:
        raise ValueError(f"{name} has {image.size} pixels per image, not a square of side {side}")
    return image.reshape(side, side)


def show_image(ax, image, *, title: str | None = None, side: int | None = None):
    """Draw one ±1 image (``(D,)`` with D a square) on ``ax``: +1 is ink (black), −1 paper (white)."""
    if not callable(getattr(ax, "imshow", None)):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. plt.subplots()[1]), got {type(ax).__name__}")
    ax.imshow(_as_square(image, side), cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
    return ax


def image_grid(images, *, ncols: int = 10, titles=None, side: int | None = None, scale: float = 1.0):
    """A figure with ``images`` (shape ``(n, D)``) laid out ``ncols`` to a row. Returns the figure."""
    import matplotlib.pyplot as plt

    images = _values("images", images, ndim=(2, 3))
    ncols = _count("ncols", ncols)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles has {len(titles)} entries but there are {len(images)} images")
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * 1.1 * ncols, scale * 1.2 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            show_image(ax, _as_square(images[i], side, "images"),
                       title=None if titles is None else titles[i])
        else:
            ax.axis("off")
    fig.tight_layout()
    return fig


def recall_figure(snapshots, energies, *, target=None, snapshot_steps=None, title: str | None = None,
                  max_panels: int = 6):
    """Picture sequence of a recall (query → … → final) above its energy curve.

    Args:
        snapshots: states along the recall, ``(T, D)`` (e.g. ``Recall.snapshots``).
        energies: energy of the query, then after each proposed flip, ``(steps + 1,)``
            (e.g. ``Recall.energies``).
        target: optional pattern ``(D,)`` shown last, for comparison.
        snapshot_steps: the step number of each snapshot (for the panel titles).
        max_panels: at most this many snapshots are drawn, evenly spaced, first and last included.
    """
    import matplotlib.pyplot as plt

    snapshots = _values("snapshots", snapshots, ndim=2)
    energies = _values("energies", energies, ndim=1, curve=True)
    max_panels = _count("max_panels", max_panels)
    if target is not None:
        target = _values("target", target, ndim=1)
    idx = np.unique(np.linspace(0, len(snapshots) - 1, min(max_panels, len(snapshots))).round().astype(int))
    if snapshot_steps is None:
        snapshot_steps = np.linspace(0, len(energies) - 1, len(snapshots)).round().astype(int)
    ncols = len(idx) + (target is not None)
    fig = plt.figure(figsize=(1.6 * max(ncols, 4), 4.2))
    grid = fig.add_gridspec(2, ncols, height_ratios=[1, 1.1])
    for col, i in enumerate(idx):
        label = "query" if i == 0 else f"step {snapshot_steps[i]}"
        show_image(fig.add_subplot(grid[0, col]), _as_square(snapshots[i], None, "snapshots"), title=label)
    if target is not None:
        show_image(fig.add_subplot(grid[0, ncols - 1]), target, title="stored")
    ax = fig.add_subplot(grid[1, :])
    ax.plot(np.arange(len(energies)), energies, lw=1.5)
    ax.set_xlabel("proposed flips")
    ax.set_ylabel("energy")
    ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def draw_graph(graph, ax=None, *, positions: Mapping[str, tuple[float, float]] | None = None,
               title: str | None = None):
    """Draw a HAMUX graph (:class:`amtutor.hamux.Graph`) from the graph object itself: layers as
    circles (name, shape, Lagrangian), hypersynapses as squares joined by undirected lines to every
    layer they connect.

    ``positions`` optionally fixes the layer positions ``{name: (x, y)}``; by default layers sit on a
    row (a circle when there are more than three). Returns the axes.
    """
    import matplotlib.pyplot as plt

    from .hamux import Graph  # lazy: importing plot must not import JAX

    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be an amtutor.hamux.Graph, got {type(graph).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(2.4 * max(2, len(graph.layers)), 3.0))
    names = list(graph.layers)
    if positions is None:
        if len(names) <= 3:
            positions = {n: (2.0 * i, 0.0) for i, n in enumerate(names)}
        else:
            angles = np.pi / 2 + 2 * np.pi * np.arange(len(names)) / len(names)
            positions = {n: (2.0 * np.cos(a), 2.0 * np.sin(a)) for n, a in zip(names, angles)}
    missing = set(names) - set(positions)
    if missing:
        raise ValueError(f"positions has no entry for layers {sorted(missing)}")
    pos = {n: np.asarray(positions[n], dtype=float) for n in names}
    centre = np.mean(list(pos.values()), axis=0)
    radius = 0.45
    used, squares = {}, []
    for syn_name, layer_names in graph.connections:
        members = np.array([pos[n] for n in layer_names])
        where = members.mean(axis=0)
        if len(set(layer_names)) == 1:  # self-connection: put the square outside the layer
            out = where - centre
            # point away from the other layers; a lone layer gets its square below (labels sit above)
            out = out / np.linalg.norm(out) if np.linalg.norm(out) > 1e-9 else np.array([0.0, -1.0])
            where = where + 1.1 * out
        elif any(np.linalg.norm(where - p) < 1.5 * radius for p in pos.values()):
            where = where + np.array([0.0, -1.0])  # e.g. three layers in a row: keep the square visible
        key = tuple(np.round(where, 3))
        shift = used.get(key, 0)  # several synapses on the same layers: stack their squares
        used[key] = shift + 1
        where = where + np.array([0.0, -0.7 * shift])
        for n in set(layer_names):
            ax.plot([where[0], pos[n][0]], [where[1], pos[n][1]], color="0.35", lw=1.5, zorder=1)
        squares.append(where)
        ax.add_patch(plt.Rectangle(where - 0.14, 0.28, 0.28, color="tab:orange", zorder=3))
        label = f"{syn_name}\n{type(graph.synapses[syn_name]).__name__}"
        ax.annotate(label, where, xytext=(0, -16), textcoords="offset points", ha="center", va="top",
                    fontsize=7, zorder=4)
    for n in names:
        layer = graph.layers[n]
        ax.add_patch(plt.Circle(pos[n], radius, color="tab:blue", alpha=0.85, zorder=2))
        ax.text(*pos[n], n, ha="center", va="center", color="white", fontsize=9, fontweight="bold", zorder=4)
        ax.annotate(f"{layer.shape}\n{layer.lagrangian.name}", pos[n], xytext=(0, 28), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7, zorder=4)
    allpts = np.array(list(pos.values()) + squares)
    lo, hi = allpts.min(axis=0) - np.array([1.3, 0.9]), allpts.max(axis=0) + np.array([1.3, 1.2])
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return ax
