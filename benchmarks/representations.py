"""Representations at equal parameters and equal seconds: INRs, grids and hash grids.

Run:  python benchmarks/representations.py                        (the run the docs quote:
          camera, 1e5 parameters, 10 and 60 s; the sweep of budgets; HashGrid's race;
          ~35 min on 2 CPU cores)
      python benchmarks/representations.py --images camera astronaut chelsea \\
          --budgets 1e4 3e4 1e5 3e5 --seconds 10 60 300        (the grid paper's protocol
          at CPU scale: hours)
      python benchmarks/representations.py --quick                (smoke test, 32 x 32)
Writes docs/benchmarks/representations.md, representations.json and
docs/images/representations.png.

Protocol (Kim & Fridovich-Keil, "Grids Often Outperform Implicit Neural
Representations", NeurIPS 2025, at CPU scale). On natural images area-downsampled to
``size x size`` (grey, data range 1), every estimator is sized to a parameter budget
(its width, a Grid's ``n_params``, a HashGrid's table size: the largest setting at or
below the budget) and trained, full batch, at its own defaults otherwise, for a fixed
wall-clock budget on this machine:

- fit PSNR after each budget of seconds (read from the training loss, which is the
  full-signal MSE before each step, timed per step);
- held-out PSNR: a second fit on the pixels of every 2nd row and column only, for the
  longest budget, scored on the other 3/4 of the pixels; against scipy's bilinear and
  cubic-spline interpolation of the same samples;
- parameters and FLOPs of one prediction of the image.

Steps are set from a 3-step probe so that the learning-rate schedules of FINER, Gauss and
WIRE end at the budget; a fit still running then is stopped there.

HashGrid's race: SIREN at its defaults for 300 steps, then HashGrid at its defaults
until its fit PSNR reaches SIREN's; the ratio of the wall times is quoted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import map_coordinates
from sklearn.base import clone

import skinr
import skinr.nn._native as native
from skinr.metrics import psnr
from skinr.signals import grid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from offgrid import load_images

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks"

#: Estimator -> (the parameter a budget sets, the values it may take[, fixed settings]):
#: for the cell-based models the cells' own size, with the number of cells fixed where
#: the default alone exceeds a budget.
SIZE_PARAMETERS = {
    "SIREN": ("width", range(4, 1025)),
    "FourierFeatureMLP": ("width", range(4, 1025)),
    "FINER": ("width", range(4, 1025)),
    "GaussINR": ("width", range(4, 1025)),
    "WIRE": ("width", range(4, 1449)),
    "EnsembleINR": ("width", range(2, 513)),
    "MultiHeadReLU": ("width", range(64, 1025), {"heads": 8}),
    "LoESine": ("width", range(4, 1025)),
    "LocalGlobalSIREN": ("local_width", range(2, 513)),
    "SL2A": ("width", range(4, 1025), {"rank": None}),
    "Grid": ("n_params", None),
    "HashGrid": ("log2_table_size", range(4, 25)),
}


def parameters_of(estimator, X: np.ndarray) -> int:
    """Trainable parameters ``estimator`` would have on ``X`` (grey: one output)."""
    for name, value in estimator._structure(X, 1).items():
        setattr(estimator, name, value)
    module = estimator._build_module(X.shape[1], 1, torch.Generator().manual_seed(0))
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def sized(name: str, budget: int, X: np.ndarray, extra: dict):
    """The estimator ``name`` at the largest size whose parameters stay within ``budget``."""
    Estimator = skinr.ESTIMATORS[name]
    param, values, *fixed = SIZE_PARAMETERS[name]
    extra = {**extra, **(fixed[0] if fixed else {})}
    if values is None:
        return Estimator(**{param: int(budget)}, **extra)
    low, high = 0, len(values) - 1
    best = None
    while low <= high:  # parameters grow with the size parameter
        middle = (low + high) // 2
        candidate = Estimator(**{param: values[middle]}, **extra)
        try:
            count = parameters_of(candidate, X)
        except ValueError:  # too small for the structure (a table under a level)
            low = middle + 1
            continue
        if count <= budget:
            best, low = values[middle], middle + 1
        else:
            high = middle - 1
    if best is None:
        raise ValueError(f"{name} has no size within {budget} parameters.")
    return Estimator(**{param: best}, **extra)


def timed_fit(estimator, X, y, seconds: float, checkpoints=()):
    """Fit for at most ``seconds`` of training; return the per-step times and the
    parameter snapshots taken when each of ``checkpoints`` (seconds) had passed."""
    stamps, snapshots = [], {}
    pending = sorted(checkpoints)
    train = skinr.base.BaseINR._training_loop
    stopped = [False]

    def timed_train(parameters, *args, **kwargs):
        parameters = list(parameters)
        started = [time.perf_counter()]
        paused = [0.0]

        def progress(step, loss):
            now = time.perf_counter()
            elapsed = now - started[0] - paused[0]
            stamps.append((step, elapsed))
            while pending and elapsed >= pending[0]:
                snapshots[pending.pop(0)] = [p.detach().clone() for p in parameters]
            paused[0] += time.perf_counter() - now
            if elapsed >= seconds:
                stopped[0] = True
                raise KeyboardInterrupt

        kwargs["progress"] = progress
        return train(parameters, *args, **kwargs)

    skinr.base.BaseINR._training_loop = staticmethod(timed_train)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            estimator.fit(X, y)
    except KeyboardInterrupt:
        # A fit stopped by the budget keeps its weights and passes the interrupt on;
        # only the budget's own stop is the end of a fit here, a user's ends the run.
        if not stopped[0]:
            raise
    finally:
        skinr.base.BaseINR._training_loop = staticmethod(train)
    for budget in pending:  # the fit ended before this budget: its final state
        snapshots[budget] = [p.detach().clone() for p in estimator.module_.parameters()]
    # (step, seconds) of each progress report: every step of a fit of at most 200
    # steps, every max_iter // 200 steps of a longer one.
    return np.array(stamps, dtype=float).reshape(-1, 2), snapshots


def steps_for(estimator, X, y, seconds: float) -> int:
    """Steps that fill ``seconds``, from the time of steps 2 and 3 of a probe fit."""
    probe = clone(estimator).set_params(max_iter=3, torch_compile=False)
    stamps, _ = timed_fit(probe, X, y, math.inf)
    times = stamps[:, 1]
    per_step = max(float(np.diff(times[-2:]).mean()) if len(times) > 2 else times[-1], 1e-4)
    return max(int(seconds / per_step * 1.05), 3)


def fit_curve(estimator, X, y, seconds: list[float]) -> dict:
    """Fit PSNR after each of ``seconds`` (data range 1: the loss is in [-1, 1] units)."""
    longest = max(seconds)
    estimator.set_params(max_iter=steps_for(estimator, X, y, longest), torch_compile=False)
    stamps, _ = timed_fit(estimator, X, y, longest)
    losses = np.array(estimator.loss_curve_)
    scale = estimator.y_scale_
    curve = {}
    for budget in seconds:
        # The last report at or before the budget, and the steps taken by then.
        reached = max(int(np.searchsorted(stamps[:, 1], budget, side="right")) - 1, 0)
        steps_done = min(max(int(stamps[reached, 0]), 1), len(losses))
        curve[budget] = 10 * math.log10(1.0 / max(losses[:steps_done].min() * scale**2, 1e-30))
    return {
        "psnr_at": curve,
        "steps": int(estimator.n_iter_),
        "seconds_per_step": float(stamps[-1, 1] / max(stamps[-1, 0], 1)),
        "n_params": int(estimator.n_params_),
        "gflops": estimator.count_flops(X) / 1e9,
    }


def every_second(shape: tuple[int, ...]) -> np.ndarray:
    """The samples on every 2nd row and column (every 2nd index along each axis)."""
    seen = np.zeros(shape, dtype=bool)
    seen[tuple(slice(None, None, 2) for _ in shape)] = True
    return seen


def held_out(estimator, image: np.ndarray, seconds: float) -> float:
    seen = every_second(image.shape)
    X = grid(image.shape, pixel_centers=True)
    y = image.ravel()
    Xs, ys = X[seen.ravel()], y[seen.ravel()]
    estimator.set_params(max_iter=steps_for(estimator, Xs, ys, seconds), torch_compile=False)
    timed_fit(estimator, Xs, ys, seconds)
    predicted = estimator.predict(X)
    return psnr(y[~seen.ravel()], predicted[~seen.ravel()], data_range=1.0)


def interpolation_baselines(image: np.ndarray) -> dict:
    seen = every_second(image.shape)
    samples = image[tuple(slice(None, None, 2) for _ in image.shape)]
    index = np.indices(image.shape).reshape(image.ndim, -1) / 2
    rows = {}
    for method, order in (("linear (scipy)", 1), ("cubic spline (scipy)", 3)):
        predicted = map_coordinates(samples, index, order=order, mode="mirror")
        rows[method] = psnr(image[~seen], predicted.reshape(image.shape)[~seen], data_range=1.0)
    return rows


def blobs_volume(size: int) -> np.ndarray:
    """A smooth synthetic 3-D volume in [0, 1]: scikit-image's binary blobs, blurred
    (no real volume ships offline)."""
    from scipy.ndimage import gaussian_filter
    from skimage.data import binary_blobs

    blobs = binary_blobs(length=size, n_dim=3, volume_fraction=0.3, rng=0).astype(float)
    volume = gaussian_filter(blobs, sigma=size / 48)
    return (volume - volume.min()) / (volume.max() - volume.min())


def race(image: np.ndarray, steps: int = 300) -> dict:
    """SIREN's fit PSNR after ``steps`` steps, and HashGrid's wall time to reach it."""
    X = grid(image.shape, pixel_centers=True)
    y = image.ravel()
    siren = skinr.SIREN(max_iter=steps, random_state=0, device="cpu", torch_compile=False)
    siren_stamps, _ = timed_fit(siren, X, y, math.inf)
    siren_seconds = float(siren_stamps[-1, 1])
    target = siren.score(X, y)
    hashgrid = skinr.HashGrid(max_iter=200, random_state=0, device="cpu", torch_compile=False)
    stamps, _ = timed_fit(hashgrid, X, y, 2 * siren_seconds)  # 200 steps: every step timed
    curve = 10 * np.log10(1.0 / (np.array(hashgrid.loss_curve_) * hashgrid.y_scale_**2))
    reached = np.flatnonzero(curve >= target)
    seconds = None
    if len(reached):
        # loss_curve_[k] is the loss before step k + 1's update: reached once k steps ran.
        report = np.flatnonzero(stamps[:, 0] >= reached[0] + 1)[0]
        seconds = float(stamps[report, 1])
    # One step of each, in this run: SIREN, HashGrid, HashGrid without the native kernel.
    step = {}
    for label, make in (
        (
            "SIREN",
            lambda: skinr.SIREN(max_iter=12, random_state=0, device="cpu", torch_compile=False),
        ),
        ("HashGrid", lambda: skinr.HashGrid(max_iter=12, random_state=0, device="cpu")),
    ):
        step[label] = float(np.diff(timed_fit(make(), X, y, math.inf)[0][2:, 1]).mean())
    supported = native.hash_supported
    native.hash_supported = lambda coords, table: False
    try:
        torch_path = skinr.HashGrid(max_iter=12, random_state=0, device="cpu")
        step["HashGrid (torch path)"] = float(
            np.diff(timed_fit(torch_path, X, y, math.inf)[0][2:, 1]).mean()
        )
    finally:
        native.hash_supported = supported
    return {
        "step_seconds": step,
        "siren_steps": steps,
        "siren_psnr": target,
        "siren_seconds": siren_seconds,
        "hashgrid_seconds": seconds,
        "hashgrid_steps": int(reached[0] + 1) if len(reached) else None,
        "speedup": None if seconds is None else siren_seconds / seconds,
    }


def figure(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_params, by_time) = plt.subplots(1, 2, figsize=(11, 4.2))
    # The first image's rows: one figure, one signal.
    for name, rows in next(iter(results["sweep"].values()), {}).items():
        points = sorted((r["n_params"], r["psnr_at"][str(r["longest"])]) for r in rows)
        if points:
            by_params.plot(*zip(*points, strict=True), marker="o", label=name)
    by_params.set_xscale("log")
    by_params.set_xlabel("parameters")
    by_params.set_ylabel("fit PSNR (dB)")
    by_params.set_title("Fit PSNR against parameters")
    by_params.legend(fontsize=7)
    per_image = {
        name: row
        for name, row in next(iter(results["budget"].values()), {}).items()
        if "fit" in row
    }
    longest = str(max(results["seconds"]))
    for name in sorted(per_image, key=lambda k: -per_image[k]["fit"]["psnr_at"][longest]):
        row = per_image[name]["fit"]
        xs = [float(s) for s in row["psnr_at"]]
        by_time.plot(xs, list(row["psnr_at"].values()), marker="o", label=name)
    by_time.set_xscale("log")
    by_time.set_xlabel("seconds of training (2 CPU cores)")
    by_time.set_ylabel("fit PSNR (dB)")
    by_time.set_title(f"Fit PSNR against seconds, ~{results['budget_params']:.0e} parameters")
    by_time.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write(results: dict, quick: bool, out: str = "representations") -> None:
    """The results page, figure and JSON under ``out``; with ``quick`` (a smoke test)
    the page's tables are printed and nothing is written."""
    text = page(results, out)
    if quick:
        print(text)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps(results, indent=1, default=str))
    (RESULTS / f"{out}.md").write_text(text)
    figure(ROOT / "docs" / "images" / f"{out}.png", results)


