"""Print pip requirements that pin skinr's core dependencies at their floors.

The floors are read from pyproject.toml (``name>=version`` -> ``name==version.*``), so
the versions CI tests are the ones the package declares. torch is the exception: its
floor (2.10, set by the checkpoint loader's security fixes) has no small CPU wheel on
the package index CI uses, so the floors job runs the CPU build CI already has.
"""

import re
import sys
import tomllib
from pathlib import Path

TORCH_IN_CI = "torch==2.13.0"

project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
for requirement in project["project"]["dependencies"]:
    name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", requirement).groups()
    print(TORCH_IN_CI if name == "torch" else f"{name}=={floor}.*")
sys.exit(0)
