"""Settings of the example gallery that mkdocs-gallery builds from examples/.

``mkdocs build`` runs every example and shows its output and figures. By default each
runs with the tiny sizes of ``examples/tiny_args.json`` (seconds in all: what the test
suite's strict build checks); ``SKINR_GALLERY_FULL=1 mkdocs build`` runs them at their
own sizes for a published site (minutes each on a CPU).
"""

import json
import os
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY_ARGS = json.loads((EXAMPLES / "tiny_args.json").read_text())
OUTPUT = tempfile.mkdtemp(prefix="skinr-gallery-")


def example_arguments(script) -> list[str]:
    """Command-line arguments of one example in the gallery build."""
    name = Path(script.src_py_file).name
    args = [] if os.environ.get("SKINR_GALLERY_FULL") else list(TINY_ARGS.get(name, []))
    if name in ("fit_image.py", "ensemble_image.py"):
        args += ["--out", OUTPUT]  # their figure files go to a temporary folder
    return args


conf = {"reset_argv": example_arguments}
