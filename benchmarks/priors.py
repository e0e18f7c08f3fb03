"""Learned priors: a SIREN initialisation meta-learned from photos, against a random one.

Run:  python benchmarks/priors.py                      (~6 min on 2 CPU cores)
      python benchmarks/priors.py --quick              (a smoke run, a minute)

Collection: grey crops of scikit-image's photographs (brick, clock, coins, grass,
gravel, Hubble deep field, immunohistochemistry, moon, page, retina, text, cell,
coffee, rocket: public domain or CC0), resized so the short side is twice the crop,
several random crops each, flipped too. Held out, never seen by the prior: camera,
astronaut and chelsea (``../shared/data``) and two more of scikit-image's. For each
held-out photo, the same SIREN from a random and from the learned initialisation, at
equal steps (a step costs the same from either, so equal seconds too), beside the
simple alternative: the steps to 30 dB; prediction of every 2nd pixel; 4x
super-resolution from block means through ``AreaDownsample``; inpainting from 20 % of
the pixels against ``inpaint_biharmonic``. Writes docs/benchmarks/priors.md and .json,
and the prior the package ships (skinr/data/prior_siren_<size>.skinr).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import skimage.data
from scipy.interpolate import RegularGridInterpolator
from skimage.color import rgb2gray
from skimage.restoration import inpaint_biharmonic
from skimage.transform import resize
from sklearn.base import clone

import skinr
from skinr._core.loop import loss_psnr
from skinr.inverse import AreaDownsample
from skinr.meta import LearnedInit
from skinr.signals import random_mask, to_coords

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
TRAINING = [
    "brick",
    "clock",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "text",
    "cell",
]
HELD_OUT_SKIMAGE = ["coffee", "rocket"]
HELD_OUT_SHARED = ["camera", "astronaut", "chelsea"]
TARGET_DB = 30.0


def grey(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3:
        image = rgb2gray(image[..., :3])
    image = image.astype(np.float64)
    return image / 255.0 if image.max() > 1.0 else image


def square(image: np.ndarray, size: int) -> np.ndarray:
    side = min(image.shape)
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    return resize(image[top : top + side, left : left + side], (size, size), anti_aliasing=True)


def collection(size: int, crops: int, rng) -> list[np.ndarray]:
    signals = []
    for name in TRAINING:
        image = grey(getattr(skimage.data, name)())
        scale = 2 * size / min(image.shape)
        image = resize(image, (round(image.shape[0] * scale), round(image.shape[1] * scale)))
        for _ in range(crops):
            top = rng.integers(0, image.shape[0] - size + 1)
            left = rng.integers(0, image.shape[1] - size + 1)
            crop = image[top : top + size, left : left + size]
            signals += [crop, crop[:, ::-1]]
    return signals


def held_out(size: int) -> dict[str, np.ndarray]:
    from PIL import Image

    photos = {}
    for name in HELD_OUT_SHARED:
        path = SHARED / f"{name}.png"
        if path.is_file():
            photos[name] = square(grey(np.asarray(Image.open(path))), size)
    for name in HELD_OUT_SKIMAGE:
        photos[name] = square(grey(getattr(skimage.data, name)()), size)
    return photos


def psnr(a, b) -> float:
    return skinr.metrics.psnr(a, b, data_range=1.0)


def curve_to_target(model, steps: int) -> tuple[int | None, float | None]:
    """The first step whose training PSNR reaches the target, and its seconds."""
    curve = loss_psnr(model.history_["loss"], model.y_scale_, 1.0)
    hit = np.flatnonzero(curve >= TARGET_DB)
    if not len(hit):
        return None, None
    return int(hit[0]) + 1, float(model.history_["seconds"][hit[0]])


def run(args) -> dict:
    rng = np.random.default_rng(0)
    size = args.size
    estimator = skinr.SIREN(width=args.width, depth=args.depth, random_state=0, device="cpu")
    signals = collection(size, args.crops, rng)
    started = time.perf_counter()
    prior = LearnedInit(
        estimator,
        inner_steps=args.inner_steps,
        inner_learning_rate=args.inner_lr,
        meta_learning_rate=args.meta_lr,
        meta_steps=args.meta_steps,
        signals_per_step=args.signals_per_step,
        random_state=0,
        device="cpu",
        verbose=True,
    ).fit(signals)
    meta_seconds = time.perf_counter() - started
    results = {
        "setup": {
            "size": size,
            "estimator": f"SIREN(width={args.width}, depth={args.depth})",
            "signals": len(signals),
            "meta_steps": args.meta_steps,
            "inner_steps": args.inner_steps,
            "inner_lr": args.inner_lr,
            "meta_lr": args.meta_lr,
            "signals_per_step": args.signals_per_step,
            "meta_minutes": meta_seconds / 60,
            "steps": args.steps,
        },
        "photos": {},
    }
    if not args.quick:
        prior.save(ROOT / "skinr" / "data" / f"prior_siren_{size}.skinr")
    for name, image in held_out(size).items():
        X, y = to_coords(image)
        row = {}
        starts = {
            "random": lambda: estimator,
            "prior": lambda: prior.initialized(),
        }
        for start, make in starts.items():
            fitted = clone(make()) if start == "random" else make()
            fitted.set_params(max_iter=args.steps, data_range=1.0)
            fitted.fit(X, y)
            reach = curve_to_target(fitted, args.steps)
            row[f"{start}_fit_db"] = fitted.score(X, y)
            row[f"{start}_steps_to_30"], row[f"{start}_seconds_to_30"] = reach
            # every 2nd pixel held out
            keep = np.zeros(image.shape, bool)
            keep[::2, ::2] = True
            keep = keep.ravel()
            model = clone(estimator) if start == "random" else prior.initialized()
            model.set_params(max_iter=args.steps, data_range=1.0).fit(X[keep], y[keep])
            row[f"{start}_every2nd_db"] = model.score(X[~keep], y[~keep])
            # 4x super-resolution from block means
            low = image.reshape(size // 4, 4, size // 4, 4).mean(axis=(1, 3))
            Xl, yl = to_coords(low)
            model = clone(estimator) if start == "random" else prior.initialized()
            model.set_params(max_iter=args.steps, data_range=1.0, operator=AreaDownsample(4))
            model.fit(Xl, yl)
            row[f"{start}_sr4_db"] = psnr(image, model.render((size, size)))
            # inpainting from 20 %
            seen = random_mask(image.shape, keep=0.2, random_state=0).ravel()
            model = clone(estimator) if start == "random" else prior.initialized()
            model.set_params(max_iter=args.steps, data_range=1.0).fit(X[seen], y[seen])
            row[f"{start}_inpaint20_db"] = model.score(X[~seen], y[~seen])
        kept = image[::2, ::2]
        grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1)
        axes = (np.arange(0, size, 2.0),) * 2
        held = ~keep.reshape(image.shape)
        for method in ("linear", "cubic"):
            guess = RegularGridInterpolator(
                axes, kept, method=method, bounds_error=False, fill_value=None
            )(grid)
            row[f"{method}_every2nd_db"] = psnr(image[held], guess[held])
        low = image.reshape(size // 4, 4, size // 4, 4).mean(axis=(1, 3))
        row["bicubic_sr4_db"] = psnr(image, resize(low, (size, size), order=3))
        mask = ~random_mask(image.shape, keep=0.2, random_state=0)
        row["biharmonic_inpaint20_db"] = psnr(image[mask], inpaint_biharmonic(image, mask)[mask])
        results["photos"][name] = row
        print(name, {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()})
    return results


def markdown(results: dict) -> str:
    setup = results["setup"]
    lines = [
        "# Learned priors",
        "",
        "<!-- written by benchmarks/priors.py -->",
        f"A {setup['estimator']} initialisation meta-learned (Reptile, "
        f"{setup['inner_steps']} inner Adam steps at the fit's learning rate, meta step "
        f"{setup['meta_lr'] or 1.0:g}, {setup['signals_per_step']} signals per step) for "
        f"{setup['meta_steps']} meta steps from {setup['signals']} grey "
        f"{setup['size']} x {setup['size']} crops of scikit-image photographs: "
        f"{setup['meta_minutes']:.1f} minutes on 2 CPU cores. Evaluated on photos it never "
        f"saw, {setup['steps']} steps from a random and from the learned initialisation "
        "(equal steps are equal seconds: a step costs the same from either). PSNR in dB, "
        "peak 1.",
        "",
        f"| photo | steps to {TARGET_DB:.0f} dB, random / prior | fit after "
        f"{setup['steps']}, random / prior | every 2nd pixel, random / prior / linear / "
        "cubic | 4x from block means, random / prior / bicubic | inpainting 20 %, random / "
        "prior / biharmonic |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def steps(value):
        return "—" if value is None else str(value)

    for name, row in results["photos"].items():
        lines.append(
            f"| {name} | {steps(row['random_steps_to_30'])} / {steps(row['prior_steps_to_30'])} "
            f"| {row['random_fit_db']:.2f} / {row['prior_fit_db']:.2f} "
            f"| {row['random_every2nd_db']:.2f} / {row['prior_every2nd_db']:.2f} / "
            f"{row['linear_every2nd_db']:.2f} / {row['cubic_every2nd_db']:.2f} "
            f"| {row['random_sr4_db']:.2f} / {row['prior_sr4_db']:.2f} / "
            f"{row['bicubic_sr4_db']:.2f} "
            f"| {row['random_inpaint20_db']:.2f} / {row['prior_inpaint20_db']:.2f} / "
            f"{row['biharmonic_inpaint20_db']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--crops", type=int, default=3)
    parser.add_argument("--meta-steps", type=int, default=300)
    parser.add_argument("--inner-steps", type=int, default=2)
    parser.add_argument("--inner-lr", type=float, default=None)
    parser.add_argument("--meta-lr", type=float, default=None)
    parser.add_argument("--signals-per-step", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="a smoke run; writes nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.meta_steps, args.steps, args.crops = 20, 30, 1
    results = run(args)
    page = markdown(results)
    print(page)
    if not args.quick:
        out = ROOT / "docs" / "benchmarks"
        (out / "priors.md").write_text(page)
        (out / "priors.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
