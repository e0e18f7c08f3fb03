"""skinr's native per-cell kernels against torch's batched matmul, product by product.

Run:  python benchmarks/native.py        (~1 min on 2 CPU cores)
      python benchmarks/native.py --quick    (smoke test: small shapes, writes nothing)
Writes docs/benchmarks/native.md.

For each layer shape (cells, points per cell, n_in, n_out): median wall time of the
forward product ``baddbmm(b, x, W)``, the input gradient ``G W^T`` and the weight
gradient ``x^T G``, each through skinr's kernels and through torch (MKL), in one
process, alternating. Fresh output tensors every call, as in training, with glibc's
large-block recycling on (skinr's training loop turns it on).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from skinr._core.acceleration import recycled_memory
from skinr.nn import _native as native

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"

SHAPES = {
    "EnsembleINR grid 32 hidden, 128 x 128 image": (1024, 16, 128, 128),
    "EnsembleINR grid 32 output (RGB)": (1024, 16, 128, 3),
    "EnsembleINR grid 8 hidden, 128 x 128 image": (64, 256, 128, 128),
    "EnsembleINR grid 32 hidden, 256 x 256 image": (1024, 64, 128, 128),
}


def median_ms(function, repeats: int) -> float:
    for _ in range(3):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def measure(shape, repeats):
    n_cells, n_points, n_in, n_out = shape
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n_cells, n_points, n_in, generator=generator)
    weight = torch.randn(n_cells, n_in, n_out, generator=generator)
    bias = torch.randn(n_cells, 1, n_out, generator=generator)
    grad = torch.randn(n_cells, n_points, n_out, generator=generator)
    products = {
        "forward": (
            lambda: native._forward(x, weight, bias, 1.0),
            lambda: torch.baddbmm(bias, x, weight),
        ),
        # The kernels' backward is one call: the weight gradient, and the input
        # gradient too when asked for.
        "weight gradient": (
            lambda: native._backward(grad, x, weight, 1.0, False),
            lambda: torch.bmm(x.transpose(1, 2), grad),
        ),
        "both gradients": (
            lambda: native._backward(grad, x, weight, 1.0, True),
            lambda: (torch.bmm(grad, weight.transpose(1, 2)), torch.bmm(x.transpose(1, 2), grad)),
        ),
    }
    return {
        name: (median_ms(ours, repeats), median_ms(theirs, repeats))
        for name, (ours, theirs) in products.items()
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    shapes = SHAPES
    if args.quick:
        shapes = {label: (8, *shape[1:]) for label, shape in SHAPES.items()}
        args.repeats = 3
    if native.vector_length() is None:
        raise SystemExit("skinr's native kernels are not available on this machine")
    lines = [
        "<!-- written by benchmarks/native.py -->",
        f"Median ms per call over {args.repeats} calls, {torch.get_num_threads()} threads, "
        f"float32, vector length {native.vector_length()}:",
        "",
        "| layer | cells x points, n_in -> n_out | product | skinr ms | torch ms | speed-up |",
        "|---|---|---|---:|---:|---:|",
    ]
    for label, shape in shapes.items():
        results = measure(shape, args.repeats)
        for product, (ours, theirs) in results.items():
            lines.append(
                f"| {label} | {shape[0]} x {shape[1]}, {shape[2]} -> {shape[3]} | {product} "
                f"| {ours:.2f} | {theirs:.2f} | {theirs / ours:.2f}x |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        (RESULTS / "native.md").write_text(text)


if __name__ == "__main__":
    # The kernels are timed as a fit runs them: with the allocator tuned as a fit tunes it.
    with recycled_memory():
        main()
