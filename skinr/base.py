"""``BaseINR``: the estimator contract every skinr architecture shares."""

from __future__ import annotations

import copy
import inspect
import math
import os
import time
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_array
from torch import Tensor, nn

from . import persistence
from ._acceleration import (
    PRECISIONS,
    accelerate,
    cpp_compiler_available,
    matmul_precision,
    reuse_freed_memory,
)
from ._cells import resolve_cells, sample_footprint, samples_along_axes
from ._checkpoint import check_checkpoint_folder, checkpointing
from ._domain import (
    ExtrapolationWarning,
    check_representable,
    covering_box,
    fit_domain,
    normalise,
    normalise_values,
    normalised_chunks,
    warn_if_far_outside,
)
from ._measured import MeasuredFit, identity_domain, measure, resolve_operator
from ._objective import FitSignal, Objective
from ._param_docs import (
    ATTRIBUTES_MARKER,
    MARKER,
    common_attribute_docs,
    common_parameter_docs,
)
from ._sampling import validation_split
from ._training import SCHEDULES, HeldOutMonitor, joined_history, progress_bar, train
from ._validation import (
    Interval,
    StrOptions,
    check_coords,
    check_is_fitted,
    check_score_data,
    check_structure_memory,
    check_training_data,
    fit_context,
    make_generator,
    resolve_device,
)
from .inverse import Operator
from .metrics import psnr
from .parallel import torch_threads

__all__ = ["BaseINR", "ExtrapolationWarning", "common_params"]


# Held-out scorings without improvement that stop an early_stopping fit (scikit-learn's
# MLP default) when n_iter_no_change is None.
DEFAULT_PATIENCE = 10

# "auto" compiles fits at least this long: a cold compile costs seconds.
AUTO_COMPILE_MIN_STEPS = 1000

# Where Jupyter's HTML repr links each estimator: its page in docs/estimators/, named
# after the module the estimator lives in.
DOCS_URL = "https://github.com/skinr/skinr/blob/main/docs"


