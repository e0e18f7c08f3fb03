"""Off the training grid: held-out pixels and 4x super-resolution against interpolation.

Run:  python benchmarks/offgrid.py                 (--size 128: ~75 min on 2 CPU cores)
      python benchmarks/offgrid.py --size 256      (the issue's size; ~4x longer)
      python benchmarks/offgrid.py --quick         (smoke test: 32 x 32, 20 steps)
      python benchmarks/offgrid.py --only MultiHeadReLU   (re-measure some estimators,
                                     update their rows; the montage is redrawn from the
                                     full run's renders kept in benchmarks/_runs/)
      python benchmarks/offgrid.py --papers  (re-measure the papers' configurations'
                                     rows: GaussINR and WIRE at their official widths,
                                     MultiHeadReLU's hard cells without weight decay;
                                     with --only, those estimators' rows; a full run
                                     keeps the committed ones)
      python benchmarks/offgrid.py --sweep SIREN first_omega_0 5 10 15 20 30
                                    (one parameter's values on camera and astronaut:
                                     every 2nd pixel held out and 4x; prints, writes nothing;
                                     the sweeps quoted on the SIREN and Fourier pages)
      python benchmarks/offgrid.py --sweep SIREN hidden_omega_0 30 16 10 5 --sparse
                                    (the same on 32 samples per axis: every 4th pixel
                                     held out and 4x, camera, astronaut and chelsea)
      python benchmarks/offgrid.py --sweep FINER first_omega_0,hidden_omega_0 15 10
                                    (parameters joined by commas take each value
                                     together; --images camera astronaut chelsea)
      python benchmarks/offgrid.py --sweep WIRE omega_0,sigma_0 4/2 3/1.5 --images chelsea
                                    (a value split by slashes: one part per parameter)
Writes docs/benchmarks/offgrid.md, offgrid.json and docs/images/offgrid_montage.png.

What a user fits an INR for is what it predicts where it saw nothing. On natural images
(camera, astronaut, chelsea from ``../shared/data``, else skinr's own camera and
astronaut), area-downsampled to ``size x size``, every estimator at its defaults
(``random_state=0``) against what a user already has, from the same samples:

- held-out s: fit the pixels on every s-th row and column (pixel centres), predict all
  the others; against scipy's bilinear and cubic-spline interpolation on that grid
  (``ndimage.map_coordinates``, edges mirrored);
- super-resolution 4x: fit the image area-downsampled by 4 (each pixel the mean of a
  4 x 4 block, at its centre), render the full size with ``render``; against Pillow's
  bilinear, bicubic and Lanczos resize (the same pixel-centre frame).

Reported per image: PSNR on the unseen pixels, SSIM of the whole predicted image, fit
PSNR on the seen pixels (data range 1), seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import map_coordinates

import skinr
from skinr.metrics import psnr, ssim
from skinr.signals import grid, to_coords

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "docs" / "benchmarks"
MONTAGE = ROOT / "docs" / "images" / "offgrid_montage.png"
# The montage's renders (first image, 4x), so --only can redraw it; not committed.
RENDERS = ROOT / "benchmarks" / "_runs" / "offgrid_renders.npz"


# Papers' configurations where they differ from skinr's defaults: rows of their own,
# measured by --papers (a full run carries them over from the committed results).
PAPER_CONFIGURATIONS = {
    "GaussINR (scale=30)": ("GaussINR", {"scale": 30.0}),
    "WIRE (omega_0=20, sigma_0=10)": ("WIRE", {"omega_0": 20.0, "sigma_0": 10.0}),
    # The paper's hard cells and training without weight decay; heads="auto" keeps its
    # 4 samples per head (a fixed 64 would refuse 32 x 32 samples).
    "MultiHeadReLU (blending=nearest, weight_decay=0)": (
        "MultiHeadReLU",
        {"blending": "nearest", "weight_decay": 0.0},
    ),
}


def factory(name: str, extra: dict, settings: dict | None = None):
    """A maker of ``name`` as every row fits it (seed 0, data range 1), with ``settings``."""
    cls = skinr.ESTIMATORS[name]
    return lambda: cls(random_state=0, data_range=1.0, **extra, **(settings or {}))


def paper_estimators(extra: dict, only: list[str] | None = None) -> dict:
    """The papers' configurations, or those of the estimators in ``only``."""
    return {
        label: factory(name, extra, settings)
        for label, (name, settings) in PAPER_CONFIGURATIONS.items()
        if only is None or name in only
    }


