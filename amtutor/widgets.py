"""Live controls for the chapters (ipywidgets), with a graceful message where they cannot run.

In Jupyter or Colab, :func:`interact` shows sliders that re-run a plotting function. The static
HTML book has no kernel, so each chapter tags the live cell ``remove-output`` and draws the same
figure for a default setting in the next cell: no dead controls online.
"""

from __future__ import annotations

__all__ = ["interact"]


def interact(plot_function, **controls):
    """Show ``controls`` (ipywidgets, or the shorthand tuples of ``ipywidgets.interact``) driving
    ``plot_function``; the figure is redrawn when a control is released, not on every tick.

    Returns the ``ipywidgets.interactive`` object, or ``None`` when ipywidgets is not installed.
    """
    try:
        import ipywidgets
    except ImportError:
        print("Install ipywidgets (pip install ipywidgets) to use the live controls.")
        return None
    for control in controls.values():
        if isinstance(control, ipywidgets.ValueWidget) and hasattr(control, "continuous_update"):
            control.continuous_update = False  # recall takes a moment: run on release
    widget = ipywidgets.interactive(plot_function, **controls)
    from IPython.display import display

    display(widget)
    return widget
