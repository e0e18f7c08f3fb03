"""Choose SIREN's width and depth with GridSearchCV, ranked by held-out PSNR.

Run: `python examples/search_width.py [--size 64] [--steps 300]`
"""

import argparse

import matplotlib.pyplot as plt
from sklearn.model_selection import GridSearchCV, KFold

import skinr
from skinr.signals import to_coords

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=64)
parser.add_argument("--steps", type=int, default=300)
args = parser.parse_args()

X, y = to_coords(skinr.datasets.camera(args.size), pixel_centers=True)
search = GridSearchCV(
    skinr.SIREN(max_iter=args.steps, random_state=0, data_range=1.0),
    {"width": [32, 64, 128], "depth": [1, 3]},
    cv=KFold(3, shuffle=True, random_state=0),  # interpolation: scattered held-out pixels
).fit(X, y)
for params, score in zip(
    search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
):
    print(f"{params}: {score:.2f} dB")
print("best:", search.best_params_)

fig, ax = plt.subplots(figsize=(5, 3.4))
for depth in (1, 3):
    rows = [
        (params["width"], score)
        for params, score in zip(
            search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
        )
        if params["depth"] == depth
    ]
    ax.plot(*zip(*rows, strict=True), "o-", label=f"depth {depth}")
ax.set(xscale="log", xlabel="width", ylabel="held-out PSNR (dB)", title="3-fold search")
ax.legend()
fig.tight_layout()
plt.show()
