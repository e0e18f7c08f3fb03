"""SL2A against SIREN and ReLU+PE: image fitting, full vs simple model, spectral bias.

Run:  python benchmarks/sl2a.py           (~12 min on 2 CPU cores)
      python benchmarks/sl2a.py --quick   (smoke test)
Writes docs/benchmarks/sl2a.md, sl2a.json and docs/images/sl2a_spectral_bias.png.

CPU-feasible versions of the paper's experiments: images are 128 x 128 (scikit-image's
astronaut, RGB, and the camera image), every model trains the same number of full-batch
steps with its skinr defaults (16,384 pixels = one SL2A mini-batch of the official
code); PSNR (range 1) and SSIM on the training pixels at the end, as the paper's Table 1
reports fitting quality.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import skinr
from skinr.metrics import psnr, ssim
from skinr.signals import to_array, to_coords

ROOT = Path(__file__).resolve().parent.parent
# The paper's degree for images; a fit caps it at the samples per axis (128 here).
# "auto", the default, takes half that, for prediction between the samples.
PAPER_DEGREE = 512
MODELS = {
    "SL2A width 256 (D 512, rank 128)": lambda: skinr.SL2A(degree=PAPER_DEGREE),
    "SL2A width 128 (D 500, rank 64)": lambda: skinr.SL2A(width=128, degree=500, rank=64),
    "SL2A low-rank (D 256, rank 32)": lambda: skinr.SL2A(degree=256, rank=32),
    "FourierFeatureMLP (ReLU+PE)": lambda: skinr.FourierFeatureMLP(encoding="positional"),
    "SIREN": lambda: skinr.SIREN(),
}


def fit_image(make, image, steps):
    X, y = to_coords(image)
    model = make().set_params(max_iter=steps, random_state=0, device="cpu", data_range=1.0)
    model.fit(X, y)
    recon = to_array(model.predict(X), image.shape[:2])
    return {
        "params": model.n_params_,
        "psnr": psnr(image, recon, data_range=1.0),
        "ssim": ssim(
            image,
            np.clip(recon, 0, 1),
            data_range=1.0,
            channel_axis=-1 if image.ndim == 3 else None,
        ),
        "ms_per_step": 1000 * model.fit_time_ / model.n_iter_,
    }


def spectral_errors(make, steps_grid, n_points=300):
    """Relative error of the DFT at the target's four frequencies after each step count."""
    x = np.linspace(-1, 1, n_points)
    f = 2 * np.round((sum(np.sin(k * np.pi * x) for k in (3, 5, 7, 9))) / 2)
    bins = [3, 5, 7, 9]
    truth = np.fft.rfft(f)[bins]
    rows = []
    for steps in steps_grid:
        # No schedule, same seed: the fit with N steps is the first N steps of a longer one.
        model = make().set_params(
            max_iter=steps, random_state=0, device="cpu", lr_schedule=None, batch_size=None
        )
        prediction = model.fit(x[:, None], f).predict(x[:, None])
        rows.append(np.abs(np.fft.rfft(prediction)[bins] - truth) / np.abs(truth))
    return np.array(rows)


