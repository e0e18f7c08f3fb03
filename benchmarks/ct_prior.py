"""A CT prior learned from sinograms alone, against a random start, FBP and SART.

Run:  python benchmarks/ct_prior.py                    (~12 min on 2 CPU cores)
      python benchmarks/ct_prior.py --quick            (a smoke run; writes nothing)

Collection: ``skinr.datasets.ellipse_phantoms(64, size, random_state=1)``, each seen
only as a sinogram of 20 parallel-beam projections at its own random angles (so the
prior is not tied to one set of angles), as Tancik et al. (CVPR 2021) learned their CT
prior. ``LearnedInit`` runs every inner fit through ``Radon``: the prior never sees a
clean phantom. Held out: four phantoms of another seed, scikit-image's Shepp-Logan
phantom, and a real CT slice (``../shared/data/ct_img_377.png``, where present). For
each, from 20 and 60 equally spaced projections: filtered back-projection
(``iradon``, ramp filter), SART (3 sweeps), and the same estimator from a random and
from the learned initialisation at equal steps (a step costs the same from either, so
equal seconds too). PSNR in dB inside the reconstruction disc, peak 1. Writes
docs/benchmarks/ct_prior.md and .json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from inverse import disc, sart  # the inverse-problems benchmark's disc and SART
from skimage import transform
from skimage.data import shepp_logan_phantom
from skimage.io import imread

import skinr
from skinr.inverse import Radon, radon_coords
from skinr.meta import LearnedInit

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
TRAIN_ANGLES = 20


def held_out(size: int, quick: bool) -> dict[str, np.ndarray]:
    phantoms = skinr.datasets.ellipse_phantoms(2 if quick else 4, size, random_state=2)
    images = {f"phantom {k}": p for k, p in enumerate(phantoms)}
    images["Shepp-Logan"] = transform.resize(
        shepp_logan_phantom(), (size, size), anti_aliasing=True
    )
    slice_path = SHARED / "ct_img_377.png"
    if slice_path.is_file() and not quick:
        image = imread(slice_path, as_gray=True).astype(np.float64)
        image = transform.resize(image, (size, size), anti_aliasing=True)
        images["ct_img_377"] = (image - image.min()) / (image.max() - image.min())
    return {name: image * disc(size) for name, image in images.items()}


def psnr(truth: np.ndarray, estimate: np.ndarray, inside: np.ndarray) -> float:
    error = np.mean((np.clip(estimate, 0, 1)[inside] - truth[inside]) ** 2)
    return float(10 * np.log10(1.0 / max(error, 1e-30)))


def estimator(args, **params):
    return skinr.HashGrid(
        operator=Radon(pixel_size=2 / args.size), random_state=0, device="cpu", **params
    )


def run(args) -> dict:
    size = args.size
    rng = np.random.default_rng(0)
    collection = skinr.datasets.ellipse_phantoms(args.signals, size, random_state=1)
    sinograms = []
    for phantom in collection:
        theta = np.sort(rng.uniform(0, 180, TRAIN_ANGLES))
        sinograms.append(
            (radon_coords(theta, (size, size)), transform.radon(phantom, theta).ravel())
        )
    started = time.perf_counter()
    prior = LearnedInit(
        estimator(args),
        inner_steps=args.inner_steps,
        meta_steps=args.meta_steps,
        random_state=0,
        device="cpu",
    ).fit(sinograms)
    meta_minutes = (time.perf_counter() - started) / 60
    print(
        f"meta-training {meta_minutes:.1f} min, adapted loss {prior.loss_curve_[0]:.4f} -> "
        f"{np.mean(prior.loss_curve_[-10:]):.4f}",
        flush=True,
    )
    inside = disc(size)
    results = {
        "setup": {
            "size": size,
            "estimator": "HashGrid() through Radon",
            "signals": args.signals,
            "train_angles": TRAIN_ANGLES,
            "meta_steps": args.meta_steps,
            "inner_steps": args.inner_steps,
            "meta_minutes": meta_minutes,
            "steps": list(args.steps),
        },
        "images": {},
    }
    for name, image in held_out(size, args.quick).items():
        for n_angles in (20, 60):
            theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
            sinogram = transform.radon(image, theta)
            X = radon_coords(theta, (size, size))
            row = {
                "fbp_db": psnr(
                    image, transform.iradon(sinogram, theta, filter_name="ramp"), inside
                ),
                "sart_db": psnr(image, sart(sinogram, theta, sweeps=3), inside),
            }
            for steps in args.steps:
                for start in ("random", "prior"):
                    model = (
                        estimator(args, max_iter=steps)
                        if start == "random"
                        else prior.initialized(max_iter=steps)
                    )
                    tic = time.perf_counter()
                    model.fit(X, sinogram.ravel())
                    row[f"{start}_{steps}_seconds"] = time.perf_counter() - tic
                    row[f"{start}_{steps}_db"] = psnr(image, model.render((size, size)), inside)
            results["images"].setdefault(name, {})[str(n_angles)] = row
            print(name, n_angles, {k: round(v, 2) for k, v in row.items()}, flush=True)
    return results


def markdown(results: dict) -> str:
    setup = results["setup"]
    steps = setup["steps"]
    lines = [
        "# A CT prior learned from sinograms",
        "",
        "<!-- written by benchmarks/ct_prior.py -->",
        f"`LearnedInit({setup['estimator']}, inner_steps={setup['inner_steps']}, "
        f"meta_steps={setup['meta_steps']})` learned from {setup['signals']} "
        f"`ellipse_phantoms` of {setup['size']} x {setup['size']}, each seen only as a "
        f"sinogram of {setup['train_angles']} projections at its own random angles "
        f"(Reptile through `Radon`; {setup['meta_minutes']:.1f} minutes on 2 CPU cores). "
        "Held out: phantoms of another seed, scikit-image's Shepp-Logan phantom and a real "
        "CT slice, from equally spaced projections. PSNR in dB inside the reconstruction "
        "disc, peak 1; random / prior at equal steps (equal seconds: a step costs the same "
        "from either).",
        "",
    ]
    for n_angles in ("20", "60"):
        columns = " | ".join(f"{s} steps, random / prior" for s in steps)
        lines += [
            f"## {n_angles} projections",
            "",
            f"| image | FBP | SART | {columns} | best INR - FBP |",
            "|---|---:|---:|" + "---:|" * len(steps) + "---:|",
        ]
        for name, by_angles in results["images"].items():
            row = by_angles[n_angles]
            cells = " | ".join(
                f"{row[f'random_{s}_db']:.2f} / {row[f'prior_{s}_db']:.2f}" for s in steps
            )
            best = max(row[f"{start}_{s}_db"] for start in ("random", "prior") for s in steps)
            lines.append(
                f"| {name} | {row['fbp_db']:.2f} | {row['sart_db']:.2f} | {cells} | "
                f"{best - row['fbp_db']:+.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--signals", type=int, default=64)
    parser.add_argument("--meta-steps", type=int, default=100)
    parser.add_argument("--inner-steps", type=int, default=50)
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 300])
    parser.add_argument("--quick", action="store_true", help="a smoke run; writes nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.signals, args.meta_steps, args.inner_steps = 32, 8, 3, 2
        args.steps = [5]
    results = run(args)
    page = markdown(results)
    print(page)
    if not args.quick:
        out = ROOT / "docs" / "benchmarks"
        (out / "ct_prior.md").write_text(page)
        (out / "ct_prior.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
