"""The papers' own code beside skinr: step time at each paper's configuration.

Run:  python benchmarks/official.py --repos DIR            (~6 min on 2 CPU cores)

``DIR`` holds checkouts of the authors' repositories, which skinr neither ships nor
copies (clone them yourself; only their model files are imported):

- ``DIR/Local-Global-INRs``: github.com/maorash/Local-Global-INRs (MIT), ``modules.py``
- ``DIR/SL2A-INR``: github.com/moeinheidari7829/SL2A-INR (MIT), ``SL2A_INR.py`` and
  ``ChebyKANLayer.py``
- ``DIR/ENRP``: github.com/AlirezaMorsali/ENRP (no licence file: run, never copied),
  ``utils.py``; its top-level imports of cv2, torchvision and ptflops serve its data and
  FLOP helpers, not the network, and are stubbed where they are not installed

Each side trains as its own code does, at the paper's configuration: one step is a
forward pass over the step's samples, the mean squared error, a backward pass and an
Adam step (the authors' loop written out here around their modules; skinr's
``fit``, timed step by step from its training loop's reports). A plain SIREN
(256 x 3, 5 layers, on the same samples) is timed in the same run on each side (the
Local-Global repository's own ``FCBlock``; ``skinr.SIREN``), so each method is also
quoted as a ratio to its side's SIREN step. Rounds alternate the two sides; a step
time is the median of the last half of a fit's steps, and the table takes the median
over rounds. Writes docs/benchmarks/official.md and .json.

Configurations (``../shared/papers/IMPLEMENTATION_NOTES.md`` sections 4 and 5):

- Local-Global SIREN, Cameraman 512 x 512 grey, 16 x 16 partitions, local width 14
  per partition, global width 84, 3 hidden layers, concatenate-and-merge, Adam 5e-4,
  the whole image every step.
- SL2A, a 512 x 512 RGB photo, width 256, degree 512, rank 128, 3 hidden layers,
  mini-batches of 16,384 pixels, Adam 1e-3.
- Ensemble INR (ENRP Table I's S4), astronaut 128 x 128 RGB, a 32 x 32 grid of SIRENs of
  depth 1 and width 128, omega_0 30, hard cells, Adam 1e-4, the whole image every step
  (the authors' ``GPSiren``, parallel over cells).

Not here: MultiHeadReLU (the authors' code is TensorFlow) and LoESine (no official code
was published).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _steps import step_seconds

import skinr
from skinr.signals import to_coords

ROOT = Path(__file__).resolve().parent.parent


def import_file(name: str, path: Path):
    """A module from one of the authors' files (their folder on sys.path for its imports)."""
    if not path.is_file():
        raise SystemExit(f"{path} is missing: clone the authors' repository there (see --help).")
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_steps(model, batches, learning_rate, steps, parameters=None) -> float:
    """Median seconds of the last half of ``steps`` Adam steps of the authors' loop."""
    optimizer = torch.optim.Adam(
        model.parameters() if parameters is None else parameters, lr=learning_rate
    )
    times = []
    for step in range(steps):
        coords, values = batches(step)
        tic = time.perf_counter()
        loss = ((model(coords) - values) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - tic)
    return float(np.median(times[steps // 2 :]))


def skinr_steps(estimator, X, y, steps) -> float:
    seconds, _ = step_seconds(estimator.set_params(max_iter=steps, device="cpu"), X, y)
    return float(np.median(seconds[steps // 2 :]))


def skinr_side(method, siren, image, steps) -> dict:
    """skinr's step for the paper's estimator and for a plain SIREN, on ``image``."""
    X, y = to_coords(image)
    return {"method": skinr_steps(method, X, y, steps), "SIREN": skinr_steps(siren, X, y, steps)}


def camera_512() -> np.ndarray:
    return skinr.datasets.camera()


def partitioned(size: int, parts: int) -> tuple[torch.Tensor, np.ndarray]:
    """Global coordinates in [-1, 1] with endpoints (the authors' get_mgrid), split into
    parts x parts blocks, row-major, each block's points row-major: (1, groups, n, 2);
    and the pixel order that layout takes."""
    axis = np.linspace(-1, 1, size)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1)
    block = size // parts
    blocks = grid.reshape(parts, block, parts, block, 2).transpose(0, 2, 1, 3, 4)
    order = np.arange(size * size).reshape(parts, block, parts, block).transpose(0, 2, 1, 3)
    coords = torch.as_tensor(
        blocks.reshape(1, parts * parts, block * block, 2), dtype=torch.float32
    )
    return coords, order.reshape(-1)


def local_global(repos: Path, side: str, steps: int) -> dict:
    image = camera_512()
    if side == "skinr":
        ours = skinr.LocalGlobalSIREN(
            partitions=(16, 16),
            local_width=14,
            global_width=84,
            depth=3,
            learning_rate=5e-4,
            random_state=0,
        )
        siren = skinr.SIREN(width=256, depth=3, learning_rate=5e-4, random_state=0)
        return skinr_side(ours, siren, image, steps)
    modules = import_file("lg_modules", repos / "Local-Global-INRs" / "modules.py")
    size, parts = image.shape[0], 16
    coords, order = partitioned(size, parts)
    values = torch.as_tensor((image.reshape(-1)[order] - 0.5) / 0.5, dtype=torch.float32).reshape(
        1, parts * parts, -1, 1
    )
    torch.manual_seed(0)
    official = modules.LocalGlobalBlock(
        in_features=2,
        out_features=1,
        num_hidden_layers=3,
        hidden_features=14 * parts * parts,
        groups=parts * parts,
        outermost_linear=True,
        nonlinearity="sine",
        agg_type="concat_and_fc",
        global_hidden_features=84,
    )
    siren = modules.FCBlock(2, 1, 3, 256, outermost_linear=True, nonlinearity="sine")
    flat = (coords.reshape(1, -1, 2), values.reshape(1, -1, 1))
    return {
        "method": official_steps(official, lambda step: (coords, values), 5e-4, steps),
        "SIREN": official_steps(siren, lambda step: flat, 5e-4, steps),
    }


def sl2a(repos: Path, side: str, steps: int) -> dict:
    image = skinr.datasets.astronaut()
    batch = 16384
    if side == "skinr":
        ours = skinr.SL2A(
            width=256,
            depth=3,
            degree=512,
            rank=128,
            batch_size=batch,
            learning_rate=1e-3,
            random_state=0,
        )
        siren = skinr.SIREN(
            width=256, depth=3, batch_size=batch, learning_rate=1e-3, random_state=0
        )
        return skinr_side(ours, siren, image, steps)
    sl2a_module = import_file("SL2A_INR", repos / "SL2A-INR" / "SL2A_INR.py")
    lg = import_file("lg_modules", repos / "Local-Global-INRs" / "modules.py")
    axis = torch.linspace(-1, 1, image.shape[0])
    rows, cols = torch.meshgrid(axis, axis, indexing="ij")
    coords = torch.stack([cols, rows], -1).reshape(1, -1, 2)  # (x = column, y = row)
    values = torch.as_tensor(image.reshape(1, -1, 3), dtype=torch.float32)
    permutation = torch.randperm(coords.shape[1], generator=torch.Generator().manual_seed(0))

    def batches(step):
        index = permutation[(step * batch) % coords.shape[1] :][:batch]
        return coords[:, index], values[:, index]

    torch.manual_seed(0)
    official = sl2a_module.SL2A(
        in_features=2, hidden_features=256, hidden_layers=3, out_features=3, deg=512, rank=128
    )
    siren = lg.FCBlock(2, 3, 3, 256, outermost_linear=True, nonlinearity="sine")
    return {
        "method": official_steps(official, batches, 1e-3, steps),
        "SIREN": official_steps(siren, batches, 1e-3, steps),
    }


def ensemble(repos: Path, side: str, steps: int) -> dict:
    image = skinr.datasets.astronaut(128)
    if side == "skinr":
        ours = skinr.EnsembleINR(
            grid=32,
            width=128,
            depth=1,
            blending="nearest",
            omega_0=30.0,
            learning_rate=1e-4,
            random_state=0,
        )
        siren = skinr.SIREN(width=256, depth=3, learning_rate=1e-4, random_state=0)
        return skinr_side(ours, siren, image, steps)
    import types

    for name in ("cv2", "ptflops", "torchvision.transforms", "tqdm.notebook"):
        try:
            importlib.import_module(name)
        except ImportError:
            for part in (name.split(".")[0], name):
                stub = types.ModuleType(part)
                stub.__getattr__ = lambda attribute: None
                sys.modules.setdefault(part, stub)
    utils = import_file("enrp_utils", repos / "ENRP" / "utils.py")
    cells, side_cells = 32 * 32, 128 // 32
    # The authors' layout: (points per cell, cells, channels, 1), cells row-major, a cell's
    # points row-major, coordinates in [-1, 1] within each cell (GridDataset).
    axis = torch.linspace(-1, 1, side_cells)
    local = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 1, 2)
    coords = local.repeat(1, cells, 1).unsqueeze(-1)
    pixels = torch.as_tensor((image - 0.5) / 0.5, dtype=torch.float32)
    blocks = pixels.reshape(32, side_cells, 32, side_cells, 3).permute(1, 3, 0, 2, 4)
    values = blocks.reshape(side_cells * side_cells, cells, 3, 1)
    torch.manual_seed(0)
    official = utils.GPSiren(
        in_features=2,
        grid_hidden_features=128,
        hidden_layers=1,
        grid_ratio=32,
        out_features=3,
        outermost_linear=True,
    )
    siren = utils.Siren(2, 256, 3, 3, outermost_linear=True)
    flat = torch.as_tensor(to_coords(image)[0], dtype=torch.float32)
    return {
        "method": official_steps(
            lambda x: official(x)[0],
            lambda step: (coords, values),
            1e-4,
            steps,
            parameters=official.parameters(),
        ),
        "SIREN": official_steps(
            lambda x: siren(x)[0],
            lambda step: (flat, pixels.reshape(-1, 3)),
            1e-4,
            steps,
            parameters=siren.parameters(),
        ),
    }


METHODS = {"EnsembleINR": ensemble, "LocalGlobal": local_global, "SL2A": sl2a}


#: The allocator as skinr's fits tune it while they train (mmap and trim thresholds of
#: 1 GiB: large blocks stay in the heap), for the authors' code: what their step costs
#: with the same allocator, so the table separates the tuning from the layers.
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
SIDES = (("official", {}), ("official tuned", TUNED_MALLOC), ("skinr", {}))


def measured_rounds(name: str, args) -> dict:
    """Each side in a fresh process per round, alternating: one side's process state
    (skinr's allocator tuning, warmed kernels) never reaches the other's timings."""
    measured = {f"{side} {what}": [] for side, _ in SIDES for what in (name, "SIREN")}
    for _ in range(args.rounds):
        for side, env in SIDES:
            command = [
                sys.executable,
                __file__,
                "--repos",
                str(args.repos),
                "--steps",
                str(args.steps),
                "--worker",
                name,
                side.split()[0],
            ]
            done = subprocess.run(
                command, check=True, capture_output=True, text=True, env={**os.environ, **env}
            )
            seconds = json.loads(done.stdout.strip().splitlines()[-1])
            measured[f"{side} {name}"].append(seconds["method"])
            measured[f"{side} SIREN"].append(seconds["SIREN"])
        print(name, {k: round(v[-1] * 1000, 1) for k, v in measured.items()}, flush=True)
    return measured


def summary(name: str, measured: dict) -> dict:
    median = {k: float(np.median(v)) for k, v in measured.items()}
    official, ours = median[f"official {name}"], median[f"skinr {name}"]
    return {
        "step_ms": {k: 1000 * v for k, v in median.items()},
        "runs_ms": {k: [1000 * t for t in v] for k, v in measured.items()},
        "speedup": official / ours,
        "speedup_tuned": median[f"official tuned {name}"] / ours,
        "official_over_siren": official / median["official SIREN"],
        "skinr_over_siren": ours / median["skinr SIREN"],
    }


def markdown(results: dict) -> str:
    lines = [
        "# The papers' own code beside skinr",
        "",
        "<!-- written by benchmarks/official.py -->",
        "Per-step milliseconds at each paper's configuration on 2 CPU cores: the authors' "
        "modules in the authors' loop against skinr's `fit`, each side in a fresh process "
        f"per round, rounds alternating ({results['rounds']} rounds of {results['steps']} "
        "steps; median of each fit's last half, then of the rounds). A plain SIREN 256 x 3 "
        "on the same samples is timed on each side, so each method is also a ratio to its "
        "side's SIREN. skinr's fits keep large freed blocks in glibc's heap while they "
        "train (`recycled_memory`); the authors' code runs with glibc's defaults, and once "
        "more with the same tuning (`MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_` "
        "of 1 GiB) to show what the tuning alone gives it.",
        "",
        "| method (configuration) | authors' step | skinr step | skinr speed-up | "
        "authors' step, allocator tuned as skinr's | speed-up against it | "
        "authors' / their SIREN | skinr / skinr SIREN |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in (
        ("EnsembleINR", "Ensemble INR, S4 (astronaut 128 x 128, grid 32, depth 1, width 128)"),
        ("LocalGlobal", "Local-Global SIREN (camera 512 x 512, 16 x 16 partitions, h 14, G 84)"),
        ("SL2A", "SL2A (astronaut 512 x 512 RGB, width 256, degree 512, rank 128, batch 16,384)"),
    ):
        if name not in results:
            continue
        row = results[name]
        lines.append(
            f"| {label} | {row['step_ms'][f'official {name}']:.1f} | "
            f"{row['step_ms'][f'skinr {name}']:.1f} | {row['speedup']:.2f}x | "
            f"{row['step_ms'][f'official tuned {name}']:.1f} | {row['speedup_tuned']:.2f}x | "
            f"{row['official_over_siren']:.2f} | {row['skinr_over_siren']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--repos", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=sorted(METHODS), nargs="+")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        name, side = args.worker
        print(json.dumps(METHODS[name](args.repos, side, args.steps)))
        return
    results = {"steps": args.steps, "rounds": args.rounds}
    for name in args.only or sorted(METHODS):
        results[name] = summary(name, measured_rounds(name, args))
    page = markdown(results)
    print(page)
    out = ROOT / "docs" / "benchmarks"
    (out / "official.md").write_text(page)
    (out / "official.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
