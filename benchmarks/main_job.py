"""The CLI's main job: which estimator ``skinr fit`` runs by default, chosen by measurement.

Run:  python benchmarks/main_job.py                      (~8 min on 2 CPU cores)
      python benchmarks/main_job.py --schedules            (HashGrid's lr_schedule on
                                    camera and astronaut, 400 and 1000 steps, fit and
                                    held out; prints, writes nothing; ~15 min)
      python benchmarks/main_job.py --seconds 20 --estimators HashGrid Grid
      python benchmarks/main_job.py --quick                (smoke test)
Writes docs/benchmarks/main_job.md and main_job.json, with the README's command timed
end to end (``skinr fit --out DIR``, as a user runs it).

The README's first command fits the camera image shipped with skinr and must finish
within 60 s on 2 CPU cores with a result a person cannot tell from the original (at
least 40 dB) and a clean 4x render. Each candidate, at its defaults, trains for
``--seconds`` as ``skinr fit --seconds`` does (six probe steps time a step, and
``max_iter`` is set to fill the time, so a learning-rate schedule spans it; ``max_time``
stops it), twice:

- fit: the camera at 256 x 256 (area-downsampled from 512) for ``--seconds`` of
  training; PSNR and SSIM of the reconstruction, steps taken;
- 4x render: the camera at 128 x 128 for the same time, rendered at 512 x 512 (pixel
  centres) and compared with the 512 x 512 original, beside Pillow's bicubic and
  Lanczos resize of the same 128 x 128 image. A render with stripes, seams or noise
  between the samples scores below bicubic.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

import skinr
from skinr.comparison import budgeted
from skinr.metrics import psnr, ssim
from skinr.signals import to_coords

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
CANDIDATES = ["HashGrid", "Grid", "EnsembleINR", "LocalGlobalSIREN", "SIREN"]


def pil_resize(image: np.ndarray, side: int, method) -> np.ndarray:
    resized = Image.fromarray(image.astype(np.float32), mode="F").resize((side, side), method)
    return np.asarray(resized, dtype=np.float64)


def fit_for(name: str, image: np.ndarray, seconds: float):
    """Fit for ``seconds`` as ``skinr fit --seconds`` does: a probe times a step and
    ``max_iter`` fills the budget, so a learning-rate schedule spans it."""
    X, y = to_coords(image, pixel_centers=True)
    estimator = skinr.ESTIMATORS[name](random_state=0, device="cpu", data_range=1.0)
    model = budgeted(estimator, X, y, seconds=seconds)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(X, y)
    return model, time.perf_counter() - started


def measure(name: str, seconds: float, full: np.ndarray) -> dict:
    image = skinr.datasets.resize(full, (full.shape[0] // 2,) * 2)
    model, wall = fit_for(name, image, seconds)
    reconstruction = model.render(image.shape)
    small = skinr.datasets.resize(full, (full.shape[0] // 4,) * 2)
    small_model, _ = fit_for(name, small, seconds)
    started = time.perf_counter()
    render = np.clip(small_model.render(full.shape), 0, 1)
    return {
        "estimator": name,
        "steps": model.n_iter_,
        "fit_seconds": wall,
        "fit_psnr": psnr(image, reconstruction, data_range=1.0),
        "fit_ssim": ssim(image, reconstruction, data_range=1.0),
        "params": model.n_params_,
        "render_4x_psnr": psnr(full, render, data_range=1.0),
        "render_4x_ssim": ssim(full, render, data_range=1.0),
        "render_4x_seconds": time.perf_counter() - started,
    }


def main_job() -> dict:
    """The README's first command, end to end (Python start-up, import, fit, renders,
    pictures, model file), as a user runs it."""
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "skinr", "fit", "--out", out, "--quiet"], check=True)
        wall = time.perf_counter() - started
        metrics = json.loads((Path(out) / "metrics.json").read_text())
    return {
        "wall_seconds": wall,
        "model": metrics["model"],
        "steps": metrics["steps"],
        "psnr_db": metrics["psnr_db"],
        "ssim": metrics["ssim"],
        "fit_seconds": metrics["fit_seconds"],
    }


def write(
    rows: list[dict], anchors: dict, seconds: float, job: dict | None = None, save: bool = True
) -> None:
    lines = [
        "# The CLI's main job: which estimator `skinr fit` runs by default",
        "",
        f"Command: `python benchmarks/main_job.py --seconds {seconds:g}` (2 CPU cores). "
        f"Camera, every candidate at its defaults for {seconds:g} s of training (as "
        f"`skinr fit --seconds {seconds:g}`: `max_iter` fills the time). Fit: "
        "256 x 256, PSNR/SSIM of the reconstruction. 4x: fitted at 128 x 128, rendered "
        "at 512 x 512 against the original; bicubic and Lanczos (Pillow) from the same "
        "128 x 128 image.",
        "",
        "| estimator | steps | fit s | fit PSNR (dB) | fit SSIM | params "
        "| 4x PSNR (dB) | 4x SSIM |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['estimator']} | {row['steps']} | {row['fit_seconds']:.1f} "
            f"| {row['fit_psnr']:.2f} | {row['fit_ssim']:.4f} | {row['params']:,} "
            f"| {row['render_4x_psnr']:.2f} | {row['render_4x_ssim']:.4f} |"
        )
    for name, (value, similarity) in anchors.items():
        lines.append(f"| {name} (4x) | | | | | | {value:.2f} | {similarity:.4f} |")
    if job is not None:
        lines += [
            "",
            f"The README's command, `skinr fit --out DIR` ({job['model']}, {job['steps']} "
            f"steps at 256 x 256), end to end: {job['wall_seconds']:.1f} s wall clock "
            f"(fit {job['fit_seconds']:.1f} s), PSNR {job['psnr_db']:.2f} dB, "
            f"SSIM {job['ssim']:.5f}.",
        ]
    print("\n".join(lines))
    if save:
        (RESULTS / "main_job.md").write_text("\n".join(lines) + "\n")
        results = {"seconds": seconds, "rows": rows, "anchors": anchors, "main_job": job}
        (RESULTS / "main_job.json").write_text(json.dumps(results, indent=2) + "\n")


def schedules(steps=(400, 1000)) -> None:
    """HashGrid's learning-rate schedule: fit PSNR of the whole 256 x 256 image after
    ``steps``, and PSNR on every second row and column held out (the rest fitted)."""
    from skinr.signals import to_coords

    print("| image | lr_schedule | steps | fit PSNR (dB) | held-out PSNR (dB) |")
    print("|---|---|---:|---:|---:|")
    for name in ("camera", "astronaut"):
        image = skinr.datasets.resize(getattr(skinr.datasets, name)(), (256, 256))
        X, y = to_coords(image, pixel_centers=True)
        keep = np.zeros((256, 256), dtype=bool)
        keep[::2, ::2] = True
        keep = keep.ravel()
        for schedule in (None, "exponential", "cosine"):
            for n in steps:
                settings = dict(max_iter=n, lr_schedule=schedule, random_state=0, data_range=1.0)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    whole = skinr.HashGrid(**settings).fit(X, y)
                    seen = skinr.HashGrid(**settings).fit(X[keep], y[keep])
                print(
                    f"| {name} | {schedule} | {n} | {whole.score(X, y):.2f} "
                    f"| {seen.score(X[~keep], y[~keep]):.2f} |",
                    flush=True,
                )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--estimators", nargs="+", default=CANDIDATES)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--schedules", action="store_true", help="HashGrid's schedule sweep")
    args = parser.parse_args(argv)
    if args.schedules:
        schedules()
        return
    full = skinr.datasets.camera()
    # A smoke test, not a measurement: room for a slow step on a loaded machine.
    seconds = 1.5 if args.quick else args.seconds
    if args.quick:
        full = skinr.datasets.resize(full, (64, 64))
    rows = []
    for name in args.estimators:
        rows.append(measure(name, seconds, full))
        print(rows[-1], flush=True)
    small = skinr.datasets.resize(full, (full.shape[0] // 4,) * 2)
    anchors = {}
    for label, method in (("bicubic", Image.BICUBIC), ("Lanczos", Image.LANCZOS)):
        upsampled = np.clip(pil_resize(small, full.shape[0], method), 0, 1)
        anchors[label] = (
            psnr(full, upsampled, data_range=1.0),
            ssim(full, upsampled, data_range=1.0),
        )
    job = None if args.quick else main_job()
    write(rows, anchors, seconds, job, save=not args.quick)


if __name__ == "__main__":
    main()