def carry_paper_rows(results: dict) -> None:
    """Keep the committed papers' rows in a full run's ``results`` (it measures the
    defaults only)."""
    path = RESULTS / "offgrid.json"
    if not path.exists():
        return
    committed = json.loads(path.read_text())
    for image_name, tasks in results.items():
        for task, rows in tasks.items():
            kept = committed.get(image_name, {}).get(task, {})
            rows.update({k: kept[k] for k in PAPER_CONFIGURATIONS if k in kept and k not in rows})


def load_images(size: int) -> dict[str, np.ndarray]:
    """Square natural images in [0, 1], area-downsampled to ``size``."""
    images = {}
    for name in ("camera", "astronaut", "chelsea"):
        path = DATA / f"{name}.png"
        if path.exists():
            image = np.asarray(Image.open(path), dtype=np.float64) / 255
            side = min(image.shape[:2])
            image = image[:side, :side]
        elif hasattr(skinr.datasets, name):
            print(f"{path} not found: using skinr.datasets.{name}()", file=sys.stderr)
            image = getattr(skinr.datasets, name)()
        else:
            print(f"{path} not found: {name} left out", file=sys.stderr)
            continue
        images[name] = skinr.datasets.resize(image, (size, size))
    return images


def area_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = image.shape[0] // factor, image.shape[1] // factor
    blocks = image[: h * factor, : w * factor].reshape(h, factor, w, factor, *image.shape[2:])
    return blocks.mean(axis=(1, 3))


def pil_resize(image: np.ndarray, shape: tuple[int, int], method: int) -> np.ndarray:
    """Pillow's resize on float channels (mode "F"), pixel-centre frame."""
    channels = image[..., None] if image.ndim == 2 else image
    resized = [
        np.asarray(
            Image.fromarray(channels[..., c].astype(np.float32), mode="F").resize(
                shape[::-1], method
            )
        )
        for c in range(channels.shape[-1])
    ]
    out = np.stack(resized, axis=-1).astype(np.float64)
    return out[..., 0] if image.ndim == 2 else out


def scores(truth: np.ndarray, predicted: np.ndarray, unseen: np.ndarray) -> dict:
    channel_axis = -1 if truth.ndim == 3 else None
    return {
        "psnr_unseen": psnr(truth[unseen], predicted[unseen], data_range=1.0),
        "ssim": ssim(truth, predicted.clip(0, 1), data_range=1.0, channel_axis=channel_axis),
    }


def held_out_task(image: np.ndarray, stride: int, estimators: dict) -> dict:
    n = image.shape[0]
    seen = np.zeros((n, n), dtype=bool)
    seen[::stride, ::stride] = True
    X = grid((n, n), pixel_centers=True)
    y = image.reshape(n * n, -1)
    rows = {}
    samples = image[::stride, ::stride]
    # Every pixel in units of the sample grid; beyond the last sample row or column the
    # edge is mirrored (a cubic extrapolation there would be unfair to the baseline).
    index = np.mgrid[0:n, 0:n].reshape(2, -1) / stride
    for method, order in (("bilinear", 1), ("bicubic spline", 3)):
        started = time.perf_counter()
        channels = samples[..., None] if samples.ndim == 2 else samples
        predicted = np.stack(
            [
                map_coordinates(channels[..., c], index, order=order, mode="mirror")
                for c in range(channels.shape[-1])
            ],
            axis=-1,
        ).reshape(image.shape)
        rows[f"{method} (scipy)"] = {
            **scores(image, predicted, ~seen),
            "seconds": time.perf_counter() - started,
        }
    for name, make in estimators.items():
        try:
            model = make().fit(X[seen.ravel()], y[seen.ravel()])
        except ValueError as error:  # a default structure the samples cannot fill
            rows[name] = {"refused": str(error)}
            print(f"  held-out {stride}: {name:18s} refused: {error}", flush=True)
            continue
        predicted = model.predict(X).reshape(image.shape)
        rows[name] = {
            **scores(image, predicted, ~seen),
            "psnr_fit": psnr(image[seen], predicted[seen], data_range=1.0),
            "seconds": model.fit_time_,
        }
        print(f"  held-out {stride}: {name:18s} {rows[name]['psnr_unseen']:6.2f} dB", flush=True)
    return rows


