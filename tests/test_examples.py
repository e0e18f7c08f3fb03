"""Every example script runs (with tiny sizes so the suite stays fast)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# The tiny sizes live beside the examples: the documentation's gallery build uses them too.
TINY_ARGS = json.loads((EXAMPLES / "tiny_args.json").read_text())


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
