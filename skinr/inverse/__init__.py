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
from numbers import Real

import numpy as np
import torch

from .._core.operator import OPERATORS, Operator, QuadratureOperator, declared, render_on_grid
from .pixel import AreaDownsample, Blur
from .radon import Radon, radon_coords

__all__ = [
    "OPERATORS",
    "AreaDownsample",
    "Blur",
    "GridFunction",
    "Operator",
    "QuadratureOperator",
    "Radon",
    "TVRegularized",
    "TorchFunction",
    "radon_coords",
]


def _wrapped(name: str) -> property:
    """An attribute a wrapping operator reads from the operator it measures with."""
    return property(lambda self: getattr(self._measuring, name))


@declared
class TVRegularized(Operator):
    """An operator's measurements plus the total variation of the signal: a prior.

    Training minimises the measurements' mean squared error (``operator``'s, in the
    estimator's normalised units) plus ``weight`` times the mean isotropic total
    variation of the signal rendered at the pixel centres of the operator's
    :meth:`~skinr.inverse.Operator.prior_grid` (the image for ``Radon`` and ``Blur``,
    the ``factor``-times finer sub-pixels for ``AreaDownsample``: the prior decides what
    the measurements leave open), ``mean |grad f|`` with the values scaled to [-1, 1]
    (forward differences). A
    network alone fills what the measurements do not determine (the angles a CT scan
    did not take, the noise of a photograph) with whatever its frequencies favour;
    total variation favours piecewise-smooth signals with sharp edges (the prior of
    Chambolle's denoiser and of iterative CT reconstruction). ``fit``, ``predict`` and
    ``score`` are ``operator``'s: the penalty shapes the reconstruction only.

    Parameters
    ----------
    operator : Operator or None, default=None
        The measurement process; None measures the signal at the pixel centres
        themselves (denoising: fit the noisy image's pixels).
    weight : float, default=1e-4
        Weight of the total variation (0: ``operator`` alone). The default was chosen
        for CT, on two images: HashGrid from 100 projections at 256 x 256 gains 1.4 dB
        at 1e-4 on the Shepp-Logan phantom and 0.6 dB on ``ct_img_377``, where 1e-3
        gains 3.4 dB and loses 1.7; on a third slice that played no part in the
        choice (128 x 128) 1e-4 gains 1.1 dB (``docs/inverse.md``). Noisy measurements need far
        more: denoising noise of sigma 0.1 took 0.2; 4x super-resolution through
        ``AreaDownsample(4)`` took 3e-3 (HashGrid: +0.37 / +0.33 dB on camera and
        astronaut, +0.04 on chelsea). Validate it (``GridSearchCV`` over
        ``operator__weight`` scores held-out measurements), never on the signal you
        reconstruct.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import HashGrid
    >>> from skinr.inverse import Radon, TVRegularized, radon_coords
    >>> theta = np.linspace(0.0, 180.0, 8, endpoint=False)
    >>> X = radon_coords(theta, (16, 16))
    >>> sinogram = np.random.default_rng(0).random(len(X))
    >>> operator = TVRegularized(Radon(pixel_size=2 / 16))
    >>> model = HashGrid(max_iter=5, operator=operator).fit(X, sinogram)
    >>> model.render((16, 16)).shape
    (16, 16)
    """

    def __init__(self, operator=None, weight=1e-4):
        self.operator = operator
        self.weight = weight

    def resolve(self, X):
        if not isinstance(self.weight, Real) or not np.isfinite(self.weight) or self.weight < 0:
            raise ValueError(
                f"TVRegularized: weight must be a finite number >= 0; got {self.weight!r}."
            )
        inner = AreaDownsample(factor=1) if self.operator is None else self.operator
        if not isinstance(inner, Operator):
            raise TypeError(
                "TVRegularized: operator must be a skinr.inverse.Operator or None; got "
                f"{type(inner).__name__}."
            )
        resolved = type(self)(self.operator, self.weight)
        resolved.operator_ = inner.resolve(X)
        return resolved

    def within(self, budget):
        self.operator_ = self._measuring.within(budget)
        return self

    # Everything but the penalty is the resolved operator's.
    @property
    def _measuring(self) -> Operator:
        return getattr(self, "operator_", None) or self.operator or AreaDownsample(factor=1)

    measurement_dims = _wrapped("measurement_dims")
    signal_dims = _wrapped("signal_dims")
    gain = _wrapped("gain")
    points_per_measurement = _wrapped("points_per_measurement")
    quadrature_points = _wrapped("quadrature_points")
    shared_points = _wrapped("shared_points")

    @property
    def penalty_points(self):
        return math.prod(int(n) for n in self.prior_grid()[0]) if self.weight else 0

    def signal_grid(self):
        return self._measuring.signal_grid()

    def prior_grid(self):
        return self._measuring.prior_grid()

    def evaluation_points(self, X):
        return self._measuring.evaluation_points(X)

    def support(self, points):
        return self._measuring.support(points)

    def apply(self, field, X, generator=None):
        return self._measuring.apply(field, X, generator)

    def penalty(self, field, pixels, value_scale):
        if not self.weight:
            return None
        shape, _ = self.prior_grid()
        weight = float(self.weight)
        # Forward differences along axis a have one row fewer there; crop the others.
        crops = [
            (
                slice(None),
                *(slice(None) if b == a else slice(0, n - 1) for b, n in enumerate(shape)),
            )
            for a in range(len(shape))
        ]

        def total_variation():
            image = field(pixels).T.reshape(-1, *shape) / value_scale
            # Forward differences along every axis, on the pixels that have all of them;
            # the epsilon keeps the gradient finite where the image is flat.
            squared = sum(
                image.diff(dim=axis + 1)[crop].square() for axis, crop in enumerate(crops)
            )
            return weight * torch.sqrt(squared + 1e-8).mean()

        return total_variation


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
        measured = self.function(render_on_grid(field, *self.signal_grid(), X)).reshape(-1)
        index = X[:, 0].long()
        if index.numel() and int(index.max()) >= measured.numel():
            raise ValueError(
                f"GridFunction: measurement index {int(index.max())} is beyond the "
                f"{measured.numel()} entries the function returns."
            )
        return measured[index][:, None]
