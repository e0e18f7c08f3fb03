"""The command-line main job and the benchmark runner's smoke mode."""

import json
import re
import runpy
import subprocess
import sys

import numpy as np
import pytest

import skinr
from skinr.cli import main

from .conftest import ROOT


def test_fit_writes_every_output(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    status = main(
        [
            "fit",
            "--steps",
            "15",
            "--size",
            "16",
            "--width",
            "16",
            "--depth",
            "1",
            "--learning-rate",
            "1e-3",
            "--superres",
            "2",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    for name in [
        "reconstruction.png",
        "superres_2x.png",
        "curve.png",
        "metrics.json",
        "model.skinr",
    ]:
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 15 and metrics["shape"] == [16, 16]
    assert "PSNR" in capsys.readouterr().out
    model = skinr.load(out / "model.skinr")
    assert model.width == 16 and model.n_iter_ == 15
    from matplotlib.image import imread

    assert imread(out / "superres_2x.png").shape[:2] == (32, 32)


def test_fit_own_rgb_image(tmp_path):
    plt_image = pytest.importorskip("matplotlib.image")
    rgb = np.random.RandomState(0).random_sample((12, 20, 3))
    plt_image.imsave(tmp_path / "in.png", rgb)
    status = main(
        [
            "fit",
            str(tmp_path / "in.png"),
            "--model",
            "FourierFeatureMLP",
            "--steps",
            "5",
            "--size",
            "10",
            "--width",
            "8",
            "--depth",
            "1",
            "--superres",
            "2",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert status == 0
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["shape"] == [6, 10, 3]


def test_missing_image_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["fit", str(tmp_path / "nope.png"), "--out", str(tmp_path)]) == 2
    assert "skinr: error:" in capsys.readouterr().err


def test_python_dash_m_skinr():
    result = subprocess.run(
        [sys.executable, "-m", "skinr", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"skinr {skinr.__version__}"


def test_benchmark_runner_quick_mode():
    runner = runpy.run_path(str(ROOT / "benchmarks" / "run.py"))
    rows = runner["main"](["--quick", "--no-write"])
    assert [r["estimator"].split()[0] for r in rows] == ["SIREN", "SIREN", "FourierFeatureMLP"]
    assert rows[0]["params"] == rows[1]["params"]
    assert abs(rows[0]["psnr"] - rows[1]["psnr"]) < 0.5


@pytest.mark.parametrize(
    "script",
    [
        "ensemble.py",
        "localglobal.py",
        "loe.py",
        "multihead.py",
        "sl2a.py",
        "memory.py",
        "native.py",
        "offgrid.py",
    ],
)
def test_benchmark_scripts_quick_mode(script):
    """The architecture benchmarks run end to end in their smoke-test mode (writes nothing)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\| .* \|$", result.stdout, re.M)  # printed its results table
