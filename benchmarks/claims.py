"""The figures skinr's README and docs quote, re-measured and compared with what they say.

Run:  python benchmarks/claims.py                  (every claim but the slow ones, ~6 min)
      python benchmarks/claims.py --all            (the slow ones too, ~20 min)
      python benchmarks/claims.py --kind count     (the deterministic ones, seconds)
      python benchmarks/claims.py --only ensemble_step_speedup_128
      python benchmarks/claims.py --official-repos DIR   (adds the speed-ups over the
                                                         authors' code, ~8 min more)
Writes docs/benchmarks/claims.md and claims.json; exits 1 when a figure drifted.

Each claim names the page that quotes it and a pattern that reads the quoted number
from that page, so the guard compares with what a reader sees today, not with a copy.
Speed is measured as a ratio within one run (both sides alternate), never as an
absolute time, except the README's main job, whose seconds are compared with the figure
the README gives for this kind of CPU. Kinds:

- ``count``: deterministic (FLOP counts, parameter counts); exact to rounding. The test
  suite checks these (tests/test_claims.py).
- ``quality``: PSNR of a seeded fit; a fraction of a dB.
- ``timing``: ratios of step or render times; the tolerance a quiet 2-core machine
  keeps. Run before closing any change to the loop, layers or kernels (CONTRIBUTING).

A drift means the code or the docs must change: re-run the benchmark that wrote the
figure (the claim's ``command``) and update the page, or find the regression.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks"
sys.path.insert(0, str(Path(__file__).resolve().parent))

import skinr  # noqa: E402
from skinr.signals import to_coords  # noqa: E402


@dataclass(frozen=True)
class Claim:
    """A figure a page quotes, and how to measure it again.

    ``pattern`` is a regular expression whose first group is the number as the page
    prints it (thousands separators allowed); ``tolerance`` is the relative drift
    allowed; ``command`` is the benchmark that wrote the figure.
    """

    name: str
    page: str
    pattern: str
    measure: Callable[[], float]
    tolerance: float
    kind: str
    command: str
    slow: bool = False
    # Measured against the authors' code: only with --official-repos.
    official: bool = False

    def stated(self) -> float:
        """The number the page quotes today."""
        text = (ROOT / self.page).read_text()
        # A space in a pattern matches any run of whitespace: pages wrap their lines.
        match = re.search(self.pattern.replace(" ", r"\s+"), text)
        if match is None:
            raise LookupError(f"{self.page} no longer quotes {self.name} ({self.pattern!r})")
        return float(match.group(1).replace(",", ""))


def _fitted(estimator, X, y, steps=1):
    return estimator.set_params(max_iter=steps, random_state=0, device="cpu").fit(X, y)


def _rgb_128():
    """A 128 x 128 RGB image from the bundled photograph: counts depend on the shape
    only, and the bundled file keeps them checkable without scikit-image (floors job)."""
    return to_coords(np.repeat(skinr.datasets.camera(128)[..., None], 3, axis=-1))


def siren_gflops_128_rgb() -> float:
    """SIREN (width 256, depth 3) on a 128 x 128 RGB image, GFLOPs (ENRP Table I)."""
    X, y = _rgb_128()
    return _fitted(skinr.SIREN(256, 3), X, y).count_flops(X) / 1e9


def siren_flops_per_pixel() -> float:
    X, y = to_coords(skinr.datasets.camera(16))
    return _fitted(skinr.SIREN(256, 3), X, y).count_flops(X[:1])


def ensemble_s4_params() -> float:
    """EnsembleINR S4 (grid 32, depth 1, width 128) on a 128 x 128 RGB image, parameters."""
    X, y = _rgb_128()
    model = skinr.EnsembleINR(grid=32, width=128, depth=1, blending="nearest", omega_0=30.0)
    return _fitted(model, X, y).n_params_


def _multihead_render_models():
    """The paper's Fig. 5 models as benchmarks/multihead.py builds them, one step each:
    a render's FLOPs depend on the structure and the grid, not on the weights."""
    from multihead import matched_width

    small = skinr.datasets.camera(256)
    X, y = to_coords(small)
    mh = _fitted(skinr.MultiHeadReLU(blending="nearest", weight_decay=0.0), X, y)
    siren = _fitted(
        skinr.SIREN(width=matched_width(lambda w: skinr.SIREN(width=w), mh.n_params_, X, y)), X, y
    )
    return mh, siren, mh.grid_coordinates((512, 512))


def multihead_render_flops_ratio() -> float:
    mh, siren, coords = _multihead_render_models()
    return siren.count_flops(coords) / mh.count_flops(coords)


def multihead_render_speedup() -> float:
    from multihead import render_seconds

    mh, siren, coords = _multihead_render_models()
    return render_seconds(siren, coords, 3) / render_seconds(mh, coords, 3)


@functools.cache
def _ensemble_steps() -> dict:
    """ms per step of SIREN and S4 (hard, baddbmm, blended) on astronaut 128, one run."""
    from ensemble import step_speed

    return step_speed(sizes=(128,), steps=40, repeats=2, write=False)[0]