def page(results: dict, out: str) -> str:
    seconds = results["seconds"]
    lines = [
        "# Representations at equal parameters and seconds",
        "",
        f"`{results['command']}` on {results['machine']}. Grey images at "
        f"{results['size']} x {results['size']} (a volume: its own size), data range 1; "
        "every estimator sized to "
        f"at most {results['budget_params']:.0e} parameters and trained full batch for "
        "a wall-clock budget. Held out: fitted on every 2nd row and column, scored on "
        "the other pixels (voxels), after the longest budget.",
        "",
    ]
    for image, per_image in results["budget"].items():
        lines += [f"## {image}", ""]
        header = " | ".join(f"fit {s} s" for s in seconds)
        lines += [
            f"| estimator | params | GFLOPs / render | steps in {max(seconds)} s | {header} "
            "| held out |",
            "|---|---:|---:|---:|" + "---:|" * len(seconds) + "---:|",
        ]
        ordered = sorted(
            per_image.items(),
            key=lambda kv: -(kv[1].get("held_out") or -1),
        )
        for name, row in ordered:
            if "refused" in row:
                lines.append(f"| {name} | refused: {row['refused']} |")
                continue
            fit = row["fit"]
            values = " | ".join(f"{fit['psnr_at'][str(s)]:.2f}" for s in seconds)
            lines.append(
                f"| {name} | {fit['n_params']:,} | {fit['gflops']:.3g} | {fit['steps']} | "
                f"{values} | {row['held_out']:.2f} |"
            )
        for method, value in results["interpolation"][image].items():
            lines.append(f"| {method} | | | | " + " | " * len(seconds) + f"{value:.2f} |")
        lines.append("")
    if results["sweep"]:
        lines += ["## Fit PSNR against parameters", ""]
        for image, per_image in results["sweep"].items():
            budgets = sorted({r["budget"] for rows in per_image.values() for r in rows})
            lines += [
                f"{image}, {results['sweep_seconds']} s of training each (parameters in brackets):",
                "",
                "| estimator | " + " | ".join(f"{b:.0e}" for b in budgets) + " |",
                "|---|" + "---:|" * len(budgets),
            ]
            for name, rows in per_image.items():
                cells = {r["budget"]: r for r in rows}
                lines.append(
                    f"| {name} | "
                    + " | ".join(
                        f"{cells[b]['psnr_at'][str(cells[b]['longest'])]:.2f} "
                        f"({cells[b]['n_params']:,})"
                        if b in cells
                        else "-"
                        for b in budgets
                    )
                    + " |"
                )
            lines.append("")
    if results["race"]:
        r = results["race"]
        steps = r["step_seconds"]
        lines += [
            "## HashGrid against SIREN's 300 steps",
            "",
            f"SIREN (defaults) reaches {r['siren_psnr']:.2f} dB fit PSNR in "
            f"{r['siren_steps']} steps, {r['siren_seconds']:.1f} s; HashGrid (defaults) "
            + (
                f"reaches it after {r['hashgrid_steps']} steps, {r['hashgrid_seconds']:.1f} s: "
                f"**{r['speedup']:.1f}x sooner**."
                if r["speedup"]
                else "does not reach it within twice SIREN's time."
            ),
            "",
            "Seconds per full-signal step in the same run: "
            + ", ".join(f"{k} {v:.3f}" for k, v in r["step_seconds"].items())
            + f" (HashGrid's step is {steps['SIREN'] / steps['HashGrid']:.1f}x "
            f"shorter than SIREN's; the native kernel makes it "
            f"{steps['HashGrid (torch path)'] / steps['HashGrid']:.1f}x "
            "shorter than the torch path's).",
            "",
        ]
    lines += [f"![PSNR against parameters and seconds](../images/{out}.png)", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", nargs="+", default=["camera"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--budget", type=float, default=1e5, help="parameters of the main table")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--estimators", nargs="+", default=list(SIZE_PARAMETERS))
    parser.add_argument("--budgets", type=float, nargs="+", default=[1e4, 3e4, 1e5, 3e5])
    parser.add_argument(
        "--sweep-estimators", nargs="*", default=["Grid", "HashGrid", "SIREN", "FINER"]
    )
    parser.add_argument("--sweep-seconds", type=float, default=20)
    parser.add_argument("--no-race", action="store_true")
    parser.add_argument(
        "--volume", type=int, default=0, help="also a synthetic SIZE^3 volume (0: none)"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="representations", help="results file stem")
    parser.add_argument(
        "--render", action="store_true", help="rewrite the page and figure from the JSON"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="update the rows of --estimators and --sweep-estimators (and the race, "
        "unless --no-race) in the existing results",
    )
    args = parser.parse_args(argv)
    if args.render:
        write(json.loads((RESULTS / f"{args.out}.json").read_text()), False, args.out)
        return
    if args.quick:
        args.size, args.seconds, args.budgets, args.sweep_seconds = 32, [0.2, 0.4], [1e3, 3e3], 0.2
        args.budget = 3e3
    torch.manual_seed(0)
    images = {k: v for k, v in load_images(args.size).items() if k in args.images}
    # ``--images none`` with ``--volume``: the volume alone.
    images = {k: v.mean(axis=-1) if v.ndim == 3 else v for k, v in images.items()}
    if args.volume:
        images[f"blobs volume {args.volume}^3"] = blobs_volume(args.volume)
    results = {
        "command": "python benchmarks/representations.py " + " ".join(argv or sys.argv[1:]),
        "machine": f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "size": args.size,
        "volume": args.volume,
        "seconds": args.seconds,
        "budget_params": args.budget,
        "budget": {},
        "interpolation": {},
        "sweep": {},
        "sweep_seconds": args.sweep_seconds,
        "race": None,
    }
    if args.merge:
        previous = json.loads((RESULTS / f"{args.out}.json").read_text())
        previous["budget"] = {
            image: rows for image, rows in previous["budget"].items() if image in images
        }
        results = {**previous, "command": previous["command"] + " (+ " + results["command"] + ")"}
    extra = {"random_state": 0, "device": "cpu"}
    for image_name, image in images.items():
        X = grid(image.shape, pixel_centers=True)
        y = image.ravel()
        results["interpolation"][image_name] = interpolation_baselines(image)
        rows = results["budget"].setdefault(image_name, {})
        for name in args.estimators:
            try:
                estimator = sized(name, args.budget, X, extra)
                fit = fit_curve(estimator, X, y, args.seconds)
                fit["psnr_at"] = {str(k): v for k, v in fit["psnr_at"].items()}
                ho_estimator = clone(estimator)
                rows[name] = {
                    "fit": fit,
                    "held_out": held_out(ho_estimator, image, max(args.seconds)),
                }
            except ValueError as error:
                rows[name] = {"refused": str(error)}
                print(f"{image_name} {name}: refused: {error}", flush=True)
                continue
            print(
                f"{image_name} {name:18s} {fit['n_params']:>8,} params "
                + " ".join(f"{s}s {v:6.2f}" for s, v in fit["psnr_at"].items())
                + f" held-out {rows[name]['held_out']:6.2f}",
                flush=True,
            )
            write(results, args.quick, args.out)
        sweep = results["sweep"].setdefault(image_name, {})
        for name in args.sweep_estimators:
            sweep[name] = []
            for budget in args.budgets:
                try:
                    estimator = sized(name, budget, X, extra)
                except ValueError as error:
                    print(f"{image_name} {name} {budget:.0e}: refused: {error}", flush=True)
                    continue
                fit = fit_curve(estimator, X, y, [args.sweep_seconds])
                sweep[name].append(
                    {
                        "budget": budget,
                        "longest": args.sweep_seconds,
                        "n_params": fit["n_params"],
                        "steps": fit["steps"],
                        "psnr_at": {str(k): v for k, v in fit["psnr_at"].items()},
                    }
                )
                print(f"{image_name} sweep {name:10s} {budget:.0e} {sweep[name][-1]}", flush=True)
            write(results, args.quick, args.out)
    if not args.no_race and images:
        first = next(iter(images.values()))
        results["race"] = race(first, steps=20 if args.quick else 300)
        print("race", results["race"], flush=True)
    write(results, args.quick, args.out)


if __name__ == "__main__":
    main()
