"""MultiHeadReLU: render cost, generalisation and spectral bias against the number of heads.

Run:  python benchmarks/multihead.py           (~35 min on 2 CPU cores)
      python benchmarks/multihead.py --quick   (smoke test, writes nothing)
Writes docs/benchmarks/multihead.md, multihead.json and docs/images/multihead_heads.png.

CPU-feasible versions of the paper's three experiments (it trains 2000 full-signal
epochs; the step counts here are printed with each table):

1. Cost (paper Fig. 5): MultiHeadReLU with 64^2 heads, alpha 64 and head bias
   (0.464 M parameters) against a SIREN and a Fourier-feature MLP widened to the same
   parameter count: FLOPs and measured wall time to render a 512 x 512 image, and the
   PSNR of that render against the 512 x 512 camera image after training on its
   256 x 256 downsample.
2. Generalisation (paper Fig. 3): heads 1, 4^2, 16^2, 64^2, 256^2 with alpha 32 and no
   head bias, trained on the 256 x 256 downsample; PSNR on the training image and on
   the 512 x 512 original.
3. Spectral bias (paper Fig. 4): the same models on 256 x 256 Perlin noise of
   increasing frequency; training PSNR.

Renders use ``grid_coordinates``: pixel centres over the fitted footprint, on which
MultiHeadReLU's grid fast path applies. PSNR has data range 1 (images in [0, 1]).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import skinr
from skinr.metrics import psnr
from skinr.signals import to_coords

ROOT = Path(__file__).resolve().parent.parent
HEAD_COUNTS = [1, 4, 16, 64, 256]
FREQUENCIES = [1, 4, 16, 64, 128]


def matched_width(make, n_params, X, y):
    """The width at which ``make(width)`` has the parameter count closest to ``n_params``."""

    def count(width):
        model = make(width).set_params(max_iter=1, device="cpu", random_state=0)
        return model.fit(X[:64], y[:64]).n_params_

    low, high = 1, 4096  # parameters grow with the width: bisect
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count(middle) <= n_params else (low, middle)
    return min((low, high), key=lambda w: abs(count(w) - n_params))


def render_seconds(model, coords, repeats):
    model.predict(coords)  # warm-up: allocations, caches
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict(coords)
        best = min(best, time.perf_counter() - started)
    return best


def cost_table(args, small, large):
    X, y = to_coords(small)
    render_shape = large.shape
    # The paper's hard cells (its grid fast path is what the render costs measure) and
    # its training, without weight decay.
    mh = skinr.MultiHeadReLU(
        blending="nearest", weight_decay=0.0, max_iter=args.steps, random_state=0, device="cpu"
    ).fit(X, y)
    makers = {
        f"MultiHeadReLU ({mh.n_heads_} heads, alpha 64)": None,
        "SIREN": lambda w: skinr.SIREN(width=w),
        "FourierFeatureMLP": lambda w: skinr.FourierFeatureMLP(width=w, n_frequencies=128),
    }
    rows = []
    for name, make in makers.items():
        if make is None:
            model = mh
        else:
            width = matched_width(make, mh.n_params_, X, y)
            model = make(width).set_params(
                max_iter=args.baseline_steps, random_state=0, device="cpu"
            )
            model.fit(X, y)
        # The same pixel centres for every model: the fitted footprint at twice the size.
        coords = mh.grid_coordinates(render_shape)
        rows.append(
            {
                "model": name,
                "params": model.n_params_,
                "steps": model.n_iter_,
                "train_psnr": psnr(y, model.predict(X), data_range=1.0),
                "render_psnr": psnr(large.reshape(-1), model.predict(coords), data_range=1.0),
                "render_flops": model.count_flops(coords),
                "render_seconds": render_seconds(model, coords, args.repeats),
            }
        )
        print(rows[-1], flush=True)
    base = rows[0]
    for row in rows:
        row["flops_ratio"] = row["render_flops"] / base["render_flops"]
        row["time_ratio"] = row["render_seconds"] / base["render_seconds"]
    return rows


def heads_sweep(images, head_counts, steps, large=None):
    """Train alpha-32, bias-free MultiHeadReLU models; PSNR per image and head count."""
    rows = []
    for label, image in images.items():
        X, y = to_coords(image)
        for heads in head_counts:
            model = skinr.MultiHeadReLU(
                heads=heads,
                n_connections=32,
                head_bias=False,
                blending="nearest",
                weight_decay=0.0,
                max_iter=steps,
                random_state=0,
                device="cpu",
            ).fit(X, y)
            row = {
                "image": label,
                "heads": heads,
                "steps": steps,
                "params": model.n_params_,
                "train_psnr": psnr(y, model.predict(X), data_range=1.0),
                "fit_seconds": model.fit_time_,
            }
            if large is not None:
                coords = model.grid_coordinates(large.shape)
                row["test_psnr"] = psnr(large.reshape(-1), model.predict(coords), data_range=1.0)
            rows.append(row)
            print(row, flush=True)
    return rows


def plot(path, generalisation, spectral):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    heads = [r["heads"] for r in generalisation]
    left.plot(heads, [r["train_psnr"] for r in generalisation], "o-", label="train 256x256")
    left.plot(heads, [r["test_psnr"] for r in generalisation], "s-", label="test 512x512")
    left.set(xscale="log", xlabel="heads per side", ylabel="PSNR (dB)", title="Generalisation")
    left.set_xticks(heads, [f"{h}²" for h in heads])
    left.legend()
    for h in sorted({r["heads"] for r in spectral}):
        rows = [r for r in spectral if r["heads"] == h]
        right.plot(
            [r["image"] for r in rows], [r["train_psnr"] for r in rows], "o-", label=f"{h}² heads"
        )
    right.set(xscale="log", xlabel="Perlin frequency", ylabel="PSNR (dB)", title="Spectral bias")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(args, cost, generalisation, spectral):
    lines = [
        "<!-- written by benchmarks/multihead.py -->",
        "### Render cost at 512 x 512 (paper Fig. 5)",
        "",
        f"Trained on camera 256 x 256 (MultiHeadReLU {args.steps} steps, baselines "
        f"{args.baseline_steps} steps, each with its skinr defaults), rendered at 512 x 512 "
        "over the same footprint and scored against the 512 x 512 camera image.",
        "",
        "| model | params | train PSNR | 512 PSNR | render GFLOPs | x FLOPs | render s | x time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['model']} | {r['params']:,} | {r['train_psnr']:.2f} | {r['render_psnr']:.2f} | "
        f"{r['render_flops'] / 1e9:.3f} | {r['flops_ratio']:.0f} | {r['render_seconds']:.3f} | "
        f"{r['time_ratio']:.0f} |"
        for r in cost
    ]
    lines += [
        "",
        "### Generalisation (paper Fig. 3)",
        "",
        f"alpha 32, no head bias, {generalisation[0]['steps']} steps on camera 256 x 256; "
        "test = the 512 x 512 original.",
        "",
        "| heads | params | train PSNR | 512 PSNR |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['heads']}² | {r['params']:,} | {r['train_psnr']:.2f} | {r['test_psnr']:.2f} |"
        for r in generalisation
    ]
    frequencies = sorted({r["image"] for r in spectral})
    lines += [
        "",
        "### Spectral bias (paper Fig. 4)",
        "",
        f"Perlin noise 256 x 256 (gradient cells per side = frequency), alpha 32, no head "
        f"bias, {spectral[0]['steps']} steps; training PSNR.",
        "",
        "| heads | " + " | ".join(f"freq {f}" for f in frequencies) + " |",
        "|---|" + "---:|" * len(frequencies),
    ]
    for h in sorted({r["heads"] for r in spectral}):
        by_freq = {r["image"]: r["train_psnr"] for r in spectral if r["heads"] == h}
        lines.append(f"| {h}² | " + " | ".join(f"{by_freq[f]:.2f}" for f in frequencies) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=2000, help="MultiHeadReLU steps (cost)")
    parser.add_argument("--baseline-steps", type=int, default=200)
    parser.add_argument("--sweep-steps", type=int, default=500)
    parser.add_argument("--spectral-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--markdown-only", action="store_true", help="rewrite the .md from the saved .json"
    )
    args = parser.parse_args(argv)
    results = ROOT / "docs" / "benchmarks" / "multihead.json"
    if args.markdown_only:
        saved = json.loads(results.read_text())
        text = markdown(args, saved["cost"], saved["generalisation"], saved["spectral"])
        (ROOT / "docs" / "benchmarks" / "multihead.md").write_text(text)
        return
    size, heads, frequencies = 256, HEAD_COUNTS, FREQUENCIES
    if args.quick:
        size, heads, frequencies = 32, [1, 4], [1, 8]
        args.steps = args.baseline_steps = args.sweep_steps = args.spectral_steps = 3
        args.repeats = 1
    large = skinr.datasets.camera(2 * size)
    small = skinr.datasets.resize(large, (size, size))
    if args.quick:
        cost = [{"model": "skipped in --quick"}]
    else:
        cost = cost_table(args, small, large)
    generalisation = heads_sweep({"camera": small}, heads, args.sweep_steps, large)
    perlin = {
        f: skinr.datasets.perlin_noise((size, size), frequency=f, random_state=0)
        for f in frequencies
    }
    spectral = heads_sweep(perlin, heads, args.spectral_steps)
    if args.quick:
        print("| model | quick mode ran |")
        return
    text = markdown(args, cost, generalisation, spectral)
    print(text)
    (ROOT / "docs" / "benchmarks" / "multihead.md").write_text(text)
    results.write_text(
        json.dumps({"cost": cost, "generalisation": generalisation, "spectral": spectral}, indent=2)
        + "\n"
    )
    plot(ROOT / "docs" / "images" / "multihead_heads.png", generalisation, spectral)


if __name__ == "__main__":
    main()
