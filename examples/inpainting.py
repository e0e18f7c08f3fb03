"""Inpainting: fit 30 % of the pixels, predict the other 70 %.

Run: `python examples/inpainting.py [--size 128] [--steps 500] [--keep 0.3]`
"""

import argparse

import matplotlib.pyplot as plt
import numpy as np

import skinr
from skinr.signals import random_mask, to_coords

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=128)
parser.add_argument("--steps", type=int, default=500)
parser.add_argument("--keep", type=float, default=0.3)
args = parser.parse_args()

image = skinr.datasets.camera(args.size)
X, y = to_coords(image, pixel_centers=True)
seen = random_mask(image.shape, keep=args.keep, random_state=0).ravel()
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
observed = np.where(seen.reshape(image.shape), image, np.nan)
axes[0].imshow(observed, cmap="gray", vmin=0, vmax=1)
axes[0].set_title(f"observed ({args.keep:.0%})")
for ax, model in zip(
    axes[1:],
    (
        skinr.SIREN(max_iter=args.steps, random_state=0, data_range=1.0),
        skinr.FourierFeatureMLP(max_iter=args.steps, random_state=0, data_range=1.0),
    ),
    strict=True,
):
    model.fit(X[seen], y[seen])
    unseen = model.score(X[~seen], y[~seen])
    print(
        f"{type(model).__name__}: seen {model.score(X[seen], y[seen]):.2f} dB, "
        f"unseen {unseen:.2f} dB"
    )
    ax.imshow(model.render(image.shape).clip(0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{type(model).__name__}: unseen {unseen:.1f} dB")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
plt.show()
