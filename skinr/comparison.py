"""Fit several estimators on one signal and tabulate what each gives: :func:`compare`.

This is the table research scripts are written for: each estimator fitted on the same
samples with the same budget (steps or seconds), then PSNR and SSIM of the
reconstruction, PSNR on samples it never saw, parameters, FLOPs and seconds, with the
reconstructions and super-resolution renders kept for a montage.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone

from ._core.registry import ESTIMATORS
from .metrics import psnr, ssim
from .signals import to_coords

__all__ = ["COLUMNS", "Comparison", "budgeted", "compare", "estimator_named"]

#: Steps of the probe fit that times a step for a budget in seconds.
PROBE_STEPS = 6
# A budgeted fit may take this many times the steps its probe expects: the clock,
# not max_iter, ends it.
BUDGET_STEP_MARGIN = 4

# Below this many steps a model has not trained: the verdict says so.
UNDERTRAINED_STEPS = 100
#: The rows of the simple alternative every comparison carries: interpolation of the
#: same samples (``scipy.interpolate.RegularGridInterpolator``).
INTERPOLATIONS = {"linear": "linear interpolation", "cubic": "cubic interpolation"}

#: The table's columns, in order.
COLUMNS = (
    "model",
    "psnr_db",
    "ssim",
    "held_out_psnr_db",
    "params",
    "flops_per_sample",
    "steps",
    "fit_seconds",
)


def estimator_named(name: str):
    """The estimator class called ``name`` (case-insensitive), or a ValueError that
    suggests the nearest names."""
    by_lower = {key.lower(): cls for key, cls in ESTIMATORS.items()}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)
    close = [by_lower[key].__name__ for key in close]
    close += [key for key in ESTIMATORS if key.lower().startswith(name.lower()[:3])]
    hint = f"; did you mean {' or '.join(dict.fromkeys(close))}?" if close else ""
    raise ValueError(f"unknown model {name!r}{hint} (models: {', '.join(sorted(ESTIMATORS))})")


def budgeted(estimator, X, y, *, steps: int | None = None, seconds: float | None = None):
    """``estimator`` set to train for ``steps`` steps or ``seconds`` seconds.

    With ``seconds``, the fit trains until the budget is spent (``max_time``), and its
    learning-rate schedule follows the clock. A probe fit of ``PROBE_STEPS`` steps
    measures the step time (the median of its later steps; the first pay one-off
    costs): a budget shorter than one step is refused with a ValueError before any
    training, and ``max_iter`` is set to ``BUDGET_STEP_MARGIN`` times the steps the
    probe expects, so that a step faster than the probe's cannot end the fit early
    (a busy machine times steps slower than they run). ``torch_compile="auto"``
    becomes False, as the probe timed eager steps.
    """
    if steps is not None and seconds is not None:
        raise ValueError("give steps or seconds, not both")
    estimator = clone(estimator)
    if steps is not None:
        if steps < 1:
            raise ValueError(f"steps must be at least 1; got {steps}")
        return estimator.set_params(max_iter=int(steps))
    if seconds is None:
        return estimator
    if not seconds > 0:
        raise ValueError(f"seconds must be positive; got {seconds}")
    per_step = step_seconds(estimator, X, y)
    if per_step > seconds:
        raise ValueError(
            f"a budget of {seconds:g} s is less than one training step of "
            f"{type(estimator).__name__} on this signal ({per_step:.2g} s)"
        )
    steps = max(1, int(BUDGET_STEP_MARGIN * seconds / per_step))
    # The probe timed eager steps; "auto" would compile a fit of 1,000 steps or more,
    # and the one-off compile (seconds) would spend the budget before the first step.
    compile_ = False if estimator.torch_compile == "auto" else estimator.torch_compile
    return estimator.set_params(max_iter=steps, max_time=seconds, torch_compile=compile_)


def step_seconds(estimator, X, y) -> float:
    """Seconds one eager training step of ``estimator`` takes on ``(X, y)`` here: the
    median of the later steps of a probe fit of ``PROBE_STEPS`` steps (the first pay
    one-off costs)."""
    probe = clone(estimator).set_params(
        max_iter=PROBE_STEPS,
        max_time=None,
        torch_compile=False,
        verbose=False,
        early_stopping=False,
        checkpoint_path=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        probe.fit(X, y)
    times = np.asarray(probe.history_["seconds"])
    # The first steps pay one-off costs (allocations, kernel builds): time the later ones.
    return float(np.median(np.diff(times)[2:])) if len(times) > 3 else float(times[-1])


def _every_second(shape: tuple[int, ...]) -> np.ndarray:
    """Mask of the samples on every second index along each axis (a coarser grid)."""
    keep = np.zeros(shape, dtype=bool)
    keep[tuple(slice(None, None, 2) for _ in shape)] = True
    return keep.ravel()


@dataclass
class Comparison:
    """The result of :func:`compare`.

    Attributes
    ----------
    rows : list of dict
        One row per estimator with the keys of :data:`COLUMNS` (``held_out_psnr_db`` is
        None when it was not measured; ``ssim`` for 2-D signals only).
    signal : ndarray
        The signal the estimators were fitted on.
    reconstructions : dict of str to ndarray
        Each estimator's prediction on the signal's grid.
    renders : dict of str to ndarray
        Each estimator's render at ``scale`` times the signal's resolution.
    scale : int
        Factor of the renders.
    """

    rows: list[dict]
    signal: np.ndarray
    reconstructions: dict = field(default_factory=dict)
    renders: dict = field(default_factory=dict)
    scale: int = 4

    def to_markdown(self) -> str:
        """The table as GitHub Markdown, and the verdict below it."""
        header = "| model | PSNR (dB) | SSIM | held-out PSNR (dB) | params | FLOPs/sample "
        header += "| steps | seconds |"
        lines = [header, "|---|" + "---:|" * 7]

        def shown(value, form):
            return "" if value is None else format(value, form)

        for row in self.rows:
            cells = [
                row["model"],
                shown(row["psnr_db"], ".2f"),
                shown(row["ssim"], ".4f"),
                shown(row["held_out_psnr_db"], ".2f"),
                shown(row["params"], ","),
                shown(row["flops_per_sample"], ","),
                shown(row["steps"], ""),
                f"{row['fit_seconds']:.1f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n\n" + self.verdict() + "\n"

    def verdict(self) -> str:
        """One line: which model predicts best between the samples, against
        interpolation of the same samples, and which models had too small a budget to
        be judged."""
        models = [row for row in self.rows if not _is_baseline(row)]
        baselines = [row for row in self.rows if row["model"] in INTERPOLATIONS.values()]
        short = [row for row in models if row["steps"] < UNDERTRAINED_STEPS]
        caveat = ""
        if short:
            listed = ", ".join(f"{row['model']} ({row['steps']} steps)" for row in short)
            caveat = f" Too few steps to judge: {listed}; give them a larger budget."
        scored = [row for row in models if row["held_out_psnr_db"] is not None]
        if not scored or not baselines:
            best = max(models, key=lambda row: row["psnr_db"])
            return (
                f"Best fit: {best['model']} ({best['psnr_db']:.2f} dB); prediction between "
                "samples was not measured." + caveat
            )
        best = max(scored, key=lambda row: row["held_out_psnr_db"])
        base = max(baselines, key=lambda row: row["held_out_psnr_db"])
        gap = best["held_out_psnr_db"] - base["held_out_psnr_db"]
        if gap > 0:
            text = (
                f"Between samples, {best['model']} predicts best: "
                f"{best['held_out_psnr_db']:.2f} dB held out, {gap:+.2f} dB against "
                f"{base['model']} of the same samples."
            )
        else:
            text = (
                f"No model predicts between samples better than {base['model']} "
                f"({base['held_out_psnr_db']:.2f} dB held out); the best, {best['model']}, "
                f"scores {best['held_out_psnr_db']:.2f} ({gap:+.2f} dB)."
            )
        return text + caveat

    def to_csv(self) -> str:
        """The table as CSV text, one row per estimator."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()

    def to_frame(self):
        """The table as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(COLUMNS))


def compare(
    signal,
    models=("SIREN", "FourierFeatureMLP", "HashGrid"),
    *,
    steps: int | None = None,
    seconds: float | None = None,
    held_out: bool = True,
    scale: int = 4,
    data_range: float | None = None,
    random_state: int | None = 0,
    device: str = "auto",
    progress=None,
) -> Comparison:
    """Fit each of ``models`` on ``signal`` with one budget and tabulate the results.

    Every model gets the same budget, spent in full: ``steps`` steps, or ``seconds``
    of training (the clock ends each fit). With ``held_out``, the table carries
    linear and cubic interpolation of the same samples as rows of their own, and
    :meth:`Comparison.verdict` says whether any model predicts between the samples
    better than interpolation does. An image in [0, 1] also gets a JPEG 2000 row (with
    imagecodecs): the photo in as many bytes as the smallest model's float32 weights.

    Parameters
    ----------
    signal : array-like or skinr.io.Signal
        An image ``(H, W[, C])``, audio, video or volume (as :func:`skinr.signals.to_coords`
        reads arrays), or a :class:`skinr.io.Signal`.
    models : sequence of str or estimator
        Estimator names (``"SIREN"``, case-insensitive) or estimator instances.
    steps, seconds : int or float, optional
        The budget of every fit: optimizer steps, or seconds of training (see
        :func:`budgeted`). Neither: each estimator's own ``max_iter``.
    held_out : bool, default=True
        Also fit each estimator on the samples of every second index along each axis
        (the same budget) and score it on the others: prediction between samples,
        which the fit PSNR does not measure.
    scale : int, default=4
        Factor of the super-resolution renders kept in the result.
    data_range : float or None
        Peak of PSNR and SSIM; None uses the signal's range.
    random_state : int or None, default=0
        Seed of every fit.
    device : str, default="auto"
        Where to train.
    progress : callable or None
        Called with one line of text as each model starts and ends.

    Returns
    -------
    Comparison
        The table (``rows``; ``to_markdown``, ``to_csv``, ``to_frame``) and each
        estimator's reconstruction and render.

    Examples
    --------
    >>> import skinr
    >>> image = skinr.datasets.camera(size=16)
    >>> table = skinr.compare(image, ["SIREN", "Grid"], steps=5, held_out=False)
    >>> list(table.renders)  # the models; baseline rows (JPEG 2000 here) follow theirs
    ['SIREN', 'Grid']
    """
    from .io import Signal

    if isinstance(signal, Signal):
        values, has_channels = signal.values, signal.has_channels
        X, y = signal.to_coords()
    else:
        values = np.asarray(signal, dtype=np.float64)
        X, y = to_coords(values, pixel_centers=True)
        has_channels = y.ndim == 2
    shape = values.shape[:-1] if has_channels else values.shape
    if scale < 1:
        raise ValueError(f"scale must be at least 1; got {scale}")
    peak = data_range or float(np.ptp(values)) or 1.0
    estimators = [
        estimator_named(model)() if isinstance(model, str) else clone(model) for model in models
    ]
    # Validate every estimator's parameters before the first fit starts.
    for estimator in estimators:
        estimator.set_params(random_state=random_state, device=device, data_range=peak)
        estimator._validate_params()
    keep = _every_second(shape) if held_out else None
    result = Comparison(rows=[], signal=values, scale=scale)
    say = progress or (lambda text: None)
    for index, estimator in enumerate(estimators, 1):
        name = type(estimator).__name__
        budget = f"{seconds:g} s" if seconds is not None else f"{steps or estimator.max_iter} steps"
        fits = " twice (all samples, then every second one)" if keep is not None else ""
        say(f"[{index}/{len(estimators)}] {name}: {budget}{fits} ...")
        model = budgeted(estimator, X, y, steps=steps, seconds=seconds)
        started = time.perf_counter()
        model.fit(X, y)
        elapsed = time.perf_counter() - started
        reconstruction = model.render(shape)
        row = {
            "model": name,
            "psnr_db": psnr(values, reconstruction, data_range=peak),
            "ssim": None,
            "held_out_psnr_db": None,
            "params": int(model.n_params_),
            "flops_per_sample": int(model.count_flops(X[:1])),
            "steps": int(model.n_iter_),
            "fit_seconds": elapsed,
        }
        if len(shape) == 2 and min(shape) >= 11:  # SSIM's Gaussian window
            row["ssim"] = ssim(
                values,
                reconstruction,
                data_range=peak,
                channel_axis=-1 if has_channels else None,
            )
        if keep is not None and keep.sum() < len(X):
            seen = budgeted(estimator, X[keep], y[keep], steps=steps, seconds=seconds)
            seen.fit(X[keep], y[keep])
            row["held_out_psnr_db"] = seen.score(X[~keep], y[~keep])
        say(
            f"[{index}/{len(estimators)}] {name}: {row['psnr_db']:.2f} dB fitted"
            + (
                ""
                if row["held_out_psnr_db"] is None
                else f", {row['held_out_psnr_db']:.2f} dB held out"
            )
            + f" ({row['steps']} steps, {elapsed:.1f} s)"
        )
        result.rows.append(row)
        result.reconstructions[name] = reconstruction
        result.renders[name] = model.render(tuple(scale * n for n in shape))
    if keep is not None and keep.sum() < len(X):
        result.rows += interpolation_rows(values, shape, keep, peak)
    if len(shape) == 2 and result.rows and 0.0 <= values.min() and values.max() <= 1.0:
        smallest = min(result.rows[: len(estimators)], key=lambda row: row["params"])
        n_bytes = 4 * smallest["params"]  # float32 weights: what a model file holds
        started = time.perf_counter()
        j2k = jpeg2000_psnr(values, n_bytes)
        if j2k is not None:
            result.rows.append(
                {
                    "model": f"JPEG 2000 at {smallest['model']}'s {n_bytes:,} bytes",
                    "psnr_db": j2k,
                    "ssim": None,
                    "held_out_psnr_db": None,
                    "params": None,
                    "flops_per_sample": None,
                    "steps": None,
                    "fit_seconds": time.perf_counter() - started,
                }
            )
    return result


def _is_baseline(row: dict) -> bool:
    return row["model"] in INTERPOLATIONS.values() or row["model"].startswith("JPEG 2000")


def jpeg2000_psnr(image: np.ndarray, n_bytes: int) -> float | None:
    """PSNR (peak 1) of OpenJPEG's JPEG 2000 of ``image`` (values in [0, 1], 8 bits) in at
    most ``n_bytes``; None without imagecodecs or when no rate fits."""
    try:
        import imagecodecs
    except ImportError:
        return None
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    best = None
    for level in np.arange(16.0, 60.0, 0.5):
        data = imagecodecs.jpeg2k_encode(pixels, level=float(level), codecformat="j2k")
        if len(data) > n_bytes:
            break
        decoded = imagecodecs.jpeg2k_decode(data).astype(np.float64).reshape(pixels.shape)
        best = float(10 * np.log10(255.0**2 / max(np.mean((decoded - pixels) ** 2), 1e-30)))
    return best


def interpolation_rows(values, shape, keep, peak) -> list[dict]:
    """Linear and cubic interpolation of the kept samples (every second index along
    each axis) at the others, as comparison rows: what a user has without a model.
    Interpolation reproduces the samples it is given, so its fit PSNR is infinite."""
    from scipy.interpolate import RegularGridInterpolator

    kept_shape = tuple((n + 1) // 2 for n in shape)
    flat = values.reshape(math.prod(shape), -1)
    kept = flat[keep].reshape(*kept_shape, flat.shape[1])
    axes = tuple(np.arange(0, n, 2, dtype=np.float64) for n in shape)
    targets = np.stack(np.unravel_index(np.flatnonzero(~keep), shape), axis=1).astype(np.float64)
    rows = []
    for method, name in INTERPOLATIONS.items():
        # Cubic splines need four samples per axis; in 3-D and up scipy's solve is slow
        # on large grids, where linear alone is shown.
        if method == "cubic" and (min(kept_shape) < 4 or (len(shape) > 2 and kept.size > 2**20)):
            continue
        started = time.perf_counter()
        interpolate = RegularGridInterpolator(
            axes, kept, method=method, bounds_error=False, fill_value=None
        )
        predicted = interpolate(targets)
        rows.append(
            {
                "model": name,
                "psnr_db": math.inf,
                "ssim": None,
                "held_out_psnr_db": psnr(flat[~keep], predicted, data_range=peak),
                "params": None,
                "flops_per_sample": None,
                "steps": None,
                "fit_seconds": time.perf_counter() - started,
            }
        )
    return rows
