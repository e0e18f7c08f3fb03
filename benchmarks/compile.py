"""Does torch.compile (or bf16 autocast) speed up training on this machine's CPU?

Run:  python benchmarks/compile.py           (~10 min on 2 CPU cores)
Writes docs/benchmarks/compile.md and compile.json.

For every estimator at its default size on a 128 x 128 RGB image (full-signal steps):
steady-state ms per step eager, with ``torch_compile=True`` and with
``precision="bf16"``, from the difference of two fits of 10 and 40 steps (so one-off
costs cancel), and the one-off cost of compiling (the 10-step fit's excess over 10
steady steps). Break-even = compile seconds / seconds saved per step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import skinr
from skinr.signals import to_coords

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
SHORT, LONG = 10, 40


def step_cost(estimator, X, y, **options):
    """(steady seconds per step, one-off seconds) of fitting ``estimator`` with ``options``."""
    times = {}
    for steps in (SHORT, LONG):
        model = skinr.ESTIMATORS[estimator](
            max_iter=steps, device="cpu", random_state=0, **options
        ).fit(X, y)
        times[steps] = model.fit_time_
    per_step = (times[LONG] - times[SHORT]) / (LONG - SHORT)
    return per_step, max(times[SHORT] - SHORT * per_step, 0.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--estimators", nargs="*", default=list(skinr.ESTIMATORS))
    args = parser.parse_args(argv)
    X, y = to_coords(skinr.datasets.astronaut(args.size))
    rows = []
    for name in args.estimators:
        eager, _ = step_cost(name, X, y)
        compiled, compile_seconds = step_cost(name, X, y, torch_compile=True)
        bf16, _ = step_cost(name, X, y, precision="bf16")
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
            }
        )
        print(rows[-1], flush=True)
    lines = [
        f"astronaut {args.size} x {args.size} RGB, full-signal steps, default structures, "
        "CPU (2 cores), torch 2.13.0+cpu",
        "",
        "| estimator | eager ms/step | compiled ms/step | speed-up | compile (s) | "
        "break-even (steps) | bf16 autocast ms/step |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        even = "never" if r["break_even_steps"] is None else f"{r['break_even_steps']:.0f}"
        lines.append(
            f"| {r['estimator']} | {r['eager_ms']:.1f} | {r['compiled_ms']:.1f} | "
            f"{r['speedup']:.2f}x | {r['compile_s']:.1f} | {even} | {r['bf16_ms']:.1f} |"
        )
    lines += ["", "Command: `python benchmarks/compile.py`"]
    text = "\n".join(lines) + "\n"
    print(text)
    (RESULTS / "compile.md").write_text(text)
    (RESULTS / "compile.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
