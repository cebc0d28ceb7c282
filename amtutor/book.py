"""Helpers for the book's pages: computed numbers in the prose (``glue``) that also work in Colab.

In the book build, :func:`glue` is MyST-NB's ``glue``: the value is stored under ``name`` and the
prose shows it with ``{glue:text}`name:.3f```. In Colab or plain Jupyter, where MyST-NB is usually
not installed, it shows the value when ``display=True``, so the page still runs.

:func:`glue` returns ``None`` on purpose: a cell that ends with a ``glue(...)`` call must not echo
the bare number into the page (IPython displays a cell's last value).
"""

from __future__ import annotations

__all__ = ["glue", "markdown_table"]


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


def markdown_table(header, rows, formats=None):
    """A computed table as Markdown that MyST renders as a real table: glue it with
    ``glue(name, markdown_table(...))`` and show it with a ``{glue:md}`` block (``:format: myst``).

    Args:
        header: column titles.
        rows: one sequence of values per row, as many as ``header``.
        formats: optional format spec per column (e.g. ``[None, ".4f"]``; ``None`` = ``str``).

    Returns an ``IPython.display.Markdown`` object.
    """
    from IPython.display import Markdown

    if isinstance(header, (str, bytes)) or not hasattr(header, "__len__") or len(header) == 0:
        raise TypeError(f"header must be a non-empty list of column titles, got {header!r}")
    if not all(isinstance(h, (str, int, float)) for h in header):
        raise TypeError(f"header must hold one title (a string) per column, got {header!r}")
    header = [str(h) for h in header]
    formats = [None] * len(header) if formats is None else list(formats)
    if len(formats) != len(header):
        raise ValueError(f"formats must have one entry per column of header ({len(header)}), "
                         f"got {len(formats)}")
    if isinstance(rows, (str, bytes)) or not hasattr(rows, "__iter__"):
        raise TypeError(f"rows must be a sequence of rows (sequences of values), got {rows!r}")
    rows = list(rows)
    if not rows:
        raise ValueError("rows must hold at least one row: an empty table shows nothing")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not hasattr(row, "__iter__"):
            raise TypeError(f"rows[{i}] must be a sequence of values, got {row!r}")
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] has {len(row)} values but header has {len(header)} columns")
        cells = [str(v) if f is None else format(v, f) for v, f in zip(row, formats)]
        lines.append("| " + " | ".join(cells) + " |")
    return Markdown("\n".join(lines))
