"""Peak memory of sampled training and chunked prediction on video-sized signals.

Run:  python benchmarks/memory.py            (~15 min on 2 CPU cores, needs ~8 GB)
      python benchmarks/memory.py --quick    (smoke test: small signals, writes nothing)
Writes docs/benchmarks/memory.md and memory.json.

Each row runs in a fresh process: it builds an RGB video of T x H x W pixels as float32
coordinates and values (what a user would hold), then resets the kernel's peak-RSS mark
(``/proc/self/clear_refs``) and reads it back after ``fit`` (a few sampled steps of a
SIREN; in the last sweep each estimator at its defaults, with and without streaming) and
after ``predict`` over every pixel. Reported: the peak above the memory held
before the call, i.e. what skinr adds to the caller's arrays; for ``predict`` the
float64 output array it returns (n x 3 x 8 bytes) is listed apart.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import skinr

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
# Sizes other than the defaults: a small SIREN (the signal and batch sweeps); heads per
# dimension that a 3-D video can hold (the default, 64, is meant for images).
SIZES = {"SIREN": {"width": 64, "depth": 2}, "MultiHeadReLU": {"heads": 8}}

CHILD = r"""
import gc, json, sys, time
import numpy as np
import skinr

frames, side, batch, streams = (int(v) for v in sys.argv[1:5])
name = sys.argv[5]

def rss_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

def reset_peak():
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")

t = np.linspace(-1, 1, frames, dtype=np.float32)
s = np.linspace(-1, 1, side, dtype=np.float32)
X = np.stack(np.meshgrid(t, s, s, indexing="ij"), axis=-1).reshape(-1, 3)
rng = np.random.default_rng(0)
y = rng.random((X.shape[0], 3), dtype=np.float32)
gc.collect()
Estimator = skinr.ESTIMATORS[name]
Estimator._streams_batches = bool(streams)
size = json.loads(sys.argv[6])
model = Estimator(**size, max_iter=5, batch_size=batch, device="cpu", random_state=0)
warm_up = rng.choice(X.shape[0], 4096, replace=False)
model.fit(X[warm_up], y[warm_up])  # first-use imports and caches, not the signal's memory
gc.collect()
before = rss_kb("VmRSS")
reset_peak()
started = time.perf_counter()
model.fit(X, y)
fit_seconds = time.perf_counter() - started
fit_peak = rss_kb("VmHWM") - before
gc.collect()
before = rss_kb("VmRSS")
reset_peak()
started = time.perf_counter()
prediction = model.predict(X)
predict_seconds = time.perf_counter() - started
predict_peak = rss_kb("VmHWM") - before
print(json.dumps({
    "estimator": name, "frames": frames, "side": side, "samples": X.shape[0], "batch": batch,
    "streams": bool(streams), "signal_mb": (X.nbytes + y.nbytes) / 2**20,
    "fit_extra_mb": fit_peak / 1024, "fit_seconds": fit_seconds,
    "predict_extra_mb": predict_peak / 1024, "output_mb": prediction.nbytes / 2**20,
    "predict_seconds": predict_seconds,
}))
"""


def measure(frames: int, side: int, batch: int, streams: bool = True, estimator="SIREN") -> dict:
    size = json.dumps(SIZES.get(estimator, {}))
    arguments = [str(frames), str(side), str(batch), str(int(streams)), estimator, size]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *arguments],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        # Two rows, each a fresh process (~8 s of imports): a streamed signal, and an
        # estimator fitted on the materialised one (the other sweeps repeat these calls).
        by_signal, fixed_batch = [(4, 32)], 1024
        batches, batch_signal, full = [], (8, 32), None
        estimators, estimator_streams, materialised = ["LocalGlobalSIREN"], (False,), False
    else:
        by_signal = [(16, 128), (64, 128), (64, 256), (300, 256)]
        batches, batch_signal, full = [4096, 16384, 65536], (64, 256), (300, 512)
        fixed_batch = batches[-1]
        estimators, estimator_streams, materialised = list(skinr.ESTIMATORS), (True, False), True
    rows = []
    for frames, side in by_signal:
        rows.append({"sweep": "signal", **measure(frames, side, fixed_batch)})
        print(rows[-1], flush=True)
    for batch in batches:
        rows.append({"sweep": "batch", **measure(*batch_signal, batch)})
        print(rows[-1], flush=True)
    if materialised:
        row = measure(*batch_signal, fixed_batch, streams=False)
        rows.append({"sweep": "materialised", **row})
        print(rows[-1], flush=True)
    if full is not None:
        rows.append({"sweep": "video", **measure(*full, fixed_batch)})
        print(rows[-1], flush=True)
    for estimator in estimators:
        for streams in estimator_streams:
            row = measure(*batch_signal, fixed_batch, streams=streams, estimator=estimator)
            rows.append({"sweep": "estimator", **row})
            print(rows[-1], flush=True)

    header = [
        "| sweep | estimator | video (T x H x W x 3) | samples | batch | signal arrays (MB) "
        "| fit: peak added (MB) | fit (s, 5 steps) | predict: peak added (MB) "
        "| of which output (MB) | predict (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines = [
        "SIREN (width 64, depth 2) in the signal and batch sweeps, every estimator at its "
        "default size (MultiHeadReLU: heads=8) in the estimator sweep; 5 sampled steps, "
        "float32 coordinates and values, CPU (2 cores); peak RSS added by the call, each "
        "row in a fresh process.",
        "",
        *header,
    ]
    for r in rows:
        label = r["sweep"] + ("" if r["streams"] else " (no streaming)")
        lines.append(
            f"| {label} | {r['estimator']} | {r['frames']} x {r['side']} x {r['side']} | "
            f"{r['samples']:,} | {r['batch']:,} | {r['signal_mb']:.0f} | {r['fit_extra_mb']:.0f} | "
            f"{r['fit_seconds']:.1f} | {r['predict_extra_mb']:.0f} | {r['output_mb']:.0f} | "
            f"{r['predict_seconds']:.1f} |"
        )
    lines += ["", "Command: `python benchmarks/memory.py`"]
    print("\n".join(lines))
    if args.quick:
        return
    (RESULTS / "memory.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "memory.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