def plot_spectral(path, steps_grid, errors):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(errors), figsize=(10, 3), sharey=True)
    for ax, (name, err) in zip(axes, errors.items(), strict=True):
        image = ax.imshow(
            err.T,
            aspect="auto",
            cmap="viridis",
            vmin=0,
            vmax=1,
            origin="lower",
            extent=(steps_grid[0], steps_grid[-1], 0, 4),
        )
        ax.set(title=name, xlabel="training step")
        ax.set_yticks([0.5, 1.5, 2.5, 3.5], ["3 pi", "5 pi", "7 pi", "9 pi"])
    axes[0].set_ylabel("frequency")
    fig.colorbar(image, ax=axes, label="relative error")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def image_tables(args):
    """Table 1 (image fitting) and Table 2 (full vs simple) of the paper, on the CPU."""
    astronaut = skinr.datasets.astronaut(args.size)
    camera = skinr.datasets.camera(args.size)
    table1 = {}
    for name, make in MODELS.items():
        table1[name] = fit_image(make, astronaut, args.steps)
        print(name, table1[name], flush=True)
    table2 = {
        ("astronaut", "full"): table1["SL2A width 256 (D 512, rank 128)"],
        ("astronaut", "simple"): fit_image(
            lambda: skinr.SL2A(degree=PAPER_DEGREE, modulate=False), astronaut, args.steps
        ),
        ("camera", "full"): fit_image(lambda: skinr.SL2A(degree=PAPER_DEGREE), camera, args.steps),
        ("camera", "simple"): fit_image(
            lambda: skinr.SL2A(degree=PAPER_DEGREE, modulate=False), camera, args.steps
        ),
    }
    return table1, table2


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--spectral-only",
        action="store_true",
        help="rerun the 1-D experiment; reuse the image tables saved in sl2a.json",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.steps = 16, 3
    if args.spectral_only:
        saved = json.loads((ROOT / "docs" / "benchmarks" / "sl2a.json").read_text())
        table1 = saved["image_fitting"]
        table2 = {tuple(k.split(" ")): r for k, r in saved["full_vs_simple"].items()}
    else:
        table1, table2 = image_tables(args)
    steps_grid = [3, 6] if args.quick else list(range(5, 201, 5))
    spectral = {
        "SL2A (width 128, depth 3, D 64)": spectral_errors(
            lambda: skinr.SL2A(width=128, depth=3, degree=64, rank=None), steps_grid
        ),
        "SIREN (width 128, depth 3)": spectral_errors(
            lambda: skinr.SIREN(width=128, depth=3, learning_rate=1e-3), steps_grid
        ),
    }
    lines = [
        f"{args.size} x {args.size} images, {args.steps} full-batch steps each, skinr "
        "defaults otherwise, seed 0, CPU (2 cores); PSNR (range 1) and SSIM on the "
        "training pixels",
        "",
        "Image fitting (astronaut, RGB). The labels name the degree asked for; a fit caps "
        f"it at the samples along the longest axis ({args.size} here), so every SL2A row "
        f"fits degree {args.size}: the paper's 512 applies from 512 pixels a side.",
        "",
        "| model | params | PSNR (dB) | SSIM | ms/step |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {n} | {r['params']:,} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['ms_per_step']:.0f} |"
        for n, r in table1.items()
    ]
    lines += [
        "",
        "Full (modulated) vs simple model (`modulate=False`), SL2A width 256:",
        "",
        "| image | model | PSNR (dB) | SSIM |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {img} | {kind} | {r['psnr']:.2f} | {r['ssim']:.4f} |"
        for (img, kind), r in table2.items()
    ]
    checkpoints = [i for i, s in enumerate(steps_grid) if s in (25, 50, 100, 200)] or [-1]
    lines += [
        "",
        "Spectral bias (1-D, 300 points, lr 1e-3 for both, no schedule): relative error of "
        "the DFT at each frequency after the given steps:",
        "",
        "| model | steps | 3 pi | 5 pi | 7 pi | 9 pi |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {n} | {steps_grid[i]} | " + " | ".join(f"{e:.3f}" for e in err[i]) + " |"
        for n, err in spectral.items()
        for i in checkpoints
    ]
    table = "\n".join(lines)
    print(table)
    if not args.quick:
        (ROOT / "docs" / "benchmarks" / "sl2a.md").write_text(
            "<!-- written by benchmarks/sl2a.py -->\n" + table + "\n"
        )
        (ROOT / "docs" / "benchmarks" / "sl2a.json").write_text(
            json.dumps(
                {
                    "image_fitting": table1,
                    "full_vs_simple": {f"{a} {b}": r for (a, b), r in table2.items()},
                    "spectral_steps": steps_grid,
                    "spectral": {n: e.tolist() for n, e in spectral.items()},
                },
                indent=2,
            )
            + "\n"
        )
        plot_spectral(ROOT / "docs" / "images" / "sl2a_spectral_bias.png", steps_grid, spectral)


if __name__ == "__main__":
    main()
