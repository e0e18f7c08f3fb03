"""The optimisation loop, as plain functions over torch objects.

Nothing here knows about scikit-learn or about any architecture: the estimator hands
over a loss function of a batch of sample indices and an iterator of batches (see
:mod:`skinr._core.batches`), already accelerated as asked (:mod:`skinr._core.acceleration`).
Because the loop is a plain function, a benchmark can compare it step for step with a
hand-written PyTorch loop.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = [
    "SCHEDULES",
    "DivergenceGuard",
    "EarlyStopping",
    "HeldOutMonitor",
    "TrainingResult",
    "ctrl_c_between_steps",
    "joined_history",
    "loss_psnr",
    "make_optimizer",
    "make_scheduler",
    "progress_bar",
    "train",
]

# Learning-rate multipliers as a function of training progress in [0, 1].
SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant": lambda progress: 1.0,
    "cosine": lambda progress: 0.5 * (1.0 + math.cos(math.pi * progress)),
    "exponential": lambda progress: 0.1**progress,
}


@dataclass
class TrainingResult:
    """What a call to :func:`train` did."""

    loss_curve: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    n_iter: int = 0
    resumed_steps: int = 0
    stopped_early: bool = False
    out_of_time: bool = False
    interrupted: bool = False
    diverged: bool = False
    fit_time: float = 0.0
    restored_step: int | None = None

    @property
    def best_loss(self) -> float:
        return min(self.loss_curve) if self.loss_curve else math.inf


def _fused_adam_available(parameters: list[Tensor]) -> bool:
    """Fused Adam (one vectorised kernel per step) exists on CPU from torch 2.4 and on CUDA."""
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    devices = {p.device.type for p in parameters}
    floating = all(p.dtype in (torch.float32, torch.float64) for p in parameters)
    return floating and devices <= {"cpu", "cuda"} and (major, minor) >= (2, 4)


def make_optimizer(
    parameters: Iterable[Tensor], learning_rate: float, **adam_options
) -> torch.optim.Optimizer:
    """Adam with the given learning rate (and ``adam_options``, e.g. an architecture's
    paper's ``betas`` and ``eps``; torch's defaults otherwise), fused where available.

    The fused kernel computes the same update as the default one (to float rounding) in
    one pass over the parameters; for ensembles with millions of parameters the step
    takes half the time on a CPU.
    """
    parameters = list(parameters)
    fused = True if _fused_adam_available(parameters) else None
    return torch.optim.Adam(parameters, lr=learning_rate, fused=fused, **adam_options)


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: str | None,
    max_iter: int,
    clock: Callable[[], float] | None = None,
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-step scheduler following ``SCHEDULES[schedule]`` over ``max_iter`` steps, or
    over ``clock()`` (the share of a time budget spent) where that is further along."""
    if schedule is None or schedule == "constant":
        return None
    factor = SCHEDULES[schedule]
    span = max(max_iter - 1, 1)
    if clock is None:
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: factor(min(step / span, 1.0))
        )
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: factor(min(max(step / span, clock()), 1.0))
    )


@dataclass
class EarlyStopping:
    """Stop when the loss has not fallen below ``best - tol`` for ``patience`` steps.

    ``patience=None`` never stops; the bookkeeping still runs, so a resumed fit that
    replays its loss curve through :meth:`update` continues exactly where it was.
    """

    tol: float = 0.0
    patience: int | None = None
    best: float = math.inf
    stale: int = 0

    def update(self, loss: float) -> bool:
        """Record one step's loss; True when training should stop."""
        self.stale = 0 if loss < self.best - self.tol else self.stale + 1
        self.best = min(self.best, loss)
        return self.patience is not None and self.stale >= self.patience


