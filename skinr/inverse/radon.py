"""Parallel-beam tomography: :class:`Radon` and :func:`radon_coords` (re-exported from
:mod:`skinr.inverse`)."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from torch import Tensor

from .._core.operator import QuadratureOperator, declared, render_on_grid

__all__ = ["Radon", "radon_coords"]


@declared
class Radon(QuadratureOperator):
    """Parallel-beam line integrals (computed tomography).

    A measurement at ``(theta, s)`` (``theta`` in degrees, scikit-image's convention)
    integrates the signal along the line of points ``(-s sin theta + u cos theta,
    s cos theta + u sin theta)`` in skinr's (row, column) coordinate order: at signed
    distance ``s`` from the origin, as scikit-image's projection of the image rotated
    by ``theta`` sums its columns. The object lies inside the disc
    (``circle=True``) or the square of half-width ``extent``; each line is integrated
    over its chord of it, with ``n_points`` evenly spaced points (jittered during
    training). Nothing outside that support is measured, so ``predict_signal`` and
    ``render`` return zero there, as filtered back-projection does. Use
    :func:`radon_coords` for the coordinates of a ``skimage.transform.radon``
    sinogram.

    How the network is evaluated is ``sampling``: ``"grid"`` renders it once per step
    at the pixel centres of the reconstruction grid (``shape_``, one pixel per
    ``pixel_size``) and integrates its bilinear interpolation along every line, as
    ``skimage.transform.radon`` integrates an image, so a step costs one render
    however many measurements it takes; ``"line"`` evaluates the network at each
    line's own quadrature points (``n_points`` per measurement), which integrates
    the continuous signal but costs ``n_points`` evaluations per measurement.

    Parameters
    ----------
    extent : float, default=1.0
        Half-width of the square (radius of the disc) the object lies in.
    pixel_size : float or None, default=None
        The length unit of the integrals and the reconstruction's nominal pixel:
        ``2 * extent / n`` for an ``n x n`` image measures line integrals in pixels, as
        scikit-image does. None: integrals in coordinate units, the pixel the detector
        spacing.
    n_points : int or None, default=None
        Quadrature points per line; None places one per pixel along the diameter.
    circle : bool, default=True
        The object is zero outside the inscribed disc (scikit-image's default).
    sampling : {"grid", "line"}, default="grid"
        Where the network is evaluated (above). With ``"grid"`` every step renders
        the whole grid, which must fit in ``predict_batch_size`` points.

    Examples
    --------
    >>> import numpy as np
    >>> from skimage.transform import radon
    >>> from skinr import SIREN
    >>> from skinr.inverse import Radon, radon_coords
    >>> image = np.zeros((16, 16)); image[5:10, 6:12] = 1
    >>> theta = np.linspace(0.0, 180.0, 20, endpoint=False)
    >>> X, y = radon_coords(theta, image.shape), radon(image, theta).ravel()
    >>> model = SIREN(width=16, depth=1, max_iter=5, operator=Radon(pixel_size=2 / 16))
    >>> model.fit(X, y).render(image.shape).shape
    (16, 16)
    """

    measurement_dims = 2
    signal_dims = 2

    def __init__(self, extent=1.0, pixel_size=None, n_points=None, circle=True, sampling="grid"):
        self.extent = extent
        self.pixel_size = pixel_size
        self.n_points = n_points
        self.circle = circle
        self.sampling = sampling

    def resolve(self, X):
        self._check_dims(X)
        if not isinstance(self.extent, Real) or not self.extent > 0:
            raise ValueError(f"Radon: extent must be positive; got {self.extent!r}.")
        angles = X[:, 0]
        if np.abs(angles).max() > 360:
            raise ValueError(
                "Radon: angles are in degrees (scikit-image's convention), within "
                f"[-360, 360]; got {np.abs(angles).max():.4g}."
            )
        if self.n_points is not None and (
            not isinstance(self.n_points, Integral) or self.n_points < 2
        ):
            raise ValueError(f"Radon: n_points must be an int >= 2; got {self.n_points!r}.")
        if self.sampling not in ("grid", "line"):
            raise ValueError(f"Radon: sampling is 'grid' or 'line'; got {self.sampling!r}.")
        resolved = Radon(**self.get_params())
        if self.pixel_size is not None:
            pixel = float(self.pixel_size)
        else:
            first = np.unique(X[np.isclose(angles, angles[0]), 1])
            if first.size < 2:
                raise ValueError(
                    "Radon: a single detector offset at the first angle; pass pixel_size."
                )
            pixel = float(np.diff(first).min())
        if not pixel > 0:
            raise ValueError(f"Radon: pixel_size must be positive; got {self.pixel_size!r}.")
        resolved.pixel_ = pixel
        side = max(round(2 * self.extent / pixel), 2)
        resolved.n_points_ = int(self.n_points or side)
        resolved.shape_ = (side, side)
        return resolved

    def support(self, points):
        # The lines see nothing beyond the object's disc (or square): zero there, as
        # filtered back-projection returns.
        if self.circle:
            return np.sum(points**2, axis=1) <= self.extent**2
        return np.all(np.abs(points) <= self.extent, axis=1)

    @property
    def gain(self):
        # The longest chord, in the integrals' unit.
        unit = self.pixel_size or 1.0
        return 2 * self.extent / unit

    @property
    def points_per_measurement(self):
        return self.n_points_ if self.sampling == "line" else 1

    @property
    def quadrature_points(self):
        return self.n_points_

    @property
    def shared_points(self):
        return math.prod(int(n) for n in self.shape_) if self.sampling == "grid" else 0

    def signal_grid(self):
        box = np.array([[-self.extent, self.extent]] * 2, dtype=np.float64)
        return self.shape_, box

    def apply(self, field, X, generator=None):
        if self.sampling == "line":
            return super().apply(field, X, generator)
        image = render_on_grid(field, *self.signal_grid(), X)[None]
        points, weights = self.quadrature(X, generator)
        # grid_sample reads (column, row) in [-1, 1] from the grid's outer pixel
        # edges (align_corners=False): the pixel-centre frame of the box. The chords
        # end at the box, so "border" only keeps the outer half pixels at their
        # pixels' values instead of fading them to zero.
        where = torch.flip(points, dims=(-1,)) / self.extent
        sampled = torch.nn.functional.grid_sample(
            image, where[None], mode="bilinear", padding_mode="border", align_corners=False
        )[0]
        return torch.einsum("nk,cnk->nc", weights, sampled)

    def evaluation_points(self, X):
        if self.sampling == "line":
            return super().evaluation_points(X)
        from ..signals import grid

        shape, box = self.signal_grid()
        return grid(shape, bounds=box, pixel_centers=True)

    def _chord(self, s: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor]:
        """Where each line enters and leaves the object's support, along ``u``."""
        e = self.extent
        if self.circle:
            half = torch.sqrt(torch.clamp(e * e - s * s, min=0))
            return -half, half
        # Slab method: row = -s sin + u cos and column = s cos + u sin within [-e, e].
        low = torch.full_like(s, -math.inf)
        high = torch.full_like(s, math.inf)
        inf = torch.full_like(s, math.inf)
        for start, step in ((-s * sin, cos), (s * cos, sin)):
            parallel = step.abs() <= 1e-12
            safe = torch.where(parallel, torch.ones_like(step), step)
            a, b = (-e - start) / safe, (e - start) / safe
            # A line parallel to this slab crosses all of it or none of it.
            inside = start.abs() <= e
            a = torch.where(parallel, torch.where(inside, -inf, inf), a)
            b = torch.where(parallel, torch.where(inside, inf, -inf), b)
            low = torch.maximum(low, torch.minimum(a, b))
            high = torch.minimum(high, torch.maximum(a, b))
        high = torch.maximum(high, low)
        return low, high

    def quadrature(self, X, generator=None):
        theta = torch.deg2rad(X[:, 0])
        s = X[:, 1]
        cos, sin = torch.cos(theta), torch.sin(theta)
        low, high = self._chord(s, cos, sin)
        n = self.n_points_
        if generator is None:
            fraction = (torch.arange(n, dtype=X.dtype, device=X.device) + 0.5) / n
            fraction = fraction.expand(X.shape[0], -1)
        else:
            jitter = torch.rand((X.shape[0], n), generator=generator, dtype=X.dtype)
            fraction = (torch.arange(n, dtype=X.dtype) + jitter.cpu()) / n
            fraction = fraction.to(X.device)
        length = high - low
        u = low[:, None] + fraction * length[:, None]
        rows = -s[:, None] * sin[:, None] + u * cos[:, None]
        columns = s[:, None] * cos[:, None] + u * sin[:, None]
        points = torch.stack([rows, columns], dim=-1)
        unit = self.pixel_size or 1.0
        weights = (length / (n * unit))[:, None].expand(-1, n)
        return points, weights


def radon_coords(theta, shape) -> np.ndarray:
    """Return the coordinates of the entries of ``skimage.transform.radon(image, theta)``.

    For an image of ``shape`` on skinr's pixel-centre frame (``to_coords(image,
    pixel_centers=True)``), with scikit-image's default ``circle=True``, the sinogram's
    row ``k`` (detector) and column ``a`` (angle) is the measurement of
    ``Radon(pixel_size=2 / shape[0])`` at row ``k * len(theta) + a`` of the result, so
    ``y = sinogram.ravel()``.

    Parameters
    ----------
    theta : array-like of shape (n_angles,)
        Projection angles in degrees, as passed to scikit-image.
    shape : tuple of int
        The square image's shape.

    Returns
    -------
    X : ndarray of shape (shape[0] * n_angles, 2)
        ``(angle in degrees, detector offset)`` per measurement.
    """
    theta = np.asarray(theta, dtype=np.float64).ravel()
    n = int(shape[0])
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"radon_coords: scikit-image's radon takes a square image; got {shape}.")
    pixel = 2.0 / n
    # scikit-image rotates about pixel n // 2, which is not the frame's origin for
    # even n: shift each line by that centre's distance along its normal.
    centre = -1 + (2 * (n // 2) + 1) / n
    rad = np.deg2rad(theta)
    detectors = (np.arange(n) - n // 2) * pixel
    offsets = detectors[:, None] + centre * (np.cos(rad) - np.sin(rad))[None, :]
    angles = np.broadcast_to(theta[None, :], offsets.shape)
    return np.stack([angles.ravel(), offsets.ravel()], axis=1)
