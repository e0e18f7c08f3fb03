"""LocalGlobalSIREN: image fitting by partitions, cropping, extension and audio.

Run:  python benchmarks/localglobal.py           (~30 min on 2 CPU cores)
      python benchmarks/localglobal.py --quick   (smoke test, writes nothing)
Writes docs/benchmarks/localglobal.md, localglobal.json and
docs/images/localglobal_extension.png.

CPU-feasible versions of the paper's experiments (sizes and steps printed with each
table; the paper trains 1k steps at 512 x 512):

1. Image (paper Table 3): camera 256 x 256, about 200k parameters each, Adam 5e-4, the
   whole image every step: SIREN (256 x 3), SIREN per partition (16 x 16), and
   LocalGlobalSIREN at 2^2 ... 32^2 partitions (widths by the paper's Appendix A).
   PSNR and SSIM on the training pixels (data range 1), fit seconds.
2. Cropping: the 16 x 16 model cropped to boxes; parameters removed against area
   removed, and the kept region's PSNR before and after (nothing is retrained).
3. Extension (paper Fig. 7): the top half encoded with 8 x 16 partitions, then
   ``extend`` to the whole image and fine-tune; against fine-tuning a SIREN of the top
   half on the whole image, and a SIREN trained on the whole image from scratch. MSE
   (data range 1) over the fine-tuning steps.
4. Audio (paper Table 11): the first 65,536 samples (1.5 s) of the Bach clip from
   ``../shared/data/gt_bach.wav`` (a synthetic clip if missing), 32 partitions, Adam
   1e-4; SIREN and LocalGlobalSIREN with first-layer omega 3000 (the paper's time axis
   in [-100, 100]).
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
BACH = ROOT.parent / "shared" / "data" / "gt_bach.wav"


def image_models(quick):
    budget = dict(n_params=8000) if quick else {}
    small_siren = dict(width=24) if quick else {}
    models = {
        "SIREN 256 x 3": skinr.SIREN(**small_siren),
        "SIREN per partition 16 x 16": skinr.LocalGlobalSIREN(
            partitions=4 if quick else 16, local_only=True, **budget
        ),
    }
    for side in (2, 4) if quick else (2, 4, 8, 16, 32):
        models[f"LocalGlobalSIREN {side} x {side}"] = skinr.LocalGlobalSIREN(
            partitions=side, **budget
        )
    return models


def image_table(image, steps, quick):
    X, y = to_coords(image)
    rows, fitted = [], {}
    for name, model in image_models(quick).items():
        model.set_params(
            learning_rate=5e-4, max_iter=steps, random_state=0, device="cpu", data_range=1.0
        )
        model.fit(X, y)
        recon = to_array(model.predict(X), image.shape)
        widths = (
            f"{model.local_width_} / {model.global_width_}"
            if isinstance(model, skinr.LocalGlobalSIREN)
            else str(model.width)
        )
        rows.append(
            {
                "model": name,
                "widths": widths,
                "params": model.n_params_,
                "psnr": psnr(image, recon, data_range=1.0),
                "ssim": ssim(image, np.clip(recon, 0, 1), data_range=1.0),
                "fit_seconds": model.fit_time_,
            }
        )
        fitted[name] = model
        print(rows[-1], flush=True)
    return rows, fitted


def crop_table(model, image):
    X, y = to_coords(image)
    full_psnr = model.score(X, y)
    rows = []
    boxes = {
        "left three quarters": ([-1, -1], [1, 0.5]),
        "left half": ([-1, -1], [1, -0.01]),
        "top-left quarter": ([-1, -1], [-0.01, -0.01]),
    }
    for name, (lower, upper) in boxes.items():
        cropped = model.crop(keep=(lower, upper))
        inside = np.all((X >= lower) & (X <= upper), axis=1)
        rows.append(
            {
                "crop": name,
                "area_removed": 1 - inside.mean(),
                "params_removed": 1 - cropped.n_params_ / model.n_params_,
                "local_params_removed": 1 - cropped.partition_mask_.mean(),
                "kept_psnr_before": model.score(X[inside], y[inside]),
                "kept_psnr_after": cropped.score(X[inside], y[inside]),
            }
        )
        print(rows[-1], flush=True)
    return full_psnr, rows


def mse_curve(model):
    return [loss * model.y_scale_**2 for loss in model.loss_curve_]


def extension_curves(image, steps, quick):
    X, y = to_coords(image)
    top = X[:, 0] < 0
    budget = 8000 if quick else 100_000
    common = dict(learning_rate=5e-4, random_state=0, device="cpu", data_range=1.0)
    half = (2, 4) if quick else (8, 16)
    lgs = skinr.LocalGlobalSIREN(partitions=half, n_params=budget, max_iter=steps, **common)
    lgs.fit(X[top], y[top])
    extended = lgs.extend(X, y, max_iter=steps)
    small = skinr.SIREN(width=24 if quick else 180, max_iter=steps, **common)
    small.fit(X[top], y[top])
    small.set_params(warm_start=True).fit(X, y)
    full = skinr.SIREN(width=24 if quick else 256, max_iter=steps, **common).fit(X, y)
    curves = {
        f"LocalGlobalSIREN extend ({lgs.n_params_:,} -> {extended.n_params_:,} params)": mse_curve(
            extended
        )[steps:],
        f"SIREN of the top half, fine-tuned ({small.n_params_:,} params)": mse_curve(small)[steps:],
        f"SIREN from scratch ({full.n_params_:,} params)": mse_curve(full),
    }
    finals = {
        "extended_psnr": extended.score(X, y),
        "extended_top_psnr": extended.score(X[top], y[top]),
        "top_psnr_before": lgs.score(X[top], y[top]),
        "small_siren_psnr": small.score(X, y),
        "full_siren_psnr": full.score(X, y),
    }
    print(finals, flush=True)
    return curves, finals


def audio_table(steps, quick):
    n = 2048 if quick else 65536
    if BACH.exists():
        from scipy.io import wavfile

        rate, clip = wavfile.read(BACH)
        clip = clip.astype(np.float64)
        clip = (clip if clip.ndim == 1 else clip.mean(axis=1))[:n]
        clip /= np.abs(clip).max()
        source = f"gt_bach.wav, first {n} samples at {rate} Hz"
    else:
        clip, source = skinr.datasets.audio_clip(n, random_state=0), "synthetic clip"
    X, y = to_coords(clip)
    common = dict(
        first_omega_0=3000.0, learning_rate=1e-4, max_iter=steps, random_state=0, device="cpu"
    )
    budget = dict(n_params=8000) if quick else {}
    models = {
        "SIREN 256 x 3": skinr.SIREN(width=24 if quick else 256, **common),
        "LocalGlobalSIREN 32": skinr.LocalGlobalSIREN(partitions=32, **budget, **common),
    }
    rows = []
    for name, model in models.items():
        model.set_params(data_range=2.0).fit(X, y)  # amplitude in [-1, 1]
        rows.append(
            {
                "model": name,
                "params": model.n_params_,
                "psnr": model.score(X, y),
                "fit_seconds": model.fit_time_,
            }
        )
        print(rows[-1], flush=True)
    return source, rows


def plot(path, curves):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, label=name, lw=1.2)
    ax.set(yscale="log", xlabel="fine-tuning step", ylabel="MSE (range 1)")
    ax.set_title("Extending the top half of camera 256 x 256 to the whole image")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(args, image_rows, crop_psnr, crop_rows, finals, curves, audio_source, audio_rows):
    lines = [
        "<!-- written by benchmarks/localglobal.py -->",
        "### Image (paper Table 3)",
        "",
        f"camera 256 x 256, {args.steps} full-image steps, Adam 5e-4, seed 0; PSNR and SSIM "
        "on the training pixels (data range 1). Widths: local / global per partition.",
        "",
        "| model | widths | params | PSNR | SSIM | fit s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['model']} | {r['widths']} | {r['params']:,} | {r['psnr']:.2f} | "
        f"{r['ssim']:.3f} | {r['fit_seconds']:.0f} |"
        for r in image_rows
    ]
    lines += [
        "",
        "### Cropping",
        "",
        f"The 16 x 16 model ({crop_psnr:.2f} dB on the whole image) cropped to boxes; "
        "nothing retrained.",
        "",
        "| kept | area removed | params removed | local networks removed | "
        "kept PSNR before | kept PSNR after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['crop']} | {r['area_removed']:.1%} | {r['params_removed']:.1%} | "
        f"{r['local_params_removed']:.1%} | {r['kept_psnr_before']:.2f} | "
        f"{r['kept_psnr_after']:.2f} |"
        for r in crop_rows
    ]
    lines += [
        "",
        "### Extension (paper Fig. 7)",
        "",
        f"{args.steps} steps on the top half, then {args.steps} fine-tuning steps on the "
        "whole image (the SIREN from scratch trains those steps on the whole image).",
        "",
        "| model | MSE after 10 | after 50 | final | final PSNR |",
        "|---|---:|---:|---:|---:|",
    ]
    psnrs = [finals["extended_psnr"], finals["small_siren_psnr"], finals["full_siren_psnr"]]
    for (name, curve), final in zip(curves.items(), psnrs, strict=True):
        lines.append(
            f"| {name} | {curve[min(9, len(curve) - 1)]:.2e} | "
            f"{curve[min(49, len(curve) - 1)]:.2e} | {curve[-1]:.2e} | {final:.2f} |"
        )
    lines += [
        "",
        f"Top half before extension {finals['top_psnr_before']:.2f} dB, after "
        f"{finals['extended_top_psnr']:.2f} dB.",
        "",
        "### Audio (paper Table 11)",
        "",
        f"{audio_source}; {args.audio_steps} full-signal steps, Adam 1e-4, first-layer "
        "omega 3000; PSNR with data range 2 (amplitude in [-1, 1]).",
        "",
        "| model | params | PSNR | fit s |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['model']} | {r['params']:,} | {r['psnr']:.2f} | {r['fit_seconds']:.0f} |"
        for r in audio_rows
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--audio-steps", type=int, default=500)
    args = parser.parse_args(argv)
    size = 256
    if args.quick:
        size, args.steps, args.audio_steps = 32, 3, 3
    image = skinr.datasets.camera(size)
    image_rows, fitted = image_table(image, args.steps, args.quick)
    crop_model = fitted["LocalGlobalSIREN 4 x 4" if args.quick else "LocalGlobalSIREN 16 x 16"]
    crop_psnr, crop_rows = crop_table(crop_model, image)
    curves, finals = extension_curves(image, args.steps, args.quick)
    audio_source, audio_rows = audio_table(args.audio_steps, args.quick)
    text = markdown(
        args, image_rows, crop_psnr, crop_rows, finals, curves, audio_source, audio_rows
    )
    print(text)
    if args.quick:
        return
    (ROOT / "docs" / "benchmarks" / "localglobal.md").write_text(text)
    payload = {
        "image": image_rows,
        "crop": crop_rows,
        "extension": {"finals": finals, "curves": curves},
        "audio": {"source": audio_source, "rows": audio_rows},
    }
    (ROOT / "docs" / "benchmarks" / "localglobal.json").write_text(
        json.dumps(payload, indent=2) + "\n"
    )
    plot(ROOT / "docs" / "images" / "localglobal_extension.png", curves)


if __name__ == "__main__":
    main()
