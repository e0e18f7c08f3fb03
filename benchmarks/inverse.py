"""Inverse problems: skinr's estimators fitted through an operator, against scikit-image.

Run:  python benchmarks/inverse.py                          (every task, --size 128)
      python benchmarks/inverse.py --tasks ct superres --models SIREN SL2A
      python benchmarks/inverse.py --tasks ct --ct-size 128  (CT at 128 x 128)
      python benchmarks/inverse.py --tasks ct --angles 100    (one projection count)
      python benchmarks/inverse.py --tasks ct denoise --models HashGrid --tv
                                        (adds each estimator through TVRegularized)
      python benchmarks/inverse.py --tasks deblur --models HashGrid --no-early-stopping
                                        (adds fits that run all their steps)
      python benchmarks/inverse.py --quick                    (smoke test: 32 x 32, 20 steps)
Writes docs/benchmarks/inverse.md and inverse.json (rows of a partial run replace the
same rows of the committed results).

Tasks, each against what a user already has, measured in the same run:

- ct: ``../shared/data/ct_img_377.png`` at ``--ct-size`` (256, WIRE's protocol) from
  100 and 30 parallel-beam projections (``skimage.transform.radon``; no noise),
  ``operator=Radon`` (its default ``sampling="grid"``); against filtered
  back-projection (``iradon``, ramp filter) and SART (``iradon_sart``, 3 sweeps).
  Scored inside the inscribed disc, where every method has data.
- superres: 4x area-downsampled natural images, ``operator=AreaDownsample(4)``; against
  Pillow's bicubic and Lanczos resize.
- denoise: Gaussian noise (sigma 0.1), no operator, ``early_stopping=True`` (held-out
  noisy pixels decide when to stop; no clean image is consulted); against
  ``denoise_tv_chambolle`` with its weight tuned on a different image (camera tunes
  the others, astronaut tunes camera) and BM3D (``pip install bm3d``; told the noise
  level).
- photon: the same for photon (Poisson) noise, 30 photons at white (the image is the
  counts / 30); BM3D through the Anscombe transform.
- inpaint: 20 % and 50 % of pixels observed at random, no operator; against
  ``inpaint_biharmonic``.
- deblur: Gaussian blur (sigma 1.5 px, 9 x 9, mirrored at the border) plus noise
  (sigma 0.01), ``operator=Blur(psf)`` (its grid render) and ``early_stopping=True``
  (the measurements are noisy: held-out blurred pixels decide when to stop); against
  Richardson-Lucy and Wiener, each on the mirror-padded image (as the blur was made)
  with its iterations or balance tuned on a different image. With ``--no-early-stopping``
  the fits run all their steps (rows "<estimator> (all steps)"): what the stopping is
  worth on noisy measurements.

With ``--tv`` the ct, superres and denoise tasks also fit every estimator through
``TVRegularized`` (rows "<estimator> + TV"): for CT with the weight ``GridSearchCV``
chooses by the error on held-out projections (every 10th angle; seconds include the
search), for super-resolution (the total variation of the 4x-finer render) and denoising
with the weight tuned on a different image, as TV Chambolle's is, and no early stopping:
the prior, not the step count, keeps the noise out (early stopping cut HashGrid + TV on
camera at 140 of 1000 steps, 27.23 dB against 27.70).

PSNR (data range 1) and SSIM of the reconstruction, seconds per fit.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import restoration, transform
from sklearn.model_selection import GridSearchCV

import skinr
from skinr.inverse import AreaDownsample, Blur, Radon, TVRegularized, radon_coords
from skinr.metrics import psnr, ssim
from skinr.signals import to_coords

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "docs" / "benchmarks"
DEFAULT_MODELS = ["SIREN", "FourierFeatureMLP", "SL2A", "LocalGlobalSIREN"]
TV_SUFFIX = " + TV"
ALL_STEPS_SUFFIX = " (all steps)"
#: Weights of TVRegularized tried for denoising, each image's tuned on another image.
DENOISE_TV_WEIGHTS = [0.1, 0.15, 0.2, 0.25, 0.3]
GAUSSIAN_SIGMA = 0.1
#: Photon noise: a white pixel's expected count (an image's values are counts / PHOTONS).
PHOTONS = 30
#: Weights of TVRegularized(AreaDownsample(4)) tried, each image's tuned on another image.
SUPERRES_TV_WEIGHTS = [1e-3, 3e-3, 1e-2]
#: Weights of TVRegularized a CT search chooses among by held-out projections.
CT_TV_WEIGHTS = [0.0, 1e-4, 1e-3]


#: The smoke test (``--quick``) runs in a clone without ``../shared``: skinr's camera
#: stands in for the images only that directory has.
STAND_IN_FOR_MISSING = False


def load(name: str, size: int) -> np.ndarray:
    path = DATA / f"{name}.png"
    if path.exists():
        image = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255
    else:
        shipped = getattr(skinr.datasets, name, None)
        if shipped is None and not STAND_IN_FOR_MISSING:
            raise FileNotFoundError(f"{path} is missing (../shared/data); --quick runs without it.")
        image = (shipped or skinr.datasets.camera)()
        image = image.mean(axis=-1) if image.ndim == 3 else image
    side = min(image.shape[:2])
    return skinr.datasets.resize(image[:side, :side], (size, size))


def disc(n: int) -> np.ndarray:
    centre = (n - 1) / 2
    rows, cols = np.mgrid[:n, :n]
    return (rows - centre) ** 2 + (cols - centre) ** 2 <= (n / 2) ** 2


def scored(truth, estimate, seconds, mask=None) -> dict:
    estimate = np.clip(estimate, 0, 1)
    if mask is None:
        mask = np.ones(truth.shape, dtype=bool)
    return {
        "psnr": psnr(truth[mask], estimate[mask], data_range=1.0),
        "ssim": ssim(truth * mask, estimate * mask, data_range=1.0),
        "seconds": seconds,
    }


def sart(sinogram, theta, sweeps):
    estimate = None
    for _ in range(sweeps):
        estimate = transform.iradon_sart(sinogram, theta, image=estimate)
    return estimate


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def fit_models(models, make, X, y, shape, truth, mask=None, label="{}") -> dict:
    rows = {}
    for name in models:
        model = make(name)
        model.fit(X, y)
        row = label.format(name)
        rows[row] = scored(truth, model.render(shape), model.fit_time_, mask)
        print(f"    {row:24s} {rows[row]['psnr']:6.2f} dB  {model.fit_time_:6.1f} s", flush=True)
    return rows


def ct_task(size, models, make, tv=False, angles=(100, 30)) -> dict:
    image = load("ct_img_377", size) * disc(size)
    results = {}
    for n_angles in angles:
        theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
        sinogram = transform.radon(image, theta)
        inside = disc(size)
        fbp, seconds = timed(transform.iradon, sinogram, theta, filter_name="ramp")
        rows = {"filtered back-projection (skimage)": scored(image, fbp, seconds, inside)}

        estimate, seconds = timed(sart, sinogram, theta, sweeps=3)
        rows["SART, 3 sweeps (skimage)"] = scored(image, estimate, seconds, inside)
        print(
            f"  ct {n_angles}: FBP {rows['filtered back-projection (skimage)']['psnr']:.2f}"
            f"  SART {rows['SART, 3 sweeps (skimage)']['psnr']:.2f}",
            flush=True,
        )
        X = radon_coords(theta, image.shape)
        operator = Radon(pixel_size=2 / size)
        rows.update(
            fit_models(
                models,
                partial(make, operator=operator),
                X,
                sinogram.ravel(),
                image.shape,
                image,
                inside,
            )
        )
        if tv:
            rows.update(tv_by_held_out_angles(models, make, operator, theta, sinogram, image))
        results[f"CT, {n_angles} projections, {size} x {size}"] = {"ct_img_377": rows}
    return results


def tv_by_held_out_angles(models, make, operator, theta, sinogram, image) -> dict:
    """Each model through TVRegularized, its weight chosen by GridSearchCV on held-out
    projections (every 10th angle; no clean image), then refitted on all of them."""
    X = radon_coords(theta, image.shape)
    angle = np.repeat(np.arange(len(theta))[None], sinogram.shape[0], axis=0).ravel()
    held_out = angle % 10 == 5
    split = [(np.flatnonzero(~held_out), np.flatnonzero(held_out))]
    inside = disc(image.shape[0])
    rows = {}
    for name in models:
        search = GridSearchCV(
            make(name, operator=TVRegularized(operator)),
            {"operator__weight": CT_TV_WEIGHTS},
            cv=split,
        )
        started = time.perf_counter()
        search.fit(X, sinogram.ravel())
        seconds = time.perf_counter() - started
        weight = search.best_params_["operator__weight"]
        label = f"{name}{TV_SUFFIX} (weight {weight:g} of {CT_TV_WEIGHTS}, by held-out angles)"
        rows[label] = {
            **scored(image, search.best_estimator_.render(image.shape), seconds, inside),
            "held_out_psnr": dict(
                zip(map(str, CT_TV_WEIGHTS), search.cv_results_["mean_test_score"], strict=True)
            ),
        }
        print(f"    {label} {rows[label]['psnr']:6.2f} dB  {seconds:6.1f} s", flush=True)
    return rows


def superres_task(size, models, make, tv=False) -> dict:
    images = {}
    for name in ("camera", "astronaut", "chelsea"):
        image = load(name, size)
        images[name] = (image, image.reshape(size // 4, 4, size // 4, 4).mean(axis=(1, 3)))
    # A fit through TVRegularized per (estimator, image, weight), kept: the image a
    # weight is tuned on is also scored with the weight another image chose for it.
    renders = {}

    def through_tv(model_name, low, weight):
        key = (model_name, low.tobytes(), weight)
        if key not in renders:
            X, y = to_coords(low, pixel_centers=True)
            operator = TVRegularized(AreaDownsample(4), weight=weight)
            model = make(model_name, operator=operator).fit(X, y)
            renders[key] = (model.render((size, size)), model.fit_time_)
        return renders[key]

    tv_weights = {
        model_name: tuned(
            images,
            lambda low, weight, model_name=model_name: through_tv(model_name, low, weight)[0],
            SUPERRES_TV_WEIGHTS,
        )
        for model_name in (models if tv else [])
    }
    rows_by_image = {}
    for name, (image, low) in images.items():
        rows = {}
        for label, method in (
            ("bicubic (Pillow)", Image.BICUBIC),
            ("Lanczos (Pillow)", Image.LANCZOS),
        ):
            picture = Image.fromarray(low.astype(np.float32), mode="F")
            resized, seconds = timed(picture.resize, (size, size), method)
            resized = np.asarray(resized)
            rows[label] = scored(image, resized, seconds)
        print(f"  superres {name}: bicubic {rows['bicubic (Pillow)']['psnr']:.2f}", flush=True)
        X, y = to_coords(low, pixel_centers=True)
        rows.update(
            fit_models(models, partial(make, operator=AreaDownsample(4)), X, y, image.shape, image)
        )
        for model_name, weights in tv_weights.items():
            render, seconds = through_tv(model_name, low, weights[name])
            label = model_name + TV_SUFFIX + " (weight tuned on another image)"
            rows[label] = {**scored(image, render, seconds), "weight": weights[name]}
            print(f"    {label} {rows[label]['psnr']:6.2f} dB  {seconds:6.1f} s", flush=True)
        rows_by_image[name] = rows
    return {"super-resolution 4x": rows_by_image}


def tuned(images, function, candidates) -> dict:
    """Each image's parameter tuned on another image (no peeking at its own truth)."""
    others = {name: next(n for n in images if n != name) for name in images}
    scores = {
        other: {
            c: psnr(images[other][0], function(images[other][1], c), data_range=1.0)
            for c in candidates
        }
        for other in dict.fromkeys(others.values())
    }
    return {name: max(scores[other], key=scores[other].get) for name, other in others.items()}


