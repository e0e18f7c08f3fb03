"""Fit the camera image with SIREN and a Fourier-feature MLP; compare them side by side.

Run: `python examples/fit_image.py [--size 128] [--steps 500] [--out skinr-examples]`
Writes fit_image.png: the image, both reconstructions and their PSNR.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import skinr
from skinr.signals import to_array, to_coords

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=128)
parser.add_argument("--steps", type=int, default=500)
parser.add_argument("--out", default="skinr-examples")
args = parser.parse_args()

image = skinr.datasets.camera(args.size)
X, y = to_coords(image, pixel_centers=True)
models = {
    "SIREN": skinr.SIREN(max_iter=args.steps, random_state=0, data_range=1.0),
    "FourierFeatureMLP": skinr.FourierFeatureMLP(
        max_iter=args.steps, random_state=0, data_range=1.0
    ),
}
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
axes[0].set_title(f"camera {args.size}x{args.size}")
for ax, (name, model) in zip(axes[1:], models.items(), strict=True):
    model.fit(X, y)
    ax.imshow(to_array(model.predict(X), image.shape).clip(0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{name}: {model.score(X, y):.1f} dB, {model.fit_time_:.0f} s")
    print(f"{name}: PSNR {model.score(X, y):.2f} dB after {model.n_iter_} steps")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
Path(args.out).mkdir(parents=True, exist_ok=True)
fig.savefig(Path(args.out) / "fit_image.png", dpi=100)
