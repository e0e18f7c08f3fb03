"""The native per-cell kernels (skinr.nn._native) against torch's batched matmul."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import skinr
from skinr.nn import _native as native
from skinr.nn.layers import BatchedLinear

LIBRARY = native.kernel()
needs_kernel = pytest.mark.skipif(LIBRARY is None, reason="native kernels not built here")
needs_fast_kernel = pytest.mark.skipif(
    LIBRARY is None or LIBRARY.skinr_vector_length() < native.MIN_VECTOR_LENGTH,
    reason="BatchedLinear uses the kernels on AVX-512 builds only",
)


def lanes() -> int:
    return LIBRARY.skinr_vector_length()


def test_kernel_builds_where_a_compiler_is():
    """On Linux with a C compiler and PyPI's torch the kernels build (no silent fallback)."""
    if not sys.platform.startswith("linux") or shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler or not Linux")
    if os.environ.get("SKINR_NATIVE") == "0":
        pytest.skip("switched off by SKINR_NATIVE=0")
    assert LIBRARY is not None
    assert lanes() in (4, 8, 16)


def reference(x, weight, bias, scale):
    out = torch.bmm(x, weight) if bias is None else torch.baddbmm(bias, x, weight)
    return scale * out


# (cells, points, n_in, n_out): "v" is the machine's vector length, "2v" twice it.
LAYER_SHAPES = [
    (3, 16, 128, 128),  # the benchmark's hidden layer, 16 points per cell
    (5, 7, 13, "v"),  # rows and inputs that fill no tile
    (2, 1, 2, "2v"),  # a first layer on one point
    (4, 33, 40, "5v"),  # a column tile edge (5 vectors)
    (6, 5, "2v", 1),  # narrow: grey output layer
    (3, 18, "v", 3),  # narrow: RGB output layer, points past one lane group
    (1, 0, 8, "v"),  # no points
]


def resolve(size):
    if isinstance(size, str):
        return lanes() * (int(size[:-1]) if size[:-1] else 1)
    return size


@needs_kernel
@pytest.mark.parametrize("shape", LAYER_SHAPES)
@pytest.mark.parametrize("scale", [1.0, 30.0])
@pytest.mark.parametrize("with_bias", [True, False])
def test_forward_and_gradients_match_batched_matmul(shape, scale, with_bias):
    n_cells, n_points, n_in, n_out = (resolve(s) for s in shape)
    generator = torch.Generator().manual_seed(n_cells * 1000 + n_points)
    x = torch.randn(n_cells, n_points, n_in, generator=generator)
    weight = torch.randn(n_cells, n_in, n_out, generator=generator) / n_in**0.5
    bias = torch.randn(n_cells, 1, n_out, generator=generator) if with_bias else None
    assert native.fits(n_in, n_out, lanes())
    grad = torch.randn(n_cells, n_points, n_out, generator=generator)

    leaves = [t.clone().requires_grad_() for t in (x, weight) + ((bias,) if with_bias else ())]
    ours = native.grouped_linear(*leaves[:2], leaves[2] if with_bias else None, scale)
    ours.backward(grad)
    expected_leaves = [t.detach().clone().requires_grad_() for t in leaves]
    expected = reference(*expected_leaves[:2], expected_leaves[2] if with_bias else None, scale)
    expected.backward(grad)

    tolerance = dict(rtol=1e-4, atol=1e-4 * scale)
    torch.testing.assert_close(ours, expected, **tolerance)
    for mine, theirs in zip(leaves, expected_leaves, strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, **tolerance)


@needs_kernel
def test_input_gradient_skipped_when_not_needed():
    x = torch.randn(4, 16, 2)
    weight = torch.randn(4, 2, lanes(), requires_grad=True)
    native.grouped_linear(x, weight).sum().backward()
    assert x.grad is None and weight.grad is not None


@needs_fast_kernel
def test_falls_back_off_float32_and_for_unsupported_widths():
    weight = torch.randn(2, 8, lanes())
    assert not native.supports(torch.randn(2, 3, 8, dtype=torch.float64), weight.double())
    # an odd output width that is neither wide nor narrow-with-aligned-inputs
    assert not native.supports(torch.randn(2, 3, 7), torch.randn(2, 7, lanes() + 1))
    layer = BatchedLinear(2, 8, lanes(), generator=torch.Generator().manual_seed(0)).double()
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    torch.testing.assert_close(layer(x, scale=2.0), reference(x, layer.weight, layer.bias, 2.0))