class BaseINR(RegressorMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of skinr's implicit neural representation estimators.

    An INR estimator fits one signal: ``X`` holds the coordinates of its samples,
    ``(n_samples, n_dims)`` for any ``n_dims`` (1-D audio, 2-D images, 3-D video or
    volumes), and ``y`` the values there, ``(n_samples,)`` or
    ``(n_samples, n_channels)``. ``predict`` evaluates the fitted function anywhere:
    on the training grid, on a finer grid (super-resolution), at held-out points.

    What the base does, so that every architecture gets it the same way:

    - validates parameters and data before any training, and assigns fitted
      attributes only after training succeeded;
    - maps coordinates from the fitted domain (``domain_``) to [-1, 1] per dimension
      and targets from their fitted range to [-1, 1]; predictions are mapped back;
    - resolves ``device`` into ``device_``, seeds a private ``torch.Generator`` from
      ``random_state`` (the global torch seed is never touched);
    - trains with Adam (full signal or sampled coordinates per step), an optional
      learning-rate schedule and loss-based early stopping;
    - predicts in chunks of ``predict_batch_size`` coordinates;
    - scores by PSNR, counts FLOPs, pickles with CPU tensors and saves safely.

    Subclasses implement one hook and may override four:

    - ``_build_module(n_dims, n_outputs, generator) -> nn.Module`` (required): the
      network, mapping normalised coordinates ``(n, n_dims)`` in [-1, 1] to normalised
      values ``(n, n_outputs)``; it must offer ``flops(n_samples)``.
    - ``_structure(X, n_outputs) -> dict``: fitted attributes that fix a
      data-dependent structure (e.g. automatic partitioning), computed from the
      validated coordinates before a fresh module is built; the base assigns them and
      ``_build_module`` reads them (:func:`load` restores them before rebuilding).
    - ``_objective(module, signal, generator) -> Objective``: what the fit trains over
      a :class:`~skinr._objective.FitSignal` (held on the device or streamed from the
      caller's arrays): the loss of a batch, the batches, and the fitted attributes
      the fit produces (e.g. cells without points), and a regulariser of the
      parameters (``penalty``, e.g. a grid's total variation). Checks that need the
      training coordinates raise here, before training; the default is the mean
      squared error of ``module`` over ``batch_size`` samples per step.
    - ``_forward(module, coords)``: prediction on one chunk of coordinates.
    - ``_count_flops(coords)``: FLOPs to predict at normalised ``coords``.

    and may declare ``_adam_options`` (Adam's settings besides the learning rate, as
    the architecture's paper trains it).
    """

    # Architectures whose cells must hold whole samples (equal pixels per cell) lay the
    # domain on the samples' footprint instead of their bounding box.
    _domain_is_footprint: bool = False
    # With ``batch_size`` set, training reads each batch straight from the caller's
    # arrays, so a big signal is never copied (memory follows the batch); passes over
    # the whole signal run chunk-wise (``FitSignal.chunks``). An architecture whose
    # sampled loss needs the whole signal held would set this False.
    _streams_batches: bool = True
    # Measured by benchmarks/compile.py: torch.compile makes this architecture's CPU
    # training step faster (see docs/benchmarks/compile.md); drives torch_compile="auto".
    _compile_speeds_up_cpu: bool = False
    # Adam's settings besides the learning rate, as the architecture's paper trains it
    # (e.g. Instant-NGP's betas and eps); torch's defaults when empty.
    _adam_options: dict = {}

    # scikit-learn's doc-link hooks: the "?" of an estimator's HTML repr opens its page.
    _doc_link_module = "skinr"
    _doc_link_template = DOCS_URL + "/estimators/{page}.md"

    def _doc_link_url_param_generator(self) -> dict:
        return {"page": type(self).__module__.rsplit(".", 1)[-1]}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__ and MARKER in cls.__doc__:
            cls.__doc__ = cls.__doc__.replace(MARKER, common_parameter_docs(cls))
        if cls.__doc__ and ATTRIBUTES_MARKER in cls.__doc__:
            cls.__doc__ = cls.__doc__.replace(ATTRIBUTES_MARKER, common_attribute_docs(cls))

    _parameter_constraints: dict = {
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "lr_schedule": [StrOptions(set(SCHEDULES)), None],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "validation_interval": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "verbose": ["verbose"],
        "predict_batch_size": [Interval(Integral, 1, None, closed="left")],
        "data_range": [Interval(Real, 0, None, closed="neither"), None],
        "domain": ["array-like", None],
        "operator": [Operator, None],
        "checkpoint_path": [str, os.PathLike, None],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left")],
        "precision": [StrOptions(set(PRECISIONS))],
        "torch_compile": [StrOptions({"auto"}), "boolean"],
    }

    def __init__(
        self,
        *,
        learning_rate=1e-4,
        max_iter=500,
        max_time=None,
        batch_size=None,
        lr_schedule=None,
        tol=0.0,
        n_iter_no_change=None,
        early_stopping=False,
        validation_fraction=0.1,
        validation_interval=10,
        warm_start=False,
        random_state=None,
        device="auto",
        verbose=False,
        predict_batch_size=65536,
        data_range=None,
        domain=None,
        operator=None,
        checkpoint_path=None,
        checkpoint_every=100,
        precision="float32",
        torch_compile="auto",
    ):
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_time = max_time
        self.batch_size = batch_size
        self.lr_schedule = lr_schedule
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_interval = validation_interval
        self.warm_start = warm_start
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.predict_batch_size = predict_batch_size
        self.data_range = data_range
        self.domain = domain
        self.operator = operator
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.precision = precision
        self.torch_compile = torch_compile

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _build_module(self, n_dims: int, n_outputs: int, generator: torch.Generator) -> nn.Module:
        """The untrained network for ``n_dims`` coordinates and ``n_outputs`` channels."""

    def _structure(self, X: np.ndarray, n_outputs: int) -> dict:
        return {}

    def _objective(
        self, module: nn.Module, signal: FitSignal, generator: torch.Generator
    ) -> Objective:
        return signal.objective(module, generator)

    def _forward(self, module: nn.Module, coords: Tensor) -> Tensor:
        return module(coords)

    def _count_flops(self, coords: np.ndarray) -> int:
        return self.module_.flops(coords.shape[0])

    # ------------------------------------------------------------- public API
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the network to the signal sampled at ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_dims)
            Coordinates of the samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Signal values at ``X``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, self._objective)

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

    def _run(
        self, module, objective, X, y, device, compile_loss, measurement, data_range, monitor=None
    ):
        """Train ``module`` on ``objective``: checkpoints, acceleration, frozen
        gradients and the progress bar around the loop of :func:`skinr._training.train`."""
        resume, save_checkpoint = checkpointing(self, module, X, y)
        loss_fn = accelerate(
            objective.loss,
            device,
            precision=self.precision,
            torch_compile=compile_loss,
            fall_back=self.torch_compile == "auto",
        )
        reuse_freed_memory()
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
            with matmul_precision(self.precision):
                result = train(
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

    def predict(self, X):
        """Evaluate the fitted signal at ``X``, in chunks of ``predict_batch_size``.

        With an ``operator``, ``X`` holds measurement coordinates and the prediction is
        the measurement of the fitted signal there (``predict_signal`` gives the signal).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_dims)
            Coordinates, anywhere (inside the fitted domain to interpolate).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predicted values (float64), 1-D when ``y`` was 1-D at fit.
        """
        check_is_fitted(self)
        X = check_coords(self, X)
        if getattr(self, "operator_", None) is None:
            return self._evaluate(X)
        with torch.inference_mode(), torch_threads():
            out = measure(
                self.operator_,
                self._field(self.module_, self._frame()),
                X,
                self.predict_batch_size,
                torch.device(self.device_),
            )
        return out.ravel() if self.y_ndim_ == 1 else out

    def predict_signal(self, X):
        """Evaluate the signal the network represents at ``X``.

        Fitted through an ``operator``, this is the reconstruction (the
        super-resolved, deblurred or tomographic image) at signal coordinates;
        fitted without one, it is :meth:`predict`.

        Parameters
        ----------
        X : array-like of shape (n_samples, signal_dims)
            Coordinates in the signal's frame (``grid_coordinates`` gives a grid).

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The signal's values (float64).
        """
        check_is_fitted(self)
        if getattr(self, "operator_", None) is None:
            return self.predict(X)
        X = check_array(X, dtype=(np.float64, np.float32))
        if X.shape[1] != self._signal_dims():
            raise ValueError(
                f"predict_signal: X has {X.shape[1]} columns, but the signal behind "
                f"{type(self.operator_).__name__} has {self._signal_dims()} dimensions."
            )
        signal = self._evaluate(X)
        inside = self.operator_.support(X)
        if inside is not None:
            signal[~inside] = 0.0
        return signal

    def _evaluate(self, X):
        """The network's signal at validated coordinates ``X``."""
        check_representable(X, self.domain_)
        if hasattr(self, "footprint_"):
            warn_if_far_outside(X, self.footprint_, type(self).__name__)
        out = np.empty((X.shape[0], self.n_outputs_), dtype=np.float64)
        device = torch.device(self.device_)
        step = self.predict_batch_size
        with torch.inference_mode(), torch_threads():
            for start, coords in normalised_chunks(X, self.domain_, step):
                prediction = self._forward(self.module_, coords.to(device))
                out[start : start + step] = prediction.cpu().numpy()
        out *= self.y_scale_  # in place: a second output-sized array is what chunks avoid
        out += self.y_offset_
        return out.ravel() if self.y_ndim_ == 1 else out

    def _frame(self) -> tuple:
        return self.domain_, self.y_offset_, self.y_scale_, self.data_range_

    def _signal_dims(self) -> int:
        """Coordinate dimensions of the signal the network represents."""
        operator = getattr(self, "operator_", None)
        return self.n_features_in_ if operator is None else int(operator.signal_dims)

    def grid_coordinates(self, shape):
        """Pixel centres of a grid of ``shape`` over the area the model was fitted on.

        The area is ``footprint_``: the samples' bounding box widened by half a sample
        spacing wherever they lie on a regular grid, so a model fitted on a 64 x 64
        image (in either coordinate convention of :mod:`skinr.signals`) renders
        ``(256, 256)`` as the same picture at 4x, pixel for pixel aligned with an
        area-downsampling of the full-size image.

        Parameters
        ----------
        shape : int or tuple of int
            Samples along each coordinate dimension (an int applies to every one).

        Returns
        -------
        X : ndarray of shape (prod(shape), n_dims)
            Coordinates in row-major order (reshape predictions with
            :func:`skinr.signals.to_array`).
        """
        from .signals import grid

        check_is_fitted(self)
        shape = resolve_cells(shape, self._signal_dims(), "shape")
        return grid(shape, bounds=self.footprint_, pixel_centers=True)

    def render(self, shape):
        """The fitted signal on a grid of ``shape`` over the area it was fitted on.

        ``render(shape)`` is ``to_array(predict_signal(grid_coordinates(shape)), shape)``: the
        training resolution, a finer one (super-resolution) or a coarser one, with one
        call for every estimator.

        Parameters
        ----------
        shape : int or tuple of int
            As for :meth:`grid_coordinates`.

        Returns
        -------
        ndarray of shape (*shape) or (*shape, n_outputs)
            Predicted values laid out on the grid.
        """
        from .signals import to_array

        coords = self.grid_coordinates(shape)
        shape = resolve_cells(shape, self._signal_dims(), "shape")
        return to_array(self.predict_signal(coords), shape)

    def score(self, X, y, sample_weight=None):
        """PSNR in dB of the predictions at ``X`` against ``y`` (greater is better).

        The peak is ``data_range`` when set, else the range of the training targets
        (``data_range_``). This makes ``GridSearchCV`` rank candidates by PSNR
        without a ``scoring`` argument.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_dims)
            Coordinates.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the per-sample squared errors.

        Returns
        -------
        float
            PSNR in dB; ``inf`` for a perfect fit.
        """
        y, sample_weight = check_score_data(X, y, sample_weight)
        y_pred = self.predict(X)
        if y.size != y_pred.size:
            raise ValueError(
                f"y has {y.size // len(y)} channel(s) per sample; the model predicts "
                f"{self.n_outputs_}."
            )
        y = y.reshape(y_pred.shape)
        return psnr(
            y, y_pred, data_range=self.data_range or self.data_range_, sample_weight=sample_weight
        )

    def count_flops(self, X) -> int:
        """Floating-point operations to predict at ``X`` (2 per multiply-add).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_dims)
            Coordinates the model would be evaluated at.

        Returns
        -------
        int
            FLOPs of one forward pass over ``X``, counted analytically.
        """
        check_is_fitted(self)
        X = check_coords(self, X)
        operator = getattr(self, "operator_", None)
        if operator is not None:
            X = operator.evaluation_points(X)
        return int(self._count_flops(normalise(X, self.domain_)))

    def save(self, path):
        """Save the fitted estimator to ``path`` in skinr's safe format.

        Parameters
        ----------
        path : str or path-like
            Destination file (conventionally ``*.skinr``); written atomically.

        Returns
        -------
        pathlib.Path
            The path written; read it back with :func:`skinr.load`.
        """
        return persistence.save(self, path)

    # ---------------------------------------------------------- sklearn glue
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.allow_nan = False
        # Sine networks with a few steps cannot promise R^2 > 0.5 on tabular data.
        tags.regressor_tags.poor_score = True
        # cuBLAS kernels are not bit-reproducible; the CPU path is.
        tags.non_deterministic = str(self.device).startswith("cuda") or (
            self.device == "auto" and torch.cuda.is_available()
        )
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        if "module_" in state:
            state["module_"] = persistence.cpu_copy(state["module_"])
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "module_" in state:
            self.module_, self.device_ = persistence.place_module(self.module_, self.device_)

    # --------------------------------------------------------------- helpers
    def _compiles(self, device: torch.device, streaming: bool) -> bool:
        """Whether this fit compiles its loss: ``torch_compile``, with "auto" resolved.

        "auto" compiles where ``benchmarks/compile.py`` measured a faster CPU step
        (``_compile_speeds_up_cpu``), on the CPU, for fits of at least
        ``AUTO_COMPILE_MIN_STEPS`` steps (the one-off compile, seconds, must pay off),
        when a C++ compiler is found. The streamed big-signal path is never compiled
        automatically: its batches come from numpy arrays outside the graph.
        """
        if self.torch_compile != "auto":
            return bool(self.torch_compile)
        return (
            self._compile_speeds_up_cpu
            and device.type == "cpu"
            and not streaming
            and self.max_iter >= AUTO_COMPILE_MIN_STEPS
            and cpp_compiler_available()
        )

    def _progress_bar(self, y_scale: float, data_range: float, compiling: bool = False):
        """A tqdm bar of this fit's steps, loss and training PSNR (in the data's units)."""
        peak = self.data_range or data_range
        return progress_bar(type(self).__name__, self.max_iter, y_scale, peak, compiling)


def value_frame(y2d: np.ndarray) -> tuple[float, float, float]:
    """Offset and scale mapping ``y`` to [-1, 1], and its range (1.0 when constant)."""
    y_min, y_max = float(y2d.min()), float(y2d.max())
    if not np.isfinite(y_max - y_min):
        raise ValueError(
            f"y spans [{y_min:.3g}, {y_max:.3g}], a range that overflows float64; rescale y."
        )
    data_range = y_max - y_min if y_max > y_min else 1.0
    return (y_max + y_min) / 2, data_range / 2, data_range


def common_params(namespace: dict) -> dict:
    """The parameters of ``BaseINR.__init__`` picked from a subclass ``__init__``'s locals.

    scikit-learn reads each estimator's parameters from its own explicit ``__init__``
    signature, so every estimator lists the common ones; this forwards them to the base
    without writing each name a second time.
    """
    return {name: namespace[name] for name in _COMMON_PARAMS}


_COMMON_PARAMS = tuple(inspect.signature(BaseINR.__init__).parameters)[1:]
