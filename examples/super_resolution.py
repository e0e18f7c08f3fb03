"""Super-resolution: fit a 2x-downsampled image, render at full size, score there.

Run: `python examples/super_resolution.py [--size 256] [--steps 500]`
The held-out PSNR is measured on the full-resolution pixels the model never saw.
"""

import argparse

import matplotlib.pyplot as plt

import skinr
from skinr.signals import to_coords

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=256)
parser.add_argument("--steps", type=int, default=500)
args = parser.parse_args()

full = skinr.datasets.camera(args.size)
low = skinr.datasets.resize(full, (args.size // 2, args.size // 2))
# Pixel centres: each low-resolution pixel is the mean of a 2 x 2 block of full ones,
# and its coordinate is that block's centre, so both images share one frame.
X_low, y_low = to_coords(low, pixel_centers=True)
model = skinr.SIREN(max_iter=args.steps, random_state=0, data_range=1.0).fit(X_low, y_low)
X_full = model.grid_coordinates(full.shape)  # the same square, twice the pixels per side
print(f"fit PSNR at {low.shape}: {model.score(X_low, y_low):.2f} dB")
print(f"held-out PSNR at {full.shape}: {model.score(X_full, full.ravel()):.2f} dB")

fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
panels = [
    (f"fitted on {low.shape[0]} x {low.shape[1]}", low),
    (f"render at {full.shape[0]} x {full.shape[1]}", model.render(full.shape)),
    ("original", full),
]
for ax, (title, image) in zip(axes, panels, strict=True):
    ax.imshow(image.clip(0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()
plt.show()