@needs_fast_kernel
def test_autocast_keeps_baddbmm():
    """precision="bf16" autocasts baddbmm to bfloat16; the float32 kernels must step aside."""
    x, weight = torch.randn(2, 16, 16), torch.randn(2, 16, lanes())
    assert native.supports(x, weight)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not native.supports(x, weight)
        layer = BatchedLinear(2, 16, lanes())
        assert layer(x).dtype == torch.bfloat16


@needs_fast_kernel
def count_kernel_calls(monkeypatch) -> list:
    calls = []
    grouped_linear = native.grouped_linear

    def counted(*args, **kwargs):
        calls.append(args[1].shape)
        return grouped_linear(*args, **kwargs)

    monkeypatch.setattr(native, "grouped_linear", counted)
    return calls


@needs_fast_kernel
def test_batched_linear_groups_go_through_the_kernel(monkeypatch):
    calls = count_kernel_calls(monkeypatch)
    layer = BatchedLinear(6, 16, lanes(), generator=torch.Generator().manual_seed(1))
    groups = torch.tensor([4, 1, 4])
    x = torch.randn(3, 5, 16)
    got = layer(x, groups, scale=3.0)
    expected = reference(x, layer.weight[groups], layer.bias[groups], 3.0)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert calls == [(3, 16, lanes())]


@needs_fast_kernel
def test_ensemble_fit_native_matches_batched_matmul(monkeypatch, image_signal):
    """A whole EnsembleINR fit through the kernels follows the torch.baddbmm fit."""
    X, y, _ = image_signal
    params = dict(grid=4, width=2 * lanes(), depth=1, max_iter=30, random_state=0, device="cpu")
    calls = count_kernel_calls(monkeypatch)
    fitted = skinr.EnsembleINR(**params).fit(X, y)
    assert len(calls) >= 3 * 30  # first, hidden and output layer, every step
    monkeypatch.setattr(native, "supports", lambda x, weight: False)
    fallback = skinr.EnsembleINR(**params).fit(X, y)
    np.testing.assert_allclose(fitted.loss_curve_, fallback.loss_curve_, rtol=1e-3)
    np.testing.assert_allclose(fitted.predict(X), fallback.predict(X), atol=1e-3)
    assert fitted.loss_curve_[-1] < 0.5 * fitted.loss_curve_[0]


def test_switched_off_by_environment():
    code = "import skinr.nn._native as n; print(n.kernel() is None)"
    env = dict(os.environ, SKINR_NATIVE="0")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "True"


@needs_kernel
def test_build_caches_by_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SKINR_CACHE_DIR", str(tmp_path))
    compiler = shutil.which(os.environ.get("CC", "cc"))
    version = native._compiler_version(compiler)
    first = native._build(compiler, version)
    assert first.parent == tmp_path and first.exists()
    stamp = first.stat().st_mtime_ns
    assert native._build(compiler, version) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no partial files left


@needs_fast_kernel
@pytest.mark.skipif(shutil.which("c++") is None, reason="torch.compile needs a C++ compiler")
def test_compiled_fit_calls_the_kernels(monkeypatch, image_signal):
    """torch.compile keeps the kernels (custom operators) in its graph and trains as eager."""
    calls = []
    forward = LIBRARY.skinr_grouped_forward

    def counted(*args):
        calls.append(args[1:5])
        return forward(*args)

    monkeypatch.setattr(LIBRARY, "skinr_grouped_forward", counted)
    X, y, _ = image_signal
    params = dict(grid=2, width=lanes(), depth=1, max_iter=5, random_state=0, device="cpu")
    eager = skinr.EnsembleINR(**params, torch_compile=False).fit(X, y)
    eager_calls = len(calls)
    compiled = skinr.EnsembleINR(**params, torch_compile=True).fit(X, y)
    assert compiled.compiled_
    assert len(calls) - eager_calls >= 3 * 5  # three layers, five compiled steps
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-4)


