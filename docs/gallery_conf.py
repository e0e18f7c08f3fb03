"""Settings of the example gallery that mkdocs-gallery builds from examples/.

``mkdocs build`` runs every example and shows its output and figures, at the sizes of
``examples/gallery_args.json``: small enough for a CPU (seconds to a minute each), large
enough to show what the method does. ``SKINR_GALLERY_TINY=1`` runs them at the tiny
sizes of ``examples/tiny_args.json`` (what the test suite's strict build checks: that
every example runs and draws); ``SKINR_GALLERY_FULL=1`` at their own sizes (minutes
each on a CPU).
"""

import json
import os
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY_ARGS = json.loads((EXAMPLES / "tiny_args.json").read_text())
GALLERY_ARGS = json.loads((EXAMPLES / "gallery_args.json").read_text())
OUTPUT = tempfile.mkdtemp(prefix="skinr-gallery-")


def example_arguments(script) -> list[str]:
    """Command-line arguments of one example in the gallery build."""
    name = Path(script.src_py_file).name
    if os.environ.get("SKINR_GALLERY_FULL"):
        args = []
    elif os.environ.get("SKINR_GALLERY_TINY"):
        args = list(TINY_ARGS.get(name, []))
    else:
        args = list(GALLERY_ARGS.get(name, []))
    if name in ("fit_image.py", "ensemble_image.py"):
        args += ["--out", OUTPUT]  # their figure files go to a temporary folder
    return args


conf = {"reset_argv": example_arguments}
