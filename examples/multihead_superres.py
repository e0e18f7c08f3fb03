"""MultiHeadReLU: fit an image at half resolution, render it at full resolution.

Run: `python examples/multihead_superres.py [--size 256] [--steps 2000] [--heads 64]`
Trains on the camera image downsampled to size x size and renders 2 x size on the
same footprint with ``grid_coordinates``, where the grid fast path runs the body once
per local position for all heads at once. Prints both PSNRs and the render's cost.
"""

import argparse
import time

import matplotlib.pyplot as plt

import skinr
from skinr.signals import to_coords

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=256)
parser.add_argument("--steps", type=int, default=2000)
parser.add_argument("--heads", type=int, default=64)
args = parser.parse_args()

full = skinr.datasets.camera(2 * args.size)
half = skinr.datasets.resize(full, (args.size, args.size))
X, y = to_coords(half, pixel_centers=True)
model = skinr.MultiHeadReLU(heads=args.heads, max_iter=args.steps, random_state=0, data_range=1.0)
model.fit(X, y)

render_at = model.grid_coordinates(full.shape)
started = time.perf_counter()
render = model.predict(render_at)
seconds = time.perf_counter() - started
print(
    f"MultiHeadReLU {args.heads}x{args.heads} heads, {model.n_params_:,} parameters, "
    f"fast path: {model.grid_fast_path_}\n"
    f"  fit {args.size}x{args.size}: {model.score(X, y):.2f} dB in {model.fit_time_:.0f} s\n"
    f"  render {2 * args.size}x{2 * args.size}: "
    f"{skinr.metrics.psnr(full.reshape(-1), render, data_range=1.0):.2f} dB against the "
    f"original, {model.count_flops(render_at) / 1e6:.1f} MFLOPs, {1000 * seconds:.0f} ms"
)

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(full, cmap="gray", vmin=0, vmax=1)
axes[0].set_title(f"original {full.shape[0]} x {full.shape[1]}")
axes[1].imshow(render.reshape(full.shape).clip(0, 1), cmap="gray", vmin=0, vmax=1)
axes[1].set_title(f"render from {args.size} x {args.size}")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
plt.show()
