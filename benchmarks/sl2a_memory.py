"""Memory and time of SL2A's learnable-activation layer at full batch, by image size.

The LA layer expands every coordinate into ``n_dims x (degree + 1)`` Chebyshev values.
On the pixels of a grid it expands each axis's distinct values only (``2 x N x 513``
floats on an N x N image); scattered coordinates, every value distinct, hold an
``n x 2 x 513`` basis (256 MB for 65,536 points) that the coefficient gradient needs.
This script measures one training step (forward, backward, Adam) of the default SL2A at
full batch and with skinr's default mini-batch of 16,384 on grids, and on 65,536
scattered coordinates, each in a fresh process so that peak memory (ru_maxrss) is its
own.

Run:  python benchmarks/sl2a_memory.py    (~2 min on 2 CPU cores)
Writes docs/benchmarks/sl2a_memory.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, time, numpy as np, skinr
from skinr.signals import grid
size, batch, scattered = {size}, {batch}, {scattered}
X = grid((size, size))
if scattered:
    X = np.random.default_rng(0).uniform(-1, 1, X.shape)
y = np.sin(3 * X[:, :1]) * X[:, 1:]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model = skinr.SL2A(max_iter=3, batch_size=batch, device="cpu", random_state=0).fit(X, y)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds_per_step": model.fit_time_ / 3,
                  "peak_mb": peak / 1024, "baseline_mb": before / 1024}}))
"""


def measure(size: int, batch: int | None, scattered: bool = False) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(size=size, batch=batch, scattered=scattered)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    rows = []
    cases = [(size, batch, False) for size in (128, 256, 512) for batch in (None, 16384)]
    for size, batch, scattered in [*cases, (256, None, True)]:
        if batch is not None and batch >= size * size:
            continue
        result = measure(size, batch, scattered)
        points = batch or size * size
        # Per distinct value along each axis: all of them when scattered.
        distinct = points if scattered else min(size, points)
        basis_mb = distinct * 2 * 513 * 4 / 2**20
        layout = "scattered" if scattered else "grid"
        rows.append(
            {"size": size, "layout": layout, "batch": points, "basis_mb": basis_mb, **result}
        )
        print(rows[-1], flush=True)
    lines = [
        "SL2A defaults (width 256, degree 512, rank 128), one training step "
        "(forward, backward, Adam), 2-D coordinates, CPU (2 cores)",
        "",
        "| coordinates | per step | LA basis (MB) | peak RSS (MB) | s/step |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['size']}x{r['size']} {r['layout']} | {r['batch']:,} | {r['basis_mb']:.1f} | "
        f"{r['peak_mb']:.0f} | {r['seconds_per_step']:.2f} |"
        for r in rows
    ]
    table = "\n".join(lines)
    print(table)
    (ROOT / "docs" / "benchmarks" / "sl2a_memory.md").write_text(
        "<!-- written by benchmarks/sl2a_memory.py -->\n" + table + "\n"
    )


if __name__ == "__main__":
    main()
