"""The operator contract behind ``operator=``: what every measurement process declares.

:class:`Operator` and :class:`QuadratureOperator` (re-exported from
:mod:`skinr.inverse`), the registry of declared operators that :func:`skinr.save` and
:func:`skinr.load` use, and the grid render that grid-based operators share.
"""

from __future__ import annotations

import functools
from abc import ABCMeta, abstractmethod
from collections.abc import Callable

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import Tensor

__all__ = ["OPERATORS", "Field", "Operator", "QuadratureOperator", "declared", "render_on_grid"]

#: ``field(points) -> values``: the signal at ``(n, signal_dims)`` points, in the
#: caller's coordinates and units, as an ``(n, n_outputs)`` tensor.
Field = Callable[[Tensor], Tensor]

#: Operators :func:`skinr.save` writes and :func:`skinr.load` rebuilds, by name.
OPERATORS: dict[str, type[Operator]] = {}


def declared(cls):
    """Register ``cls`` as declared data: a name :func:`skinr.load` may rebuild."""
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

    def within(self, budget: int) -> Operator:
        """This resolved operator, evaluating at most ``budget`` signal points per step
        where it has a choice (``Blur(sampling="auto")``); itself by default.

        Called once per fit after :meth:`resolve`, with ``predict_batch_size``.
        """
        return self

    @abstractmethod
    def signal_grid(self) -> tuple[tuple[int, ...], np.ndarray]:
        """The nominal grid of the signal behind the measurements: its shape and its
        box ``(signal_dims, 2)``. The estimator sizes its structure for this grid,
        maps the box to the network's [-1, 1], and renders it by default."""

    def prior_grid(self) -> tuple[tuple[int, ...], np.ndarray]:
        """The grid a prior of the signal (:class:`~skinr.inverse.TVRegularized`) is
        measured on: the finest grid the measurements' points resolve, its shape and
        box. :meth:`signal_grid` by default; an operator that reads the signal between
        the pixels of that grid (``AreaDownsample``'s sub-pixels) returns that finer one,
        where the prior decides what the measurements do not."""
        return self.signal_grid()

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

    #: Signal points a :meth:`penalty` renders per training step (0: no penalty).
    penalty_points: int = 0

    def penalty(
        self, field: Field, pixels: Tensor, value_scale: float
    ) -> Callable[[], Tensor] | None:
        """A regulariser of the signal added to every training step's loss, set up once
        per fit: ``penalty() -> scalar Tensor`` (None: the measurements alone).

        ``pixels`` are the pixel centres of :meth:`prior_grid`, in order, on the fit's
        device (the tensor :func:`render_on_grid` evaluates, so that ``field(pixels)``
        reuses a render of that grid the step's measurements made); ``value_scale``
        is the signal's value range over two: a penalty in the network's normalised
        units divides the field by it.
        """
        return None

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


@functools.lru_cache(maxsize=8)
def _pixel_centres(shape: tuple[int, ...], box: tuple, device: torch.device, dtype) -> Tensor:
    # Built once per grid and device, not at every training step that renders it.
    from ..signals import grid

    return torch.as_tensor(
        grid(shape, bounds=np.asarray(box), pixel_centers=True), dtype=dtype, device=device
    )


def pixel_centres(
    shape: tuple[int, ...], box: np.ndarray, device: torch.device, dtype=torch.float32
) -> Tensor:
    """The pixel centres of ``shape`` inside ``box`` on ``device``: one tensor per grid,
    device and dtype, so that a step's renders of one grid can be shared."""
    box_key = tuple(map(tuple, np.asarray(box, dtype=np.float64).tolist()))
    device = torch.device(device)
    if device.type != "cpu" and device.index is None:  # "cuda" and "cuda:0": one key
        device = torch.empty(0, device=device).device
    return _pixel_centres(tuple(int(n) for n in shape), box_key, device, dtype)


def render_on_grid(field: Field, shape: tuple[int, ...], box: np.ndarray, like: Tensor) -> Tensor:
    """The signal at the pixel centres of ``shape`` inside ``box``, as an image
    ``(n_outputs, *shape)`` (on ``like``'s device, in its dtype)."""
    values = field(pixel_centres(shape, box, like.device, like.dtype))
    return values.T.reshape(values.shape[1], *shape)
