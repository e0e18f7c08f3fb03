"""Native CPU kernels for per-cell affine maps and the hash encoding, compiled on first use.

:class:`skinr.nn.layers.BatchedLinear` multiplies each cell's few points by the cell's own
weight. At 16 points per cell MKL's batched GEMM runs at about half its large-matrix
rate, which is the case EnsembleINR's fine grids live in; ``grouped_linear.c`` keeps
the output tile in registers instead (1.4-1.9x faster per product on AVX-512, more for
narrow output layers: ``benchmarks/native.py``). ``hash_encoding.c`` computes
:class:`skinr.nn.encodings.HashEncoding` and its table gradient point by point, where
PyTorch materialises every corner's coordinates, weights and slots.

The C file is compiled once per machine with the system's GCC (``$CC``, else ``cc``)
and OpenMP, as torch's own inductor compiles its kernels, into
``$SKINR_CACHE_DIR`` (default ``$XDG_CACHE_HOME/skinr`` or ``~/.cache/skinr``) under a
name keyed by the source, the compiler and the CPU, so a cache shared between machines
never loads code built for another CPU. Nothing here is required: without GCC, off
Linux, with a torch that runs another OpenMP than GNU's, or with ``SKINR_NATIVE=0``,
:func:`kernel` returns None and BatchedLinear uses ``torch.baddbmm`` (and
:func:`hash_kernel` None, and HashEncoding its torch path).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from ..._core.files import atomic_target

__all__ = [
    "fits",
    "grouped_linear",
    "hash_encoding",
    "hash_kernel",
    "hash_supported",
    "kernel",
    "supports",
    "vector_length",
]

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("grouped_linear.c")
HASH_SOURCE = Path(__file__).with_name("hash_encoding.c")
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC")


def cache_dir() -> Path:
    """Where compiled kernels are kept (``$SKINR_CACHE_DIR`` overrides)."""
    if os.environ.get("SKINR_CACHE_DIR"):
        return Path(os.environ["SKINR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "skinr"


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return f"{platform.machine()} {flags}"


def _libgomp_loaded() -> bool:
    """Whether GNU OpenMP is in the process (PyPI's Linux torch wheels bring it)."""
    try:
        with open("/proc/self/maps") as maps:
            return any("libgomp" in line for line in maps)
    except OSError:
        return False


def _compiler_version(compiler: str) -> str:
    done = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout


def _check_private(path: Path) -> None:
    """Raise OSError unless ``path`` is this user's and not writable by group or others.

    A library is code: one planted in a shared cache would run in every process that
    loads it, so skinr loads only from a folder and files nobody else can write.
    """
    info = path.lstat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise OSError(f"{path} belongs to another user; not loading native code from it")
    if info.st_mode & 0o022:
        raise OSError(f"{path} is writable by group or others; not loading native code from it")


def _build(compiler: str, version: str, source_path: Path = SOURCE) -> Path:
    """The compiled library's path, building it unless the cache already holds it.

    ``version`` is what ``compiler --version`` printed: part of the cache key.
    """
    source = source_path.read_bytes()
    parts = [source, " ".join(FLAGS).encode(), version.encode(), _cpu_signature().encode()]
    key = hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]
    target = cache_dir() / f"{source_path.stem}-{key}.so"
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(target.parent)
    if target.exists():
        _check_private(target)
        return target
    # Build beside the target and rename: processes building at once (joblib, Dask
    # workers) each finish with a whole file, never load a half-written one.
    # Private whatever the umask: a group-writable library would be refused (above) by
    # every later process, which would then run without native kernels.
    with atomic_target(target, mode=0o700, suffix=".so") as partial:
        subprocess.run(
            [compiler, *FLAGS, str(source_path), "-o", str(partial)],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
    return target


def _open(build, symbols: tuple[str, ...]) -> ctypes.CDLL | None:
    """The library ``build(compiler, version)`` compiles, or None where native code
    cannot run or is switched off.

    A cached library that does not load or lacks one of ``symbols`` (a corrupt or
    stale file) is deleted and built again, once.
    """
    if os.environ.get("SKINR_NATIVE", "1") == "0":
        return None
    if not sys.platform.startswith("linux") or not _libgomp_loaded():
        # The kernels' OpenMP must be the runtime torch already runs: a second one
        # would keep its own threads spinning against torch's.
        return None
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        return None
    try:
        version = _compiler_version(compiler)
        if "Free Software Foundation" not in version:
            # Clang's -fopenmp links LLVM's runtime, a second thread pool beside torch's.
            logger.info("skinr: native kernels need GCC (found %s); using torch", compiler)
            return None
        path = build(compiler, version)
        try:
            return _load(path, symbols)
        except (OSError, AttributeError) as error:
            logger.info("skinr: rebuilding %s (%s)", path.name, error)
            path.unlink(missing_ok=True)
            return _load_fresh(build(compiler, version), symbols)
    except (OSError, AttributeError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", "") or error
        logger.info("skinr: native kernels unavailable, using torch (%s)", detail)
        return None


def _load(path: Path, symbols: tuple[str, ...]) -> ctypes.CDLL:
    library = ctypes.CDLL(str(path))
    for symbol in symbols:
        getattr(library, symbol)  # AttributeError when missing
    return library


def _load_fresh(path: Path, symbols: tuple[str, ...]) -> ctypes.CDLL:
    """Load ``path`` under a new name: the dynamic loader hands back an object it
    already loaded from the same name (the stale library) instead of reading the file."""
    alias = path.with_name(f"{path.stem}-{os.getpid()}-{time.monotonic_ns()}.so")
    os.link(path, alias)
    try:
        return _load(alias, symbols)
    finally:
        alias.unlink(missing_ok=True)


GROUPED_SYMBOLS = (
    "skinr_grouped_forward",
    "skinr_grouped_weight_grad",
    "skinr_grouped_input_grad",
    "skinr_scratch_floats",
    "skinr_vector_length",
)
HASH_SYMBOLS = ("skinr_hash_forward", "skinr_hash_backward")


@lru_cache(maxsize=1)
def kernel() -> ctypes.CDLL | None:
    """The compiled kernel library, or None where it cannot be built or is switched off."""
    library = _open(lambda compiler, version: _build(compiler, version), GROUPED_SYMBOLS)
    if library is None:
        return None
    pointer, integer, real = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
    shape = [integer] * 5
    library.skinr_grouped_forward.argtypes = [*shape, *[pointer] * 4, real, pointer]
    library.skinr_grouped_weight_grad.argtypes = [*shape, *[pointer] * 3, real, pointer]
    library.skinr_grouped_input_grad.argtypes = [*shape, *[pointer] * 3, real, pointer]
    for function in (
        "skinr_grouped_forward",
        "skinr_grouped_weight_grad",
        "skinr_grouped_input_grad",
    ):
        getattr(library, function).restype = None
    library.skinr_scratch_floats.argtypes = [integer] * 3
    library.skinr_scratch_floats.restype = ctypes.c_long
    return library


def vector_length() -> int | None:
    """Floats per SIMD vector of the built kernels, or None without them.

    Read from a module global once :func:`kernel` has run, so code torch.compile
    traces can ask without calling into ctypes.
    """
    global _VECTOR_LENGTH
    if _VECTOR_LENGTH is None and not torch.compiler.is_compiling():
        library = kernel()
        _VECTOR_LENGTH = 0 if library is None else library.skinr_vector_length()
    return _VECTOR_LENGTH or None


_VECTOR_LENGTH: int | None = None


# The kernels beat MKL only where measured: AVX-512 (16 floats per vector). Built
# for AVX2 they tied MKL at 16 points per cell and lost at 256 on the development CPU
# (benchmarks/native.py's shapes, AVX2 build against MKL's AVX-512), so there, and on
# CPUs not measured at all, torch.baddbmm keeps the work; the tests still check them.
MIN_VECTOR_LENGTH = 16


def fits(n_in: int, n_out: int, lanes: int) -> bool:
    """Whether the kernels handle an ``n_in -> n_out`` layer at ``lanes`` floats per vector.

    Wide layers have ``n_out`` a multiple of ``lanes``; narrow ones (an output layer)
    ``n_out`` below it and ``n_in`` a multiple of it.
    """
    return n_out % lanes == 0 or (n_out < lanes and n_in % lanes == 0)


def supports(x: Tensor, weight: Tensor) -> bool:
    """Whether BatchedLinear should compute ``bmm(x, weight)`` through the kernels here.

    CPU, float32 without autocast, an AVX-512 build, and a layer the kernels
    :func:`fits`.
    """
    if x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if x.dim() != 3 or weight.dim() != 3 or x.shape[0] != weight.shape[0]:
        return False
    if torch.is_autocast_enabled("cpu"):
        return False  # bf16 autocast casts baddbmm's operands; the kernels are float32 only
    lanes = vector_length()
    if lanes is None or lanes < MIN_VECTOR_LENGTH:
        return False
    return fits(*weight.shape[-2:], lanes)


def _pointer(tensor: Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


def _shape_and_scratch(x: Tensor, weight: Tensor) -> tuple[tuple[int, ...], Tensor]:
    """The kernels' leading arguments and a per-thread work buffer."""
    threads = torch.get_num_threads()
    n_cells, n_points, n_in = x.shape
    n_out = weight.shape[-1]
    per_thread = kernel().skinr_scratch_floats(n_points, n_in, n_out)
    return (threads, n_cells, n_points, n_in, n_out), x.new_empty(threads * per_thread)


# Registered as torch operators (not an autograd.Function) so that torch.compile keeps
# them as calls in its graphs and fuses the elementwise work around them.
@torch.library.custom_op("skinr::grouped_linear", mutates_args=())
def _forward(x: Tensor, weight: Tensor, bias: Tensor | None, scale: float) -> Tensor:
    x, weight = x.contiguous(), weight.contiguous()
    bias = None if bias is None else bias.contiguous()
    shape, scratch = _shape_and_scratch(x, weight)
    out = x.new_empty(x.shape[0], x.shape[1], weight.shape[-1])
    kernel().skinr_grouped_forward(
        *shape,
        _pointer(x),
        _pointer(weight),
        _pointer(bias),
        _pointer(out),
        scale,
        _pointer(scratch),
    )
    return out


@_forward.register_fake
def _(x, weight, bias, scale):
    return x.new_empty(x.shape[0], x.shape[1], weight.shape[-1])


@torch.library.custom_op("skinr::grouped_linear_backward", mutates_args=())
def _backward(
    grad: Tensor, x: Tensor, weight: Tensor, scale: float, input_grad: bool
) -> tuple[Tensor, Tensor]:
    """``(dL/dx, dL/dweight)``; dL/dx is empty unless ``input_grad``."""
    library = kernel()
    grad, x, weight = grad.contiguous(), x.contiguous(), weight.contiguous()
    shape, scratch = _shape_and_scratch(x, weight)
    grad_x = torch.empty_like(x) if input_grad else x.new_empty(0)
    if input_grad:
        library.skinr_grouped_input_grad(
            *shape, _pointer(grad), _pointer(weight), _pointer(grad_x), scale, _pointer(scratch)
        )
    grad_weight = torch.empty_like(weight)
    library.skinr_grouped_weight_grad(
        *shape, _pointer(x), _pointer(grad), _pointer(grad_weight), scale, _pointer(scratch)
    )
    return grad_x, grad_weight


@_backward.register_fake
def _(grad, x, weight, scale, input_grad):
    return (torch.empty_like(x) if input_grad else x.new_empty(0)), torch.empty_like(weight)


def _setup_context(ctx, inputs, output):
    x, weight, bias, scale = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias, ctx.scale = bias is not None, scale


def _gradients(ctx, grad):
    x, weight = ctx.saved_tensors
    input_grad = ctx.needs_input_grad[0]
    grad_x, grad_weight = _backward(grad, x, weight, ctx.scale, input_grad)
    grad_bias = None
    if ctx.has_bias and ctx.needs_input_grad[2]:
        grad_bias = ctx.scale * grad.sum(dim=1, keepdim=True)
    return (grad_x if input_grad else None), grad_weight, grad_bias, None


_forward.register_autograd(_gradients, setup_context=_setup_context)


def grouped_linear(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, scale: float = 1.0
) -> Tensor:
    """``scale * (x[c] @ weight[c] + bias[c])`` for every cell ``c``.

    Call only where :func:`fits` holds (:func:`supports` also asks whether to).
    ``x`` is ``(n_cells, n_points, n_in)``, ``weight`` ``(n_cells, n_in, n_out)``,
    ``bias`` ``(n_cells, 1, n_out)`` or None.
    Differentiable once (no double backward).
    """
    return _forward(x, weight, bias, float(scale))


# ------------------------------------------------------------------ hash encoding


@lru_cache(maxsize=1)
def hash_kernel() -> ctypes.CDLL | None:
    """The hash-encoding library (``hash_encoding.c``), or None as for :func:`kernel`."""
    library = _open(lambda compiler, version: _build(compiler, version, HASH_SOURCE), HASH_SYMBOLS)
    if library is None:
        return None
    pointer, integer, size = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
    arguments = [integer, size, integer, integer, integer, *[pointer] * 8]
    for function in ("skinr_hash_forward", "skinr_hash_backward"):
        getattr(library, function).argtypes = arguments
        getattr(library, function).restype = None
    return library


def hash_supported(coords: Tensor, table: Tensor) -> bool:
    """Whether :func:`hash_encoding` should run here: CPU float32 coordinates that need
    no gradient, a float32 table, and the library built."""
    if coords.device.type != "cpu" or table.device.type != "cpu":
        return False
    if coords.dtype != torch.float32 or table.dtype != torch.float32 or coords.requires_grad:
        return False
    global _HASH_AVAILABLE
    if _HASH_AVAILABLE is None and not torch.compiler.is_compiling():
        _HASH_AVAILABLE = hash_kernel() is not None
    return bool(_HASH_AVAILABLE)


# Read from a module global once hash_kernel() has run, so code torch.compile traces can
# ask without calling into ctypes.
_HASH_AVAILABLE: bool | None = None


def _hash_call(function: str, coords, levels, values, out) -> None:
    cells, offsets, sizes, hashed, primes = levels
    n, d = coords.shape
    getattr(hash_kernel(), function)(
        torch.get_num_threads(),
        n,
        d,
        cells.shape[0],
        out.shape[-1] if function == "skinr_hash_backward" else values.shape[-1],
        _pointer(coords),
        _pointer(cells),
        _pointer(offsets),
        _pointer(sizes),
        _pointer(hashed),
        _pointer(primes),
        _pointer(values),
        _pointer(out),
    )


@torch.library.custom_op("skinr::hash_encoding", mutates_args=())
def _hash_forward(
    coords: Tensor,
    table: Tensor,
    cells: Tensor,
    offsets: Tensor,
    sizes: Tensor,
    hashed: Tensor,
    primes: Tensor,
) -> Tensor:
    levels = (cells, offsets, sizes, hashed.to(torch.uint8), primes)
    coords, table = coords.contiguous(), table.contiguous()
    out = coords.new_empty(coords.shape[0], cells.shape[0] * table.shape[1])
    _hash_call("skinr_hash_forward", coords, levels, table, out)
    return out


@_hash_forward.register_fake
def _(coords, table, cells, offsets, sizes, hashed, primes):
    return coords.new_empty(coords.shape[0], cells.shape[0] * table.shape[1])


@torch.library.custom_op("skinr::hash_encoding_backward", mutates_args=())
def _hash_backward(
    grad: Tensor,
    coords: Tensor,
    rows: int,
    cells: Tensor,
    offsets: Tensor,
    sizes: Tensor,
    hashed: Tensor,
    primes: Tensor,
) -> Tensor:
    features = grad.shape[1] // cells.shape[0]
    grad_table = grad.new_zeros(rows, features)
    levels = (cells, offsets, sizes, hashed.to(torch.uint8), primes)
    _hash_call("skinr_hash_backward", coords.contiguous(), levels, grad.contiguous(), grad_table)
    return grad_table


@_hash_backward.register_fake
def _(grad, coords, rows, cells, offsets, sizes, hashed, primes):
    return grad.new_empty(rows, grad.shape[1] // cells.shape[0])


def _hash_setup(ctx, inputs, output):
    coords, table, cells, offsets, sizes, hashed, primes = inputs
    ctx.save_for_backward(coords, cells, offsets, sizes, hashed, primes)
    ctx.rows = table.shape[0]


def _hash_gradients(ctx, grad):
    coords, cells, offsets, sizes, hashed, primes = ctx.saved_tensors
    grad_table = _hash_backward(grad, coords, ctx.rows, cells, offsets, sizes, hashed, primes)
    return None, grad_table, None, None, None, None, None


_hash_forward.register_autograd(_hash_gradients, setup_context=_hash_setup)


def hash_encoding(
    coords: Tensor,
    table: Tensor,
    cells: Tensor,
    offsets: Tensor,
    sizes: Tensor,
    hashed: Tensor,
    primes: Tensor,
) -> Tensor:
    """The multiresolution hash encoding of ``coords`` (``(n, d)`` in [-1, 1]).

    ``table`` holds every level's rows (``(rows, F)``); per level ``cells`` (cells per
    axis), ``offsets`` (first row), ``sizes`` (rows), ``hashed`` (bool); ``primes`` one
    per axis. Returns ``(n, L * F)``, differentiable in ``table``. The same arithmetic
    as :class:`skinr.nn.encodings.HashEncoding`'s torch path; call where
    :func:`hash_supported` holds.
    """
    return _hash_forward(coords, table, cells, offsets, sizes, hashed, primes)
