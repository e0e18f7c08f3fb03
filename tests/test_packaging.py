"""The distributions: they build, pass twine's checks, carry what the package needs,
and the wheel imports on its own."""

import os
import subprocess
import sys
import zipfile

import pytest

import skinr

from .conftest import ROOT


@pytest.fixture(scope="module")
def distributions(tmp_path_factory):
    pytest.importorskip("build")
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("the build needs setuptools>=77 (pip install -e '.[test]' brings it)")
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_twine_check_passes(distributions):
    pytest.importorskip("twine")
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, distributions)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_wheel_carries_the_licence_types_and_data(distributions):
    wheel, _ = distributions
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    # Every wing of the package travels (setuptools finds subpackages by pattern).
    for required in (
        "skinr/py.typed",
        "skinr/data/prior_siren_64.skinr",
        "skinr/_core/fit.py",
        "skinr/nn/layers.py",
        "skinr/inverse/__init__.py",
        "skinr/estimators/siren.py",
        "skinr/codec/__init__.py",
        "skinr/cli/__init__.py",
    ):
        assert required in names
    assert any(n.startswith("skinr/nn/_native/") and n.endswith(".c") for n in names)
    assert any(n.startswith("skinr/data/") and n.endswith(".npz") for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/", "docs/")) for n in names)
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))
    )
    assert b"License-Expression: BSD-3-Clause" in metadata
    assert f"Version: {skinr.__version__}".encode() in metadata


def test_the_wheel_imports_from_a_clean_target(distributions, tmp_path):
    wheel, _ = distributions
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    environment = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", "import skinr; print(skinr.__file__); print(skinr.__version__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    path, version = result.stdout.split()
    assert path.startswith(str(target)) and version == skinr.__version__
