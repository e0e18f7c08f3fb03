"""The fit sequence every estimator runs, behind ``BaseINR.fit``.

A fit validates the data, resolves an operator, builds the module and the value frame
(or takes the fitted ones on a warm start), asks the architecture for its objective,
runs it through ``BaseINR._run`` (the training loop, with checkpoints and
acceleration), and only then assigns the fitted attributes. :class:`FitSequence` holds
those steps; :class:`skinr.base.BaseINR` inherits them with the public contract.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .acceleration import accelerate, matmul_precision, recycled_memory
from .batches import validation_split
from .checkpoint import check_checkpoint_folder, checkpointing
from .domain import covering_box, fit_domain, normalise_values, value_frame
from .loop import HeldOutMonitor, joined_history, train
from .network import build_network, check_structure_memory
from .objective import FitSignal, Objective
from .routes import fit_route, resolve_operator
from .sample_layout import samples_along_axes
from .threads import torch_threads
from .validation import (
    check_training_data,
    make_generator,
    resolve_device,
)

__all__ = ["DEFAULT_PATIENCE", "FitSequence", "ValueFrame"]

# Held-out scorings without improvement that stop an early_stopping fit (scikit-learn's
# MLP default) when n_iter_no_change is None.
DEFAULT_PATIENCE = 10


@contextlib.contextmanager
def _out_of_memory(estimator, device):
    """A device running out of memory mid-fit, as one line that says what to lower
    (torch's message is several lines of allocator statistics)."""
    try:
        yield
    except torch.OutOfMemoryError:
        raise MemoryError(
            f"{type(estimator).__name__} ran out of {device} memory while training; lower "
            "batch_size (a streamed fit), the structure, or use precision='bf16'."
        ) from None


class ValueFrame(NamedTuple):
    """Where a fit's network lives: ``domain`` (the coordinate box mapped to [-1, 1]),
    ``y_offset`` and ``y_scale`` (mapping its outputs back to the caller's units) and
    ``data_range`` (the peak of its PSNR)."""

    domain: np.ndarray
    y_offset: float
    y_scale: float
    data_range: float


class FitSequence:
    """The steps of one fit, for :class:`skinr.base.BaseINR` (which supplies the
    parameters and the architecture's hooks)."""

    #: The loop a fit runs (:func:`skinr._core.loop.train`, or a callable taking the
    #: same arguments and returning its ``TrainingResult``): the seam to watch or
    #: replace training. Tests and benchmarks set it on an estimator, or on a class
    #: for every fit (e.g. pytest's ``monkeypatch.setattr(BaseINR, "_training_loop",
    #: staticmethod(spy))``); a wrapper that passes its own ``progress`` callback
    #: sees every step of a fit of at most 200 steps.
    _training_loop = staticmethod(train)

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
        route = fit_route(resolve_operator(self.operator, X, self.predict_batch_size))
        # What the network represents: the samples, or the signal behind the measurements.
        signal_X = route.signal_coords(X)
        fit_rows, held_out_rows = None, None
        if self.early_stopping:
            fit_rows, held_out_rows = validation_split(
                len(X), self.validation_fraction, self.random_state
            )
        generator = make_generator(self.random_state)
        module, frame = self._initial_state(signal_X, y2d, warm, device, generator, route)
        footprint = self._footprint(signal_X, frame.domain, warm, route)
        X_fit, y_fit = (X, y2d) if fit_rows is None else (X[fit_rows], y2d[fit_rows])
        measurement_frame = route.measurement_frame(y2d, frame)
        signal, compiled = self._signal(X_fit, y_fit, frame, device, route, measurement_frame)
        objective = self._route_objective(
            route,
            make_objective,
            module,
            signal,
            frame,
            measurement_frame,
            generator,
            self.random_state,
        )
        if any(not name.endswith("_") or name.startswith("_") for name in objective.fitted):
            raise TypeError(f"Fitted attributes end in '_': {sorted(objective.fitted)}")
        monitor = None
        if held_out_rows is not None:
            monitor = self._held_out_monitor(
                module, X[held_out_rows], y2d[held_out_rows], frame, route, measurement_frame
            )
        result = self._run(
            module,
            objective,
            X,
            y,
            device,
            compiled and not signal.streamed,
            measurement_frame,
            frame.data_range,
            monitor,
        )
        if monitor is not None:
            monitor.restore()
        self._store(
            module, frame, footprint, device, compiled, y, warm, result, monitor, measurement_frame
        )
        self.operator_ = route.operator
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

    def _route_objective(
        self, route, make_objective, module, signal, frame, measurement_frame, generator, seed
    ) -> Objective:
        """``module``'s objective over ``signal`` along ``route``: the architecture's own
        (``make_objective(module, signal, generator)``), straight to the samples or through
        the operator. ``seed`` seeds an operator's quadrature jitter."""
        return route.objective(
            lambda signal, generator: make_objective(module, signal, generator),
            signal,
            frame,
            measurement_frame,
            generator,
            seed,
            lambda coords: self._forward(module, coords),
        )

    def _run(
        self, module, objective, X, y, device, compile_loss, measurement, data_range, monitor=None
    ):
        """Train ``module`` on ``objective``: checkpoints, acceleration, frozen
        gradients and the progress bar around :attr:`_training_loop`."""
        resume, save_checkpoint = checkpointing(self, module, X, y)
        loss_fn = accelerate(
            objective.loss,
            device,
            precision=self.precision,
            torch_compile=compile_loss,
            fall_back=self.torch_compile == "auto",
            graph_key=(
                type(self).__qualname__,
                X.shape,
                self.batch_size,
                self.precision,
                tuple((name, tuple(t.shape)) for name, t in module.state_dict().items()),
            ),
        )
        hooks = [
            parameter.register_hook(
                torch.zeros_like if mask is None else (lambda grad, mask=mask: grad * mask)
            )
            for parameter, mask in objective.frozen
        ]
        module.train()
        progress = None
        if self.verbose:
            progress = self._progress_bar(measurement[1], data_range, compile_loss)
        try:
            with matmul_precision(self.precision), recycled_memory(), _out_of_memory(self, device):
                result = self._training_loop(
                    module.parameters(),
                    loss_fn,
                    objective.batches,
                    learning_rate=self.learning_rate,
                    max_iter=self.max_iter,
                    max_time=self.max_time,
                    schedule=self.lr_schedule,
                    tol=self.tol,
                    # With early_stopping, patience counts held-out scorings instead.
                    n_iter_no_change=None if monitor is not None else self.n_iter_no_change,
                    progress=progress,
                    resume=resume,
                    checkpoint=save_checkpoint,
                    checkpoint_every=self.checkpoint_every,
                    monitor=monitor,
                    adam_options=self._adam_options,
                )
        finally:
            for hook in hooks:
                hook.remove()
            if progress is not None:
                progress.close()
        if save_checkpoint is not None and not result.interrupted:
            # The fit is complete: nothing left to resume.
            Path(self.checkpoint_path).unlink(missing_ok=True)
        return result

    def _signal(
        self, X_fit, y_fit, frame, device, route, measurement_frame
    ) -> tuple[FitSignal, bool]:
        """The training signal (samples or measurements), held or streamed, and
        whether the fit compiles."""
        batch_size = route.batch_size(self.batch_size, len(X_fit), self.predict_batch_size)
        streamed = self._streams_batches and (batch_size is not None and batch_size < len(X_fit))
        compiled = route.compilable and self._compiles(device, streamed)
        signal = FitSignal(
            X_fit,
            y_fit,
            route.data_domain(frame.domain),
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
        self, module, X_held, y_held, frame, route, measurement
    ) -> HeldOutMonitor:
        """Scores the module on the held-out samples (or measurements) every
        ``validation_interval`` steps."""
        device = next(iter(module.state_dict().values())).device
        values = torch.as_tensor(
            normalise_values(y_held, *measurement), dtype=torch.float32, device=device
        )
        evaluate = route.held_out(
            lambda coords: self._forward(module, coords),
            frame,
            X_held,
            self.predict_batch_size,
            measurement,
            device,
        )

        return HeldOutMonitor(
            module,
            evaluate,
            values,
            every=self.validation_interval,
            patience=self.n_iter_no_change or DEFAULT_PATIENCE,
            tol=self.tol,
        )

    def _footprint(self, X, domain, warm, route) -> np.ndarray:
        """The area the fit covers: the samples' footprint (the operator's signal box),
        grown to the ``domain`` the user declared and, on a warm start, to the previous
        fits' area."""
        footprint = route.footprint(X, domain, self)
        declared = domain if self.domain is not None else None
        return covering_box(footprint, declared, self.footprint_ if warm else None)

    def _initial_state(
        self, X, y2d, warm, device, generator, route
    ) -> tuple[nn.Module, ValueFrame]:
        """The module to train and the fit's frame ``(domain, y_offset, y_scale,
        data_range)``: the fitted ones on a warm start, else fresh ones for the data."""
        if warm:
            if y2d.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"warm_start=True: y has {y2d.shape[1]} outputs, but the fitted model "
                    f"has {self.n_outputs_}; fit a new estimator or set warm_start=False."
                )
            frame = ValueFrame(self.domain_, self.y_offset_, self.y_scale_, self.data_range_)
            return copy.deepcopy(self.module_).to(device), frame
        domain = fit_domain(
            X, self.domain, footprint=self._domain_is_footprint, chunk_size=self.predict_batch_size
        )
        y_offset, y_scale, data_range = value_frame(y2d)
        y_offset, y_scale = route.value_frame(y_offset, y_scale)
        # Assigned before the module is built, which reads them; a failed fit undoes it.
        vars(self).update(self._structure(X, y2d.shape[1]))
        check_structure_memory(self, X.shape[1], y2d.shape[1], len(X), device)
        module = build_network(self, X.shape[1], y2d.shape[1], generator=generator, device=None)
        module = module.to(device)
        return module, ValueFrame(domain, y_offset, y_scale, data_range)
