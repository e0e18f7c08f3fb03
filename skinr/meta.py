"""Learned priors: an initialisation learned from many signals, so that a new one fits in
a few steps.

:class:`LearnedInit` meta-learns the initial weights of an estimator's network over a
collection of signals (Tancik et al., CVPR 2021, "Learned Initializations for
Optimizing Coordinate-Based Neural Representations"): Reptile, or first-order MAML,
with a few inner steps of gradient descent per signal. The prior is an estimator's
fitted state; :meth:`LearnedInit.initialized` hands out an estimator that starts its
fit from it (a warm start), so everything a fit has (``operator=``, checkpoints,
early stopping, searches) works from a prior. A prior is saved and loaded as a model
file, with that format's guarantees.
"""

from __future__ import annotations

import copy
import math
import os
import time
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone

from ._core.checkpoint import check_checkpoint_folder
from ._core.domain import value_frame
from ._core.files import atomic_write
from ._core.fit import ValueFrame
from ._core.loop import ctrl_c_between_steps, make_optimizer, progress_bar
from ._core.routes import fit_route, resolve_operator
from ._core.threads import torch_threads
from ._core.validation import (
    Interval,
    StrOptions,
    check_is_fitted,
    fit_context,
    make_generator,
    resolve_device,
)
from .base import BaseINR
from .signals import to_coords

__all__ = ["LearnedInit", "load_prior"]

#: The meta-learning rules: Reptile moves the initialisation towards each signal's
#: adapted weights; first-order MAML along the gradient at them.
METHODS = ("reptile", "fomaml")


