"""The two routes of a fit: straight to the samples, or through an operator.

The fit sequence (:mod:`skinr._core.fit`) reads straight through; what differs with
``operator=...`` is asked of the route: :class:`DirectFit` compares the network with
the samples, :class:`MeasuredFit` with measurements of it. Through an operator the
network is the signal and the data are measurements of it: the architecture still
sees its signal — the operator's nominal grid — for its structure, its domain and
whatever its objective finds out about the data (cells without points, fast paths),
while the loss compares measurements.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .domain import domain_map, normalise, normalise_values, value_frame
from .objective import FitSignal, Objective
from .operator import Operator, pixel_centres
from .sample_layout import sample_footprint

__all__ = [
    "DirectFit",
    "MeasuredFit",
    "fit_route",
    "identity_domain",
    "measure",
    "resolve_operator",
]


def resolve_operator(operator, X: np.ndarray, budget: int) -> Operator | None:
    """The ``operator`` parameter resolved for the measurements ``X`` (None: plain fit)."""
    if operator is None:
        return None
    if not isinstance(operator, Operator):
        raise TypeError(
            f"operator must be a skinr.inverse.Operator (Radon, AreaDownsample, Blur, or "
            f"TorchFunction wrapping your own function); got {type(operator).__name__}."
        )
    resolved = operator.resolve(X).within(budget)
    check_points(resolved, budget)
    return resolved


def fit_route(operator: Operator | None) -> DirectFit | MeasuredFit:
    """The route of a fit with the resolved ``operator`` (None: straight to the samples)."""
    return DirectFit() if operator is None else MeasuredFit(operator)


def field(
    forward: Callable[[Tensor], Tensor], domain: np.ndarray, offset: float, scale: float
) -> Callable[[Tensor], Tensor]:
    """The signal at points in the caller's frame and units, through ``forward``."""
    centre, half = (torch.as_tensor(v, dtype=torch.float32) for v in domain_map(domain))
    cache = {}

    def evaluate(points: Tensor) -> Tensor:
        key = points.device
        if key not in cache:
            cache[key] = (centre.to(key), half.to(key))
        c, h = cache[key]
        return forward((points - c) / h) * scale + offset

    return evaluate


class DirectFit:
    """The network compared with the samples themselves: each method answers as
    :class:`MeasuredFit`'s does, for a fit without an operator."""

    operator = None
    # The whole fit may be compiled: nothing outside the graph in a step.
    compilable = True

    def signal_coords(self, X: np.ndarray) -> np.ndarray:
        """Where the network represents the signal: at the samples."""
        return X

    def value_frame(self, y_offset: float, y_scale: float) -> tuple[float, float]:
        """The network's output frame: the samples'."""
        return y_offset, y_scale

    def measurement_frame(self, y2d: np.ndarray, frame) -> tuple[float, float]:
        """Offset and scale the loss compares in: the network's own."""
        return frame.y_offset, frame.y_scale

    def footprint(self, X: np.ndarray, domain: np.ndarray, estimator) -> np.ndarray:
        """The area the samples cover (the domain already, when it was laid on it)."""
        if estimator._domain_is_footprint and estimator.domain is None:
            return domain  # the same computation, done already
        return sample_footprint(X, chunk_size=estimator.predict_batch_size)

    def batch_size(self, batch_size: int | None, n_samples: int, budget: int) -> int | None:
        return batch_size

    def data_domain(self, domain: np.ndarray) -> np.ndarray:
        """The box the training coordinates are normalised by."""
        return domain

    def objective(self, architecture, signal, frame, measurement_frame, generator, seed, forward):
        """The architecture's own objective over the samples (the rest is
        :meth:`MeasuredFit.objective`'s, unused here)."""
        return architecture(signal, generator)

    def held_out(self, forward, frame, X_held, chunk: int, measurement_frame, device):
        """The network at held-out samples, in the loss's frame."""
        coords = torch.as_tensor(normalise(X_held, frame.domain), device=device)

        def evaluate() -> Tensor:
            return torch.cat([forward(part) for part in coords.split(chunk)])

        return evaluate


def check_points(operator: Operator, budget: int) -> None:
    """What one measurement and one step evaluate must fit in ``budget`` points
    (``predict_batch_size``): what a step or a prediction allocates is bounded by it."""
    name = type(operator).__name__
    for count, what, low in (
        (operator.points_per_measurement, "signal points per measurement", 1),
        (operator.quadrature_points, "quadrature points per measurement", 1),
        (operator.shared_points, "signal points per step", 0),
        (operator.penalty_points, "signal points per step in its penalty", 0),
    ):
        if not isinstance(count, int | np.integer) or not low <= count <= budget:
            raise ValueError(
                f"{name} evaluates {count!r} {what}; at most predict_batch_size={budget} "
                "fit in one step (fewer points, or a larger predict_batch_size)."
            )


