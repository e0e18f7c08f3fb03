"""Command-line interface: ``skinr fit [IMAGE]`` fits an image and writes the results.

matplotlib (the ``cli``/``plot`` extra) is imported inside the commands that need it,
so ``import skinr`` stays light.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ._registry import ESTIMATORS
from ._version import __version__
from .datasets import camera, resize
from .metrics import psnr, ssim
from .signals import to_coords


def _read_image(path: str | None, size: int | None) -> tuple[np.ndarray, str]:
    """The image as float64 in [0, 1] (gray or RGB), longer side scaled to ``size``."""
    if path is None:
        image, name = camera(), "camera (shipped with skinr)"
    else:
        from matplotlib.image import imread

        image, name = np.asarray(imread(path)), path
        if image.dtype == np.uint8:
            image = image / 255.0
        image = image.astype(np.float64)
        if image.ndim == 3 and image.shape[-1] == 4:
            image = image[..., :3]
    if size is not None:
        scale = size / max(image.shape[:2])
        shape = [max(1, round(side * scale)) for side in image.shape[:2]]
        image = resize(image, shape)
    return image, name


def _save_image(path: Path, image: np.ndarray) -> None:
    from matplotlib.image import imsave

    image = np.clip(image, 0.0, 1.0)
    imsave(path, image, cmap="gray" if image.ndim == 2 else None, vmin=0.0, vmax=1.0)


def _plot_curve(path: Path, loss_curve: list[float], y_scale: float, data_range: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = np.asarray(loss_curve)
    train_psnr = 10 * np.log10(data_range**2 / np.maximum(loss * y_scale**2, 1e-30))
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.semilogy(np.arange(1, len(loss) + 1), loss)
    ax_loss.set(xlabel="step", ylabel="training loss (MSE, targets in [-1, 1])")
    ax_psnr.plot(np.arange(1, len(loss) + 1), train_psnr)
    ax_psnr.set(xlabel="step", ylabel="training PSNR (dB)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fit_image(args: argparse.Namespace) -> dict:
    """Fit ``args.image`` and write reconstruction, super-resolution, curve, metrics, model."""
    image, name = _read_image(args.image, args.size)
    # Pixel centres: the 4x render's pixels then align with the image's (one frame).
    X, y = to_coords(image, pixel_centers=True)
    params = {"random_state": args.seed, "device": args.device, "verbose": True}
    for option in ("steps", "learning_rate", "width", "depth", "batch_size"):
        value = getattr(args, option)
        if value is not None:
            params["max_iter" if option == "steps" else option] = value
    model = ESTIMATORS[args.model](**params, data_range=1.0)
    print(f"Fitting {args.model} to {name}, {image.shape} ...", file=sys.stderr)
    model.fit(X, y)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reconstruction = model.render(image.shape[:2])
    shape_sr = [side * args.superres for side in image.shape[:2]]
    started = time.perf_counter()
    super_resolved = model.render(shape_sr)
    render_time = time.perf_counter() - started
    metrics = {
        "image": name,
        "shape": list(image.shape),
        "model": repr(model),
        "psnr_db": psnr(image, reconstruction, data_range=1.0),
        "steps": model.n_iter_,
        "fit_seconds": model.fit_time_,
        "params": model.n_params_,
        "flops_per_pixel": model.count_flops(X[:1]),
        f"render_{args.superres}x_seconds": render_time,
        "skinr_version": __version__,
    }
    if min(image.shape[:2]) >= 11:  # SSIM's Gaussian window is 11 pixels wide
        try:
            metrics["ssim"] = ssim(
                image, reconstruction, data_range=1.0, channel_axis=-1 if image.ndim == 3 else None
            )
        except ImportError:
            pass
    _save_image(out / "reconstruction.png", reconstruction)
    _save_image(out / f"superres_{args.superres}x.png", super_resolved)
    _plot_curve(out / "curve.png", model.loss_curve_, model.y_scale_, 1.0)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    model.save(out / "model.skinr")
    print(
        f"PSNR {metrics['psnr_db']:.2f} dB after {model.n_iter_} steps in "
        f"{model.fit_time_:.1f} s; results in {out}/"
    )
    return metrics


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skinr", description="Fit implicit neural representations from the command line."
    )
    parser.add_argument("--version", action="version", version=f"skinr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser(
        "fit",
        help="fit an image and write reconstruction, "
        "super-resolution, curves, metrics and the model",
    )
    fit.add_argument(
        "image",
        nargs="?",
        help="image file (PNG/JPEG); default: the camera image shipped with skinr",
    )
    fit.add_argument("--model", default="SIREN", choices=sorted(ESTIMATORS))
    fit.add_argument("--steps", type=int, help="optimizer steps (default: the model's)")
    fit.add_argument(
        "--size",
        type=int,
        default=256,
        help="scale the longer side to this many pixels (default 256)",
    )
    fit.add_argument("--learning-rate", type=float, dest="learning_rate")
    fit.add_argument("--width", type=int)
    fit.add_argument("--depth", type=int)
    fit.add_argument("--batch-size", type=int, dest="batch_size")
    fit.add_argument(
        "--superres",
        type=int,
        default=4,
        help="upsampling factor of the super-resolution render (default 4)",
    )
    fit.add_argument("--device", default="auto")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", default="skinr-out", help="output folder (default skinr-out)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skinr`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        fit_image(args)
    except (ValueError, OSError, ImportError) as exc:
        print(f"skinr: error: {exc}", file=sys.stderr)
        return 2
    return 0