class LearnedInit(BaseEstimator):
    """An initialisation learned from a collection of signals (Reptile or first-order
    MAML).

    ``fit(signals)`` learns the initial weights of ``estimator``'s network: each meta
    step draws ``signals_per_step`` signals, adapts a copy of the weights to each with
    ``inner_steps`` steps of the fit's own optimiser (Adam at the estimator's learning
    rate, on all of a signal's samples or ``batch_size`` of them), and moves the
    initialisation towards the mean adapted weights (``method="reptile"``) or by Adam
    along the mean loss gradient at them (``"fomaml"``), at ``meta_learning_rate``.
    :meth:`initialized` then gives an estimator that fits a new signal from the
    learned weights.

    The prior holds one frame for every signal: one coordinate box (the collection's)
    and one value range (the collection's), so a new signal in the same units starts
    where the prior left off. An estimator whose structure depends on the signal
    (cells, partitions, heads, degrees sized by the samples) cannot share one set of
    weights across signals and is refused.

    With ``estimator.operator`` set, the collection holds measurements (sinograms,
    block means) and every inner fit goes through the operator, as the fits from the
    prior will (Tancik et al.'s CT prior): the network lives on the signal behind the
    measurements, and no clean signal is needed to learn the prior.

    Parameters
    ----------
    estimator : BaseINR or None, default=None
        The architecture and its settings; None: ``SIREN(width=128, depth=3)``.
    inner_steps : int, default=2
        Gradient-descent steps per signal in the inner loop (Tancik et al.: 2 for
        images).
    inner_learning_rate : float or None, default=None
        Adam's step size in the inner loop; None: the estimator's ``learning_rate``.
        The inner loop is the fit's own optimiser (Adam, fresh moments), so the prior
        is learned for the way a fit from it runs.
    method : {"reptile", "fomaml"}, default="reptile"
        The meta-update.
    meta_learning_rate : float or None, default=None
        Reptile: the share of the way from the initialisation to the mean adapted
        weights each meta step takes (plain SGD on their difference); FOMAML: Adam's
        step size. None: 1.0 for Reptile, 1e-4 for FOMAML (measured:
        ``docs/benchmarks/priors.md``).
    meta_steps : int, default=1000
        Meta steps (outer iterations).
    signals_per_step : int, default=4
        Signals adapted per meta step.
    batch_size : int or None, default=None
        Samples per inner step (random patches of pixels); None: all of a signal's.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights' start, the draw of signals and samples.
    device : str or torch.device, default="auto"
        Where meta-training runs.
    verbose : bool, default=False
        Show a progress bar.
    checkpoint_path : str, path-like or None, default=None
        A file the meta-training state is saved to every ``checkpoint_every`` steps
        and on Ctrl-C; a fit given the same file resumes from it.
    checkpoint_every : int, default=100
        Meta steps between checkpoints.

    Attributes
    ----------
    estimator_ : BaseINR
        ``estimator`` fitted to the collection's frame, its network at the learned
        initialisation.
    loss_curve_ : list of float
        Mean loss of the adapted weights over each meta step's signals (in the
        normalised frame).
    n_iter_ : int
        Meta steps taken.
    n_signals_ : int
        Signals in the collection.
    fit_time_ : float
        Seconds the last ``fit`` took.

    Examples
    --------
    >>> import numpy as np
    >>> import skinr
    >>> from skinr.meta import LearnedInit
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.random((8, 8)) for _ in range(4)]
    >>> prior = LearnedInit(skinr.SIREN(width=16, depth=1), meta_steps=3).fit(images)
    >>> model = prior.initialized(max_iter=5)
    >>> X, y = skinr.signals.to_coords(rng.random((8, 8)))
    >>> model.fit(X, y).n_iter_
    5
    """

    _parameter_constraints: dict = {
        "estimator": [BaseINR, None],
        "inner_steps": [Interval(Integral, 1, None, closed="left")],
        "inner_learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "method": [StrOptions(set(METHODS))],
        "meta_learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "meta_steps": [Interval(Integral, 1, None, closed="left")],
        "signals_per_step": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "verbose": ["verbose"],
        "checkpoint_path": [str, os.PathLike, None],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        estimator=None,
        *,
        inner_steps=2,
        inner_learning_rate=None,
        method="reptile",
        meta_learning_rate=None,
        meta_steps=1000,
        signals_per_step=4,
        batch_size=None,
        random_state=None,
        device="auto",
        verbose=False,
        checkpoint_path=None,
        checkpoint_every=100,
    ):
        self.estimator = estimator
        self.inner_steps = inner_steps
        self.inner_learning_rate = inner_learning_rate
        self.method = method
        self.meta_learning_rate = meta_learning_rate
        self.meta_steps = meta_steps
        self.signals_per_step = signals_per_step
        self.batch_size = batch_size
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every

    # --------------------------------------------------------------------- fit
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, signals, y=None):
        """Learn the initialisation from ``signals``.

        Parameters
        ----------
        signals : sequence of array-like or of (X, y) pairs
            The collection: arrays (images ``(H, W[, C])``, audio, volumes, read as
            :func:`skinr.signals.to_coords` reads them, pixel centres for 2-D and up)
            or ``(X, y)`` pairs of coordinates and values. All of one dimensionality
            and channel count. With ``estimator.operator``: what a fit through it
            takes, ``(X, y)`` pairs of measurement coordinates and measurements, their
            signals all of one grid.
        y : None
            Ignored (scikit-learn's signature).

        Returns
        -------
        self : LearnedInit
            The fitted prior.
        """
        started = time.perf_counter()
        template = self._template()
        tasks = _as_tasks(signals, operator=template.operator)
        device = resolve_device(self.device)
        check_checkpoint_folder(self.checkpoint_path)
        before = dict(vars(self))
        try:
            with torch_threads():
                self._meta_train(template, tasks, device)
        except Exception:
            vars(self).clear()
            vars(self).update(before)
            raise
        self.fit_time_ = time.perf_counter() - started
        if getattr(self, "interrupted_", False):
            raise KeyboardInterrupt
        return self

    def _template(self) -> BaseINR:
        """The estimator to learn a prior for, refused in one line if it cannot take one."""
        from .estimators.siren import SIREN

        estimator = SIREN(width=128, depth=3) if self.estimator is None else self.estimator
        reason = prior_refusal(type(estimator))
        if reason is not None:
            raise ValueError(f"{type(estimator).__name__} cannot take a learned prior: {reason}.")
        return clone(estimator)

    def _meta_train(self, template, tasks, device) -> None:
        n_outputs = tasks[0][1].shape[1]
        budget = template.predict_batch_size
        # Each task's route: straight to its samples, or through the estimator's operator
        # to the signal behind its measurements (the network's coordinates are then the
        # operator's nominal grid, not the measurements').
        routes = [fit_route(resolve_operator(template.operator, X, budget)) for X, _ in tasks]
        signal_coords = [
            route.signal_coords(X) for route, (X, _) in zip(routes, tasks, strict=True)
        ]
        low = min(float(y.min()) for _, y in tasks)
        high = max(float(y.max()) for _, y in tasks)
        box = np.stack(
            [
                np.min([X.min(axis=0) for X in signal_coords], axis=0),
                np.max([X.max(axis=0) for X in signal_coords], axis=0),
            ],
            axis=1,
        )
        # The collection's frame: one box and one value range for every signal. A fit
        # of one step on the first signal resolves the architecture's data-dependent
        # settings (e.g. "auto" frequencies) and sets up every fitted attribute.
        max_iter, batch_size = template.max_iter, template.batch_size
        template.set_params(
            max_iter=1,
            warm_start=False,
            verbose=False,
            checkpoint_path=None,
            early_stopping=False,
            domain=box if template.domain is None else template.domain,
            device=str(device),
            random_state=self.random_state,
        )
        # The settings each signal would resolve ("auto" frequencies, sizes): one
        # network serves all only if they agree.
        first = template._structure(signal_coords[0], n_outputs)
        for index, X in enumerate(signal_coords[1:], 1):
            other = template._structure(X, n_outputs)
            if not _same(first, other):
                differ = sorted(k for k in first if not _same(first[k], other.get(k)))
                raise ValueError(
                    f"signal {index} gives {type(template).__name__} another structure than "
                    f"signal 0 ({', '.join(differ)}): learn a prior from signals of one size."
                )
        template.fit(*tasks[0])
        # The inner steps take the prior's batches; the estimator keeps its own.
        template.batch_size = self.batch_size
        offset, scale, data_range = value_frame(np.array([[low], [high]]))
        # The loss compares every signal (or its measurements) in the collection's
        # frame; the network's outputs are the signal's, which an operator's gain scales.
        measured = (offset, scale)
        template.y_offset_, template.y_scale_ = routes[0].value_frame(offset, scale)
        template.data_range_ = data_range
        frame = ValueFrame(template.domain_, template.y_offset_, template.y_scale_, data_range)
        module = template.module_
        parameters = [p for p in module.parameters() if p.requires_grad]
        # Reptile's step is a share of the way to the adapted weights (plain SGD on their
        # difference), so it keeps the architecture's initialisation scale; FOMAML's
        # gradients go through Adam.
        if self.method == "reptile":
            outer = torch.optim.SGD(parameters, lr=self.meta_learning_rate or 1.0)
        else:
            outer = torch.optim.Adam(parameters, lr=self.meta_learning_rate or 1e-4)
        inner_module = copy.deepcopy(module).train()
        inner_parameters = [p for p in inner_module.parameters() if p.requires_grad]
        generator = make_generator(self.random_state)
        seed = generator.initial_seed()
        inner_rate = self.inner_learning_rate or template.learning_rate
        adam_options = dict(template._adam_options)
        objectives = {}

        def objective(index):
            if index not in objectives:
                route, (X, y) = routes[index], tasks[index]
                signal, _ = template._signal(X, y, frame, device, route, measured)
                objectives[index] = template._route_objective(
                    route,
                    template._objective,
                    inner_module,
                    signal,
                    frame,
                    measured,
                    generator,
                    (seed + index) % 2**31,
                )
            return objectives[index]

        loss_curve, start_step = [], 0
        resumed = self._resume(module, outer)
        if resumed is not None:
            loss_curve, start_step = resumed
        progress = (
            progress_bar("LearnedInit", self.meta_steps, 1.0, 2.0, False) if self.verbose else None
        )
        interrupted = False
        try:
            with ctrl_c_between_steps() as ctrl_c:
                for step in range(start_step, self.meta_steps):
                    # Drawn from (seed, step): a resumed meta-training draws as the
                    # uninterrupted one would have.
                    few = len(tasks) < self.signals_per_step
                    draw = np.random.default_rng([seed, step])
                    chosen = draw.choice(len(tasks), size=self.signals_per_step, replace=few)
                    meta_grads = [torch.zeros_like(p) for p in parameters]
                    losses = []
                    for index in chosen:
                        task = objective(int(index))
                        with torch.no_grad():
                            for target, source in zip(inner_parameters, parameters, strict=True):
                                target.copy_(source)
                        # The fit's own optimiser, fresh: a prior is learned for the way
                        # it will be used (a fit from it runs Adam at this rate).
                        inner = make_optimizer(inner_parameters, inner_rate, **adam_options)
                        for _ in range(self.inner_steps):
                            inner.zero_grad(set_to_none=True)
                            task.loss(next(task.batches)).backward()
                            inner.step()
                        final = task.loss(next(task.batches))
                        losses.append(final.item())
                        if self.method == "fomaml":
                            grads = torch.autograd.grad(final, inner_parameters)
                            for total, g in zip(meta_grads, grads, strict=True):
                                total.add_(g)
                        else:
                            with torch.no_grad():
                                for total, p, theta in zip(
                                    meta_grads, inner_parameters, parameters, strict=True
                                ):
                                    total.add_(theta - p)
                    if not all(math.isfinite(v) for v in losses):
                        raise FloatingPointError(
                            f"LearnedInit diverged at meta step {step + 1} (a non-finite "
                            "loss); lower inner_learning_rate or meta_learning_rate."
                        )
                    for p, total in zip(parameters, meta_grads, strict=True):
                        p.grad = total / len(chosen)
                    outer.step()
                    loss_curve.append(float(np.mean(losses)))
                    if progress is not None:
                        progress(step + 1, loss_curve[-1])
                    if self.checkpoint_path is not None and (step + 1) % self.checkpoint_every == 0:
                        self._save_checkpoint(module, outer, loss_curve)
                    if ctrl_c.is_set():
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            interrupted = True
            if self.checkpoint_path is not None:
                self._save_checkpoint(module, outer, loss_curve)
        finally:
            if progress is not None:
                progress.close()
        for p in parameters:
            p.grad = None
        template.module_ = module.eval()
        template.loss_curve_, template.n_iter_ = [], 0
        template.history_ = None
        template.set_params(max_iter=max_iter, batch_size=batch_size, domain=template.domain_)
        self.estimator_ = template
        self.loss_curve_ = loss_curve
        self.n_iter_ = len(loss_curve)
        self.n_signals_ = len(tasks)
        self.interrupted_ = interrupted
        if not interrupted and self.checkpoint_path is not None:
            Path(self.checkpoint_path).unlink(missing_ok=True)

    # -------------------------------------------------------------- checkpoints
    def _save_checkpoint(self, module, outer, loss_curve) -> None:
        import io

        buffer = io.BytesIO()
        torch.save(
            {
                "weights": {k: v.detach().cpu() for k, v in module.state_dict().items()},
                "optimizer": outer.state_dict(),
                "loss_curve": list(loss_curve),
                "params": {k: repr(v) for k, v in self.get_params(deep=False).items()},
            },
            buffer,
        )
        atomic_write(Path(self.checkpoint_path), buffer.getvalue())

    def _resume(self, module, outer):
        """The loss curve and step a checkpoint of this same meta-training holds."""
        if self.checkpoint_path is None or not Path(self.checkpoint_path).is_file():
            return None
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        params = {k: repr(v) for k, v in self.get_params(deep=False).items()}
        if state.get("params") != params:
            raise ValueError(
                f"checkpoint_path={str(self.checkpoint_path)!r} holds another meta-training "
                "(other parameters); remove it or choose another file."
            )
        module.load_state_dict(state["weights"])
        outer.load_state_dict(state["optimizer"])
        return list(state["loss_curve"]), len(state["loss_curve"])

    # ------------------------------------------------------------------- using it
    def initialized(self, estimator=None, **params) -> BaseINR:
        """An estimator that fits a new signal starting from the learned weights.

        Parameters
        ----------
        estimator : BaseINR or None, default=None
            The settings to fit with (steps, learning rate, ``operator``, ...); its
            structure must be the prior's. None: the prior's own estimator.
        **params
            Parameters set on it (e.g. ``max_iter=50``, ``operator=Radon(...)``).

        Returns
        -------
        BaseINR
            Fitted state at the prior, ``warm_start=True``: its next ``fit`` starts
            from the learned initialisation, in the prior's frame (coordinate box and
            value range).
        """
        check_is_fitted(self, "estimator_")
        return _started_from(self.estimator_, estimator, params)

    def save(self, path) -> Path:
        """Save the prior as a model file (read it back with :func:`load_prior`).

        Parameters
        ----------
        path : str or path-like
            Destination file.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.save(path)


def load_prior(path) -> LearnedInit:
    """A prior saved by :meth:`LearnedInit.save`, checked as every model file is.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    LearnedInit
        Fitted: :meth:`~LearnedInit.initialized` works; the meta-training history
        is not kept in the file.
    """
    from .persistence import load

    estimator = load(path)
    reason = prior_refusal(type(estimator))
    if reason is not None:
        raise ValueError(f"{path}: a {type(estimator).__name__} cannot be a prior: {reason}.")
    prior = LearnedInit(clone(estimator))
    prior.estimator_ = estimator
    prior.loss_curve_, prior.n_iter_, prior.n_signals_ = [], 0, 0
    return prior


def prior_refusal(cls) -> str | None:
    """Why estimators of ``cls`` cannot share one set of weights across signals (None:
    they can): the architecture's ``_prior_refusal``, declared where it is defined."""
    return getattr(cls, "_prior_refusal", None)


