"""amtutor: the JAX library behind the executable textbook on modern associative memory.

Modules (imported on first use, so ``import amtutor`` stays fast):

- :mod:`amtutor.data`: random pattern ensembles, corruption, offline image sets;
- :mod:`amtutor.binary`: discrete dense associative memory (energies, asynchronous recall);
- :mod:`amtutor.plot`, :mod:`amtutor.widgets`, :mod:`amtutor.book`: figures and page helpers;
- and one module per later chapter (capacity, statmech, lagrangians, hamux, ...).
"""

from importlib import import_module

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy submodules: `amtutor.binary` works after a bare `import amtutor`, without paying for
    # JAX's import until a module that needs it is touched.
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"{__name__}.{name}":
            raise AttributeError(f"module 'amtutor' has no attribute {name!r}") from None
        raise
