"""Convert array signals to coordinate/value pairs and back.

Images, audio, video and volumes become ``X`` of shape ``(n_samples, n_dims)`` (one
row per sample point, coordinates in ``bounds``) and ``y`` of shape ``(n_samples,)`` or
``(n_samples, n_channels)``. Coordinates follow array-index order (``ij`` indexing:
the first coordinate is the row of an image, the time of a video). Two conventions:

- endpoints (the default, as SIREN's ``get_mgrid``): the first and last sample of an
  axis sit on ``bounds``; sample ``i`` of ``n`` at ``-1 + 2 i / (n - 1)``;
- pixel centres (``pixel_centers=True``): ``bounds`` are the edges of the box the
  samples tile, each sample the centre of its cell; sample ``i`` of ``n`` at
  ``-1 + (2 i + 1) / n``. An image and any resize of it (area-averaged pixels) then
  share one frame, which is what super-resolution and rendering at another size need.

Numpy only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_random_state

__all__ = ["box_mask", "grid", "random_mask", "to_array", "to_coords"]

Bounds = tuple[float, float] | Sequence[tuple[float, float]]


def _per_dim_bounds(bounds: Bounds, n_dims: int) -> np.ndarray:
    """Return ``bounds`` as an array of shape ``(n_dims, 2)``."""
    arr = np.asarray(bounds, dtype=np.float64)
    if arr.shape == (2,):
        arr = np.tile(arr, (n_dims, 1))
    if arr.shape != (n_dims, 2):
        raise ValueError(
            f"bounds must be one (low, high) pair or one pair per dimension "
            f"({n_dims} here); got an array of shape {arr.shape}."
        )
    return arr


def grid(
    shape: int | Sequence[int], bounds: Bounds = (-1.0, 1.0), *, pixel_centers: bool = False
) -> NDArray[np.float64]:
    """Return the coordinates of a regular grid, one row per grid point.

    Parameters
    ----------
    shape : int or sequence of int
        Number of points along each dimension, e.g. ``(height, width)``.
    bounds : (low, high) or sequence of (low, high), default=(-1, 1)
        Coordinates of the first and last point along each dimension (both included),
        or with ``pixel_centers`` the edges of the box the points' cells tile.
    pixel_centers : bool, default=False
        Place point ``i`` of ``n`` at the centre of the ``i``-th of ``n`` equal cells
        of ``bounds`` (``-1 + (2 i + 1) / n`` on [-1, 1]) instead of at
        ``linspace(low, high, n)``.

    Returns
    -------
    X : ndarray of shape (prod(shape), len(shape))
        Grid coordinates in row-major (C) order, matching ``array.reshape(-1)``.

    Examples
    --------
    >>> from skinr.signals import grid
    >>> grid((2, 3)).shape
    (6, 2)
    >>> grid(3)[:, 0].tolist()
    [-1.0, 0.0, 1.0]
    >>> grid(4, pixel_centers=True)[:, 0].tolist()
    [-0.75, -0.25, 0.25, 0.75]
    """
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"grid shape must be a non-empty sequence of positive ints; got {shape}.")
    per_dim = _per_dim_bounds(bounds, len(shape))
    if pixel_centers:
        axes = [
            lo + (hi - lo) * (2 * np.arange(n) + 1) / (2 * n)
            for (lo, hi), n in zip(per_dim, shape, strict=True)
        ]
    else:
        axes = [np.linspace(lo, hi, n) for (lo, hi), n in zip(per_dim, shape, strict=True)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)


def _has_channel_axis(array: np.ndarray, channel_axis: int | str | None) -> bool:
    if channel_axis == "auto":
        # (H, W, C) with few channels or (T, H, W, C); 1-D and 2-D arrays have none.
        if array.ndim == 2 and array.shape[1] <= 4 < array.shape[0]:
            warnings.warn(
                f"to_coords: an array of shape {array.shape} is taken as a 2-D image; if it "
                f"is a 1-D signal with {array.shape[1]} channels (stereo audio), pass "
                "channel_axis=-1 (channel_axis=None keeps the image and silences this).",
                UserWarning,
                stacklevel=3,
            )
        if array.ndim == 3 and array.shape[-1] == 2:
            warnings.warn(
                f"to_coords: an array of shape {array.shape} is taken as an image with 2 "
                "channels; if it is a volume, pass channel_axis=None (channel_axis=-1 "
                "keeps the channels and silences this).",
                UserWarning,
                stacklevel=3,
            )
        return (array.ndim == 3 and array.shape[-1] <= 4) or array.ndim == 4
    if channel_axis is None:
        return False
    if channel_axis not in (-1, array.ndim - 1):
        raise ValueError(
            f"channel_axis must be -1 (the last axis), None or 'auto'; got {channel_axis!r}."
        )
    return True


def to_coords(
    array: ArrayLike,
    *,
    channel_axis: int | str | None = "auto",
    bounds: Bounds = (-1.0, 1.0),
    pixel_centers: bool | str = "auto",
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Turn an array signal into coordinates ``X`` and values ``y``.

    Parameters
    ----------
    array : array-like
        Audio ``(T,)`` or ``(T, C)``, image ``(H, W)`` or ``(H, W, C)``, video
        ``(T, H, W)`` or ``(T, H, W, C)``, volume ``(D, H, W)``.
    channel_axis : {"auto", -1, None}, default="auto"
        Whether the last axis holds channels. ``"auto"``: yes for 4-D arrays and for
        3-D arrays whose last axis has at most 4 entries (RGB/RGBA images); no for 1-D
        and 2-D arrays. Pass ``-1`` for multi-channel audio, ``None`` for a volume
        whose last side is short. Shapes "auto" has to guess (a 2-D array with at most
        4 columns and more rows, such as stereo audio ``(T, 2)``; a 3-D array with 2
        entries on its last axis) warn.
    bounds : (low, high) or sequence of (low, high), default=(-1, 1)
        Coordinate range of each spatial axis, endpoints included (with
        ``pixel_centers``, the edges of the box the samples tile).
    pixel_centers : bool or "auto", default="auto"
        Put each sample at the centre of its pixel (see :func:`grid`), as the user
        guide advises for samples that stand for areas (images, volumes, video: any
        signal rendered or compared at another resolution); False puts the first and
        last sample on the bounds (samples that are points, such as audio). "auto":
        pixel centres for signals of two or more spatial axes, endpoints for 1-D.

    Returns
    -------
    X : ndarray of shape (n_samples, n_dims)
        Coordinates, from :func:`grid`.
    y : ndarray of shape (n_samples,) or (n_samples, n_channels)
        Values as float64, 1-D when the signal has no channel axis.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.zeros((4, 5, 3)))
    >>> X.shape, y.shape
    ((20, 2), (20, 3))
    """
    array = np.asarray(array)
    if array.ndim == 0 or array.size == 0:
        raise ValueError(f"Cannot make coordinates of an empty or 0-d array (shape {array.shape}).")
    if _has_channel_axis(array, channel_axis):
        spatial, n_channels = array.shape[:-1], array.shape[-1]
        values = array.reshape(-1, n_channels)
    else:
        spatial, values = array.shape, array.reshape(-1)
    if not spatial:
        raise ValueError("The array has a channel axis but no spatial axis.")
    if isinstance(pixel_centers, str):
        if pixel_centers != "auto":
            raise ValueError(f'pixel_centers must be True, False or "auto"; got {pixel_centers!r}.')
        pixel_centers = len(spatial) >= 2
    return grid(spatial, bounds, pixel_centers=pixel_centers), values.astype(np.float64)


