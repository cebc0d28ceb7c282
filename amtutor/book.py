"""Helpers for the book's pages: computed numbers in the prose (``glue``) that also work in Colab.

In the book build, :func:`glue` is MyST-NB's ``glue``: the value is stored under ``name`` and the
prose shows it with ``{glue:text}`name:.3f```. In Colab or plain Jupyter, where MyST-NB is usually
not installed, it shows the value when ``display=True``, so the page still runs.

:func:`glue` returns ``None`` on purpose: a cell that ends with a ``glue(...)`` call must not echo
the bare number into the page (IPython displays a cell's last value).
"""

from __future__ import annotations

__all__ = ["glue"]


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` for the prose under ``name`` (MyST-NB), or show it when MyST-NB is absent.

    Returns ``None`` (not the value), so that ``glue(...)`` as a cell's last line shows nothing.

    Numbers are converted to plain Python floats/ints first, so that format specs such as
    ``:.3f`` work on JAX and NumPy scalars alike.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()  # jax / numpy scalar -> Python number
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab, plain Jupyter
        if display:
            from IPython.display import display as show

            show(value)
        return None
    myst_glue(name, value, display=display)
    return None
