"""The fit sequence every estimator runs, behind ``BaseINR.fit``.

A fit validates the data, resolves an operator, builds the module and the value frame
(or takes the fitted ones on a warm start), asks the architecture for its objective,
runs it through ``BaseINR._run`` (the training loop, with checkpoints and
acceleration), and only then assigns the fitted attributes. :class:`FitSequence` holds
those steps; :class:`skinr.base.BaseINR` inherits them with the public contract.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ._checkpoint import check_checkpoint_folder
from ._domain import covering_box, fit_domain, normalise, normalise_values
from ._measured import MeasuredFit, identity_domain, measure, resolve_operator
from ._objective import FitSignal, Objective
from ._samples import sample_footprint, samples_along_axes
from ._sampling import validation_split
from ._training import HeldOutMonitor, joined_history
from ._validation import (
    check_structure_memory,
    check_training_data,
    make_generator,
    resolve_device,
)
from .parallel import torch_threads

__all__ = ["DEFAULT_PATIENCE", "FitSequence", "value_frame"]

# Held-out scorings without improvement that stop an early_stopping fit (scikit-learn's
# MLP default) when n_iter_no_change is None.
DEFAULT_PATIENCE = 10


class FitSequence:
    """The steps of one fit, for :class:`skinr.base.BaseINR` (which supplies the
    parameters, the architecture's hooks and ``_run``)."""

    def _fit(self, X, y, make_objective: Callable[..., Objective]):
        """Fit with the objective ``make_objective(module, signal, generator)`` builds.

        ``fit`` passes the architecture's own; a fitted model's editing methods (e.g.
        :meth:`LocalGlobalSIREN.extend`) pass another. A failed fit leaves the
        estimator as it was: unfitted, or its previous fit.
        """
        before = dict(vars(self))
        try:
            with torch_threads():
                return self._train(X, y, make_objective)
        except Exception:
            vars(self).clear()
            vars(self).update(before)
            raise

    def _train(self, X, y, make_objective):
        started = time.perf_counter()
        warm = self.warm_start and hasattr(self, "module_")
        device = resolve_device(self.device)
        check_checkpoint_folder(self.checkpoint_path)
        X, y = check_training_data(self, X, y, reset=not warm)
        y2d = y.reshape(len(y), -1)
        operator = resolve_operator(self.operator, X, self.predict_batch_size)
        measured = None if operator is None else MeasuredFit(operator)
        # What the network represents: the samples, or the signal behind the measurements.
        signal_X = X if measured is None else measured.signal_coords
        fit_rows, held_out_rows = None, None
        if self.early_stopping:
            fit_rows, held_out_rows = validation_split(
                len(X), self.validation_fraction, self.random_state
            )
        generator = make_generator(self.random_state)
        module, frame = self._initial_state(signal_X, y2d, warm, device, generator, measured)
        footprint = self._footprint(signal_X, frame[0], warm, measured)
        X_fit, y_fit = (X, y2d) if fit_rows is None else (X[fit_rows], y2d[fit_rows])
        measurement_frame = self._measurement_frame(y2d, frame, measured)
        signal, compiled = self._signal(X_fit, y_fit, frame, device, measured, measurement_frame)
        if measured is None:
            objective = make_objective(module, signal, generator)
        else:
            nominal = measured.nominal_signal(y2d.shape[1], frame[0], device)
            objective = measured.objective(
                make_objective(module, nominal, generator),
                signal,
                self._field(module, frame),
                measurement_frame,
                generator,
                make_generator(self.random_state),
            )
        if any(not name.endswith("_") or name.startswith("_") for name in objective.fitted):
            raise TypeError(f"Fitted attributes end in '_': {sorted(objective.fitted)}")
        monitor = None
        if held_out_rows is not None:
            monitor = self._held_out_monitor(
                module, X[held_out_rows], y2d[held_out_rows], frame, operator, measurement_frame
            )
        result = self._run(
            module,
            objective,
            X,
            y,
            device,
            compiled and not signal.streamed,
            measurement_frame,
            frame[3],
            monitor,
        )
        if monitor is not None:
            monitor.restore()
        self._store(
            module, frame, footprint, device, compiled, y, warm, result, monitor, measurement_frame
        )
        self.operator_ = operator
        self.grid_shape_ = tuple(samples_along_axes(signal_X, self.predict_batch_size))
        for name, value in objective.fitted.items():
            setattr(self, name, value)
        # The architecture's last step over the trained weights (e.g. a codec quantises
        # them), inside the rollback: if it fails, the fit leaves nothing behind.
        self._complete_fit()
        self.fit_time_ = time.perf_counter() - started
        if result.interrupted:
            # The weights learned so far are kept (and checkpointed); the interrupt
            # goes on, so that a script, fit_many or a search stops instead of taking
            # a half-trained model for a finished one.
            raise KeyboardInterrupt
        return self

    @staticmethod
    def _measurement_frame(y2d, frame, measured) -> tuple[float, float]:
        """Offset and scale of the measurements, which the loss compares in [-1, 1]:
        the network's own frame without an operator."""
        if measured is None:
            return frame[1], frame[2]
        offset, scale, _ = value_frame(y2d)
        return offset, scale

    def _field(self, module, frame):
        """The network as a signal in the caller's coordinates and units."""
        domain, y_offset, y_scale, _ = frame
        return MeasuredFit.field(
            lambda coords: self._forward(module, coords), domain, y_offset, y_scale
        )

    def _signal(
        self, X_fit, y_fit, frame, device, measured, measurement_frame
    ) -> tuple[FitSignal, bool]:
        """The training signal (samples or measurements), held or streamed, and
        whether the fit compiles."""
        batch_size, domain = self.batch_size, frame[0]
        if measured is not None:
            batch_size = measured.batch_size(batch_size, len(X_fit), self.predict_batch_size)
            domain = identity_domain(X_fit.shape[1])
        streamed = self._streams_batches and (batch_size is not None and batch_size < len(X_fit))
        # An operator's quadrature (jittered, in Python) is not compiled.
        compiled = measured is None and self._compiles(device, streamed)
        signal = FitSignal(
            X_fit,
            y_fit,
            domain,
            measurement_frame,
            device,
            batch_size=batch_size,
            streamed=streamed,
            chunk_size=self.predict_batch_size,
            compile_network=compiled and streamed,
        )
        return signal, compiled

    def _store(
        self, module, frame, footprint, device, compiled, y, warm, result, monitor, measurement
    ):
        """Assign the fitted attributes of a fit that succeeded."""
        domain, y_offset, y_scale, data_range = frame
        self.module_ = module.eval()
        self.device_ = str(device)
        self.compiled_ = compiled
        self.domain_ = domain
        self.footprint_ = footprint
        self.y_offset_, self.y_scale_, self.data_range_ = y_offset, y_scale, data_range
        self.y_ndim_ = y.ndim
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        self.n_params_ = sum(p.numel() for p in module.parameters() if p.requires_grad)
        previous = list(self.loss_curve_) if warm else []
        previous_steps = self.n_iter_ if warm else 0
        history = self.history_ if warm else None
        resumed = result.resumed_steps
        if warm and resumed and previous[-resumed:] == result.loss_curve[:resumed]:
            # This fit resumes an interrupted warm-started one, which recorded the
            # checkpoint's steps already: count them once.
            previous, previous_steps = previous[:-resumed], previous_steps - resumed
            history = {key: values[:-resumed] for key, values in history.items()}
        self.loss_curve_ = previous + result.loss_curve
        self.n_iter_ = previous_steps + result.n_iter
        self.best_loss_ = min(self.loss_curve_, default=math.inf)
        self.stopped_early_ = result.stopped_early
        self.history_ = joined_history(history, result)
        self.validation_scores_ = self.best_validation_score_ = None
        if monitor is not None:
            peak = self.data_range or data_range
            self.validation_scores_ = [
                10 * math.log10(peak**2 / max(error * measurement[1] ** 2, 1e-30))
                for error in monitor.errors
            ]
            self.best_validation_score_ = max(self.validation_scores_, default=None)

    def _held_out_monitor(
        self, module, X_held, y_held, frame, operator, measurement
    ) -> HeldOutMonitor:
        """Scores the module on the held-out samples (or measurements) every
        ``validation_interval`` steps."""
        device = next(iter(module.state_dict().values())).device
        values = torch.as_tensor(
            normalise_values(y_held, *measurement), dtype=torch.float32, device=device
        )
        if operator is None:
            coords = torch.as_tensor(normalise(X_held, frame[0]), device=device)

            def evaluate() -> Tensor:
                chunks = coords.split(self.predict_batch_size)
                return torch.cat([self._forward(module, chunk) for chunk in chunks])

        else:
            field = self._field(module, frame)

            def evaluate() -> Tensor:
                measured = measure(operator, field, X_held, self.predict_batch_size, device)
                return torch.as_tensor(
                    normalise_values(measured, *measurement), dtype=torch.float32, device=device
                )

        return HeldOutMonitor(
            module,
            evaluate,
            values,
            every=self.validation_interval,
            patience=self.n_iter_no_change or DEFAULT_PATIENCE,
            tol=self.tol,
        )

    def _footprint(self, X, domain, warm, measured=None) -> np.ndarray:
        """The area the fit covers: the samples' footprint (the operator's signal box),
        grown to the ``domain`` the user declared and, on a warm start, to the previous
        fits' area."""
        if measured is not None:
            footprint = measured.box
        elif self._domain_is_footprint and self.domain is None:
            footprint = domain  # the same computation, done already
        else:
            footprint = sample_footprint(X, chunk_size=self.predict_batch_size)
        declared = domain if self.domain is not None else None
        return covering_box(footprint, declared, self.footprint_ if warm else None)

    def _initial_state(
        self, X, y2d, warm, device, generator, measured=None
    ) -> tuple[nn.Module, tuple]:
        """The module to train and the fit's frame ``(domain, y_offset, y_scale,
        data_range)``: the fitted ones on a warm start, else fresh ones for the data."""
        if warm:
            if y2d.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"warm_start=True: y has {y2d.shape[1]} outputs, but the fitted model "
                    f"has {self.n_outputs_}; fit a new estimator or set warm_start=False."
                )
            frame = (self.domain_, self.y_offset_, self.y_scale_, self.data_range_)
            return copy.deepcopy(self.module_).to(device), frame
        domain = fit_domain(
            X, self.domain, footprint=self._domain_is_footprint, chunk_size=self.predict_batch_size
        )
        y_offset, y_scale, data_range = value_frame(y2d)
        if measured is not None:
            y_offset, y_scale = measured.value_frame(y_offset, y_scale)
        # Assigned before the module is built, which reads them; a failed fit undoes it.
        vars(self).update(self._structure(X, y2d.shape[1]))
        check_structure_memory(self, X.shape[1], y2d.shape[1], len(X), device)
        module = self._build_module(X.shape[1], y2d.shape[1], generator).to(device)
        return module, (domain, y_offset, y_scale, data_range)


def value_frame(y2d: np.ndarray) -> tuple[float, float, float]:
    """Offset and scale mapping ``y`` to [-1, 1], and its range (1.0 when constant)."""
    y_min, y_max = float(y2d.min()), float(y2d.max())
    if not np.isfinite(y_max - y_min):
        raise ValueError(
            f"y spans [{y_min:.3g}, {y_max:.3g}], a range that overflows float64; rescale y."
        )
    data_range = y_max - y_min if y_max > y_min else 1.0
    return (y_max + y_min) / 2, data_range / 2, data_range