def _started_from(prior: BaseINR, estimator, params) -> BaseINR:
    """A clone of ``estimator`` (or of the prior's) holding the prior's fitted state."""
    base = prior if estimator is None else estimator
    if type(base) is not type(prior):
        raise ValueError(f"this prior is for {type(prior).__name__}; got a {type(base).__name__}.")
    started = clone(base).set_params(**params)
    started.set_params(warm_start=True)
    fitted = {k: v for k, v in vars(prior).items() if k.endswith("_") and not k.startswith("_")}
    vars(started).update(copy.deepcopy(fitted))
    # The structure the settings build must be the prior's weights' shapes.
    from ._core.network import build_network

    built = build_network(started, prior.n_features_in_, prior.n_outputs_)
    shapes = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    held = {k: tuple(v.shape) for k, v in prior.module_.state_dict().items()}
    if shapes != held:
        raise ValueError(
            f"this {type(prior).__name__} prior has another structure than the settings "
            "given (width, depth, levels, ...): use the prior's, or learn a prior for these."
        )
    return started


def _same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def _as_tasks(signals, operator=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The collection as ``(X, y2d)`` float pairs, checked to be of one kind; through
    ``operator``, measurement pairs only (an array would be read as an image's pixels)."""
    if isinstance(signals, np.ndarray) and signals.ndim >= 2:
        signals = list(signals)
    signals = list(signals)
    if not signals:
        raise ValueError("LearnedInit.fit needs at least one signal; got none.")
    if operator is not None and not all(isinstance(s, tuple) and len(s) == 2 for s in signals):
        raise ValueError(
            f"with operator={type(operator).__name__}(...) the collection holds what its "
            "fits take: (X, y) pairs of measurement coordinates and measurements "
            "(skinr.signals.to_coords(image) for block means)."
        )
    tasks = []
    for index, signal in enumerate(signals):
        if isinstance(signal, tuple) and len(signal) == 2:
            X = np.asarray(signal[0], dtype=np.float64)
            y = np.asarray(signal[1], dtype=np.float64)
        else:
            X, y = to_coords(np.asarray(signal, dtype=np.float64))
        y2d = y.reshape(len(y), -1)
        if X.ndim != 2 or len(X) != len(y2d) or not len(X):
            raise ValueError(
                f"signal {index}: X and y must hold the same, non-zero count of samples."
            )
        if not (np.isfinite(X).all() and np.isfinite(y2d).all()):
            raise ValueError(f"signal {index} holds NaN or infinity.")
        tasks.append((X, y2d))
    dims = {X.shape[1] for X, _ in tasks}
    channels = {y.shape[1] for _, y in tasks}
    if len(dims) > 1:
        raise ValueError(
            f"the signals have {sorted(dims)} coordinate dimensions; a prior learns from one kind."
        )
    if len(channels) > 1:
        raise ValueError(
            f"the signals have {sorted(channels)} channels; a prior learns from one channel count."
        )
    return tasks
