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
    if not callable(plot_function):
        raise TypeError(f"plot_function must be a function of the controls, got {type(plot_function).__name__}")
    try:
        import ipywidgets
    except ImportError:
        print("Install ipywidgets (pip install ipywidgets) to use the live controls.")
        return None
    for control in controls.values():
        if isinstance(control, ipywidgets.ValueWidget) and hasattr(control, "continuous_update"):
            control.continuous_update = False  # recall takes a moment: run on release
    for name, control in controls.items():
        # ipywidgets' own message does not say which control it could not build
        try:
            built = ipywidgets.interactive.widget_from_abbrev(control, name)
        except (TypeError, ValueError) as err:
            raise ValueError(f"control {name} = {control!r}: {err}") from None
        if built is None:
            raise ValueError(f"control {name} = {control!r} is not a widget or a widget shorthand "
                             "such as (low, high), (low, high, step), a list of options or a value")
    widget = ipywidgets.interactive(plot_function, **controls)
    from IPython.display import display

    display(widget)
    return widget
