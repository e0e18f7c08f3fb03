"""Does torch.compile (or bf16 autocast) speed up training on this machine's CPU?

Run:  python benchmarks/compile.py           (~10 min on 2 CPU cores)
      python benchmarks/compile.py --estimators SL2A --update   (one row again)
Writes docs/benchmarks/compile.md and compile.json.

For every estimator at its default size on a 128 x 128 RGB image (full-signal steps):
steady-state ms per step (median of the last 20 of 40 steps) eager, with
``torch_compile=True`` and with ``precision="bf16"``, and the one-off cost of compiling
(the first step's excess over a steady step). Break-even = compile seconds / seconds
saved per step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch._inductor.config
from _steps import step_seconds

import skinr
from skinr.signals import to_coords

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
STEPS = 40


def step_cost(estimator, X, y, **options):
    """Steady seconds per step, one-off seconds and final PSNR of a short fit."""
    model = skinr.ESTIMATORS[estimator](max_iter=STEPS, device="cpu", random_state=0, **options)
    durations, model = step_seconds(model, X, y)
    per_step = float(np.median(durations[STEPS // 2 :]))
    return per_step, max(float(durations[0]) - per_step, 0.0), model.score(X, y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--estimators", nargs="*", default=list(skinr.ESTIMATORS))
    parser.add_argument(
        "--update",
        action="store_true",
        help="re-measure only --estimators and keep the other rows of compile.json",
    )
    args = parser.parse_args(argv)
    # Cold compiles, as on a fresh machine: no compiled graphs reused across fits or runs.
    torch._inductor.config.fx_graph_cache = False
    X, y = to_coords(skinr.datasets.astronaut(args.size))
    rows = []
    for name in args.estimators:
        eager, _, eager_psnr = step_cost(name, X, y)
        compiled, compile_seconds, _ = step_cost(name, X, y, torch_compile=True)
        bf16, _, bf16_psnr = step_cost(name, X, y, precision="bf16")
        saved = eager - compiled
        rows.append(
            {
                "estimator": name,
                "eager_ms": 1000 * eager,
                "compiled_ms": 1000 * compiled,
                "compile_s": compile_seconds,
                "speedup": eager / compiled,
                "break_even_steps": compile_seconds / saved if saved > 0 else None,
                "bf16_ms": 1000 * bf16,
                "psnr_float32": eager_psnr,
                "psnr_bf16": bf16_psnr,
            }
        )
        print(rows[-1], flush=True)
    if args.update:
        kept = json.loads((RESULTS / "compile.json").read_text())
        fresh = {r["estimator"]: r for r in rows}
        rows = [fresh.pop(r["estimator"], r) for r in kept] + list(fresh.values())
    lines = [
        f"astronaut {args.size} x {args.size} RGB, full-signal steps, default structures, "
        "CPU (2 cores), torch 2.13.0+cpu",
        "",
        "| estimator | eager ms/step | compiled ms/step | speed-up | compile (s) | "
        "break-even (steps) | bf16 autocast ms/step | PSNR float32 / bf16 after "
        f"{STEPS} steps |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        even = "never" if r["break_even_steps"] is None else f"{r['break_even_steps']:.0f}"
        lines.append(
            f"| {r['estimator']} | {r['eager_ms']:.1f} | {r['compiled_ms']:.1f} | "
            f"{r['speedup']:.2f}x | {r['compile_s']:.1f} | {even} | {r['bf16_ms']:.1f} | "
            f"{r['psnr_float32']:.2f} / {r['psnr_bf16']:.2f} |"
        )
    lines += ["", "Command: `python benchmarks/compile.py`"]
    text = "\n".join(lines) + "\n"
    print(text)
    (RESULTS / "compile.md").write_text(text)
    (RESULTS / "compile.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
