"""The optimisation loop, as plain functions over torch objects.

Nothing here knows about scikit-learn or about any architecture: the estimator hands
over a loss function of a batch of sample indices and an iterator of batches. Because
the loop is a plain function, a benchmark can compare it step for step with a
hand-written PyTorch loop.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = [
    "SCHEDULES",
    "TrainingResult",
    "iterate_batches",
    "make_optimizer",
    "make_scheduler",
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
    n_iter: int = 0
    stopped_early: bool = False
    interrupted: bool = False
    fit_time: float = 0.0

    @property
    def best_loss(self) -> float:
        return min(self.loss_curve) if self.loss_curve else math.inf


def make_optimizer(parameters: Iterable[Tensor], learning_rate: float) -> torch.optim.Optimizer:
    """Adam with the given learning rate and torch's other defaults."""
    return torch.optim.Adam(parameters, lr=learning_rate)


def make_scheduler(
    optimizer: torch.optim.Optimizer, schedule: str | None, max_iter: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-step scheduler following ``SCHEDULES[schedule]`` over ``max_iter`` steps."""
    if schedule is None or schedule == "constant":
        return None
    factor = SCHEDULES[schedule]
    span = max(max_iter - 1, 1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(min(step / span, 1.0)))


def iterate_batches(
    n_samples: int, batch_size: int | None, generator: torch.Generator, device: torch.device
) -> Iterator[Tensor | None]:
    """Endless batches of sample indices; ``None`` means "all samples".

    Mini-batches walk through a fresh random permutation per pass (no sample repeats
    within a pass); an incomplete tail batch is skipped so every step sees the same
    number of samples.
    """
    if batch_size is None or batch_size >= n_samples:
        while True:
            yield None
    while True:
        order = torch.randperm(n_samples, generator=generator).to(device)
        for start in range(0, n_samples - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def train(
    parameters: Iterable[Tensor],
    loss_fn: Callable[[Tensor | None], Tensor],
    batches: Iterator[Tensor | None],
    *,
    learning_rate: float,
    max_iter: int,
    schedule: str | None = None,
    tol: float = 0.0,
    n_iter_no_change: int | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> TrainingResult:
    """Minimise ``loss_fn`` with Adam for up to ``max_iter`` steps.

    Parameters
    ----------
    parameters : iterable of Tensor
        What the optimiser updates.
    loss_fn : callable
        ``loss_fn(batch) -> scalar Tensor`` for a batch from ``batches``.
    batches : iterator
        Yields one batch per step (see :func:`iterate_batches`).
    learning_rate, max_iter, schedule
        Adam's step size, the number of steps and an optional key of ``SCHEDULES``.
    tol, n_iter_no_change : float, int or None
        Stop when the loss has not fallen below ``best - tol`` for ``n_iter_no_change``
        consecutive steps; ``None`` never stops early.
    progress : callable or None
        Called as ``progress(step, loss)`` now and then.

    Returns
    -------
    TrainingResult
        The loss curve, the steps taken and why training ended. Ctrl-C ends training
        cleanly with a warning; the parameters keep what was learned.
    """
    optimizer = make_optimizer(parameters, learning_rate)
    scheduler = make_scheduler(optimizer, schedule, max_iter)
    result = TrainingResult()
    best, stale = math.inf, 0
    report_every = max(1, max_iter // 200)
    start = time.perf_counter()
    try:
        for step in range(max_iter):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(next(batches))
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            value = loss.item()
            result.loss_curve.append(value)
            result.n_iter = step + 1
            if progress is not None and (step % report_every == 0 or step + 1 == max_iter):
                progress(step + 1, value)
            if n_iter_no_change is not None:
                stale = 0 if value < best - tol else stale + 1
                best = min(best, value)
                if stale >= n_iter_no_change:
                    result.stopped_early = True
                    break
    except KeyboardInterrupt:
        result.interrupted = True
        warnings.warn(
            f"Training interrupted after {result.n_iter} of {max_iter} steps; "
            "the model keeps the weights learned so far.",
            RuntimeWarning,
            stacklevel=3,
        )
    result.fit_time = time.perf_counter() - start
    return result
