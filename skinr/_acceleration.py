"""Acceleration of a fit: torch.compile, reduced precision and the allocator.

Everything here changes how fast a training step runs, never what it computes (bf16
aside, which the ``precision`` parameter asks for); the loop in :mod:`skinr._training`
knows nothing of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
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
    "matmul_precision",
    "reuse_freed_memory",
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


_MALLOC_TUNED = False


def reuse_freed_memory() -> bool:
    """Let glibc recycle large freed blocks instead of returning them to the OS.

    glibc serves blocks above 32 MB with a fresh ``mmap`` and unmaps them when freed, so
    a tensor of that size allocated every training step (the weight gradient of a large
    ensemble) pays a page fault per 4 kB page, every step: writing it costs more than
    computing it. Raising the mmap and trim thresholds to 1 GiB keeps such blocks in the
    heap for reuse (what jemalloc and tcmalloc do; PyTorch's CPU tuning guide recommends
    them). The process then keeps its peak memory instead of returning it between steps.

    Opt-in, because the allocator is the whole process's (a user's Jupyter kernel or
    server), not skinr's: set the environment variable ``SKINR_MALLOC_TUNING=1``
    before the first fit. Done once per process, on Linux with glibc only. Returns
    whether it was applied.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if os.environ.get("SKINR_MALLOC_TUNING", "0") != "1" or not sys.platform.startswith("linux"):
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


def compile_network(forward: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``forward`` under ``torch.compile`` for batches whose shape may change.

    A streamed fit gathers each batch from numpy arrays outside the graph, so only the
    network is compiled. The grouping estimators pad each batch's cells to that batch's
    fullest cell, so shapes change from step to step; ``dynamic=None`` lets
    torch.compile switch to a shape-generic graph after the first change instead of
    recompiling for every new padding (a fixed-shape batch compiles once).
    """
    return torch.compile(with_own_compile_cache(forward), dynamic=None)
