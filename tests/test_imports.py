"""The import picture stays simple: models never import plotting, and no module reaches into another
module's private names (shared checks live in :mod:`amtutor.validation`)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "amtutor"
MODELS = ["binary", "capacity", "continuous", "data", "hamux", "lagrangians", "learning", "retrieval",
          "statmech", "statmech_sims", "validation"]


@pytest.mark.parametrize("module", MODELS + ["plot"])
def test_importing_a_module_does_not_import_matplotlib(module):
    # plot imports matplotlib inside the functions that draw, so importing it is cheap too
    code = (f"import sys, amtutor.{module}; "
            "print('matplotlib' in sys.modules, 'amtutor.plot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)
    uses_matplotlib, uses_plot = out.stdout.split()
    assert uses_matplotlib == "False"
    if module != "plot":
        assert uses_plot == "False"


def private_imports(path: Path) -> list[str]:
    """Private names of other amtutor modules used in ``path``: ``from .m import _x`` or ``m._x``."""
    tree = ast.parse(path.read_text())
    modules, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("amtutor")):
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"from {'.' * node.level}{node.module or ''} import {alias.name}")
                elif node.module in (None, "amtutor"):
                    modules.add(alias.asname or alias.name)  # from . import binary
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("module", sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"))
def test_no_module_uses_another_modules_private_names(module):
    assert private_imports(PACKAGE / f"{module}.py") == []


def test_the_private_import_detector_finds_both_forms(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from . import binary\nfrom .statmech import _lam, alpha_1\nx = binary._check(1)\n")
    assert private_imports(path) == ["from .statmech import _lam", "binary._check"]