class MeasuredFit:
    """What one fit through ``operator`` needs: the signal's grid and frame, the field.

    Parameters
    ----------
    operator : Operator
        Resolved for the measurements.
    """

    # An operator's quadrature (jittered, in Python) is not compiled.
    compilable = False

    def __init__(self, operator: Operator) -> None:
        self.operator = operator
        from ..signals import grid

        self.shape, self.box = operator.signal_grid()
        self.grid_coords = grid(self.shape, bounds=self.box, pixel_centers=True)

    def signal_coords(self, X: np.ndarray) -> np.ndarray:
        """Where the network represents the signal: the operator's nominal grid."""
        return self.grid_coords

    def measurement_frame(self, y2d: np.ndarray, frame) -> tuple[float, float]:
        """Offset and scale of the measurements, which the loss compares in [-1, 1]."""
        offset, scale, _ = value_frame(y2d)
        return offset, scale

    def footprint(self, X: np.ndarray, domain: np.ndarray, estimator) -> np.ndarray:
        """The operator's signal box."""
        return self.box

    def data_domain(self, domain: np.ndarray) -> np.ndarray:
        """Measurement coordinates go raw."""
        return identity_domain(domain.shape[0])

    def held_out(self, forward, frame, X_held, chunk: int, measurement_frame, device):
        """The measured network at held-out measurements, in the loss's frame."""
        signal = field(forward, frame.domain, frame.y_offset, frame.y_scale)

        def evaluate() -> Tensor:
            values = measure(self.operator, signal, X_held, chunk, device)
            return torch.as_tensor(
                normalise_values(values, *measurement_frame), dtype=torch.float32, device=device
            )

        return evaluate

    def value_frame(self, y_offset: float, y_scale: float) -> tuple[float, float]:
        """The network's output frame for the signal: the measurements' over the gain."""
        gain = self.operator.gain
        return y_offset / gain, y_scale / abs(gain)

    def batch_size(self, batch_size: int | None, n_measurements: int, budget: int) -> int | None:
        """Measurements per step: ``batch_size``, or as many as keep the signal points
        one step evaluates within ``budget`` (``predict_batch_size``)."""
        if batch_size is not None:
            return batch_size
        per_step = max(1, budget // max(1, self.operator.points_per_measurement))
        return None if per_step >= n_measurements else per_step

    def objective(
        self,
        architecture: Callable[[FitSignal, torch.Generator], Objective],
        signal: FitSignal,
        frame,
        measurement_frame: tuple[float, float],
        generator: torch.Generator,
        seed,
        forward: Callable[[Tensor], Tensor],
    ) -> Objective:
        """The mean squared error of the measured field over ``signal``'s batches, with
        the ``fitted``, ``frozen`` and ``penalty`` of the architecture's own objective
        (over the operator's nominal grid), plus the operator's penalty of the signal
        (a prior such as total variation). ``seed`` seeds the quadrature's jitter."""
        from .validation import make_generator

        nominal = self.nominal_signal(signal.y2d.shape[1], frame.domain, signal.device)
        architecture = architecture(nominal, generator)
        jitter = make_generator(seed)
        offset, scale = measurement_frame
        operator = self.operator

        render = _RenderedOnce(field(forward, frame.domain, frame.y_offset, frame.y_scale))

        def measured(coords: Tensor) -> Tensor:
            render.forget()
            return (operator.apply(render, coords, jitter) - offset) / scale

        penalty = architecture.penalty
        pixels = pixel_centres(*operator.prior_grid(), signal.device)
        prior = operator.penalty(render.reusing, pixels, scale / abs(operator.gain))
        if prior is not None:
            penalty = prior if penalty is None else _summed(penalty, prior)
        return signal.objective(
            measured,
            generator,
            fitted=architecture.fitted,
            frozen=architecture.frozen,
            penalty=penalty,
        )

    def nominal_signal(self, n_outputs: int, domain: np.ndarray, device) -> FitSignal:
        """The operator's nominal grid as a signal, for the architecture's objective."""
        values = np.zeros((len(self.grid_coords), n_outputs), dtype=np.float32)
        return FitSignal(self.grid_coords, values, domain, (0.0, 1.0), device)


class _RenderedOnce:
    """The field, handing its last evaluation of the grid's pixels to the penalty.

    A step whose measurements render the whole grid (``Radon(sampling="grid")``,
    ``GridFunction``) and whose penalty renders it again (``TVRegularized``) evaluates
    the network there once: the loss adds the two, so one graph serves both. What
    the measurements evaluated is kept until the penalty takes it or the next
    measurement starts, never across steps.
    """

    def __init__(self, field: Callable[[Tensor], Tensor]) -> None:
        self.field = field
        self.last: tuple[Tensor, Tensor] | None = None

    def __call__(self, points: Tensor) -> Tensor:
        values = self.field(points)
        self.last = (points, values)
        return values

    def forget(self) -> None:
        self.last = None

    def reusing(self, points: Tensor) -> Tensor:
        last, self.last = self.last, None
        if last is not None and last[0] is points:
            return last[1]
        return self.field(points)


def _summed(first: Callable[[], Tensor], second: Callable[[], Tensor]) -> Callable[[], Tensor]:
    return lambda: first() + second()


def measure(operator: Operator, field, X: np.ndarray, chunk: int, device) -> np.ndarray:
    """``operator(field)`` at measurement coordinates ``X``, chunk by chunk (no jitter)."""
    per_chunk = max(1, chunk // max(1, operator.points_per_measurement))
    parts = []
    for start in range(0, len(X), per_chunk):
        coords = torch.as_tensor(X[start : start + per_chunk], dtype=torch.float32, device=device)
        parts.append(operator.apply(field, coords).double().cpu().numpy())
    return np.concatenate(parts) if parts else np.empty((0, 1))


def identity_domain(n_dims: int) -> np.ndarray:
    """The box that normalising leaves unchanged: measurement coordinates go raw."""
    return np.array([[-1.0, 1.0]] * n_dims)
