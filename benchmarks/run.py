"""skinr's benchmark runner: one table of cost and quality per estimator.

Columns: trainable parameters, FLOPs per sample (forward), milliseconds per training
step and PSNR (dB, data range 1) on the training pixels after N full-batch steps.
The first two rows are the overhead check of the foundation issue: SIREN fitted
through skinr versus a hand-written PyTorch loop of the same network, same seed, same
image, in the same process, timed alternately so machine noise hits both alike.

Run:  python benchmarks/run.py            (camera 128 x 128, 300 steps, ~5 min on 2 cores)
      python benchmarks/run.py --quick    (32 x 32, 20 steps: a smoke test)
Writes docs/benchmarks/results.md and docs/benchmarks/results.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

import skinr
from skinr.signals import to_coords

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def plain_siren_loop(X, y, *, width, depth, steps, learning_rate, seed):
    """The reference: SIREN as one would write it by hand, no library.

    Its initial weights are drawn in the same order from a generator seeded the way
    skinr seeds one from ``random_state=seed``, so both runs start from the same network.
    """
    generator = torch.Generator().manual_seed(
        int(np.random.RandomState(seed).randint(0, 2**31 - 1))
    )
    sizes = [X.shape[1]] + [width] * (depth + 1)
    layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
    output = torch.nn.Linear(width, y.shape[1])
    with torch.no_grad():
        for i, layer in enumerate([*layers, output]):
            fan_in = layer.in_features
            bound = 1 / fan_in if i == 0 else math.sqrt(6 / fan_in) / 30
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=generator)
    params = list(layers.parameters()) + list(output.parameters())
    coords = torch.as_tensor(X, dtype=torch.float32)
    # Targets mapped from their range to [-1, 1], as skinr does.
    low, high = y.min(), y.max()
    target = torch.as_tensor((y - (high + low) / 2) / ((high - low) / 2), dtype=torch.float32)

    def forward(h):
        for layer in layers:
            h = torch.sin(30 * layer(h))
        return output(h)

    optimizer = torch.optim.Adam(params, lr=learning_rate)
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(forward(coords), target)
        loss.backward()
        optimizer.step()
        loss.item()
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        prediction = (
            forward(coords).numpy().astype(np.float64) * (high - low) / 2 + (high + low) / 2
        )
    mse = float(np.mean((prediction - y) ** 2))
    n_params = sum(p.numel() for p in params)
    return {
        "ms_per_step": 1000 * elapsed / steps,
        "psnr": 10 * math.log10(1 / mse),
        "params": n_params,
    }


def skinr_fit(estimator, X, y):
    """Fit through skinr; time the training loop as its ``fit_time_``."""
    estimator.fit(X, y)
    return {
        "ms_per_step": 1000 * estimator.fit_time_ / estimator.n_iter_,
        "psnr": estimator.score(X, y),
        "params": estimator.n_params_,
        "flops_per_sample": estimator.count_flops(X[:1]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="alternating runs of the overhead pair (the fastest is reported)",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.steps, args.repeats = 32, 20, 1

    image = skinr.datasets.camera(args.size)
    X, y = to_coords(image)
    y = y[:, None]
    common = dict(max_iter=args.steps, random_state=0, device="cpu", data_range=1.0)
    width, depth, lr = 256, 3, 1e-4

    runs = {"plain": [], "skinr": []}
    for _ in range(args.repeats):
        runs["plain"].append(
            plain_siren_loop(
                X, y, width=width, depth=depth, steps=args.steps, learning_rate=lr, seed=0
            )
        )
        runs["skinr"].append(
            skinr_fit(
                skinr.SIREN(width, depth, learning_rate=lr, first_omega_0=30.0, **common), X, y
            )
        )
    siren_flops = runs["skinr"][0]["flops_per_sample"]
    rows = [
        {
            "estimator": "SIREN (plain PyTorch loop)",
            **runs["plain"][-1],
            "flops_per_sample": siren_flops,
        },
        {"estimator": "SIREN (skinr)", **runs["skinr"][-1]},
    ]
    for row, key in zip(rows, ("plain", "skinr"), strict=True):
        row["ms_per_step"] = min(r["ms_per_step"] for r in runs[key])
    rows.append(
        {
            "estimator": "FourierFeatureMLP (skinr, defaults)",
            **skinr_fit(skinr.FourierFeatureMLP(**common), X, y),
        }
    )

    overhead = rows[1]["ms_per_step"] / rows[0]["ms_per_step"] - 1
    psnr_gap = rows[1]["psnr"] - rows[0]["psnr"]
    header = (
        f"camera {args.size}x{args.size}, {args.steps} full-batch steps, SIREN width "
        f"{width} depth {depth} lr {lr:g}, seed 0, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.machine()}"
    )
    lines = [
        header,
        "",
        "| estimator | params | FLOPs/sample | ms/step | PSNR (dB) |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['estimator']} | {r['params']:,} | {r['flops_per_sample']:,} | "
        f"{r['ms_per_step']:.1f} | {r['psnr']:.2f} |"
        for r in rows
    ]
    lines += [
        "",
        f"skinr step time vs plain loop: {overhead:+.1%}; "
        f"PSNR difference: {psnr_gap:+.2f} dB "
        f"(best of {args.repeats} alternating runs each)",
    ]
    table = "\n".join(lines)
    print(table)
    if not args.no_write and not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "results.md").write_text(
            "<!-- written by benchmarks/run.py; do not edit -->\n" + table + "\n"
        )
        (RESULTS / "results.json").write_text(
            json.dumps(
                {"setup": header, "rows": rows, "overhead": overhead, "psnr_gap": psnr_gap},
                indent=2,
            )
            + "\n"
        )
    return rows


if __name__ == "__main__":
    main()
