"""The optimisation loop, as plain functions over torch objects.

Nothing here knows about scikit-learn or about any architecture: the estimator hands
over a loss function of a batch of sample indices and an iterator of batches. Because
the loop is a plain function, a benchmark can compare it step for step with a
hand-written PyTorch loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = [
    "PRECISIONS",
    "SCHEDULES",
    "TrainingResult",
    "accelerate",
    "cpp_compiler_available",
    "iterate_batches",
    "make_optimizer",
    "make_scheduler",
    "matmul_precision",
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


def _fused_adam_available(parameters: list[Tensor]) -> bool:
    """Fused Adam (one vectorised kernel per step) exists on CPU from torch 2.4 and on CUDA."""
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    devices = {p.device.type for p in parameters}
    floating = all(p.dtype in (torch.float32, torch.float64) for p in parameters)
    return floating and devices <= {"cpu", "cuda"} and (major, minor) >= (2, 4)


def make_optimizer(parameters: Iterable[Tensor], learning_rate: float) -> torch.optim.Optimizer:
    """Adam with the given learning rate and torch's other defaults, fused where available.

    The fused kernel computes the same update as the default one (to float rounding) in
    one pass over the parameters; for ensembles with millions of parameters the step
    takes half the time on a CPU.
    """
    parameters = list(parameters)
    fused = True if _fused_adam_available(parameters) else None
    return torch.optim.Adam(parameters, lr=learning_rate, fused=fused)


PRECISIONS = ("float32", "tf32", "bf16")


def accelerate(
    loss_fn: Callable[[Tensor | None], Tensor],
    device: torch.device,
    *,
    precision: str = "float32",
    torch_compile: bool = False,
    fall_back: bool = False,
) -> Callable[[Tensor | None], Tensor]:
    """``loss_fn`` under bf16 autocast and/or ``torch.compile``, as asked.

    bf16 runs the forward pass's matmuls in bfloat16 (autocast) and returns the loss in
    float32; the weights and Adam's state stay float32. ``torch_compile`` compiles the
    whole loss (forward and, through AOTAutograd, backward) once per batch shape. With
    ``fall_back``, a compilation that fails (no working C++ compiler, an unsupported
    operation) warns and trains eagerly instead of raising.
    """
    wrapped = loss_fn
    if precision == "bf16":

        def wrapped(batch: Tensor | None) -> Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = loss_fn(batch)
            return loss.float()

    if not torch_compile:
        return wrapped
    compiled = torch.compile(wrapped, dynamic=False)
    if not fall_back:
        return compiled
    # Compilation happens lazily, on the first call with each kind of batch (the whole
    # signal or a sampled batch); only those calls may fall back.
    compiled_kinds: set[bool] = set()
    current = compiled

    def guarded(batch: Tensor | None) -> Tensor:
        nonlocal current
        kind = batch is None
        if current is wrapped or kind in compiled_kinds:
            return current(batch)
        try:
            loss = current(batch)
        except Exception as error:
            warnings.warn(
                f"torch.compile failed ({type(error).__name__}: {str(error)[:200]}); "
                "training continues without it. Set torch_compile=False to skip the attempt.",
                RuntimeWarning,
                stacklevel=2,
            )
            current = wrapped
            return wrapped(batch)
        compiled_kinds.add(kind)
        return loss

    return guarded


def cpp_compiler_available() -> bool:
    """Whether torch.compile's CPU backend can find a C++ compiler here."""
    import shutil

    candidates = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    return not sys.platform.startswith("win") and any(c and shutil.which(c) for c in candidates)


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """Allow TF32 matmuls and convolutions (CUDA Ampere and newer) while inside.

    On other devices TF32 does not exist and nothing changes.
    """
    if precision != "tf32":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


_MALLOC_TUNED = False


def reuse_freed_memory() -> bool:
    """Let glibc recycle large freed blocks instead of returning them to the OS.

    glibc serves blocks above 32 MB with a fresh ``mmap`` and unmaps them when freed, so
    a tensor of that size allocated every training step (the weight gradient of a large
    ensemble) pays a page fault per 4 kB page, every step: writing it costs more than
    computing it. Raising the mmap and trim thresholds to 1 GiB keeps such blocks in the
    heap for reuse (what jemalloc and tcmalloc do; PyTorch's CPU tuning guide recommends
    them). The process then keeps its peak memory instead of returning it between steps.
    Done once per process, on Linux with glibc only; set the environment variable
    ``SKINR_MALLOC_TUNING=0`` to leave malloc alone. Returns whether it was applied.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if os.environ.get("SKINR_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc
        return False
    m_trim_threshold, m_mmap_threshold, limit = -1, -3, 1 << 30
    _MALLOC_TUNED = bool(mallopt(m_mmap_threshold, limit)) and bool(
        mallopt(m_trim_threshold, limit)
    )
    return _MALLOC_TUNED


def make_scheduler(
    optimizer: torch.optim.Optimizer, schedule: str | None, max_iter: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-step scheduler following ``SCHEDULES[schedule]`` over ``max_iter`` steps."""
    if schedule is None or schedule == "constant":
        return None
    factor = SCHEDULES[schedule]
    span = max(max_iter - 1, 1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(min(step / span, 1.0)))


