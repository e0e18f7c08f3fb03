"""Operators that render a grid or evaluate points: seconds per pass, in one run.

Run:  python benchmarks/operator_sampling.py           (~4 min on 2 CPU cores)
Writes docs/benchmarks/operator_sampling.md and operator_sampling.json.

Setup: ``skinr.datasets.camera`` at 128 x 128; each estimator at its defaults, 30 steps,
eager; the median of the last 15 step times.

- Radon: the image's disc projected at 100 angles (``skimage.transform.radon``).
  ``sampling="line"`` evaluates the network at every line's quadrature points;
  ``sampling="grid"`` renders the 128 x 128 grid once per step and measures the whole
  sinogram from it.
- Blur: the image convolved with a 9 x 9 Gaussian psf (sigma 1.5 px).
  ``sampling="points"`` evaluates the network at each measurement's 81 points;
  ``sampling="grid"`` renders the 136 x 136 grid every measurement reads once per step
  and convolves it.
- AreaDownsample + TV: the image's 32 x 32 block means (4 x 4),
  ``TVRegularized(AreaDownsample(4), weight=3e-3)`` (super-resolution with a prior on
  the 128 x 128 sub-pixels). ``sampling="points"`` evaluates each mean's 16 points and
  the prior renders the sub-pixels again; ``sampling="grid"`` renders them once for both.

With points a step takes as many measurements as keep them within
``predict_batch_size``. A pass is one step's seconds times the steps it takes to see
every measurement once.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from _steps import step_seconds
from scipy import ndimage
from skimage.transform import radon

import skinr
from skinr.inverse import AreaDownsample, Blur, Radon, TVRegularized, radon_coords
from skinr.signals import to_coords

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
MODELS = ["SIREN", "HashGrid"]
STEPS = 30
SIZE = 128


def problems() -> dict:
    """Operator name -> (make the operator for a sampling, X, y, the two samplings)."""
    image = skinr.datasets.camera(size=SIZE)
    rows, cols = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    disc = image * (rows**2 + cols**2 <= (SIZE / 2) ** 2)
    theta = np.linspace(0.0, 180.0, 100, endpoint=False)
    offsets = np.arange(9) - 4
    psf = np.exp(-(offsets[:, None] ** 2 + offsets[None] ** 2) / (2 * 1.5**2))
    psf /= psf.sum()
    X_blur, y_blur = to_coords(ndimage.convolve(image, psf, mode="reflect"), pixel_centers=True)
    means = image.reshape(SIZE // 4, 4, SIZE // 4, 4).mean(axis=(1, 3))
    X_low, y_low = to_coords(means, pixel_centers=True)
    return {
        "Radon": (
            lambda sampling: Radon(pixel_size=2 / SIZE, sampling=sampling),
            radon_coords(theta, disc.shape),
            radon(disc, theta).ravel(),
            ("grid", "line"),
        ),
        "Blur": (lambda sampling: Blur(psf, sampling=sampling), X_blur, y_blur, ("grid", "points")),
        "AreaDownsample + TV": (
            lambda sampling: TVRegularized(AreaDownsample(4, sampling=sampling), weight=3e-3),
            X_low,
            y_low,
            ("grid", "points"),
        ),
    }


def main() -> None:
    results = {}
    cases = problems()
    for operator_name, (make_operator, X, y, samplings) in cases.items():
        for name in MODELS:
            for sampling in samplings:
                model = skinr.ESTIMATORS[name](
                    max_iter=STEPS,
                    random_state=0,
                    device="cpu",
                    torch_compile=False,
                    operator=make_operator(sampling),
                )
                seconds, model = step_seconds(model, X, y)
                step = float(np.median(seconds[-15:]))
                per_step = model.operator_.points_per_measurement
                measurements = min(len(X), model.predict_batch_size // per_step)
                passes = math.ceil(len(X) / measurements)
                results[f"{operator_name} {name} {sampling}"] = {
                    "measurements": len(X),
                    "step_seconds": step,
                    "measurements_per_step": measurements,
                    "pass_seconds": step * passes,
                }
                print(
                    f"{operator_name:18s} {name:10s} {sampling:6s} {step:.3f} s/step  "
                    f"{step * passes:.2f} s/pass",
                    flush=True,
                )
    lines = [
        "# Operator sampling: seconds per pass over the measurements",
        "",
        "<!-- written by benchmarks/operator_sampling.py -->",
        f"{SIZE} x {SIZE} image; Radon from 100 angles, Blur with a 9 x 9 psf, "
        "AreaDownsample(4) from its 32 x 32 block means with total variation (weight 3e-3) "
        "on the sub-pixels; defaults, 30 steps, CPU, one run. The first sampling of each "
        "operator is its default.",
        "",
        "| operator | estimator | sampling | measurements per step | seconds per step "
        "| seconds per pass | pass ratio (to the grid) |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for operator_name, (_make, X, _y, samplings) in cases.items():
        for name in MODELS:
            grid_pass = results[f"{operator_name} {name} grid"]["pass_seconds"]
            for sampling in samplings:
                row = results[f"{operator_name} {name} {sampling}"]
                lines.append(
                    f"| {operator_name} | {name} | {sampling} | "
                    f"{row['measurements_per_step']} of {len(X)} | {row['step_seconds']:.3f} | "
                    f"{row['pass_seconds']:.2f} | {row['pass_seconds'] / grid_pass:.1f} |"
                )
    text = "\n".join(lines) + "\n"
    (RESULTS / "operator_sampling.md").write_text(text)
    (RESULTS / "operator_sampling.json").write_text(json.dumps(results, indent=1))
    print(text)


if __name__ == "__main__":
    main()
