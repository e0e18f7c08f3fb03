"""Step time of every estimator at its defaults, held and streamed: a refactor's guard.

Run:  python benchmarks/step_times.py --out new.json        (~3 min on 2 CPU cores)
      python benchmarks/step_times.py --compare old.json new.json
Run it in two checkouts (before and after a change to the training path), alternating,
then compare: the table gives each configuration's median step in both and their ratio.

Setup: camera, 128 x 128 grey (area-downsampled); each estimator at its default
structure, eager (torch_compile=False), 40 steps; the median of the last 20. "held"
trains on the whole signal each step, "streamed" on 4096 sampled coordinates read from
the caller's arrays (the big-signal path).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from _steps import step_seconds

import skinr
from skinr.signals import to_coords

STEPS = 40
MODES = {"held": {}, "streamed": {"batch_size": 4096}}


def measure() -> dict:
    X, y = to_coords(skinr.datasets.camera(size=128))
    results = {}
    for name, Estimator in sorted(skinr.ESTIMATORS.items()):
        for mode, extra in MODES.items():
            model = Estimator(
                max_iter=STEPS, random_state=0, device="cpu", torch_compile=False, **extra
            )
            seconds, _ = step_seconds(model, X, y)
            results[f"{name} {mode}"] = float(np.median(seconds[-STEPS // 2 :])) * 1e3
            print(f"{name:18s} {mode:9s} {results[f'{name} {mode}']:8.2f} ms/step", flush=True)
    return results


def compare(before: Path, after: Path) -> None:
    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    print(f"| configuration | {before.name} ms/step | {after.name} ms/step | ratio |")
    print("|---|---:|---:|---:|")
    for key in old:
        print(f"| {key} | {old[key]:.2f} | {new[key]:.2f} | {new[key] / old[key]:.3f} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the step times (ms) as JSON here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    results = measure()
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return None


if __name__ == "__main__":
    main()
