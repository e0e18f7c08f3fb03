"""How the default learning rate and step count were chosen: a sweep on the camera image.

At a fixed number of steps, PSNR depends on the learning rate more than on the
architecture, so every estimator's default ``learning_rate`` is the best of this sweep
and its default ``max_iter`` is where the PSNR curve flattens. Fit PSNR is reported
(data range 1) with the PSNR after each quarter of the steps.

Run:  python benchmarks/defaults.py [--size 128] [--steps 1000]   (~20 min on 2 cores)
      python benchmarks/defaults.py --size 256 --steps 2000 --estimators MultiHeadReLU \
          --set weight_decay=0 --tag _multihead_no_decay   (other parameters fixed)
Writes docs/benchmarks/defaults<tag>.md and defaults<tag>.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import skinr
from skinr.signals import to_coords

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
LEARNING_RATES = {
    "SIREN": [1e-4, 3e-4, 1e-3],
    "FourierFeatureMLP": [3e-4, 1e-3, 3e-3],
    "EnsembleINR": [1e-4, 3e-4, 1e-3],
    "MultiHeadReLU": [3e-4, 1e-3, 3e-3, 1e-2],
    "SL2A": [3e-4, 1e-3, 3e-3],
}


def psnr_from_loss(loss: float, y_scale: float) -> float:
    return 10 * math.log10(1.0 / max(loss * y_scale**2, 1e-30))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--estimators", nargs="+", default=list(LEARNING_RATES))
    parser.add_argument("--tag", default="", help="suffix of the output files")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="parameters fixed in every fit (numbers), e.g. weight_decay=0",
    )
    args = parser.parse_args(argv)
    fixed = {name: float(value) for name, value in (item.split("=", 1) for item in args.set)}
    X, y = to_coords(skinr.datasets.camera(args.size))
    rows = []
    quarters = [args.steps // 4 * k for k in (1, 2, 3, 4)]
    for name in args.estimators:
        for lr in LEARNING_RATES[name]:
            model = skinr.ESTIMATORS[name](
                learning_rate=lr,
                max_iter=args.steps,
                random_state=0,
                device="cpu",
                data_range=1.0,
                **fixed,
            )
            model.fit(X, y)
            curve = [psnr_from_loss(model.loss_curve_[q - 1], model.y_scale_) for q in quarters]
            rows.append(
                {
                    "estimator": name,
                    "learning_rate": lr,
                    "final_psnr": model.score(X, y),
                    "psnr_at": dict(zip(quarters, curve, strict=True)),
                    "seconds": model.fit_time_,
                }
            )
            print(
                f"{name:18s} lr={lr:<7g} "
                + "  ".join(f"{q}:{p:6.2f}" for q, p in zip(quarters, curve, strict=True)),
                flush=True,
            )
    settings = "".join(f", {name}={value:g}" for name, value in fixed.items())
    lines = [
        f"camera {args.size}x{args.size}, full batch, seed 0{settings}; training PSNR "
        "(dB, range 1) after the given number of steps",
        "",
        "| estimator | learning rate | " + " | ".join(f"{q} steps" for q in quarters) + " |",
        "|---|---:|" + "---:|" * len(quarters),
    ]
    lines += [
        f"| {r['estimator']} | {r['learning_rate']:g} | "
        + " | ".join(f"{p:.2f}" for p in r["psnr_at"].values())
        + " |"
        for r in rows
    ]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"defaults{args.tag}.md").write_text(
        "<!-- written by benchmarks/defaults.py -->\n" + table + "\n"
    )
    (RESULTS / f"defaults{args.tag}.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