def train(
    parameters: Iterable[Tensor],
    loss_fn: Callable[[Tensor | None], Tensor],
    batches: Iterator[Tensor | None],
    *,
    learning_rate: float,
    max_iter: int,
    max_time: float | None = None,
    schedule: str | None = None,
    tol: float = 0.0,
    n_iter_no_change: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    resume: dict | None = None,
    checkpoint: Callable[[dict], None] | None = None,
    checkpoint_every: int | None = None,
    monitor: Callable[[int], bool] | None = None,
    adam_options: dict | None = None,
) -> TrainingResult:
    """Minimise ``loss_fn`` with Adam for up to ``max_iter`` steps.

    Parameters
    ----------
    parameters : iterable of Tensor
        What the optimiser updates.
    loss_fn : callable
        ``loss_fn(batch) -> scalar Tensor`` for a batch from ``batches``.
    batches : iterator
        Yields one batch per step (see :func:`skinr._core.batches.iterate_batches`).
    learning_rate, max_iter, schedule
        Adam's step size, the number of steps and an optional key of ``SCHEDULES``.
    max_time : float or None
        Stop after the step during which this many seconds of training had passed
        (counted from this call; None: no limit). The schedule follows the steps
        (over ``max_iter``) or the time (over ``max_time``), whichever is further
        along, so a fit the clock stops ends annealed.
    tol, n_iter_no_change : float, int or None
        Stop when the loss has not fallen below ``best - tol`` for ``n_iter_no_change``
        consecutive steps; ``None`` never stops early.
    progress : callable or None
        Called as ``progress(step, loss)`` now and then.
    resume : dict or None
        A training state from ``checkpoint`` (keys ``optimizer``, ``scheduler``,
        ``loss_curve``) to continue from; the parameters must already hold the
        checkpoint's weights. The batches of the steps already taken are drawn and
        skipped, so a seeded ``batches`` continues exactly where it was.
    checkpoint, checkpoint_every : callable or None, int or None
        ``checkpoint(state)`` is called every ``checkpoint_every`` steps (not after the
        last one) and when training is interrupted, with the state ``resume`` takes.
    monitor : callable or None
        ``monitor(step) -> bool`` is called after every step's update (e.g. to score
        held-out samples now and then); True stops training early.
    adam_options : dict or None
        Adam's other settings (``betas``, ``eps``), passed to :func:`make_optimizer`.

    Returns
    -------
    TrainingResult
        The loss curve, the steps taken and why training ended. Ctrl-C ends training
        cleanly with a warning; the parameters keep what was learned.
    """
    parameters = list(parameters)
    optimizer = make_optimizer(parameters, learning_rate, **(adam_options or {}))
    clock = None
    if max_time is not None:
        # A fit the clock stops ends annealed: the schedule follows the time spent
        # where that is further along than the steps.
        def clock() -> float:
            return (time.perf_counter() - start) / max_time

    start = time.perf_counter()
    scheduler = make_scheduler(optimizer, schedule, max_iter, clock)
    stopping = EarlyStopping(tol, n_iter_no_change)
    guard = DivergenceGuard(parameters)
    result = TrainingResult()
    if resume is not None:
        _restore(resume, optimizer, scheduler, stopping, result, batches)

    def state() -> dict:
        return {
            "optimizer": optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "loss_curve": list(result.loss_curve),
            "learning_rates": list(result.learning_rates),
            "seconds": list(result.seconds),
        }

    report_every = max(1, max_iter // 200)
    # A resumed fit's clock continues from the checkpoint's last step.
    resumed_seconds = result.seconds[-1] if result.seconds else 0.0
    start = time.perf_counter()
    # True from the backward pass until the step is recorded: an interrupt landing
    # there (a second Ctrl-C) may leave the weights one update ahead of the record.
    updating = False
    try:
        with ctrl_c_between_steps() as ctrl_c:
            for step in range(result.n_iter, max_iter):
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(next(batches))
                value = loss.item()
                if not math.isfinite(value):
                    # The weights that produced it are already unusable: stop here,
                    # before an update spreads the NaN into Adam's moments; restore a copy.
                    result.diverged = True
                    break
                # The weights that produced this loss, before the update moves them.
                guard.record(value, step + 1)
                updating = True
                loss.backward()
                step_learning_rate = optimizer.param_groups[0]["lr"]
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                elapsed = time.perf_counter() - start + resumed_seconds
                result.loss_curve.append(value)
                result.learning_rates.append(step_learning_rate)
                result.seconds.append(elapsed)
                result.n_iter = step + 1
                updating = False
                if ctrl_c.is_set():
                    raise KeyboardInterrupt
                if progress is not None and (step % report_every == 0 or step + 1 == max_iter):
                    progress(step + 1, value)
                if stopping.update(value) or (monitor is not None and monitor(step + 1)):
                    result.stopped_early = True
                    break
                if max_time is not None and time.perf_counter() - start >= max_time:
                    result.out_of_time = True
                    break
                if checkpoint is not None and _checkpoint_due(step + 1, checkpoint_every, max_iter):
                    checkpoint(state())
    except KeyboardInterrupt:
        result.interrupted = True
        if checkpoint is not None and not updating:
            checkpoint(state())
        warnings.warn(
            f"Training interrupted after {result.n_iter} of {max_iter} steps; "
            "the model keeps the weights learned so far"
            + ("" if checkpoint is None or not updating else " (the last checkpoint stands)")
            + ".",
            RuntimeWarning,
            stacklevel=3,
        )
    result.restored_step = guard.restore_if_diverged(result)
    result.fit_time = time.perf_counter() - start
    return result


@contextlib.contextmanager
def ctrl_c_between_steps():
    """While training, the first Ctrl-C (SIGINT) only sets a flag that the loop reads
    after a step is recorded, so an interruption never lands inside an update and the
    checkpoint it writes matches the weights; a second Ctrl-C interrupts at once.
    Signal handlers belong to the main thread: elsewhere, KeyboardInterrupt is left as
    it is. A process that ignores SIGINT keeps ignoring it."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        # The process was started to ignore Ctrl-C (nohup, a shell's background job):
        # training ignores it too rather than turning it into a stop.
        yield requested
        return

    def request_stop(signum, frame):
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    try:
        signal.signal(signal.SIGINT, request_stop)
    except ValueError:  # not the main interpreter's main thread
        yield requested
        return
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


class DivergenceGuard:
    """Undo a blow-up at the end of training.

    Adam can leave a minimum it has fitted almost exactly: once the gradients are
    tiny, its normalised steps are not, and the loss jumps by orders of magnitude and
    stays there (seen: LocalGlobalSIREN on 32 x 32 reaches 1e-12 at step 543, 0.4 from
    step 800). The guard copies the weights whenever their loss has halved since the
    last copy (a logarithmic number of copies over a fit) and, when training ends with
    a loss more than ``FACTOR`` times the copy's and back above ``RELAPSE`` of the first
    step's (a blow-up, not the jitter of a converged fit), puts the copy back.

    :meth:`record` is called between a step's forward pass and its update, so the copy
    holds exactly the weights whose loss labels it. The copies go into buffers
    allocated once, so a 17.7 M-parameter ensemble pays one page fault per page per fit,
    not per copy.
    """

    FACTOR = 100.0
    RELAPSE = 0.01

    def __init__(self, parameters: list[Tensor]) -> None:
        self.parameters = parameters
        self.loss, self.step, self.weights = math.inf, 0, None

    def record(self, loss: float, step: int) -> None:
        """Copy the current weights if ``loss`` (theirs, after ``step`` updates) is
        under half the last copy's."""
        if not loss < 0.5 * self.loss:
            return
        self.loss, self.step = loss, step
        with torch.no_grad():
            if self.weights is None:
                self.weights = [p.detach().clone() for p in self.parameters]
            else:
                torch._foreach_copy_(self.weights, [p.detach() for p in self.parameters])

    def restore_if_diverged(self, result: TrainingResult) -> int | None:
        """Restore the copy if training ended far above it, or on a non-finite loss;
        its step, or None."""
        if result.diverged:
            return self._restore_after_non_finite(result)
        if result.interrupted or self.weights is None:
            return None
        final_loss = result.loss_curve[-1]
        threshold = max(self.FACTOR * self.loss, self.RELAPSE * result.loss_curve[0])
        if not final_loss > threshold:
            return None
        self._put_back()
        warnings.warn(
            f"Training diverged: the loss ended at {final_loss:.3g}, more than "
            f"{self.FACTOR:g}x the {self.loss:.3g} reached at step {self.step}; the model "
            f"keeps the weights of step {self.step} (loss {self.loss:.6g}). A lower "
            "learning_rate, or early_stopping, avoids the blow-up.",
            RuntimeWarning,
            stacklevel=3,
        )
        return self.step

    def _put_back(self) -> None:
        with torch.no_grad():
            for parameter, saved in zip(self.parameters, self.weights, strict=True):
                parameter.copy_(saved)

    def _restore_after_non_finite(self, result: TrainingResult) -> int | None:
        step = result.n_iter + 1
        if self.weights is None:
            raise FloatingPointError(
                f"The loss was not finite at step {step}, before any finite step: the "
                "data or the initial weights overflow float32 (check y's range, or lower "
                "the structure's frequencies)."
            )
        self._put_back()
        warnings.warn(
            f"Training diverged: the loss was not finite at step {step}; training stopped "
            f"there and the model keeps the weights of step {self.step} (loss "
            f"{self.loss:.6g}). A lower learning_rate avoids it.",
            RuntimeWarning,
            stacklevel=3,
        )
        return self.step


class HeldOutMonitor:
    """Early stopping on held-out samples, with the best weights kept.

    Every ``every`` steps, scores ``module`` by the mean squared error of
    ``evaluate()`` (predictions at the held-out coordinates) against ``values``;
    keeps a copy of the weights whenever the error is the lowest so far, and asks to
    stop when it has not fallen below ``best - tol`` for ``patience`` scorings.
    :meth:`restore` puts the best weights back.
    """

    def __init__(self, module, evaluate, values, *, every: int, patience: int, tol: float):
        self.module, self.evaluate, self.values, self.every = module, evaluate, values, every
        self.stopping = EarlyStopping(tol, patience)
        self.errors: list[float] = []
        self.best_state: dict | None = None

    def __call__(self, step: int) -> bool:
        if step % self.every:
            return False
        with torch.no_grad():
            error = float(torch.mean((self.evaluate() - self.values) ** 2))
        if not self.errors or error < min(self.errors):
            self.best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        self.errors.append(error)
        return self.stopping.update(error)

    def restore(self) -> None:
        """Load the weights of the best scoring (no-op before the first)."""
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)


