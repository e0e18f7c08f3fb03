"""Radon's two samplings: seconds per pass over a sinogram, in one run.

Run:  python benchmarks/radon_sampling.py              (~3 min on 2 CPU cores)
Writes docs/benchmarks/radon_sampling.md and radon_sampling.json.

Setup: the 128 x 128 disc of ``skinr.datasets.camera`` projected at 100 angles
(``skimage.transform.radon``); each estimator at its defaults, 30 steps, eager; the
median of the last 15 step times. ``sampling="line"`` evaluates the network at every
line's quadrature points, so a step takes as many measurements as keep those points
within ``predict_batch_size``; ``sampling="grid"`` renders the 128 x 128 grid once per
step and measures the whole sinogram from it. A pass is one step's seconds times the
steps it takes to see every measurement once.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from _steps import step_seconds
from skimage.transform import radon

import skinr
from skinr.inverse import Radon, radon_coords

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
MODELS = ["SIREN", "HashGrid"]
STEPS = 30


def main() -> None:
    n = 128
    rows, cols = np.mgrid[:n, :n] - (n - 1) / 2
    image = skinr.datasets.camera(size=n) * (rows**2 + cols**2 <= (n / 2) ** 2)
    theta = np.linspace(0.0, 180.0, 100, endpoint=False)
    X = radon_coords(theta, image.shape)
    y = radon(image, theta).ravel()
    results = {}
    for name in MODELS:
        for sampling in ("grid", "line"):
            model = skinr.ESTIMATORS[name](
                max_iter=STEPS,
                random_state=0,
                device="cpu",
                torch_compile=False,
                operator=Radon(pixel_size=2 / n, sampling=sampling),
            )
            seconds, model = step_seconds(model, X, y)
            step = float(np.median(seconds[-15:]))
            per_step = model.operator_.points_per_measurement
            measurements = min(len(X), model.predict_batch_size // per_step)
            passes = math.ceil(len(X) / measurements)
            results[f"{name} {sampling}"] = {
                "step_seconds": step,
                "measurements_per_step": measurements,
                "pass_seconds": step * passes,
            }
            print(f"{name:10s} {sampling:5s} {step:.3f} s/step  {step * passes:.2f} s/pass")
    lines = [
        "# Radon sampling: seconds per pass over a sinogram",
        "",
        "<!-- written by benchmarks/radon_sampling.py -->",
        "128 x 128 image, 100 angles (12,800 measurements), defaults, CPU, one run.",
        "",
        "| estimator | sampling | measurements per step | seconds per step | seconds per pass "
        "| pass ratio (line / grid) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name in MODELS:
        grid_pass = results[f"{name} grid"]["pass_seconds"]
        for sampling in ("grid", "line"):
            row = results[f"{name} {sampling}"]
            ratio = row["pass_seconds"] / grid_pass
            lines.append(
                f"| {name} | {sampling} | {row['measurements_per_step']} | "
                f"{row['step_seconds']:.3f} | {row['pass_seconds']:.2f} | {ratio:.1f} |"
            )
    text = "\n".join(lines) + "\n"
    (RESULTS / "radon_sampling.md").write_text(text)
    (RESULTS / "radon_sampling.json").write_text(json.dumps(results, indent=1))
    print(text)


if __name__ == "__main__":
    main()
