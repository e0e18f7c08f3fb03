"""The frames a fit works in: coordinates mapped to [-1, 1], targets to [-1, 1].

The estimator fixes both maps at fit (``domain_``, ``y_offset_`` and ``y_scale_``) and
every path through the network, training or prediction, held or streamed, applies them
through these functions, so they cannot drift apart.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from .sample_layout import sample_footprint

__all__ = [
    "EXTRAPOLATION_MARGIN",
    "ExtrapolationWarning",
    "covering_box",
    "fit_domain",
    "normalise",
    "normalise_values",
    "normalised_chunks",
    "value_frame",
    "warn_if_far_outside",
]

# Points further than this share of the footprint's side outside it are "far" (warned).
EXTRAPOLATION_MARGIN = 0.1


class ExtrapolationWarning(UserWarning):
    """``predict`` was asked for points far outside the area the model was fitted on."""


def domain_map(domain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half-width per dimension: ``(X - centre) / half`` lies in [-1, 1]."""
    center = (domain[:, 0] + domain[:, 1]) / 2
    half = (domain[:, 1] - domain[:, 0]) / 2
    return center, np.where(half > 0, half, 1.0)


def normalise(X: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """Map coordinates from ``domain`` to [-1, 1] per dimension (float32)."""
    center, half = domain_map(domain)
    return ((X - center) / half).astype(np.float32)


def normalised_chunks(X: np.ndarray, domain: np.ndarray, size: int) -> Iterator[tuple[int, Tensor]]:
    """``(start, coords)`` for each ``size``-row chunk of ``X``, normalised, on the CPU."""
    for start in range(0, X.shape[0], size):
        yield start, torch.from_numpy(normalise(X[start : start + size], domain))


def normalise_values(y2d: np.ndarray, offset: float, scale: float) -> np.ndarray:
    """Map targets to [-1, 1] (float32), computing in float64 whatever the input dtype."""
    return ((y2d.astype(np.float64, copy=False) - offset) / scale).astype(np.float32)


# Domain half-widths from the centre beyond which a prediction is refused: there some
# architectures' arithmetic overflows float32 (FINER's (|x| + 1) x, Grid's and HashGrid's
# cell indices: NaN from about 1e20), and none extrapolates to anything meaningful.
MAX_REACH = 1e18


def check_representable(X: np.ndarray, domain: np.ndarray) -> None:
    """Raise when a coordinate of ``X`` lies more than ``MAX_REACH`` domain half-widths
    from the fitted domain's centre: its prediction could be NaN."""
    if len(X) == 0:
        return
    center, half = domain_map(domain)
    with np.errstate(over="ignore"):
        reach = np.maximum(np.abs(X.min(axis=0) - center), np.abs(X.max(axis=0) - center)) / half
    if not np.all(reach <= MAX_REACH):
        raise ValueError(
            f"X holds coordinates more than {MAX_REACH:.0e} half-widths outside the fitted "
            "domain (domain_), where the network's float32 arithmetic may overflow; a "
            "prediction there could be NaN."
        )


def fit_domain(X: np.ndarray, domain, *, footprint: bool, chunk_size: int) -> np.ndarray:
    """The coordinate box, ``(n_dims, 2)``, that a fit maps to [-1, 1].

    ``domain`` is the estimator's parameter: None takes the samples' bounding box, or
    their footprint (:func:`skinr._core.sample_layout.sample_footprint`) when
    ``footprint``; else one ``(low, high)`` pair or one pair per dimension.
    """
    if domain is None:
        with np.errstate(over="ignore", invalid="ignore"):
            box = np.stack([X.min(axis=0), X.max(axis=0)], axis=1).astype(np.float64)
            if not np.all(np.isfinite(box[:, 1] - box[:, 0])):
                raise ValueError(
                    "X spans a range that overflows float64 along some dimension; rescale "
                    "the coordinates."
                )
        return sample_footprint(X, chunk_size=chunk_size) if footprint else box
    box = np.asarray(domain, dtype=np.float64)
    if not np.all(np.isfinite(box)) or not np.all(np.isfinite(box[..., 1] - box[..., 0])):
        raise ValueError(f"domain={domain!r} must be finite, with a finite width.")
    if box.shape == (2,):
        box = np.tile(box, (X.shape[1], 1))
    if box.shape != (X.shape[1], 2) or not np.all(box[:, 0] < box[:, 1]):
        raise ValueError(
            f"domain={domain!r} must be one (low, high) pair or one pair per "
            f"coordinate dimension ({X.shape[1]} here), with low < high."
        )
    return box


def covering_box(*boxes: np.ndarray | None) -> np.ndarray:
    """The smallest ``(n_dims, 2)`` box holding every given box (None entries skipped)."""
    boxes = [box for box in boxes if box is not None]
    return np.stack([np.min([b[:, 0] for b in boxes], 0), np.max([b[:, 1] for b in boxes], 0)], 1)


def warn_if_far_outside(X: np.ndarray, footprint: np.ndarray, owner: str) -> None:
    """Warn (:class:`ExtrapolationWarning`) when points of ``X`` lie further than
    ``EXTRAPOLATION_MARGIN`` of the footprint's side outside it."""
    if X.shape[0] == 0:
        return
    margin = EXTRAPOLATION_MARGIN * (footprint[:, 1] - footprint[:, 0])
    low, high = footprint[:, 0] - margin, footprint[:, 1] + margin
    if np.all(X.min(axis=0) >= low) and np.all(X.max(axis=0) <= high):
        return
    outside = np.any((X < low) | (X > high), axis=1)
    warnings.warn(
        f"{int(outside.sum())} of {X.shape[0]} points lie far outside the area {owner} was "
        f"fitted on (footprint_, by more than {EXTRAPOLATION_MARGIN:.0%} of its side): "
        "predictions there extrapolate and follow no data (see the user guide, 'Off the "
        "training grid').",
        ExtrapolationWarning,
        stacklevel=3,
    )


def value_frame(y2d: np.ndarray) -> tuple[float, float, float]:
    """Offset and scale mapping ``y`` to [-1, 1], and its range (1.0 when constant)."""
    y_min, y_max = float(y2d.min()), float(y2d.max())
    if not np.isfinite(y_max - y_min):
        raise ValueError(
            f"y spans [{y_min:.3g}, {y_max:.3g}], a range that overflows float64; rescale y."
        )
    data_range = y_max - y_min if y_max > y_min else 1.0
    return (y_max + y_min) / 2, data_range / 2, data_range
