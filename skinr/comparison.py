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

    With ``seconds``, a probe fit of ``PROBE_STEPS`` steps measures the step time (the
    median of its later steps; the first pay one-off costs); ``max_iter`` is
    set to the steps that fill the budget (so a learning-rate schedule spans it) and
    ``max_time`` to the budget (a hard stop); ``torch_compile="auto"`` becomes False,
    as the probe timed eager steps. A budget shorter than one step is refused with a
    ValueError before any training.
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
    per_step = float(np.median(np.diff(times)[2:])) if len(times) > 3 else float(times[-1])
    if per_step > seconds:
        raise ValueError(
            f"a budget of {seconds:g} s is less than one training step of "
            f"{type(estimator).__name__} on this signal ({per_step:.2g} s)"
        )
    steps = max(1, int(seconds / per_step))
    # The probe timed eager steps; "auto" would compile a fit of 1,000 steps or more,
    # and the one-off compile (seconds) would spend the budget before the first step.
    compile_ = False if estimator.torch_compile == "auto" else estimator.torch_compile
    return estimator.set_params(max_iter=steps, max_time=seconds, torch_compile=compile_)


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
        """The table as GitHub Markdown."""
        header = "| model | PSNR (dB) | SSIM | held-out PSNR (dB) | params | FLOPs/sample "
        header += "| steps | seconds |"
        lines = [header, "|---|" + "---:|" * 7]
        for row in self.rows:
            cells = [
                row["model"],
                f"{row['psnr_db']:.2f}",
                "" if row["ssim"] is None else f"{row['ssim']:.4f}",
                "" if row["held_out_psnr_db"] is None else f"{row['held_out_psnr_db']:.2f}",
                f"{row['params']:,}",
                f"{row['flops_per_sample']:,}",
                str(row["steps"]),
                f"{row['fit_seconds']:.1f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

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
) -> Comparison:
    """Fit each of ``models`` on ``signal`` with one budget and tabulate the results.

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
    >>> [row["model"] for row in table.rows]
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
    for estimator in estimators:
        name = type(estimator).__name__
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
        result.rows.append(row)
        result.reconstructions[name] = reconstruction
        result.renders[name] = model.render(tuple(scale * n for n in shape))
    return result