def gaussian_noise(clean, rng):
    return clean + rng.normal(0, GAUSSIAN_SIGMA, clean.shape)


def photon_noise(clean, rng):
    return rng.poisson(clean * PHOTONS) / PHOTONS


def bm3d_gaussian(noisy):
    import bm3d

    return bm3d.bm3d(noisy, sigma_psd=GAUSSIAN_SIGMA)


def bm3d_photon(noisy):
    """BM3D through the Anscombe transform (unit-variance noise) and the closed-form
    approximation of its exact unbiased inverse (Makitalo and Foi, 2011)."""
    import bm3d

    stabilised = 2 * np.sqrt(noisy * PHOTONS + 3 / 8)
    d = np.maximum(bm3d.bm3d(stabilised, sigma_psd=1.0), 1.0)
    counts = d**2 / 4 + np.sqrt(1.5) / (4 * d) - 11 / (8 * d**2) + 5 * np.sqrt(1.5) / (8 * d**3)
    return (counts - 1 / 8) / PHOTONS


#: Each denoising task: its table, how the noise is drawn (and its seed), BM3D for it.
NOISES = {
    "denoise": (f"denoising, Gaussian sigma {GAUSSIAN_SIGMA}", gaussian_noise, 0, bm3d_gaussian),
    "photon": (
        f"denoising, photon noise ({PHOTONS} photons at white)",
        photon_noise,
        3,
        bm3d_photon,
    ),
}