def to_array(y: ArrayLike, shape: Sequence[int]) -> NDArray[np.float64]:
    """Reshape predictions on a :func:`grid` back into an array signal.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_channels)
        Values in the row-major order of :func:`grid`.
    shape : sequence of int
        Spatial shape of the grid, e.g. ``(height, width)``.

    Returns
    -------
    ndarray of shape (*shape) or (*shape, n_channels)
        The values laid out on the grid.
    """
    y = np.asarray(y, dtype=np.float64)
    shape = tuple(int(s) for s in shape)
    if y.shape[0] != int(np.prod(shape)):
        raise ValueError(
            f"y has {y.shape[0]} samples but shape {shape} needs {int(np.prod(shape))}."
        )
    return y.reshape(shape + y.shape[1:])


def random_mask(shape: Sequence[int], keep: float, random_state=None) -> NDArray[np.bool_]:
    """Boolean mask keeping a random fraction of the samples (for inpainting).

    Parameters
    ----------
    shape : sequence of int
        Spatial shape of the signal.
    keep : float in (0, 1]
        Fraction of samples marked True (observed).
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.

    Returns
    -------
    mask : ndarray of bool with the given shape
        Use ``X[mask.ravel()]`` for training and ``X[~mask.ravel()]`` for held-out scoring.
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1]; got {keep}.")
    rng = check_random_state(random_state)
    return rng.random_sample(tuple(shape)) < keep


def box_mask(shape: Sequence[int], lower: Sequence[int], upper: Sequence[int]) -> NDArray[np.bool_]:
    """Boolean mask that is True inside the index box ``[lower, upper)``.

    Parameters
    ----------
    shape : sequence of int
        Spatial shape of the signal.
    lower, upper : sequence of int
        Inclusive lower and exclusive upper index along each axis.

    Returns
    -------
    mask : ndarray of bool with the given shape
        True inside the box.
    """
    mask = np.zeros(tuple(shape), dtype=bool)
    mask[tuple(slice(lo, hi) for lo, hi in zip(lower, upper, strict=True))] = True
    return mask
