"""Every example script runs (with tiny sizes so the suite stays fast)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY_ARGS = {
    "fit_image.py": ["--size", "16", "--steps", "3"],
    "super_resolution.py": ["--size", "16", "--steps", "3"],
    "inpainting.py": ["--size", "16", "--steps", "3"],
    "audio.py": ["--samples", "256", "--steps", "3"],
    "search_width.py": ["--size", "12", "--steps", "3"],
    "ensemble_search.py": ["--size", "16", "--steps", "3"],
    "ensemble_image.py": ["--size", "16", "--steps", "3", "--grid", "4"],
    "multihead_superres.py": ["--size", "16", "--steps", "3", "--heads", "4"],
    "localglobal_edit.py": ["--size", "64", "--steps", "3"],
}


def test_every_example_is_listed():
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(TINY_ARGS)


@pytest.mark.parametrize("name", sorted(TINY_ARGS))
def test_example_runs(name, tmp_path):
    pytest.importorskip("matplotlib")
    args = TINY_ARGS[name]
    if name in ("fit_image.py", "ensemble_image.py"):
        args = [*args, "--out", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "dB" in result.stdout or "best" in result.stdout
