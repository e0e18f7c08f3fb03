"""skinr on one device (a GPU where there is one): step times, PSNR and peak memory.

Run:  python benchmarks/gpu.py                    (CUDA if available, ~5 min on a GPU)
      python benchmarks/gpu.py --device cpu --quick   (smoke test: 32 x 32, few steps)
      bash benchmarks/gpu_check.sh                (the device tests, then this table)
Writes docs/benchmarks/gpu.md and gpu.json (or --out DIR).

Rows, each on camera at ``--size`` (512 by default, the LocalGlobalSIREN and SL2A
papers' images), eager, float32:

- SIREN (width 256, depth 3) through skinr against a plain PyTorch loop of the same
  network on the same device (the library's overhead);
- EnsembleINR at the paper's S4 (grid 32, depth 1, width 128, ``blending="nearest"``,
  omega_0 30) and at skinr's default blending, against that SIREN step;
- MultiHeadReLU (64 x 64 heads) rendering 2x its training size against a SIREN of its
  parameter count;
- HashGrid, LocalGlobalSIREN (16 x 16 partitions) and SL2A at their defaults.

Step time is the median of the later steps of a fit, read from the training loop's
reports (``_steps.step_seconds``, which synchronises nothing itself: on CUDA each step
ends with the loss's ``.item()``). PSNR is after the steps given per row (the papers'
counts where they fit the budget). Peak memory is ``torch.cuda.max_memory_allocated``
(CUDA only). The papers' GPU figures are quoted beside the table in
docs/benchmarks/gpu.md: LocalGlobalSIREN 16 x 16 trains 1k steps at 512 x 512 in 22 s
against SIREN's 34 s (their GPU); SL2A 0.77 min per 512 x 512 image.
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
from _steps import step_seconds

import skinr
from skinr.signals import to_coords

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _peak_reset(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: str) -> float | None:
    if torch.device(device).type != "cuda":
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def plain_siren_step_ms(X, y, device, steps):
    """A hand-written SIREN (width 256, depth 3) training loop on ``device``."""
    torch.manual_seed(0)
    sizes = [X.shape[1], 256, 256, 256, 256]
    layers = [torch.nn.Linear(a, b).to(device) for a, b in itertools.pairwise(sizes)]
    output = torch.nn.Linear(256, 1).to(device)
    params = [p for layer in [*layers, output] for p in layer.parameters()]
    coords = torch.as_tensor(X, dtype=torch.float32, device=device)
    target = torch.as_tensor(2 * y.reshape(-1, 1) - 1, dtype=torch.float32, device=device)
    optimizer = torch.optim.Adam(params, lr=1e-4)
    stamps = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        h = coords
        for layer in layers:
            h = torch.sin(30 * layer(h))
        loss = torch.nn.functional.mse_loss(output(h), target)
        loss.backward()
        optimizer.step()
        loss.item()  # as skinr's loop: one sync a step
        stamps.append(time.perf_counter())
    return 1000 * float(np.median(np.diff(stamps)[steps // 2 :]))


def timed(name, estimator, X, y, device, steps):
    """Fit; ms per step (median of the later steps), PSNR, peak memory."""
    estimator.set_params(device=device, max_iter=steps, random_state=0, torch_compile=False)
    _peak_reset(device)
    durations, model = step_seconds(estimator, X, y)
    _sync(device)
    return {
        "model": name,
        "steps": model.n_iter_,
        "ms_per_step": 1000 * float(np.median(durations[max(1, len(durations) // 2) :])),
        "psnr": model.score(X, y),
        "peak_mib": _peak_mib(device),
        "fit_seconds": model.fit_time_,
    }, model


def render_ms(model, shape, device, repeats=3):
    coords = model.grid_coordinates(shape)
    model.predict(coords)
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        model.predict(coords)
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 1000 * best


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="folder for gpu.md and gpu.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.size = 32
    results = measure(args.device, args.size, args.quick)
    text = page(results, args)
    print(text)
    if not args.quick or args.out:
        out = Path(args.out) if args.out else RESULTS
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu.md").write_text(text)
        (out / "gpu.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def measure(device: str, size: int, quick: bool) -> dict:
    image = skinr.datasets.camera(size)
    X, y = to_coords(image)
    short = 10 if quick else 40
    rows = []
    siren, _ = timed("SIREN d 3 w 256 (skinr)", skinr.SIREN(256, 3), X, y, device, short)
    rows.append(siren)
    rows.append(
        {
            "model": "SIREN d 3 w 256 (plain PyTorch loop)",
            "steps": short,
            "ms_per_step": plain_siren_step_ms(X, y, device, short),
        }
    )
    grid = 4 if quick else 32
    for blending in ("nearest", "smooth"):
        estimator = skinr.EnsembleINR(
            grid=grid, width=128, depth=1, blending=blending, omega_0=30.0
        )
        name = f"EnsembleINR grid {grid}, d 1, w 128, {blending}"
        rows.append(timed(name, estimator, X, y, device, short)[0])
    long = 20 if quick else 1000
    for name, estimator in (
        ("HashGrid (defaults)", skinr.HashGrid()),
        ("LocalGlobalSIREN 16 x 16", skinr.LocalGlobalSIREN(partitions=2 if quick else 16)),
        ("SL2A (defaults)", skinr.SL2A()),
        ("SIREN (defaults)", skinr.SIREN()),
    ):
        rows.append(timed(name, estimator, X, y, device, long)[0])
    heads = 4 if quick else 64
    row, mh = timed(
        f"MultiHeadReLU {heads} x {heads} heads, nearest",
        skinr.MultiHeadReLU(heads=heads, blending="nearest"),
        X,
        y,
        device,
        short,
    )
    rows.append(row)
    render = {
        "shape": (2 * size, 2 * size),
        "multihead_ms": render_ms(mh, (2 * size, 2 * size), device),
        "siren_ms": None,
    }
    matched = skinr.SIREN(width=max(8, int(math.sqrt(mh.n_params_ / 3))), depth=3)
    _, siren_model = timed("SIREN matched", matched, X, y, device, 2)
    render["siren_ms"] = render_ms(siren_model, (2 * size, 2 * size), device)
    return {
        "device": device,
        "device_name": torch.cuda.get_device_name()
        if device.startswith("cuda")
        else platform.processor(),
        "torch": torch.__version__,
        "size": size,
        "rows": rows,
        "render": render,
    }


def page(results: dict, args) -> str:
    size = results["size"]
    lines = [
        "<!-- written by benchmarks/gpu.py -->",
        f"camera {size} x {size} on {results['device']} ({results['device_name']}), torch "
        f"{results['torch']}, eager, float32 (`python benchmarks/gpu.py"
        + (" --quick" if args.quick else "")
        + "`):",
        "",
        "| model | steps | ms/step | PSNR (dB) | peak MiB | fit s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        psnr = f"{r['psnr']:.2f}" if r.get("psnr") is not None else "-"
        peak = f"{r['peak_mib']:.0f}" if r.get("peak_mib") is not None else "-"
        fit = f"{r['fit_seconds']:.1f}" if r.get("fit_seconds") is not None else "-"
        lines.append(
            f"| {r['model']} | {r['steps']} | {r['ms_per_step']:.2f} | {psnr} | {peak} | {fit} |"
        )
    render = results["render"]
    lines += [
        "",
        f"Render of {render['shape'][0]} x {render['shape'][1]}: MultiHeadReLU "
        f"{render['multihead_ms']:.1f} ms, a SIREN of its parameter count "
        f"{render['siren_ms']:.1f} ms ({render['siren_ms'] / render['multihead_ms']:.1f}x).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
