"""Quality metrics for fitted signals: PSNR, SSIM, IoU, and scorers for searches.

PSNR here is the standard range-aware one, ``10 log10(R^2 / MSE)`` with ``R`` the
data range passed explicitly. The papers skinr implements report variants (a peak of 1
on [-1, 1] data, min-max stretching, best-over-training); the benchmark pages say
which is which. No torch in this module.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["iou", "psnr", "psnr_scorer", "ssim"]


def psnr(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    data_range: float,
    clip: bool = False,
    sample_weight: ArrayLike | None = None,
) -> float:
    """Peak signal-to-noise ratio in dB.

    Parameters
    ----------
    y_true, y_pred : array-like of the same shape
        Reference and estimate (any shape; all elements are pooled into one MSE).
    data_range : float
        Peak-to-peak range of the signal, e.g. 1 for images in [0, 1], 255 for uint8,
        2 for audio in [-1, 1]. Required: defaults differ between libraries.
    clip : bool, default=False
        Clip ``y_pred`` to ``[min(y_true), max(y_true)]`` first (common for images,
        wrong for signed signals).
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples (first axis) in the mean squared error.

    Returns
    -------
    float
        ``10 * log10(data_range**2 / mse)``; ``inf`` for a perfect match.

    Examples
    --------
    >>> from skinr.metrics import psnr
    >>> round(psnr([0.0, 1.0], [0.1, 0.9], data_range=1.0), 2)
    20.0
    """
    y_true = np.atleast_1d(np.asarray(y_true, dtype=np.float64))
    y_pred = np.atleast_1d(np.asarray(y_pred, dtype=np.float64))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}.")
    if not data_range > 0:
        raise ValueError(f"data_range must be positive; got {data_range}.")
    if clip:
        y_pred = np.clip(y_pred, y_true.min(), y_true.max())
    squared = ((y_true - y_pred) ** 2).reshape(len(y_true), -1).mean(axis=1)
    mse = float(np.average(squared, weights=sample_weight))
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(
    image_true: ArrayLike,
    image_pred: ArrayLike,
    *,
    data_range: float,
    channel_axis: int | None = None,
) -> float:
    """Structural similarity of two images on their grid (Wang et al. 2004 settings).

    Uses scikit-image's ``structural_similarity`` with a Gaussian window (sigma 1.5)
    and population covariance, the paper's definition. SSIM needs grid-shaped images:
    reshape predictions with :func:`skinr.signals.to_array` first.

    Parameters
    ----------
    image_true, image_pred : array-like of shape (H, W) or (H, W, C)
        Reference and estimate.
    data_range : float
        Peak-to-peak range of the images.
    channel_axis : int or None, default=None
        Axis of the colour channels, e.g. -1 for (H, W, C).

    Returns
    -------
    float
        Mean SSIM in [-1, 1].
    """
    try:
        from skimage.metrics import structural_similarity
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "skinr.metrics.ssim needs scikit-image; install it with pip install 'skinr[data]'."
        ) from exc
    return float(
        structural_similarity(
            np.asarray(image_true, dtype=np.float64),
            np.asarray(image_pred, dtype=np.float64),
            data_range=data_range,
            channel_axis=channel_axis,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def iou(y_true: ArrayLike, y_pred: ArrayLike, *, threshold: float = 0.5) -> float:
    """Intersection over union of two occupancy fields thresholded at ``threshold``.

    Computed over every sample given (a dense grid, or sampled points); the inputs are
    not modified.

    Parameters
    ----------
    y_true, y_pred : array-like of the same shape
        Occupancy values (1 inside, 0 outside) and predictions.
    threshold : float, default=0.5
        A sample counts as occupied when its value is strictly above ``threshold``.

    Returns
    -------
    float
        ``|true & pred| / |true | pred|``; 1.0 when both are empty.
    """
    true_occ = np.asarray(y_true) > threshold
    pred_occ = np.asarray(y_pred) > threshold
    if true_occ.shape != pred_occ.shape:
        raise ValueError(
            f"y_true has shape {true_occ.shape} but y_pred has shape {pred_occ.shape}."
        )
    union = np.logical_or(true_occ, pred_occ).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(true_occ, pred_occ).sum() / union)


def psnr_scorer(estimator, X, y, *, data_range: float | None = None) -> float:
    """Scorer (``scoring=`` callable) returning PSNR in dB of ``estimator`` on ``(X, y)``.

    A fitted skinr estimator's ``score`` already returns PSNR, so searches need no
    ``scoring`` argument; this scorer is for other regressors, or to fix ``data_range``
    across candidates (``functools.partial(psnr_scorer, data_range=1.0)``).

    Parameters
    ----------
    estimator : fitted regressor
        Anything with ``predict``.
    X : array-like of shape (n_samples, n_dims)
        Coordinates.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        True values.
    data_range : float or None, default=None
        Range for PSNR; None uses the estimator's ``data_range_`` when it has one,
        else the range of ``y``.

    Returns
    -------
    float
        PSNR in dB (greater is better).
    """
    y = np.asarray(y, dtype=np.float64)
    if data_range is None:
        data_range = getattr(estimator, "data_range_", None) or float(np.ptp(y)) or 1.0
    return psnr(y, np.asarray(estimator.predict(X)).reshape(y.shape), data_range=data_range)
