"""EnsembleINR on an image: fit a grid of sub-networks, then search its width and depth.

Run: `python examples/ensemble_search.py [--size 64] [--steps 300]`
Prints the ensemble's PSNR against SIREN's at the same number of steps, then the path
the paper's structure search (Algorithm 1) takes at grid 4.
"""

import argparse

import matplotlib.pyplot as plt

import skinr
from skinr.model_selection import StructureSearchCV
from skinr.signals import to_coords

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=64)
parser.add_argument("--steps", type=int, default=300)
args = parser.parse_args()

X, y = to_coords(skinr.datasets.camera(args.size), pixel_centers=True)
for model in (
    skinr.SIREN(max_iter=args.steps, random_state=0, data_range=1.0),
    skinr.EnsembleINR(grid=4, max_iter=args.steps, random_state=0, data_range=1.0),
):
    model.fit(X, y)
    print(
        f"{type(model).__name__}: {model.score(X, y):.2f} dB, "
        f"{model.count_flops(X) / 1e6:.1f} MFLOPs per image, {model.n_params_:,} params"
    )

search = StructureSearchCV(
    skinr.EnsembleINR(grid=4, max_iter=args.steps, data_range=1.0),
    widths=(16, 32, 64),
    depths=(1, 2),
    alpha=7,
    max_flops=1e9,
    n_repeats=1,
).fit(X, y)
for step in search.history_:
    print(
        f"round {step['round']} {step['step']}: width={step['width']} depth={step['depth']} "
        f"score={step['score']:.2f}"
    )
print("best:", search.best_params_)

fig, ax = plt.subplots(figsize=(6, 3.4))
scores = [step["score"] for step in search.history_]
ax.plot(range(1, len(scores) + 1), scores, "o-")
for index, step in enumerate(search.history_, 1):
    ax.annotate(f"{step['width']}x{step['depth']}", (index, step["score"]), fontsize=7)
ax.set(xlabel="candidate", ylabel="score (PSNR - FLOP penalty)", title="structure search")
fig.tight_layout()
plt.show()
