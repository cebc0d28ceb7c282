"""The package installs, has a version, imports lazily, and works from a built wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_version():
    import amtutor

    assert isinstance(amtutor.__version__, str) and amtutor.__version__.count(".") == 2


def test_import_is_lazy():
    # `import amtutor` must not import JAX (that is what keeps it well under 2 s); the import time
    # itself is measured in benchmarks/bench_import.py, not asserted here.
    code = "import sys, amtutor; print('jax' in sys.modules); amtutor.binary; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_unknown_attribute():
    import amtutor

    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        amtutor.nonexistent


def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path):
    """Build the wheel, install it into a fresh folder, and use it from outside the repository."""
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(wheel_dir), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = wheel_dir.glob("amtutor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "amtutor/binary.py" in names and not any(n.startswith(("tests/", "book/")) for n in names)
    # the diffusion and Energy Transformer chapters load trained weights from the package
    # (package-data in pyproject)
    assert all(f"amtutor/weights/circle_K{k}.eqx" in names for k in (2, 9, 1000)), names
    assert "amtutor/weights/energy_transformer.npz" in names, names
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True, capture_output=True,
    )
    code = (
        "import amtutor, jax; from amtutor import binary, data;"
        "m = data.binary_patterns(3, 50, key=jax.random.key(0));"
        "r = binary.async_recall(m, m[0], binary.quadratic(), key=jax.random.key(1));"
        "from amtutor import diffusion, et; diffusion.load_model(9); et.load_image_et();"
        "print(amtutor.__file__, bool((r.final == m[0]).all()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
             "JAX_PLATFORMS": "cpu"},
    )
    location, ok = out.stdout.split()
    assert location.startswith(str(site)) and ok == "True"