def ensemble_step_speedup_128() -> float:
    """SIREN (d 3, w 256) step / S4 step on astronaut 128, as ensemble.py --speed-only."""
    row = _ensemble_steps()
    return row["SIREN"] / row["S4"]


def ensemble_blended_step_ratio() -> float:
    """S4's step at the default blend / at the paper's hard cells, same run."""
    row = _ensemble_steps()
    return row["S4 smooth"] / row["S4"]


def multihead_blended_render_flops_ratio() -> float:
    """The paper's model's 512 x 512 render at the default blend / with hard cells."""
    hard, _, coords = _multihead_render_models()
    X, y = to_coords(skinr.datasets.camera(256))
    blended = _fitted(skinr.MultiHeadReLU(weight_decay=0.0), X, y)
    return blended.count_flops(coords) / hard.count_flops(coords)


def library_overhead_percent() -> float:
    """skinr's SIREN step against a hand-written loop of the same network (run.py)."""
    from run import plain_siren_loop, skinr_fit

    X, y = to_coords(skinr.datasets.camera(128))
    y = y.reshape(len(y), -1)
    settings = dict(width=256, depth=3, steps=40, learning_rate=1e-4, seed=0)
    plain, library = math.inf, math.inf
    for _ in range(3):  # alternating, fastest of each
        plain = min(plain, plain_siren_loop(X, y, **settings)["ms_per_step"])
        model = skinr.SIREN(
            256,
            3,
            max_iter=40,
            learning_rate=1e-4,
            random_state=0,
            device="cpu",
            torch_compile=False,
        )
        library = min(library, skinr_fit(model, X, y)["ms_per_step"])
    return 100 * (library / plain - 1)


def _main_job() -> dict:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "skinr", "fit", "--out", out, "--quiet"],
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - started
        metrics = json.loads((Path(out) / "metrics.json").read_text())
    return {"seconds": seconds, "psnr": metrics["psnr_db"]}


_MAIN_JOB: dict = {}


def main_job_seconds() -> float:
    _MAIN_JOB.update(_MAIN_JOB or _main_job())
    return _MAIN_JOB["seconds"]


def main_job_psnr() -> float:
    _MAIN_JOB.update(_MAIN_JOB or _main_job())
    return _MAIN_JOB["psnr"]


def hashgrid_sooner_than_siren() -> float:
    """Seconds SIREN (defaults) takes for 300 steps on camera 256 / seconds HashGrid
    (defaults) takes to reach SIREN's fit PSNR (representations.py's race)."""
    from representations import race

    result = race(skinr.datasets.camera(256), steps=300)
    return result["speedup"]


#: Clones of the authors' repositories (benchmarks/official.py), from --official-repos.
OFFICIAL_REPOS: Path | None = None


def _official_speedup(method: str) -> float:
    """skinr's step against the authors' at the paper's configuration (one run)."""
    import argparse as _argparse

    import official

    args = _argparse.Namespace(repos=OFFICIAL_REPOS, steps=12, rounds=3)
    return official.summary(method, official.measured_rounds(method, args))["speedup"]