def denoised(task, size, models, make, tv=False) -> dict:
    table, noise, seed, bm3d_denoise = NOISES[task]
    rng = np.random.default_rng(seed)
    images = {}
    for name in ("camera", "astronaut", "chelsea"):
        clean = load(name, size)
        images[name] = (clean, noise(clean, rng))
    weights = tuned(
        images,
        lambda noisy, w: restoration.denoise_tv_chambolle(noisy, weight=w),
        [0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2],
    )
    try:
        import bm3d  # noqa: F401
    except ImportError:
        bm3d_denoise = None
    tv_weights = {}
    for model_name in models if tv else []:

        def through_tv(noisy, weight, model_name=model_name):
            X, y = to_coords(noisy, pixel_centers=True)
            model = make(model_name, operator=TVRegularized(weight=weight)).fit(X, y)
            return model.render(noisy.shape)

        tv_weights[model_name] = tuned(images, through_tv, DENOISE_TV_WEIGHTS)
    rows_by_image = {}
    for name, (clean, noisy) in images.items():
        rows = {"noisy input": scored(clean, noisy, 0.0)}
        estimate, seconds = timed(restoration.denoise_tv_chambolle, noisy, weight=weights[name])
        # The weight is tuned per image; one row (the weights: inverse.json).
        label = "TV Chambolle (weight tuned on another image)"
        rows[label] = {**scored(clean, estimate, seconds), "weight": weights[name]}
        if bm3d_denoise is not None:
            estimate, seconds = timed(bm3d_denoise, noisy)
            rows["BM3D (noise level known)"] = scored(clean, estimate, seconds)
        print(f"  {table} {name}: TV {rows[label]['psnr']:.2f}", flush=True)
        X, y = to_coords(noisy, pixel_centers=True)
        rows.update(
            fit_models(models, partial(make, early_stopping=True), X, y, clean.shape, clean)
        )
        for model_name in models if tv else []:
            weight = tv_weights[model_name][name]
            fitted_rows = fit_models(
                [model_name],
                partial(make, operator=TVRegularized(weight=weight)),
                X,
                y,
                clean.shape,
                clean,
                label="{}" + TV_SUFFIX + " (weight tuned on another image)",
            )
            rows.update({k: {**v, "weight": weight} for k, v in fitted_rows.items()})
        rows_by_image[name] = rows
    return {table: rows_by_image}


