"""Operators of pixel measurements (re-exported from :mod:`skinr.inverse`): each
measurement a weighted sum of the signal around a pixel centre, evaluated at its own
points or read from one render of every point the measurements read.

:class:`AreaDownsample` (super-resolution) and :class:`Blur` (deblurring).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from numbers import Integral

import numpy as np
import torch

from .._core.domain import domain_map
from .._core.operator import QuadratureOperator, declared, render_on_grid
from .._core.sample_layout import distinct_per_axis
from ..nn.cells import locate_cells

__all__ = ["AreaDownsample", "Blur"]


#: Convolutions by signal dimension, for the operators that render a grid and convolve.
_CONVOLUTIONS = (
    torch.nn.functional.conv1d,
    torch.nn.functional.conv2d,
    torch.nn.functional.conv3d,
)


def _grid_spacing(X: np.ndarray, given, name: str) -> np.ndarray:
    """Per-axis spacing: ``given`` (a number or one per axis), else the smallest gap
    between distinct coordinates of ``X`` along each axis."""
    if given is not None:
        spacing = np.broadcast_to(np.asarray(given, dtype=np.float64), (X.shape[1],)).copy()
    else:
        spacing = np.empty(X.shape[1])
        for axis, values in enumerate(distinct_per_axis(X)):
            gaps = np.diff(values.numpy())
            if gaps.size == 0:
                raise ValueError(
                    f"{name}: the measurements have one distinct coordinate along axis "
                    f"{axis}, so their pixel size cannot be inferred; pass pixel_size."
                )
            spacing[axis] = gaps.min()
    if not np.all(np.isfinite(spacing) & (spacing > 0)):
        raise ValueError(f"{name}: pixel_size must be positive and finite; got {given!r}.")
    return spacing


def _pixel_box(X: np.ndarray, spacing: np.ndarray) -> tuple[tuple[int, ...], np.ndarray]:
    """Pixel-centre measurements: their area (half a pixel beyond the outer centres)
    and the pixels along each axis."""
    low, high = X.min(axis=0) - spacing / 2, X.max(axis=0) + spacing / 2
    shape = tuple(int(n) for n in np.rint((high - low) / spacing))
    return shape, np.stack([low, high], axis=1)


class _PixelOperator(QuadratureOperator):
    """Measurements at pixel centres, each a weighted sum of the signal at fixed
    offsets around it; the offsets and weights are the operator.

    Neighbouring measurements read overlapping or adjacent signal points, so with
    ``sampling="grid"`` a step renders every point the measurements read once, on
    the grid :meth:`_read_grid`, and measures the render (:meth:`_measure_render`);
    coordinates between the fitted pixels take their own points. ``"points"``
    evaluates each measurement's own points.
    """

    measurement_dims = None

    @abstractmethod
    def _offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """Offsets ``(k, dims)`` in the signal's units and weights ``(k,)``."""

    @abstractmethod
    def _read_grid(self) -> tuple[tuple[int, ...], np.ndarray]:
        """The grid of every signal point the fitted pixels read: shape and box."""

    @abstractmethod
    def _measure_render(self, image: torch.Tensor) -> torch.Tensor:
        """The measurements ``(n_outputs, *measurement_shape_)`` of a render
        ``(n_outputs, *shape)`` of :meth:`_read_grid`."""

    def _griddable(self) -> bool:
        return True

    def resolve(self, X):
        if self.sampling not in ("auto", "grid", "points"):
            raise ValueError(
                f"{type(self).__name__}: sampling is 'auto', 'grid' or 'points'; "
                f"got {self.sampling!r}."
            )
        resolved = type(self)(**self.get_params())
        resolved.signal_dims = X.shape[1]
        resolved.spacing_ = _grid_spacing(X, self.pixel_size, type(self).__name__)
        resolved.measurement_shape_, resolved.box_ = _pixel_box(X, resolved.spacing_)
        resolved._check_offsets()
        griddable = resolved._griddable()
        resolved.sampling_ = "grid" if self.sampling != "points" and griddable else "points"
        return resolved

    def _check_offsets(self) -> None:
        pass

    def within(self, budget):
        if self.sampling == "auto" and self._grid_sampled and self.shared_points > budget:
            self.sampling_ = "points"
        return self

    @property
    def _grid_sampled(self) -> bool:
        return getattr(self, "sampling_", None) == "grid"

    @property
    def quadrature_points(self):
        return len(self._offsets()[1])

    @property
    def points_per_measurement(self):
        return 1 if self._grid_sampled else self.quadrature_points

    @property
    def shared_points(self):
        return math.prod(int(n) for n in self._read_grid()[0]) if self._grid_sampled else 0

    def quadrature(self, X, generator=None):
        offsets, weights = self._offsets()
        offsets = torch.as_tensor(offsets, dtype=X.dtype, device=X.device)
        weights = torch.as_tensor(weights, dtype=X.dtype, device=X.device)
        points = X[:, None, :] + offsets[None]
        return points, weights.expand(X.shape[0], -1)

    def apply(self, field, X, generator=None):
        if not self._grid_sampled:
            return super().apply(field, X, generator)
        image = render_on_grid(field, *self._read_grid(), X)
        measured_image = self._measure_render(image)
        values = measured_image.reshape(measured_image.shape[0], -1).T
        # The measurement pixel of each coordinate, and where in it the coordinate lies
        # (0 at its centre, +-1 at its edges, beyond outside the grid).
        centre, half = (
            torch.as_tensor(v, dtype=X.dtype, device=X.device) for v in domain_map(self.box_)
        )
        pixel, within_pixel = locate_cells((X - centre) / half, self.measurement_shape_)
        on_grid = (within_pixel.abs() < 2e-3).all(dim=1)
        measured = values[pixel]
        off_grid = torch.nonzero(~on_grid).ravel()
        if off_grid.numel():
            # Coordinates between the fitted pixels: their own points, in chunks that
            # stay within what one grid render allocates.
            chunk = max(1, self.shared_points // self.quadrature_points)
            parts = [
                super(_PixelOperator, self).apply(field, X[rows], generator)
                for rows in off_grid.split(chunk)
            ]
            measured = measured.index_put((off_grid,), torch.cat(parts))
        return measured

    def evaluation_points(self, X):
        if not self._grid_sampled:
            return super().evaluation_points(X)
        from ..signals import grid

        shape, box = self._read_grid()
        return grid(shape, bounds=box, pixel_centers=True)


@declared
class AreaDownsample(_PixelOperator):
    """Each measurement is the mean of the signal over its pixel's area.

    The operator of super-resolution: fit a low-resolution image at its pixel centres
    (``to_coords(low, pixel_centers=True)``) and render the signal at any finer grid.
    Each pixel's mean is taken over ``factor`` points per axis at the centres of the
    sub-pixels an area-downsampling by ``factor`` averaged, so a low-resolution image
    made by averaging ``factor x factor`` blocks is modelled exactly.

    With ``sampling="grid"`` a step renders the ``factor``-times finer grid of those
    sub-pixels once and averages its blocks: the same evaluations as every
    measurement's own points, in one render that a prior of the sub-pixels
    (:class:`TVRegularized`) reuses instead of rendering them again.

    Parameters
    ----------
    factor : int, default=4
        Sub-samples per axis of each measurement's pixel.
    pixel_size : float, sequence of float or None, default=None
        Size of a measurement's pixel along each axis, in coordinate units; None infers
        it from the spacing of the measurement coordinates (a grid).
    sampling : {"auto", "grid", "points"}, default="auto"
        How the network is evaluated (above). ``"points"`` evaluates each measurement's
        ``factor ** dims`` points, and a step may take a sample of the measurements;
        ``"auto"`` renders the grid when it fits in ``predict_batch_size`` points.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import SIREN
    >>> from skinr.inverse import AreaDownsample
    >>> from skinr.signals import to_coords
    >>> low = np.random.default_rng(0).random((8, 8))
    >>> X, y = to_coords(low, pixel_centers=True)
    >>> model = SIREN(width=16, depth=1, max_iter=5, operator=AreaDownsample(factor=4))
    >>> model.fit(X, y).render((32, 32)).shape
    (32, 32)
    >>> model.operator_.sampling_
    'grid'
    """

    def __init__(self, factor=4, pixel_size=None, sampling="auto"):
        self.factor = factor
        self.pixel_size = pixel_size
        self.sampling = sampling

    def resolve(self, X):
        if not isinstance(self.factor, Integral) or self.factor < 1:
            raise ValueError(f"AreaDownsample: factor must be a positive int; got {self.factor!r}.")
        return super().resolve(X)

    @property
    def quadrature_points(self):
        return self.factor**self.signal_dims

    def _offsets(self):
        k, dims = self.factor, self.signal_dims
        # Centres of the k sub-pixels along one axis, in units of the pixel.
        along = (np.arange(k) + 0.5) / k - 0.5
        mesh = np.stack(np.meshgrid(*[along] * dims, indexing="ij"), axis=-1).reshape(-1, dims)
        return mesh * self.spacing_, np.full(len(mesh), 1.0 / len(mesh))

    def _read_grid(self):
        return self.prior_grid()

    def _measure_render(self, image):
        # Each fine axis of n * factor sub-pixels splits into (n, factor); the means
        # are over every factor axis.
        blocks = [size for n in self.measurement_shape_ for size in (int(n), self.factor)]
        split = image.reshape(image.shape[0], *blocks)
        return split.mean(dim=tuple(range(2, split.ndim, 2)))

    def signal_grid(self):
        # The measurements' own grid, not the factor-times finer one: the estimator
        # sizes its frequencies and cells for what the data can tell apart.
        return self.measurement_shape_, self.box_

    def prior_grid(self):
        # The sub-pixels each mean averages: a prior on the measurements' own grid
        # would leave free everything super-resolution has to fill in.
        shape = tuple(int(n) * self.factor for n in self.measurement_shape_)
        return shape, self.box_


@declared
class Blur(_PixelOperator):
    """Convolution with a point-spread function: ``y(c) = sum_j psf[j] f(c - o_j)``.

    Measurements sit at pixel centres; ``psf`` is sampled on the same pixel spacing,
    centred on its middle element (so ``scipy.ndimage.convolve`` of an image with
    ``psf`` is what this operator computes on its interior). Near the border the
    network's own values beyond the image enter the sum, so no boundary condition is
    assumed.

    Neighbouring measurements read the same signal points, so with ``sampling="grid"``
    a step renders the network once on the measurements' grid widened by the psf
    (every point any measurement reads, each once) and convolves the render: a 9 x 9
    psf costs about one evaluation per measurement instead of 81, and a step can take
    every measurement. ``"points"`` evaluates each measurement's own ``psf.size``
    points; it also serves measurement coordinates off the fitted grid.

    Parameters
    ----------
    psf : array-like
        The point-spread function, one axis per signal dimension (odd sizes centre it
        on a pixel). Need not sum to one.
    pixel_size : float, sequence of float or None, default=None
        The measurement pixel along each axis; None infers it from the coordinates.
    sampling : {"auto", "grid", "points"}, default="auto"
        How the network is evaluated (above). ``"auto"`` renders the grid when the
        widened grid fits in ``predict_batch_size`` points and the signal has 1 to 3
        dimensions, and evaluates points otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> from skinr import HashGrid
    >>> from skinr.inverse import Blur
    >>> from skinr.signals import to_coords
    >>> psf = np.ones((3, 3)) / 9
    >>> blurred = ndimage.convolve(np.random.default_rng(0).random((16, 16)), psf)
    >>> X, y = to_coords(blurred, pixel_centers=True)
    >>> model = HashGrid(max_iter=5, operator=Blur(psf)).fit(X, y)
    >>> model.operator_.sampling_
    'grid'
    >>> model.render((16, 16)).shape
    (16, 16)
    """

    def __init__(self, psf, pixel_size=None, sampling="auto"):
        self.psf = psf
        self.pixel_size = pixel_size
        self.sampling = sampling

    def resolve(self, X):
        psf = np.asarray(self.psf, dtype=np.float64)
        if psf.ndim != X.shape[1]:
            raise ValueError(
                f"Blur: the psf has {psf.ndim} axes, but the measurements have "
                f"{X.shape[1]} coordinate dimensions."
            )
        if psf.size == 0 or not np.all(np.isfinite(psf)):
            raise ValueError("Blur: the psf must be non-empty and finite.")
        if self.sampling == "grid" and not self._griddable():
            raise ValueError(
                f"Blur: sampling='grid' convolves signals of 1 to {len(_CONVOLUTIONS)} "
                f"dimensions; these have {psf.ndim}. Use sampling='points'."
            )
        return super().resolve(X)

    def _griddable(self):
        return np.ndim(self.psf) <= len(_CONVOLUTIONS)

    @property
    def quadrature_points(self):
        return int(np.size(self.psf))

    def _read_grid(self):
        # The measurements' grid, psf.shape - 1 pixels wider along each axis (half on
        # each side), at pixel centres.
        psf_shape = np.asarray(np.shape(self.psf))
        margin = (psf_shape - 1) / 2 * self.spacing_
        shape = tuple(int(n) for n in np.asarray(self.measurement_shape_) + psf_shape - 1)
        return shape, self.box_ + np.stack([-margin, margin], axis=1)

    def _measure_render(self, image):
        # torch's "convolutions" correlate: flipping the psf makes them convolve, so
        # measurement i reads widened pixel i + k with weight psf[-1 - k].
        flipped = np.flip(np.asarray(self.psf, dtype=np.float64)).copy()
        kernel = torch.as_tensor(flipped, dtype=image.dtype, device=image.device)
        return _CONVOLUTIONS[kernel.ndim - 1](image[:, None], kernel[None, None])[:, 0]

    def _check_offsets(self):
        psf = np.asarray(self.psf)
        if any(p > n for p, n in zip(psf.shape, self.measurement_shape_, strict=True)):
            raise ValueError(
                f"Blur: the psf {psf.shape} is larger than the measured image "
                f"{self.measurement_shape_}; crop it or check its pixel spacing."
            )

    def _offsets(self):
        psf = np.asarray(self.psf, dtype=np.float64)
        index = np.stack(np.meshgrid(*map(np.arange, psf.shape), indexing="ij"), -1)
        centre = (np.asarray(psf.shape) - 1) / 2
        # Convolution: the kernel element at +o weighs the signal at -o.
        offsets = -(index.reshape(-1, psf.ndim) - centre) * self.spacing_
        return offsets, psf.ravel()

    @property
    def gain(self):
        return float(np.sum(self.psf)) or 1.0

    def signal_grid(self):
        return self.measurement_shape_, self.box_