def _checkpoint_due(n_steps: int, every: int | None, max_iter: int) -> bool:
    """Every ``every`` steps, but not after the last (the fit then ends anyway)."""
    return bool(every) and n_steps < max_iter and n_steps % every == 0


def _restore(resume, optimizer, scheduler, stopping, result, batches) -> None:
    """Continue from a checkpoint's training state: optimiser, schedule, loss curve,
    early stopping, and the batches already drawn."""
    optimizer.load_state_dict(resume["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(resume["scheduler"])
    result.loss_curve = [float(v) for v in resume["loss_curve"]]
    result.n_iter = result.resumed_steps = len(result.loss_curve)
    # Checkpoints written before the history was kept lack these: unknown, not zero.
    for key in ("learning_rates", "seconds"):
        values = [float(v) for v in resume.get(key, ())]
        setattr(result, key, values if len(values) == result.n_iter else [math.nan] * result.n_iter)
    for value in result.loss_curve:
        stopping.update(value)
    for _ in range(result.n_iter):
        next(batches)


def loss_psnr(loss, y_scale: float, peak: float):
    """Training PSNR (dB, peak ``peak``) of a loss measured on targets scaled by
    ``1 / y_scale``; a float or an array of losses."""
    import numpy as np

    mse = np.maximum(np.asarray(loss, dtype=np.float64), 1e-30) * y_scale**2
    return 10 * np.log10(peak**2 / mse)


def progress_bar(name: str, max_iter: int, y_scale: float, peak: float, compiling: bool):
    """A tqdm bar showing loss and training PSNR, as ``train``'s ``progress`` callback.

    A compiled fit's first step includes the one-off compile (seconds to a minute):
    the bar says so, and a new bar takes over after that step so that its rate and
    remaining time describe training, not compilation.
    """
    from tqdm.auto import tqdm

    bars = [
        tqdm(
            total=max_iter, desc=f"{name} (compiling, one-off)" if compiling else name, unit="step"
        )
    ]

    def update(step: int, loss: float) -> None:
        if compiling and len(bars) == 1:
            bars[0].close()
            bars.append(tqdm(total=max_iter, initial=step, desc=name, unit="step"))
        bar = bars[-1]
        bar.set_postfix(loss=f"{loss:.3g}", psnr=f"{float(loss_psnr(loss, y_scale, peak)):.2f}")
        bar.update(step - bar.n)
        if step == max_iter:
            bar.refresh()  # tqdm rate-limits redraws; always show the final state

    update.close = lambda: bars[-1].close()  # type: ignore[attr-defined]
    return update


def joined_history(previous: dict | None, result: TrainingResult) -> dict:
    """``history_`` of a fit: the steps of ``result`` after those of a warm start's
    ``previous`` history, with step numbers and seconds continuing from it."""
    history = {"step": [], "loss": [], "learning_rate": [], "seconds": []}
    if previous is not None:
        history = {key: list(values) for key, values in previous.items()}
    first_step = len(history["step"]) + 1
    elapsed = history["seconds"][-1] if history["seconds"] else 0.0
    history["step"] += list(range(first_step, first_step + len(result.loss_curve)))
    history["loss"] += list(result.loss_curve)
    history["learning_rate"] += list(result.learning_rates)
    history["seconds"] += [elapsed + seconds for seconds in result.seconds]
    return history