CLAIMS = [
    Claim(
        "siren_gflops_128_rgb",
        "docs/estimators/siren.md",
        r"([\d.]+) GFLOPs for a 128 x 128 RGB image",
        siren_gflops_128_rgb,
        0.005,
        "count",
        "counted by SIREN.count_flops",
    ),
    Claim(
        "siren_flops_per_pixel",
        "docs/estimators/siren.md",
        r"([\d,]+) FLOPs per pixel at width 256",
        siren_flops_per_pixel,
        0.0,
        "count",
        "counted by SIREN.count_flops",
    ),
    Claim(
        "ensemble_s4_params",
        "docs/benchmarks/ensemble.md",
        r"\| S4 \| 32 \| 1 \| 128 \| ([\d,]+) \|",
        ensemble_s4_params,
        0.0,
        "count",
        "python benchmarks/ensemble.py",
    ),
    Claim(
        "multihead_render_flops_ratio",
        "docs/estimators/multihead.md",
        r"\*\*([\d,]+)x and [\d,]+x fewer\*\*",
        multihead_render_flops_ratio,
        0.005,
        "count",
        "python benchmarks/multihead.py",
    ),
    Claim(
        "multihead_render_speedup",
        "docs/estimators/multihead.md",
        r"\*\*(\d+)x faster\*\* than the SIREN's",
        multihead_render_speedup,
        0.35,
        "timing",
        "python benchmarks/multihead.py",
    ),
    Claim(
        "ensemble_step_speedup_128",
        "docs/estimators/ensemble.md",
        r"\*\*([\d.]+)x faster at 128 x 128\*\*",
        ensemble_step_speedup_128,
        0.2,
        "timing",
        "python benchmarks/ensemble.py --speed-only",
    ),
    Claim(
        "multihead_blended_render_flops_ratio",
        "docs/estimators/multihead.md",
        r"costs \*\*([\d.]+)x the FLOPs\*\* of hard cells",
        multihead_blended_render_flops_ratio,
        0.005,
        "count",
        "counted by MultiHeadReLU.count_flops",
    ),
    Claim(
        "ensemble_blended_step_ratio",
        "docs/estimators/ensemble.md",
        r"the default blend's step costs \*\*([\d.]+)x\*\* the paper's",
        ensemble_blended_step_ratio,
        0.2,
        "timing",
        "python benchmarks/ensemble.py --speed-only",
    ),
    Claim(
        "library_overhead_percent",
        "docs/benchmarks/index.md",
        r"skinr step time vs plain loop: ([+-]?[\d.]+) %",
        library_overhead_percent,
        # A percentage near zero: compare in points, not relative (see _drift).
        5.0,
        "timing",
        "python benchmarks/run.py",
    ),
    Claim(
        "main_job_seconds",
        "README.md",
        # The figure for the machine this project develops and tests on.
        r"(\d+) s end to end on 2 cores of this project's CI machine",
        main_job_seconds,
        0.25,
        "timing",
        "skinr fit --out skinr-out",
    ),
    Claim(
        "main_job_psnr",
        "README.md",
        r"(\d+) dB PSNR \(SSIM",
        main_job_psnr,
        0.01,
        "quality",
        "skinr fit --out skinr-out",
    ),
    Claim(
        "hashgrid_sooner_than_siren",
        "docs/benchmarks/representations.md",
        r"\*\*([\d.]+)x sooner\*\*",
        hashgrid_sooner_than_siren,
        0.3,
        "timing",
        "python benchmarks/representations.py",
        slow=True,
    ),
    *(
        Claim(
            f"official_speedup_{method.lower()}",
            "docs/benchmarks/index.md",
            pattern,
            functools.partial(_official_speedup, method),
            0.2,
            "timing",
            "python benchmarks/official.py --repos DIR",
            official=True,
        )
        for method, pattern in (
            ("EnsembleINR", r"skinr's step is ([\d.]+)x shorter than ENRP's"),
            ("LocalGlobal", r"([\d.]+)x for Local-Global SIREN 16 x 16"),
            ("SL2A", r"and ([\d.]+)x for SL2A on 512 x 512"),
        )
    ),
]
# Percentages that sit near zero drift in points, not relative to themselves.
ABSOLUTE = {"library_overhead_percent"}


def _drift(claim: Claim, stated: float, measured: float) -> tuple[float, bool]:
    if claim.name in ABSOLUTE:
        drift = measured - stated
        return drift, abs(drift) <= claim.tolerance
    drift = measured / stated - 1 if stated else math.inf
    return drift, abs(drift) <= claim.tolerance + 1e-12


def check(claims) -> list[dict]:
    rows = []
    for claim in claims:
        stated = claim.stated()
        started = time.perf_counter()
        measured = float(claim.measure())
        drift, holds = _drift(claim, stated, measured)
        rows.append(
            {
                "claim": claim.name,
                "kind": claim.kind,
                "page": claim.page,
                "stated": stated,
                "measured": measured,
                "drift": drift,
                "tolerance": claim.tolerance,
                "holds": holds,
                "seconds": time.perf_counter() - started,
                "command": claim.command,
            }
        )
        print(
            f"{'ok   ' if holds else 'DRIFT'} {claim.name}: stated {stated:g}, "
            f"measured {measured:.4g}",
            flush=True,
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "<!-- written by benchmarks/claims.py -->",
        f"Figures the docs quote, re-measured on this machine ({torch.get_num_threads()} "
        f"threads, torch {torch.__version__}); drift is relative (points for percentages):",
        "",
        "| claim | kind | quoted in | stated | measured | drift | tolerance | holds |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        drift = f"{r['drift']:+.2f}" if r["claim"] in ABSOLUTE else f"{100 * r['drift']:+.1f} %"
        tolerance = (
            f"{r['tolerance']:g}" if r["claim"] in ABSOLUTE else f"{100 * r['tolerance']:g} %"
        )
        lines.append(
            f"| {r['claim']} | {r['kind']} | {r['page']} | {r['stated']:g} | "
            f"{r['measured']:.4g} | {drift} | {tolerance} | {'yes' if r['holds'] else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="the slow claims too")
    parser.add_argument("--kind", choices=("count", "quality", "timing"))
    parser.add_argument("--only", nargs="+", metavar="NAME")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--official-repos", type=Path, metavar="DIR", help="benchmarks/official.py's --repos"
    )
    args = parser.parse_args(argv)
    global OFFICIAL_REPOS
    OFFICIAL_REPOS = args.official_repos
    claims = [
        c
        for c in CLAIMS
        if (args.all or not c.slow or (args.only and c.name in args.only))
        and (not c.official or OFFICIAL_REPOS is not None)
        and (args.kind is None or c.kind == args.kind)
        and (not args.only or c.name in args.only)
    ]
    rows = check(claims)
    text = table(rows)
    print(text)
    if not args.no_write and not args.only and args.kind is None:
        (RESULTS / "claims.md").write_text(text)
        (RESULTS / "claims.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["holds"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