def inpaint_task(size, models, make, tv=False) -> dict:
    results = {}
    for fraction in (0.2, 0.5):
        rows_by_image = {}
        for name in ("camera", "astronaut"):
            image = load(name, size)
            observed = np.random.default_rng(1).random(image.shape) < fraction
            estimate, seconds = timed(restoration.inpaint_biharmonic, image * observed, ~observed)
            rows = {"biharmonic (skimage)": scored(image, estimate, seconds)}
            anchor = rows["biharmonic (skimage)"]["psnr"]
            print(f"  inpaint {fraction:.0%} {name}: biharmonic {anchor:.2f}", flush=True)
            X, y = to_coords(image, pixel_centers=True)
            keep = observed.ravel()
            rows.update(fit_models(models, make, X[keep], y[keep], image.shape, image))
            rows_by_image[name] = rows
        results[f"inpainting, {fraction:.0%} observed"] = rows_by_image
    return results


def deblur_task(size, models, make, tv=False, early_stopping=True) -> dict:
    from scipy import ndimage

    offsets = np.arange(9) - 4
    psf = np.exp(-(offsets[:, None] ** 2 + offsets[None] ** 2) / (2 * 1.5**2))
    psf /= psf.sum()
    rng = np.random.default_rng(2)
    images = {}
    for name in ("camera", "astronaut"):
        clean = load(name, size)
        blurred = ndimage.convolve(clean, psf, mode="reflect") + rng.normal(0, 0.01, clean.shape)
        images[name] = (clean, blurred)

    # scikit-image's deconvolutions assume zero outside the image, which rings at the
    # border (Richardson-Lucy fell to 16.9 dB on camera, below the blurred input):
    # their strongest fair version sees the image mirrored, as the blur was made.
    def mirrored(function, image, *args, **kwargs):
        margin = psf.shape[0] * 2
        padded = np.pad(image, margin, mode="reflect")
        return function(padded, *args, **kwargs)[margin:-margin, margin:-margin]

    balances = tuned(
        images,
        lambda b, w: mirrored(restoration.wiener, b, psf, w),
        [0.003, 0.01, 0.03, 0.1, 0.3],
    )
    iterations = tuned(
        images,
        lambda b, n: mirrored(restoration.richardson_lucy, np.clip(b, 0, 1), psf, num_iter=n),
        [10, 30, 50, 100],
    )
    rows_by_image = {}
    for name, (clean, blurred) in images.items():
        rows = {"blurred input": scored(clean, blurred, 0.0)}
        estimate, seconds = timed(
            mirrored,
            restoration.richardson_lucy,
            np.clip(blurred, 0, 1),
            psf,
            num_iter=iterations[name],
        )
        # The iteration count is tuned per image; one row (the counts: inverse.json).
        label = "Richardson-Lucy (iterations tuned on another image)"
        rows[label] = {**scored(clean, estimate, seconds), "iterations": iterations[name]}
        estimate, seconds = timed(mirrored, restoration.wiener, blurred, psf, balances[name])
        rows[f"Wiener (balance {balances[name]}, tuned on another image)"] = scored(
            clean, estimate, seconds
        )
        print(f"  deblur {name}: RL {rows[label]['psnr']:.2f}", flush=True)
        X, y = to_coords(blurred, pixel_centers=True)
        blurring = partial(make, operator=Blur(psf), early_stopping=early_stopping)
        label = "{}" if early_stopping else "{}" + ALL_STEPS_SUFFIX
        rows.update(fit_models(models, blurring, X, y, clean.shape, clean, label=label))
        rows_by_image[name] = rows
    return {"deblurring, Gaussian sigma 1.5 px + noise 0.01": rows_by_image}


