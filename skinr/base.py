"""``BaseINR``: the estimator contract every skinr architecture shares."""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_array
from torch import Tensor, nn

from . import persistence
from ._core.acceleration import (
    cpp_compiler_available,
)
from ._core.domain import (
    ExtrapolationWarning,
    check_representable,
    normalise,
    normalised_chunks,
    warn_if_far_outside,
)
from ._core.fit import FitSequence
from ._core.loop import progress_bar
from ._core.objective import FitSignal, Objective
from ._core.params import (
    ATTRIBUTES_MARKER,
    COMMON_PARAM_NAMES,
    COMMON_PARAMETERS,
    MARKER,
    common_attribute_docs,
    common_parameter_docs,
)
from ._core.registry import register
from ._core.routes import field, measure
from ._core.threads import torch_threads
from ._core.validation import (
    check_coords,
    check_is_fitted,
    check_score_data,
    device_memory,
    fit_context,
)
from .metrics import psnr
from .nn.cells import resolve_cells

# What an architecture outside skinr needs (docs/extending.md): the base, the common
# parameters, the objective it may return, and the registry skinr.load rebuilds from.
__all__ = [
    "BaseINR",
    "ExtrapolationWarning",
    "FitSignal",
    "Objective",
    "common_params",
    "register",
]


# "auto" compiles fits at least this long: a cold compile costs seconds.
AUTO_COMPILE_MIN_STEPS = 1000

# Where Jupyter's HTML repr links each estimator: its page in docs/estimators/, named
# after the module the estimator lives in.
DOCS_URL = "https://github.com/skinr/skinr/blob/main/docs"


class BaseINR(FitSequence, RegressorMixin, BaseEstimator, metaclass=ABCMeta):
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
      a :class:`~skinr._core.objective.FitSignal` (held on the device or streamed from the
      caller's arrays): the loss of a batch, the batches, and the fitted attributes
      the fit produces (e.g. cells without points), and a regulariser of the
      parameters (``penalty``, e.g. a grid's total variation). Checks that need the
      training coordinates raise here, before training; the default is the mean
      squared error of ``module`` over ``batch_size`` samples per step.
    - ``_forward(module, coords)``: prediction on one chunk of coordinates.
    - ``_count_flops(coords)``: FLOPs to predict at normalised ``coords``.
    - ``_complete_fit()``: a last step over the fitted model (LatentCodec quantises
      its weights), inside the fit's rollback.

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
        name: list(row.constraints) for name, row in COMMON_PARAMETERS.items()
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

    def _complete_fit(self) -> None:
        """Runs once the fitted attributes are assigned (also after Ctrl-C kept the
        weights), inside the fit's rollback; nothing by default."""

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
                field(
                    lambda coords: self._forward(self.module_, coords),
                    self.domain_,
                    self.y_offset_,
                    self.y_scale_,
                ),
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

    def _load_probe(self) -> tuple[np.ndarray, bool]:
        """The prediction :func:`skinr.load` checks before handing a model over: at the
        centre of the fitted domain; and whether NaN is an honest answer there."""
        centre = np.asarray(self.domain_, dtype=np.float64).mean(axis=-1).reshape(1, -1)
        return self._evaluate(centre), False

    def _signal_dims(self) -> int:
        """Coordinate dimensions of the signal the network represents."""
        operator = getattr(self, "operator_", None)
        return self.n_features_in_ if operator is None else int(operator.signal_dims)

    def grid_coordinates(self, shape=None):
        """Pixel centres of a grid of ``shape`` over the area the model was fitted on.

        The area is ``footprint_``: the samples' bounding box widened by half a sample
        spacing wherever they lie on a regular grid, so a model fitted on a 64 x 64
        image (in either coordinate convention of :mod:`skinr.signals`) renders
        ``(256, 256)`` as the same picture at 4x, pixel for pixel aligned with an
        area-downsampling of the full-size image.

        Parameters
        ----------
        shape : int, tuple of int or None, default=None
            Samples along each coordinate dimension (an int applies to every one);
            None: the grid the model was fitted on (``grid_shape_``).

        Returns
        -------
        X : ndarray of shape (prod(shape), n_dims)
            Coordinates in row-major order (reshape predictions with
            :func:`skinr.signals.to_array`).
        """
        from .signals import grid

        check_is_fitted(self)
        shape = self._render_shape(shape)
        # The coordinates and the prediction, float64: refused before numpy is asked.
        needed = math.prod(shape) * (len(shape) + self.n_outputs_) * 8
        memory = device_memory(torch.device("cpu"))
        if memory is not None and needed > memory:
            raise ValueError(
                f"A render of shape {shape} needs {needed / 2**30:,.1f} GiB for its "
                f"coordinates and values; this machine has {memory / 2**30:,.1f} GiB "
                "(render a smaller shape, or predict a region at a time)."
            )
        return grid(shape, bounds=self.footprint_, pixel_centers=True)

    def render(self, shape=None):
        """The fitted signal on a grid of ``shape`` over the area it was fitted on.

        ``render(shape)`` is ``to_array(predict_signal(grid_coordinates(shape)), shape)``: the
        training resolution, a finer one (super-resolution) or a coarser one, with one
        call for every estimator.

        Parameters
        ----------
        shape : int, tuple of int or None, default=None
            As for :meth:`grid_coordinates`: None renders the grid the model was
            fitted on.

        Returns
        -------
        ndarray of shape (*shape) or (*shape, n_outputs)
            Predicted values laid out on the grid.
        """
        from .signals import to_array

        coords = self.grid_coordinates(shape)
        return to_array(self.predict_signal(coords), self._render_shape(shape))

    def _render_shape(self, shape) -> tuple[int, ...]:
        if shape is None:
            return tuple(int(n) for n in self.grid_shape_)
        return resolve_cells(shape, self._signal_dims(), "shape")

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


def common_params(namespace: dict) -> dict:
    """The parameters of ``BaseINR.__init__`` picked from a subclass ``__init__``'s locals.

    scikit-learn reads each estimator's parameters from its own explicit ``__init__``
    signature, so every estimator lists the common ones; this forwards them to the base
    without writing each name a second time.
    """
    return {name: namespace[name] for name in COMMON_PARAM_NAMES}
