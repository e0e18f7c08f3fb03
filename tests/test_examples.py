"""Every example script runs (with tiny sizes so the suite stays fast)."""

import json
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# The tiny sizes live beside the examples: the documentation's gallery build uses them too.
TINY_ARGS = json.loads((EXAMPLES / "tiny_args.json").read_text())


GALLERY_ARGS = json.loads((EXAMPLES / "gallery_args.json").read_text())


def test_every_example_is_listed():
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(TINY_ARGS) == set(GALLERY_ARGS)


@pytest.mark.parametrize("name", sorted(TINY_ARGS))
def test_example_runs(name, tmp_path, capsys, monkeypatch):
    """In this process, as ``python examples/NAME ARGS`` would run it (a fresh
    interpreter per example cost ~6 s of imports)."""
    plt = pytest.importorskip("matplotlib.pyplot")
    args = TINY_ARGS[name]
    if name in ("fit_image.py", "ensemble_image.py"):
        args = [*args, "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *args])
    monkeypatch.syspath_prepend(str(EXAMPLES))
    try:
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
        drawn = plt.get_fignums()
    finally:
        plt.close("all")
    # Every example shows its result as a picture (the gallery shows open figures).
    assert drawn or list(tmp_path.glob("*.png")), f"{name} draws no figure"
    printed = capsys.readouterr().out
    assert "dB" in printed or "best" in printed