TASKS = {
    "ct": ct_task,
    "superres": superres_task,
    "denoise": partial(denoised, "denoise"),
    "photon": partial(denoised, "photon"),
    "inpaint": inpaint_task,
    "deblur": deblur_task,
}


def write(results: dict, size: int, ct_size: int, max_iter, quick: bool = False) -> str:
    """The results page (returned) and JSON; with ``quick`` (a smoke test) nothing is
    written."""
    lines = [
        "# Inverse problems",
        "",
        f"<!-- written by benchmarks/inverse.py --size {size} --ct-size {ct_size} -->",
        f"Images at {size} x {size} (CT at the size its tables name); every estimator at "
        "its defaults (`random_state=0`, "
        "`data_range=1.0`"
        + (f", `max_iter={max_iter}`" if max_iter else "")
        + "). PSNR (dB) / SSIM of the reconstruction against the clean image; seconds "
        "per fit. No oracle: no method sees the clean image, and stopping uses held-out "
        "measurements only.",
    ]
    for task, by_image in results.items():
        images = list(by_image)
        names = list(dict.fromkeys(n for i in images for n in by_image[i]))
        lines += [
            "",
            f"## {task}",
            "",
            "| method | " + " | ".join(f"{i} PSNR / SSIM" for i in images) + " | seconds |",
            "|---|" + "---:|" * (len(images) + 1),
        ]
        for name in names:
            cells = [
                f"{by_image[i][name]['psnr']:.2f} / {by_image[i][name]['ssim']:.3f}"
                if name in by_image[i]
                else "—"
                for i in images
            ]
            seconds = np.mean([by_image[i][name]["seconds"] for i in images if name in by_image[i]])
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds:.1f} |")
    text = "\n".join(lines) + "\n"
    if quick:
        return text
    (RESULTS / "inverse.md").write_text(text)
    (RESULTS / "inverse.json").write_text(json.dumps(results, indent=1))
    return text


