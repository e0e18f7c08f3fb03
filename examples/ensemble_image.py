"""EnsembleINR on the camera image: the fit, a 4x zoom of it, and where the cells meet.

Run: `python examples/ensemble_image.py [--size 128] [--steps 500] [--out skinr-examples]`
Writes ensemble.png: the image, the ensemble's reconstruction with its cell grid drawn
over it, and a 4x super-resolved crop across a cell corner, where the blended cells meet
without a seam (with ``blending="nearest"``, the paper's hard cells, a step shows there).
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import skinr
from skinr.signals import grid, to_array, to_coords

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=128)
parser.add_argument("--steps", type=int, default=500)
parser.add_argument("--grid", type=int, default=8)
parser.add_argument("--out", default="skinr-examples")
args = parser.parse_args()

image = skinr.datasets.camera(args.size)
X, y = to_coords(image)
model = skinr.EnsembleINR(grid=args.grid, max_iter=args.steps, random_state=0, data_range=1.0)
model.fit(X, y)
print(
    f"EnsembleINR grid {args.grid}: PSNR {model.score(X, y):.2f} dB, "
    f"{model.count_flops(X) / 1e6:.0f} MFLOPs per image, {model.fit_time_:.0f} s"
)

# A 4x render of the window around the cell corner nearest the centre.
corner = 2 * (args.grid // 2) / args.grid - 1
half = 2 / args.grid  # one cell on each side of the corner
bounds = [(corner - half, corner + half)] * 2
side = round(args.size * half) * 4
zoom = to_array(model.predict(grid((side, side), bounds)), (side, side))

fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
axes[0].set_title(f"camera {args.size}x{args.size}")
axes[1].imshow(to_array(model.predict(X), image.shape).clip(0, 1), cmap="gray", vmin=0, vmax=1)
for k in range(1, args.grid):
    axes[1].axhline(k * args.size / args.grid - 0.5, color="tab:orange", lw=0.5)
    axes[1].axvline(k * args.size / args.grid - 0.5, color="tab:orange", lw=0.5)
axes[1].set_title(f"grid {args.grid}: {model.score(X, y):.1f} dB")
axes[2].imshow(np.clip(zoom, 0, 1), cmap="gray", vmin=0, vmax=1)
axes[2].set_title("4x render across a cell corner")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
Path(args.out).mkdir(parents=True, exist_ok=True)
fig.savefig(Path(args.out) / "ensemble.png", dpi=100)
