"""Inpainting: fit 30 % of the pixels, predict the other 70 %.

Run: `python examples/inpainting.py [--size 128] [--steps 500] [--keep 0.3]`
"""

import argparse

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
for model in (
    skinr.SIREN(max_iter=args.steps, random_state=0, data_range=1.0),
    skinr.FourierFeatureMLP(max_iter=args.steps, random_state=0, data_range=1.0),
):
    model.fit(X[seen], y[seen])
    print(
        f"{type(model).__name__}: seen {model.score(X[seen], y[seen]):.2f} dB, "
        f"unseen {model.score(X[~seen], y[~seen]):.2f} dB"
    )
