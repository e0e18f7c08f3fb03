"""LocalGlobalSIREN: encode the top half of an image, extend it to the whole, crop it.

Run: `python examples/localglobal_edit.py [--size 256] [--steps 500]`
Fits the top half of the camera image, grows the model to the whole image with
``extend`` (new partitions start as mirrored copies of their neighbours), then crops
the result to its left half: parameters drop, the kept predictions do not change.
"""

import argparse

import matplotlib.pyplot as plt
import numpy as np

import skinr
from skinr.signals import to_coords

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=256)
parser.add_argument("--steps", type=int, default=500)
args = parser.parse_args()

X, y = to_coords(skinr.datasets.camera(args.size), pixel_centers=True)
top = X[:, 0] < 0
side = max(1, args.size // 32)
model = skinr.LocalGlobalSIREN(
    partitions=(side // 2 or 1, side), n_params=100_000, max_iter=args.steps, random_state=0
)
model.fit(X[top], y[top])
print(f"top half, {model.partitions_} partitions: {model.score(X[top], y[top]):.2f} dB")

grown = model.extend(X, y, max_iter=args.steps)
print(
    f"extended to {grown.partitions_} partitions, {grown.n_params_:,} parameters: "
    f"{grown.score(X, y):.2f} dB on the whole image, "
    f"{grown.score(X[top], y[top]):.2f} dB on the top half"
)

left = X[:, 1] < 0
cropped = grown.crop(keep=([-1, -1], [1, -1e-3]))
same = np.allclose(cropped.predict(X[left]), grown.predict(X[left]), atol=1e-6)
print(
    f"cropped to the left half: {cropped.n_params_:,} parameters "
    f"({1 - cropped.n_params_ / grown.n_params_:.0%} fewer), "
    f"{cropped.score(X[left], y[left]):.2f} dB there, predictions unchanged: {same}"
)

shape = (args.size, args.size)


def on(mask, values):
    """``values`` at the pixels of ``mask``, blank elsewhere."""
    image = np.full(mask.size, np.nan)
    image[mask] = values
    return image.reshape(shape)


fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
panels = [
    ("fitted: the top half", on(top, model.predict(X[top]))),
    ("extended to the whole", grown.predict(X).reshape(shape)),
    ("cropped to the left half", on(left, cropped.predict(X[left]))),
]
for ax, (title, image) in zip(axes, panels, strict=True):
    ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()
plt.show()