# Above this many samples a pass's order comes from a keyed permutation computed per
# batch instead of a stored ``randperm`` (8 bytes per sample: 625 MB for a 78 M-sample
# video), so sampling memory follows the batch, not the signal.
RANDPERM_LIMIT = 1 << 24


class KeyedPermutation:
    """A pseudo-random permutation of ``range(n)``, evaluated for any indices on demand.

    A balanced Feistel network (6 rounds, keys from ``generator``) permutes the smallest
    even power-of-two domain holding ``n``; values that land at or above ``n`` are
    mapped again until they fall inside (cycle walking), which keeps it a bijection on
    ``range(n)``. The domain is at most 4 n, so few extra rounds are needed.
    """

    ROUNDS = 6

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n = n
        self.half_bits = max(1, (max(n - 1, 1).bit_length() + 1) // 2)
        self.mask = (1 << self.half_bits) - 1
        self.keys = torch.randint(0, 1 << 31, (self.ROUNDS,), generator=generator).tolist()

    def _once(self, x: Tensor) -> Tensor:
        left, right = x >> self.half_bits, x & self.mask
        for key in self.keys:
            # An integer hash of (right, key), reduced to half_bits bits.
            mixed = (right * 0x2545F491 + key) & 0xFFFFFFFF
            mixed = (mixed ^ (mixed >> 15)) * 0x2C1B3C6D & 0xFFFFFFFF
            mixed = (mixed ^ (mixed >> 12)) & self.mask
            left, right = right, left ^ mixed
        return (left << self.half_bits) | right

    def __call__(self, index: Tensor) -> Tensor:
        out = self._once(index)
        outside = out >= self.n
        while outside.any():
            out[outside] = self._once(out[outside])
            outside = out >= self.n
        return out


def iterate_batches(
    n_samples: int, batch_size: int | None, generator: torch.Generator, device: torch.device
) -> Iterator[Tensor | None]:
    """Endless batches of sample indices; ``None`` means "all samples".

    Mini-batches walk through a fresh random permutation per pass (no sample repeats
    within a pass); an incomplete tail batch is skipped so every step sees the same
    number of samples. Above ``RANDPERM_LIMIT`` samples the permutation is a
    :class:`KeyedPermutation`, computed batch by batch.
    """
    if batch_size is None or batch_size >= n_samples:
        while True:
            yield None
    while True:
        if n_samples <= RANDPERM_LIMIT:
            order = torch.randperm(n_samples, generator=generator).to(device)
            for start in range(0, n_samples - batch_size + 1, batch_size):
                yield order[start : start + batch_size]
        else:
            permutation = KeyedPermutation(n_samples, generator)
            for start in range(0, n_samples - batch_size + 1, batch_size):
                yield permutation(torch.arange(start, start + batch_size)).to(device)


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
    resume: dict | None = None,
    checkpoint: Callable[[dict], None] | None = None,
    checkpoint_every: int | None = None,
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
    resume : dict or None
        A training state from ``checkpoint`` (keys ``optimizer``, ``scheduler``,
        ``loss_curve``) to continue from; the parameters must already hold the
        checkpoint's weights. The batches of the steps already taken are drawn and
        skipped, so a seeded ``batches`` continues exactly where it was.
    checkpoint, checkpoint_every : callable or None, int or None
        ``checkpoint(state)`` is called every ``checkpoint_every`` steps (not after the
        last one) and when training is interrupted, with the state ``resume`` takes.

    Returns
    -------
    TrainingResult
        The loss curve, the steps taken and why training ended. Ctrl-C ends training
        cleanly with a warning; the parameters keep what was learned.
    """
    reuse_freed_memory()
    optimizer = make_optimizer(parameters, learning_rate)
    scheduler = make_scheduler(optimizer, schedule, max_iter)
    result = TrainingResult()
    best, stale = math.inf, 0
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resume["scheduler"])
        result.loss_curve = [float(v) for v in resume["loss_curve"]]
        result.n_iter = len(result.loss_curve)
        for value in result.loss_curve:  # replay early stopping's bookkeeping
            stale = 0 if value < best - tol else stale + 1
            best = min(best, value)
        for _ in range(result.n_iter):
            next(batches)

    def state() -> dict:
        return {
            "optimizer": optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "loss_curve": list(result.loss_curve),
        }

    report_every = max(1, max_iter // 200)
    start = time.perf_counter()
    try:
        for step in range(result.n_iter, max_iter):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(next(batches))
            loss.backward()
            value = loss.item()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            # Recorded right after the update, so an interruption finds them consistent.
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
            if checkpoint is not None and checkpoint_every and step + 1 < max_iter:
                if (step + 1) % checkpoint_every == 0:
                    checkpoint(state())
    except KeyboardInterrupt:
        result.interrupted = True
        if checkpoint is not None:
            checkpoint(state())
        warnings.warn(
            f"Training interrupted after {result.n_iter} of {max_iter} steps; "
            "the model keeps the weights learned so far.",
            RuntimeWarning,
            stacklevel=3,
        )
    result.fit_time = time.perf_counter() - start
    return result