def superres_task(image: np.ndarray, factor: int, estimators: dict) -> tuple[dict, dict]:
    n = image.shape[0]
    low = area_downsample(image, factor)
    everywhere = np.ones((n, n), dtype=bool)
    rows, renders = {}, {}
    for label, method in (
        ("bilinear (Pillow)", Image.BILINEAR),
        ("bicubic (Pillow)", Image.BICUBIC),
        ("Lanczos (Pillow)", Image.LANCZOS),
    ):
        started = time.perf_counter()
        predicted = pil_resize(low, (n, n), method)
        rows[label] = {
            **scores(image, predicted, everywhere),
            "seconds": time.perf_counter() - started,
        }
        renders[label] = predicted
    X_low, y_low = to_coords(low, pixel_centers=True)
    for name, make in estimators.items():
        try:
            model = make().fit(X_low, y_low)
        except ValueError as error:
            rows[name] = {"refused": str(error)}
            print(f"  super-res {factor}x: {name:18s} refused: {error}", flush=True)
            continue
        predicted = model.render((n, n))
        rows[name] = {
            **scores(image, predicted, everywhere),
            "psnr_fit": model.score(X_low, y_low),
            "seconds": model.fit_time_,
        }
        renders[name] = predicted
        print(f"  super-res {factor}x: {name:18s} {rows[name]['psnr_unseen']:6.2f} dB", flush=True)
    return rows, renders


