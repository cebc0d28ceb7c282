"""amtutor.book.glue: returns nothing (so a cell ending in glue(...) echoes nothing into the page),
stores plain Python numbers, and still shows the value in Colab (no MyST-NB) when asked to."""

import sys

import jax.numpy as jnp
import numpy as np
import pytest

from amtutor.book import glue


@pytest.mark.parametrize("value", [0.5, 148, np.float64(0.25), jnp.float32(-2.5), "recovers"])
@pytest.mark.parametrize("display", [False, True])
def test_glue_returns_none(value, display):
    assert glue("x", value, display=display) is None


def test_glue_stores_plain_python_numbers(monkeypatch):
    import myst_nb

    stored = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: stored.update({name: value}))
    glue("a", jnp.float32(1.5))
    glue("b", np.int64(7))
    assert type(stored["a"]) is float and stored["a"] == 1.5
    assert type(stored["b"]) is int and stored["b"] == 7


def test_glue_without_myst_nb_shows_only_when_asked(monkeypatch, capsys):
    """Colab / plain Jupyter (no MyST-NB): display=True shows the value, False shows nothing."""
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # makes `from myst_nb import glue` fail
    assert glue("a", 3.25, display=True) is None
    assert capsys.readouterr().out.strip() == "3.25"
    assert glue("a", 4.25) is None
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("name", ["", 3, None])
def test_glue_refuses_a_bad_name(name):
    with pytest.raises(TypeError, match="name"):
        glue(name, 1.0)


def test_markdown_table_renders_a_real_table():
    from amtutor.book import markdown_table

    table = markdown_table(["kernel", "efficiency (%)"], [("gaussian", 95.1204), ("uniform", 92.952)],
                           [None, ".1f"])
    assert table.data.splitlines() == ["| kernel | efficiency (%) |", "|---|---|", "| gaussian | 95.1 |",
                                       "| uniform | 93.0 |"]


@pytest.mark.parametrize("header,rows,formats,error", [
    ("kernel", [], None, TypeError),
    (["a"], [], None, ValueError),
    (["a"], None, None, TypeError),
    ([], [], None, TypeError),
    (["a", "b"], [(1, 2)], [None], ValueError),
    (["a", "b"], [(1, 2, 3)], None, ValueError),
])
def test_markdown_table_refuses_mismatched_shapes(header, rows, formats, error):
    from amtutor.book import markdown_table

    with pytest.raises(error, match="header|formats|rows"):
        markdown_table(header, rows, formats)