def fitted(row: str) -> bool:
    """Whether a table row is one of skinr's fits (kept across partial runs)."""
    return row.split(TV_SUFFIX)[0].removesuffix(ALL_STEPS_SUFFIX) in skinr.ESTIMATORS


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--ct-size", type=int, default=256)
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS))
    parser.add_argument(
        "--models", nargs="+", choices=sorted(skinr.ESTIMATORS), default=DEFAULT_MODELS
    )
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--angles", type=int, nargs="+", default=[100, 30], help="CT only")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tv", action="store_true", help="also fit through TVRegularized")
    parser.add_argument(
        "--no-early-stopping", action="store_true", help="deblur only: fits run all their steps"
    )
    args = parser.parse_args(argv)
    tasks = {
        **TASKS,
        "ct": partial(ct_task, angles=args.angles),
        "deblur": partial(deblur_task, early_stopping=not args.no_early_stopping),
    }
    global STAND_IN_FOR_MISSING
    STAND_IN_FOR_MISSING = args.quick
    size = 32 if args.quick else args.size
    ct_size = 32 if args.quick else args.ct_size
    max_iter = 20 if args.quick else args.max_iter
    extra = {} if max_iter is None else {"max_iter": max_iter}

    def make(name, **options):
        return skinr.ESTIMATORS[name](random_state=0, data_range=1.0, **extra, **options)

    path = RESULTS / "inverse.json"
    results = {} if args.quick or not path.exists() else json.loads(path.read_text())
    for task in args.tasks:
        print(task, flush=True)
        task_size = ct_size if task == "ct" else size
        for table, by_image in tasks[task](task_size, args.models, make, args.tv).items():
            merged = results.setdefault(table, {})
            for image, rows in by_image.items():
                # Rows of estimators not run now are kept; the anchors are this run's.
                kept = {k: v for k, v in merged.get(image, {}).items() if fitted(k)}
                anchors = {k: v for k, v in rows.items() if not fitted(k)}
                merged[image] = {**anchors, **kept, **rows}
        # Each finished task is kept, should a later one be stopped.
        text = write(results, size, ct_size, max_iter, quick=args.quick)
    print(text)


if __name__ == "__main__":
    main()
