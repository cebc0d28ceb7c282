"""Figures shared by the chapters: binary images, recall sequences with their energy curves."""

from __future__ import annotations

import numpy as np

__all__ = ["show_image", "image_grid", "recall_figure"]


def _as_square(image, side: int | None):
    image = np.asarray(image, dtype=np.float32).ravel()
    side = side or int(round(np.sqrt(image.size)))
    if side * side != image.size:
        raise ValueError(f"image has {image.size} pixels, not a square of side {side}")
    return image.reshape(side, side)


def show_image(ax, image, *, title: str | None = None, side: int | None = None):
    """Draw one ±1 image (``(D,)`` with D a square) on ``ax``: +1 is ink (black), −1 paper (white)."""
    ax.imshow(_as_square(image, side), cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
    return ax


def image_grid(images, *, ncols: int = 10, titles=None, side: int | None = None, scale: float = 1.0):
    """A figure with ``images`` (shape ``(n, D)``) laid out ``ncols`` to a row. Returns the figure."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * 1.1 * ncols, scale * 1.2 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            show_image(ax, images[i], title=None if titles is None else titles[i], side=side)
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

    snapshots = np.asarray(snapshots)
    energies = np.asarray(energies)
    idx = np.unique(np.linspace(0, len(snapshots) - 1, min(max_panels, len(snapshots))).round().astype(int))
    if snapshot_steps is None:
        snapshot_steps = np.linspace(0, len(energies) - 1, len(snapshots)).round().astype(int)
    ncols = len(idx) + (target is not None)
    fig = plt.figure(figsize=(1.6 * max(ncols, 4), 4.2))
    grid = fig.add_gridspec(2, ncols, height_ratios=[1, 1.1])
    for col, i in enumerate(idx):
        label = "query" if i == 0 else f"step {snapshot_steps[i]}"
        show_image(fig.add_subplot(grid[0, col]), snapshots[i], title=label)
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