def test_refuses_a_compiler_other_than_gcc(monkeypatch):
    """Clang's -fopenmp would load a second OpenMP runtime beside torch's libgomp."""
    monkeypatch.setattr(native, "_compiler_version", lambda compiler: "clang version 17.0.6\n")
    monkeypatch.setattr(native.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(native, "_libgomp_loaded", lambda: True)
    monkeypatch.delenv("SKINR_NATIVE", raising=False)
    monkeypatch.setattr(native.sys, "platform", "linux")
    built = []
    monkeypatch.setattr(native, "_build", lambda compiler, version: built.append(compiler))
    assert native.kernel.__wrapped__() is None
    assert built == []


# ------------------------------------------------------------------ hash encoding

HASH_LIBRARY = native.hash_kernel()
needs_hash_kernel = pytest.mark.skipif(HASH_LIBRARY is None, reason="native kernels not built here")


def test_hash_kernel_builds_where_the_grouped_kernels_do():
    assert (HASH_LIBRARY is None) == (LIBRARY is None)


@needs_hash_kernel
@pytest.mark.parametrize(
    ("n_dims", "levels"),
    [
        (1, dict(log2_table_size=6, base_resolution=4, finest_resolution=300)),
        (2, dict(log2_table_size=10, base_resolution=4, finest_resolution=100)),
        (3, dict(log2_table_size=12, base_resolution=2, finest_resolution=40)),
    ],
)
def test_hash_kernel_matches_the_torch_path(n_dims, levels):
    """Dense and hashed levels, points inside the domain and outside it (extrapolated)."""
    from skinr.nn.encodings import HashEncoding

    encoding = HashEncoding(
        n_dims, n_levels=6, **levels, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        encoding.table.normal_(generator=torch.Generator().manual_seed(1))
    assert encoding.hashed.any() and not encoding.hashed.all()
    coords = torch.rand(3000, n_dims, generator=torch.Generator().manual_seed(2)) * 2.4 - 1.2
    assert native.hash_supported(coords, encoding.table)
    ours = encoding(coords)
    theirs = encoding.torch_forward(coords)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    grad = torch.randn(ours.shape, generator=torch.Generator().manual_seed(3))
    (ours * grad).sum().backward()
    native_grad, encoding.table.grad = encoding.table.grad, None
    (theirs * grad).sum().backward()
    torch.testing.assert_close(native_grad, encoding.table.grad, atol=1e-3, rtol=1e-4)


def test_hash_kernel_declines_what_it_does_not_compute():
    table = torch.zeros(10, 2)
    assert not native.hash_supported(torch.zeros(3, 2, dtype=torch.float64), table)
    assert not native.hash_supported(torch.zeros(3, 2, requires_grad=True), table)
    assert not native.hash_supported(torch.zeros(3, 2), table.double())


def test_hash_kernel_switched_off_by_the_environment():
    code = "import skinr.nn._native as n; print(n.hash_kernel() is None)"
    env = dict(os.environ, SKINR_NATIVE="0")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "True"


# ------------------------------------------------------------------ the cache


@needs_hash_kernel
def test_a_corrupt_or_stale_cached_library_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SKINR_CACHE_DIR", str(tmp_path / "cache"))
    compiler = shutil.which(os.environ.get("CC", "cc"))
    cached = native._build(compiler, native._compiler_version(compiler), native.HASH_SOURCE)
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700

    def plant(content: bytes) -> None:  # a new file: the loaded one stays mapped intact
        planted = cached.with_suffix(".planted")
        planted.write_bytes(content)
        os.replace(planted, cached)

    plant(b"\x7fELF not a library")
    assert native.hash_kernel.__wrapped__() is not None  # rebuilt instead of crashing
    # A library without the expected symbols (another kernel under this name) too.
    plant(Path(LIBRARY._name).read_bytes())
    library = native.hash_kernel.__wrapped__()
    assert library is not None and hasattr(library, "skinr_hash_forward")


@needs_hash_kernel
@pytest.mark.parametrize("what", ["folder", "file"])
def test_a_cache_others_can_write_is_refused(tmp_path, monkeypatch, what):
    """A library planted in a shared cache would run its constructor in our process."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SKINR_CACHE_DIR", str(cache))
    compiler = shutil.which(os.environ.get("CC", "cc"))
    cached = native._build(compiler, native._compiler_version(compiler), native.HASH_SOURCE)
    (cache if what == "folder" else cached).chmod(0o777)
    loaded = []
    monkeypatch.setattr(native.ctypes, "CDLL", lambda *a, **k: loaded.append(a))
    assert native.hash_kernel.__wrapped__() is None
    assert loaded == []  # nothing was loaded from it


@needs_kernel
def test_a_build_under_a_group_umask_is_private_and_loads_again(tmp_path, monkeypatch):
    """Under umask 002 the library was built 0775, and every later process refused
    skinr's own cache (and ran without the kernels)."""
    monkeypatch.setenv("SKINR_CACHE_DIR", str(tmp_path / "cache"))
    compiler = shutil.which(os.environ.get("CC", "cc"))
    previous = os.umask(0o002)
    try:
        built = native._build(compiler, native._compiler_version(compiler))
    finally:
        os.umask(previous)
    assert built.stat().st_mode & 0o077 == 0
    native._check_private(built)  # what the next process checks before loading