def montage(path: Path, image: np.ndarray, renders: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = image.shape[0]
    crop = (slice(n // 4, n // 4 + n // 2), slice(n // 4, n // 4 + n // 2))
    panels = {"original": image, **renders}
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.1 * rows))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, picture) in zip(axes.ravel(), panels.items(), strict=False):
        ax.imshow(
            picture[crop].clip(0, 1),
            cmap="gray" if picture.ndim == 2 else None,
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_title(name, fontsize=9)
    fig.suptitle("4x super-resolution from the area-downsampled image (centre crop)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(results: dict, task: str) -> list[str]:
    images = list(results)
    names = list(dict.fromkeys(n for i in images for n in results[i][task]))
    lines = [
        "| method | " + " | ".join(f"{i} PSNR / SSIM" for i in images) + " | fit PSNR | seconds |",
        "|---|" + "---:|" * (len(images) + 2),
    ]
    for name in names:
        if any(name not in results[i][task] for i in images):
            lines.append(f"| {name} | not run at these defaults |" + " |" * (len(images) + 1))
            continue
        if any("refused" in results[i][task][name] for i in images):
            reason = next(
                results[i][task][name] for i in images if "refused" in results[i][task][name]
            )
            lines.append(f"| {name} | refused: {reason['refused']} |" + " |" * (len(images) + 1))
            continue
        cells = [
            f"{results[i][task][name]['psnr_unseen']:.2f} / {results[i][task][name]['ssim']:.3f}"
            for i in images
        ]
        fit = [results[i][task][name].get("psnr_fit") for i in images]
        fit_cell = "—" if fit[0] is None else " / ".join(f"{f:.1f}" for f in fit)
        seconds = np.mean([results[i][task][name]["seconds"] for i in images])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {fit_cell} | {seconds:.1f} |")
    return lines


def write_tables(results: dict, size: int) -> str:
    lines = [
        "# Off the training grid",
        "",
        f"<!-- written by benchmarks/offgrid.py --size {size} -->",
        f"Images area-downsampled to {size} x {size}; every estimator at its defaults "
        "(`random_state=0`, `data_range=1.0`). PSNR (dB) on the pixels the method never saw, "
        "SSIM of the whole predicted image, fit PSNR on the seen pixels, mean seconds. "
        "A row with parameters in brackets is a paper's configuration where it differs "
        "from the default.",
    ]
    for task in results[next(iter(results))]:
        lines += ["", f"## {task}", "", *table(results, task)]
    lines += ["", "![4x renders](../images/offgrid_montage.png)", ""]
    (RESULTS / "offgrid.json").write_text(json.dumps(results, indent=1))
    (RESULTS / "offgrid.md").write_text("\n".join(lines))
    return "\n".join(lines)


def save_renders(image: np.ndarray, renders: dict, size: int) -> None:
    RENDERS.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(RENDERS, size=size, original=image, **renders)


def update_rows(size: int, estimators: dict, redraw: bool = True) -> None:
    """Re-measure ``estimators`` only and replace their rows in the committed results;
    with ``redraw``, redraw the montage when the full run's renders at this size are at
    hand."""
    results = json.loads((RESULTS / "offgrid.json").read_text())
    first = None
    for image_name, image in load_images(size).items():
        print(f"{image_name} {image.shape}", flush=True)
        rows = results[image_name]
        for stride in (2, 4):
            fresh = held_out_task(image, stride, estimators)
            rows[f"held-out {stride}"].update({k: fresh[k] for k in estimators})
        fresh, renders = superres_task(image, 4, estimators)
        rows["super-resolution 4x"].update({k: fresh[k] for k in estimators})
        if first is None:
            first = renders
    print(write_tables(results, size))
    if not redraw:
        return
    if RENDERS.exists():
        kept = dict(np.load(RENDERS))
        if int(kept.pop("size")) == size:
            original = kept.pop("original")
            kept.update({k: v for k, v in first.items() if k in estimators})
            montage(MONTAGE, original, kept)
            save_renders(original, kept, size)
            return
    print(f"montage not redrawn: no full run's renders at size {size} in {RENDERS}")


def sweep(
    size: int,
    name: str,
    param: str,
    values: list[str],
    extra: dict,
    sparse: bool = False,
    image_names: list[str] | None = None,
) -> None:
    """Held-out PSNR of one estimator over values of one parameter (prints a table):
    every 2nd pixel and 4x on camera and astronaut, or with ``sparse`` every 4th pixel
    and 4x on all three images (the cases of 32 samples per axis); ``image_names``
    chooses the images. ``param`` may name several parameters joined by commas, which
    each value sets together (``first_omega_0,hidden_omega_0``), or each its own part of
    a value split by slashes (``omega_0,sigma_0`` and ``4/2``)."""
    params = param.split(",")

    def parsed(value: str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return value  # a string option, e.g. a pattern's name

    def settings(value: str) -> dict:
        parts = value.split("/")
        if len(parts) == 1:
            return dict.fromkeys(params, parsed(value))
        if len(parts) != len(params):
            raise SystemExit(f"{value!r}: give one value per parameter of {param!r}")
        return {p: parsed(v) for p, v in zip(params, parts, strict=True)}

    estimators = {value: factory(name, extra, settings(value)) for value in values}
    stride = 4 if sparse else 2
    images = load_images(size)
    if image_names is None:
        image_names = list(images) if sparse else ["camera", "astronaut"]
    images = {k: v for k, v in images.items() if k in image_names}
    lines = [f"| {param} | " + " | ".join(f"{i} held-out {stride} / 4x" for i in images) + " |"]
    lines.append("|---:|" + "---:|" * len(images))
    rows = {}
    for image_name, image in images.items():
        print(f"{image_name} {image.shape}", flush=True)
        held = held_out_task(image, stride, estimators)
        superres, _ = superres_task(image, 4, estimators)
        for key in estimators:
            rows.setdefault(key, []).append(
                f"{held[key]['psnr_unseen']:.2f} / {superres[key]['psnr_unseen']:.2f}"
            )
    for key, cells in rows.items():
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    print("\n".join(lines))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=sorted(skinr.ESTIMATORS), default=None)
    parser.add_argument("--papers", action="store_true", help="re-measure the papers' rows")
    parser.add_argument("--sweep", nargs="+", metavar="ARG", default=None)
    parser.add_argument("--sparse", action="store_true", help="--sweep every 4th pixel")
    parser.add_argument("--images", nargs="+", default=None, help="--sweep on these images")
    args = parser.parse_args(argv)
    if args.sweep is not None:
        extra = {"max_iter": 20} if args.quick else {}
        size = 32 if args.quick else args.size
        name, param, *values = args.sweep
        return sweep(size, name, param, values, extra, args.sparse, args.images)
    size = 32 if args.quick else args.size
    extra = {"max_iter": 20} if args.quick else {}
    estimators = {
        name: factory(name, extra)
        for name in skinr.ESTIMATORS
        if args.only is None or name in args.only
    }
    if args.papers:
        return update_rows(size, paper_estimators(extra, args.only), redraw=False)
    if args.only is not None:
        return update_rows(size, estimators)
    results, first_renders = {}, None
    images = load_images(size)
    if args.quick:
        images = dict(list(images.items())[:1])
    for image_name, image in images.items():
        print(f"{image_name} {image.shape}", flush=True)
        results[image_name] = {
            "held-out 2": held_out_task(image, 2, estimators),
            "held-out 4": held_out_task(image, 4, estimators),
        }
        results[image_name]["super-resolution 4x"], renders = superres_task(image, 4, estimators)
        if first_renders is None:
            first_renders = (image, renders)
    if args.quick:
        for task in results[next(iter(results))]:
            print("\n".join(table(results, task)))
        return
    montage(MONTAGE, *first_renders)
    save_renders(*first_renders, size)
    carry_paper_rows(results)
    print(write_tables(results, size))


if __name__ == "__main__":
    main()
