"""Acceleration of a fit: torch.compile, reduced precision and the allocator.

Everything here changes how fast a training step runs, never what it computes (bf16
aside, which the ``precision`` parameter asks for); the loop in :mod:`skinr._core.loop`
knows nothing of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator

import torch
from torch import Tensor

__all__ = [
    "PRECISIONS",
    "accelerate",
    "compile_network",
    "cpp_compiler_available",
    "malloc_tuning_wanted",
    "matmul_precision",
    "recycled_memory",
]

PRECISIONS = ("float32", "tf32", "bf16")


def accelerate(
    loss_fn: Callable[[Tensor | None], Tensor],
    device: torch.device,
    *,
    precision: str = "float32",
    torch_compile: bool = False,
    fall_back: bool = False,
    graph_key: Hashable | None = None,
) -> Callable[[Tensor | None], Tensor]:
    """``loss_fn`` under bf16 autocast and/or ``torch.compile``, as asked.

    bf16 runs the forward pass's matmuls in bfloat16 (autocast) and returns the loss in
    float32; the weights and Adam's state stay float32. ``torch_compile`` compiles the
    whole loss (forward and, through AOTAutograd, backward) once per batch shape. With
    ``fall_back``, a compilation that fails (no working C++ compiler, an unsupported
    operation) warns and trains eagerly instead of raising. Fits with equal
    ``graph_key`` share compiled graphs (:func:`with_own_compile_cache`).
    """
    wrapped = loss_fn
    if precision == "bf16":

        def wrapped(batch: Tensor | None) -> Tensor:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = loss_fn(batch)
            return loss.float()

    if not torch_compile:
        return wrapped
    compiled = torch.compile(with_own_compile_cache(wrapped, graph_key), dynamic=False)
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


# Code copies shared by fits of the same key (see with_own_compile_cache), oldest first.
_SHARED_CODE: OrderedDict[Hashable, types.CodeType] = OrderedDict()
_SHARED_CODE_KEYS = 32


def with_own_compile_cache(fn: Callable, key: Hashable | None = None) -> Callable:
    """``fn`` with a code object of its own, so torch.compile caches its graphs apart.

    torch.compile caches graphs per code object and stops compiling one after
    ``torch._dynamo.config.recompile_limit`` (8) graphs. Every fit's loss is a closure
    over the same source, so without a copy the ninth differently shaped fit in a
    process (other estimators, signal sizes, widths) warned and trained eagerly. Fits
    given equal ``key`` (same architecture, shapes and precision) share one copy, so a
    search over values torch.compile does not specialise on (omega_0, the learning
    rate) compiles once; ``key=None`` gives a copy of this call's own, dropped with it.
    The last ``_SHARED_CODE_KEYS`` keys are kept. Callables that are neither functions
    nor bound methods pass through unchanged.
    """
    if isinstance(fn, types.MethodType):
        return types.MethodType(with_own_compile_cache(fn.__func__, key), fn.__self__)
    if not isinstance(fn, types.FunctionType):
        return fn
    if key is None:
        code = fn.__code__.replace()
    else:
        shared_key = (fn.__code__, key)
        code = _SHARED_CODE.pop(shared_key, None) or fn.__code__.replace()
        _SHARED_CODE[shared_key] = code
        while len(_SHARED_CODE) > _SHARED_CODE_KEYS:
            _SHARED_CODE.popitem(last=False)
    copy = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__, copy.__qualname__ = fn.__kwdefaults__, fn.__qualname__
    return copy


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


_MALLOC_LOCK = threading.Lock()
_MALLOC_USERS = 0
# glibc's mallopt parameters and the values skinr sets while training.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRAINING_THRESHOLD = 1 << 30
# What glibc's own dynamic rule reaches in a process that has freed a block of 32 MB or
# more (the mmap threshold rises to the freed block's size, capped at 32 MiB on 64-bit
# systems, and the trim threshold to twice that): where a fit leaves them afterwards.
_AFTER_MMAP_THRESHOLD = 32 << 20
_AFTER_TRIM_THRESHOLD = 64 << 20
# The user's own malloc settings, which skinr leaves alone.
_GLIBC_ENVIRONMENT = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "GLIBC_TUNABLES",
    "LD_PRELOAD",
)


def _glibc():
    """glibc's ``mallopt`` and ``malloc_trim``, or None off glibc (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None


def malloc_tuning_wanted() -> bool:
    """Whether a fit tunes glibc's allocator: on Linux with glibc, unless
    ``SKINR_MALLOC_TUNING=0`` or the user set malloc up themselves (a ``MALLOC_*_``
    threshold, ``GLIBC_TUNABLES``, or another allocator through ``LD_PRELOAD``)."""
    if os.environ.get("SKINR_MALLOC_TUNING", "1") == "0":
        return False
    if any(os.environ.get(name) for name in _GLIBC_ENVIRONMENT):
        return False
    return _glibc() is not None


@contextlib.contextmanager
def recycled_memory() -> Iterator[bool]:
    """While inside (a fit's training loop), let glibc recycle large freed blocks
    instead of returning them to the OS; yields whether it did.

    glibc serves blocks above its mmap threshold (at most 32 MB) with a fresh ``mmap``
    and unmaps them when freed, so a tensor of that size allocated every training step
    (the weight gradient of a 1024-cell ensemble: 64 MB) pays a page fault per 4 kB
    page, every step, and its release another: writing it costs more than computing
    it (EnsembleINR's paper configuration stepped 1.5x slower). Inside, the mmap and
    trim thresholds are 1 GiB, so such blocks stay in the heap for reuse (what
    jemalloc and tcmalloc do; PyTorch's CPU tuning guide recommends them).

    The allocator is the whole process's (a user's Jupyter kernel or server), so the
    tuning lasts only while some fit trains: when the last one leaves, freed memory is
    returned to the OS (``malloc_trim``) and the thresholds are left where glibc's
    own rule leaves a process that has freed a block of 32 MB or more (mmap 32 MiB,
    trim 64 MiB). ``SKINR_MALLOC_TUNING=0``, a ``MALLOC_*_`` variable, ``GLIBC_TUNABLES``
    or an ``LD_PRELOAD``-ed allocator leave malloc alone. Threads fitting at once share
    one tuning.
    """
    global _MALLOC_USERS
    functions = _glibc() if malloc_tuning_wanted() else None
    if functions is None:
        yield False
        return
    mallopt, malloc_trim = functions
    with _MALLOC_LOCK:
        if _MALLOC_USERS == 0:
            mallopt(_M_MMAP_THRESHOLD, _TRAINING_THRESHOLD)
            mallopt(_M_TRIM_THRESHOLD, _TRAINING_THRESHOLD)
        _MALLOC_USERS += 1
    try:
        yield True
    finally:
        with _MALLOC_LOCK:
            _MALLOC_USERS -= 1
            if _MALLOC_USERS == 0:
                mallopt(_M_MMAP_THRESHOLD, _AFTER_MMAP_THRESHOLD)
                mallopt(_M_TRIM_THRESHOLD, _AFTER_TRIM_THRESHOLD)
                malloc_trim(0)


def compile_network(forward: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``forward`` under ``torch.compile`` for batches whose shape may change.

    A streamed fit gathers each batch from numpy arrays outside the graph, so only the
    network is compiled. The grouping estimators pad each batch's cells to that batch's
    fullest cell, so shapes change from step to step; ``dynamic=None`` lets
    torch.compile switch to a shape-generic graph after the first change instead of
    recompiling for every new padding (a fixed-shape batch compiles once).
    """
    return torch.compile(with_own_compile_cache(forward), dynamic=None)
