"""Forward operators: fit the signal behind a measurement process.

With ``operator=...`` an estimator's network represents an unknown signal ``f`` and
training minimises the error of ``operator(f)`` against the measurements: the
low-resolution image of a super-resolution problem (:class:`AreaDownsample`), a blurred
image (:class:`Blur`), a CT sinogram (:class:`Radon`), or whatever a user's torch
function computes (:class:`TorchFunction`, :class:`GridFunction`). ``fit``, ``predict``
and ``score`` stay in the measurements' space, so cross-validation scores held-out
measurements; ``predict_signal`` and ``render`` give the reconstructed signal.

Every operator evaluates ``f`` at quadrature points of each measurement (an integral
becomes a weighted sum), so measurements are batched and streamed like samples of any
fit, on any device. Operators are declared data: a name and parameters, which
``clone``, pickle and :func:`skinr.save` keep. What a fit learns about the measurement
geometry (pixel sizes, the signal's grid) lives on the resolved copy the estimator
stores as ``operator_``; the parameter is never modified.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import Tensor

__all__ = [
    "OPERATORS",
    "AreaDownsample",
    "Blur",
    "GridFunction",
    "Operator",
    "QuadratureOperator",
    "Radon",
    "TorchFunction",
    "radon_coords",
]

#: ``field(points) -> values``: the signal at ``(n, signal_dims)`` points, in the
#: caller's coordinates and units, as an ``(n, n_outputs)`` tensor.
Field = Callable[[Tensor], Tensor]

#: Operators :func:`skinr.save` writes and :func:`skinr.load` rebuilds, by name.
OPERATORS: dict[str, type[Operator]] = {}


def _declared(cls):
    OPERATORS[cls.__name__] = cls
    return cls


class Operator(BaseEstimator, metaclass=ABCMeta):
    """A differentiable measurement process ``y = A f`` for ``operator=``.

    Subclasses store their parameters in ``__init__`` (scikit-learn's convention, so
    ``clone`` and ``get_params`` work), implement :meth:`signal_grid` and :meth:`apply`,
    and override :meth:`resolve` when the measurements fix something (pixel sizes).
    :class:`QuadratureOperator` implements ``apply`` from a quadrature rule.

    Attributes
    ----------
    measurement_dims : int or None
        Columns of the measurement coordinates ``X`` (None: any).
    signal_dims : int
        Dimensions of the signal's coordinates.
    """

    measurement_dims: int | None = None
    signal_dims: int = 2

    def resolve(self, X: np.ndarray) -> Operator:
        """A copy with everything that depends on the measurements ``X`` fixed.

        Raises ``ValueError`` (one line, before any training) when ``X`` does not fit
        this operator.
        """
        self._check_dims(X)
        return self

    @abstractmethod
    def signal_grid(self) -> tuple[tuple[int, ...], np.ndarray]:
        """The nominal grid of the signal behind the measurements: its shape and its
        box ``(signal_dims, 2)``. The estimator sizes its structure for this grid,
        maps the box to the network's [-1, 1], and renders it by default."""

    @property
    def gain(self) -> float:
        """A typical ratio of measurement to signal values (the weights' sum)."""
        return 1.0

    #: Signal evaluations behind one measurement.
    points_per_measurement: int = 1

    @property
    def quadrature_points(self) -> int:
        """Points each measurement reads (of the network, or of a grid it renders)."""
        return self.points_per_measurement

    #: Signal evaluations shared by all the measurements of one call (a grid the
    #: operator renders before measuring it); 0 when every evaluation is per measurement.
    shared_points: int = 0

    def evaluation_points(self, X: np.ndarray) -> np.ndarray:
        """The signal points ``apply`` evaluates for measurements ``X`` (their count
        is what a prediction costs; ``count_flops`` runs the network's count on them)."""
        n = len(X) * self.points_per_measurement + self.shared_points
        return np.zeros((n, self.signal_dims))

    @abstractmethod
    def apply(self, field: Field, X: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The measurements ``(n, n_outputs)`` at coordinates ``X`` of the signal ``field``.

        With a ``generator`` (during training) an integral may be estimated at random
        points; without one the result is deterministic.
        """

    def support(self, points: np.ndarray) -> np.ndarray | None:
        """Where the signal may be non-zero (a boolean mask of ``points``), or None
        when the operator assumes nothing. ``predict_signal`` is zero outside it."""
        return None

    def _check_dims(self, X: np.ndarray) -> None:
        if self.measurement_dims is not None and X.shape[1] != self.measurement_dims:
            raise ValueError(
                f"{type(self).__name__} takes measurement coordinates with "
                f"{self.measurement_dims} columns; X has {X.shape[1]}."
            )


class QuadratureOperator(Operator):
    """An operator whose measurements are weighted sums of the signal at points.

    Subclasses give the points and weights (:meth:`quadrature`); :meth:`apply` sums.
    """

    @abstractmethod
    def quadrature(self, X: Tensor, generator: torch.Generator | None = None):
        """Points ``(n, k, signal_dims)`` and weights ``(n, k)`` of each measurement.

        With a ``generator`` (during training) the points may be jittered, which makes
        the sum an unbiased estimate of the integral instead of one fixed rule.
        """

    def apply(self, field, X, generator=None):
        points, weights = self.quadrature(X, generator)
        n, k, d = points.shape
        values = field(points.reshape(n * k, d))
        return torch.einsum("nk,nkc->nc", weights, values.reshape(n, k, -1))

    def evaluation_points(self, X):
        points, _ = self.quadrature(torch.as_tensor(X, dtype=torch.float32))
        return points.reshape(-1, points.shape[-1]).numpy().astype(np.float64)


def _grid_spacing(X: np.ndarray, given, name: str) -> np.ndarray:
    """Per-axis spacing: ``given`` (a number or one per axis), else the smallest gap
    between distinct coordinates of ``X`` along each axis."""
    if given is not None:
        spacing = np.broadcast_to(np.asarray(given, dtype=np.float64), (X.shape[1],)).copy()
    else:
        spacing = np.empty(X.shape[1])
        for axis in range(X.shape[1]):
            gaps = np.diff(np.unique(X[:, axis]))
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
    offsets around it; the offsets and weights are the operator."""

    measurement_dims = None

    @abstractmethod
    def _offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """Offsets ``(k, dims)`` in the signal's units and weights ``(k,)``."""

    def resolve(self, X):
        resolved = type(self)(**self.get_params())
        resolved.signal_dims = X.shape[1]
        resolved.spacing_ = _grid_spacing(X, self.pixel_size, type(self).__name__)
        resolved.measurement_shape_, resolved.box_ = _pixel_box(X, resolved.spacing_)
        resolved._check_offsets()
        return resolved

    def _check_offsets(self) -> None:
        pass

    @property
    def points_per_measurement(self):
        return len(self._offsets()[1])

    def quadrature(self, X, generator=None):
        offsets, weights = self._offsets()
        offsets = torch.as_tensor(offsets, dtype=X.dtype, device=X.device)
        weights = torch.as_tensor(weights, dtype=X.dtype, device=X.device)
        points = X[:, None, :] + offsets[None]
        return points, weights.expand(X.shape[0], -1)


@_declared
class AreaDownsample(_PixelOperator):
    """Each measurement is the mean of the signal over its pixel's area.

    The operator of super-resolution: fit a low-resolution image at its pixel centres
    (``to_coords(low, pixel_centers=True)``) and render the signal at any finer grid.
    Each pixel's mean is taken over ``factor`` points per axis at the centres of the
    sub-pixels an area-downsampling by ``factor`` averaged, so a low-resolution image
    made by averaging ``factor x factor`` blocks is modelled exactly.

    Parameters
    ----------
    factor : int, default=4
        Sub-samples per axis of each measurement's pixel.
    pixel_size : float, sequence of float or None, default=None
        Size of a measurement's pixel along each axis, in coordinate units; None infers
        it from the spacing of the measurement coordinates (a grid).

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
    """

    def __init__(self, factor=4, pixel_size=None):
        self.factor = factor
        self.pixel_size = pixel_size

    def resolve(self, X):
        if not isinstance(self.factor, Integral) or self.factor < 1:
            raise ValueError(f"AreaDownsample: factor must be a positive int; got {self.factor!r}.")
        return super().resolve(X)

    def _offsets(self):
        k, dims = self.factor, self.signal_dims
        # Centres of the k sub-pixels along one axis, in units of the pixel.
        along = (np.arange(k) + 0.5) / k - 0.5
        mesh = np.stack(np.meshgrid(*[along] * dims, indexing="ij"), axis=-1).reshape(-1, dims)
        return mesh * self.spacing_, np.full(len(mesh), 1.0 / len(mesh))

    def signal_grid(self):
        # The measurements' own grid, not the factor-times finer one: the estimator
        # sizes its frequencies and cells for what the data can tell apart.
        return self.measurement_shape_, self.box_


@_declared
class Blur(_PixelOperator):
    """Convolution with a point-spread function: ``y(c) = sum_j psf[j] f(c - o_j)``.

    Measurements sit at pixel centres; ``psf`` is sampled on the same pixel spacing,
    centred on its middle element (so ``scipy.ndimage.convolve`` of an image with
    ``psf`` is what this operator computes on its interior). Near the border the
    network's own values beyond the image enter the sum, so no boundary condition is
    assumed.

    Parameters
    ----------
    psf : array-like
        The point-spread function, one axis per signal dimension (odd sizes centre it
        on a pixel). Need not sum to one.
    pixel_size : float, sequence of float or None, default=None
        The measurement pixel along each axis; None infers it from the coordinates.
    """

    def __init__(self, psf, pixel_size=None):
        self.psf = psf
        self.pixel_size = pixel_size

    def resolve(self, X):
        psf = np.asarray(self.psf, dtype=np.float64)
        if psf.ndim != X.shape[1]:
            raise ValueError(
                f"Blur: the psf has {psf.ndim} axes, but the measurements have "
                f"{X.shape[1]} coordinate dimensions."
            )
        if psf.size == 0 or not np.all(np.isfinite(psf)):
            raise ValueError("Blur: the psf must be non-empty and finite.")
        return super().resolve(X)

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


@_declared
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
        return int(np.prod(self.shape_)) if self.sampling == "grid" else 0

    def signal_grid(self):
        box = np.array([[-self.extent, self.extent]] * 2, dtype=np.float64)
        return self.shape_, box

    def apply(self, field, X, generator=None):
        if self.sampling == "line":
            return super().apply(field, X, generator)
        from .signals import grid

        shape, box = self.signal_grid()
        pixels = torch.as_tensor(
            grid(shape, bounds=box, pixel_centers=True), dtype=X.dtype, device=X.device
        )
        values = field(pixels)
        image = values.T.reshape(1, values.shape[1], *shape)
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
        from .signals import grid

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


class TorchFunction(Operator):
    """A user's own measurement process: ``function(field, X) -> measurements``.

    ``field`` maps signal points ``(n, signal_dims)`` to values ``(n, n_outputs)``
    (both torch tensors, in the caller's coordinates and units); ``X`` is a batch of
    measurement coordinates as a float32 tensor. ``function`` must be differentiable
    in torch. It is not declared data: pickle keeps it (when ``function`` is
    importable), :func:`skinr.save` refuses it.

    Parameters
    ----------
    function : callable
        ``function(field, X) -> Tensor (n, n_outputs)``.
    signal_shape : tuple of int
        The nominal grid of the signal (sizes the estimator's structure, and the
        default render).
    bounds : array-like of shape (signal_dims, 2) or None, default=None
        The signal's box; None is [-1, 1] per axis.
    points_per_measurement : int, default=1
        Signal evaluations per measurement: with ``batch_size=None`` a training step
        takes as many measurements as keep ``points * batch <= predict_batch_size``.
    """

    def __init__(self, function, signal_shape, bounds=None, points_per_measurement=1):
        self.function = function
        self.signal_shape = signal_shape
        self.bounds = bounds
        self.points_per_measurement = points_per_measurement

    @property
    def signal_dims(self):
        return len(self.signal_shape)

    def signal_grid(self):
        dims = len(self.signal_shape)
        box = np.array([[-1.0, 1.0]] * dims) if self.bounds is None else np.asarray(self.bounds)
        return tuple(int(n) for n in self.signal_shape), np.asarray(box, dtype=np.float64)

    def apply(self, field, X, generator=None):
        return self.function(field, X)


class GridFunction(TorchFunction):
    """A grid-based operator: the signal rendered on a grid, then ``function(image)``.

    For operators written on images, such as deepinv's physics: each training step
    renders the signal at the pixel centres of ``signal_shape`` (inside ``bounds``)
    as a ``(n_outputs, *signal_shape)`` tensor and applies ``function`` to it; the
    measurements are the entries of the result, flattened, and ``X`` holds their
    indices (one column: ``np.arange(n)[:, None]`` for all). The whole grid is
    rendered every step, so this suits images that fit in memory.

    Parameters
    ----------
    function : callable
        ``function(image) -> Tensor``, differentiable; e.g.
        ``lambda image: physics.A(image[None])[0]`` for a deepinv ``physics``.
    signal_shape : tuple of int
        The rendered grid.
    bounds : array-like of shape (len(signal_shape), 2) or None, default=None
        The grid's box; None is [-1, 1] per axis.
    """

    measurement_dims = 1

    def __init__(self, function, signal_shape, bounds=None):
        super().__init__(function, signal_shape, bounds, points_per_measurement=1)

    def get_params(self, deep=True):
        return {"function": self.function, "signal_shape": self.signal_shape, "bounds": self.bounds}

    def resolve(self, X):
        self._check_dims(X)
        index = X[:, 0]
        if np.any(index < 0) or np.any(index != np.rint(index)):
            raise ValueError("GridFunction: X holds measurement indices (integers >= 0).")
        return self

    def apply(self, field, X, generator=None):
        from .signals import grid

        shape, box = self.signal_grid()
        points = torch.as_tensor(
            grid(shape, bounds=box, pixel_centers=True), dtype=X.dtype, device=X.device
        )
        values = field(points)
        image = values.T.reshape(values.shape[1], *shape)
        measured = self.function(image).reshape(-1)
        index = X[:, 0].long()
        if index.numel() and int(index.max()) >= measured.numel():
            raise ValueError(
                f"GridFunction: measurement index {int(index.max())} is beyond the "
                f"{measured.numel()} entries the function returns."
            )
        return measured[index][:, None]
