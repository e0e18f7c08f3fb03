"""The bits a fitted SIREN, Grid and HashGrid need: skinr.codec.encode against their
32-bit model files and against JPEG 2000.

Run:  python benchmarks/model_codec.py           (256 x 256, 3 photos: ~20 min on 2 cores)
      python benchmarks/model_codec.py --quick   (smoke test: 32 x 32, 30 steps)
Writes docs/benchmarks/model_codec.md and model_codec.json (not with --quick).

For each photo of ``benchmarks/codec.py`` (camera gray, astronaut and chelsea RGB,
area-downsampled and rounded to 8 bits), each estimator is fitted at its defaults
(``random_state=0``) and written three ways: its model file (``save``, 32-bit
weights), streams of ``encode(model, bits=b)`` over a sweep of ``b``, and the
fewest bits that keep the fitted model's PSNR within 0.1 and 0.5 dB
(``encode(model, psnr=..., X=X, y=y)``). Rates are bytes on disk, headers included;
PSNR is over 8-bit pixels of the decoded model's render. JPEG 2000 (OpenJPEG, through
imagecodecs) is encoded over its quality sweep in the same run; its PSNR at each
stream's rate is interpolated in log-rate (no BD-rate: a stream's curve is flat once
the bits exceed what the fit resolves, and the two curves barely share a rate).
Encode seconds are ``encode`` alone (the fit is timed apart); decode
seconds are ``decode`` plus a full render.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from codec import classic_curves, photo_parser, photos, psnr8, psnr_at  # noqa: E402

import skinr  # noqa: E402
from skinr.codec import decode, encode  # noqa: E402
from skinr.signals import to_coords  # noqa: E402

ESTIMATORS = ("SIREN", "Grid", "HashGrid")
BITS = (3, 4, 5, 6, 7, 8, 10, 12)
WITHIN_DB = (0.1, 0.5)


def stream_row(image, data: bytes) -> dict:
    started = time.perf_counter()
    picture = decode(data).render(image.shape[:2])
    decode_s = time.perf_counter() - started
    n = image.shape[0] * image.shape[1]
    return {
        "bpp": 8 * len(data) / n,
        "psnr": psnr8(np.asarray(picture).reshape(image.shape), image),
        "decode_s": decode_s,
    }


def measure(name: str, image: np.ndarray, params: dict) -> dict:
    X, y = to_coords(image, pixel_centers=True)
    started = time.perf_counter()
    model = getattr(skinr, name)(random_state=0, **params).fit(X, y)
    fit_s = time.perf_counter() - started
    n = image.shape[0] * image.shape[1]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        model.save(path)
        file_bpp = 8 * path.stat().st_size / n
    fitted = model.score(X, y)
    result = {
        "fit_s": fit_s,
        "steps": model.n_iter_,
        "psnr": psnr8(np.asarray(model.render(image.shape[:2])).reshape(image.shape), image),
        "file_bpp": file_bpp,
        "sweep": [],
        "within": {},
    }
    for bits in BITS:
        started = time.perf_counter()
        data = encode(model, bits=bits)
        row = {"bits": bits, "encode_s": time.perf_counter() - started, **stream_row(image, data)}
        result["sweep"].append(row)
    for loss in WITHIN_DB:
        started = time.perf_counter()
        data = encode(model, psnr=fitted - loss, X=X, y=y)
        row = {"encode_s": time.perf_counter() - started, **stream_row(image, data)}
        result["within"][str(loss)] = row
    print(
        f"  {name}: fit {fit_s:.0f} s, {result['psnr']:.2f} dB, file {file_bpp:.1f} bpp; "
        + ", ".join(f"{b['bits']}b {b['bpp']:.2f} bpp {b['psnr']:.2f} dB" for b in result["sweep"]),
        flush=True,
    )
    return result


def lossy(curve):
    """A codec's (bpp, PSNR) points short of lossless (infinite PSNR)."""
    return [(bpp, psnr) for bpp, psnr in curve if np.isfinite(psnr)]


def report(results: dict, size: int, command: str) -> str:
    lines = [
        "# Compression: any fitted estimator as a stream",
        "",
        f"Measured by `{command}` on this project's CI machine (2 CPU cores), {size} x {size} "
        "photos rounded to 8 bits, each estimator at its defaults. PSNR over 8-bit pixels "
        "of the render; rates are bytes on disk, headers included. *bits* is "
        "`encode(model, bits=b)`: each tensor on a grid of step sqrt(12) std / 2^b.",
        "",
        "## The fewest bits that keep the fitted model's PSNR",
        "",
        "| photo | estimator | fitted PSNR | model file (bpp) | stream within 0.1 dB (bpp) "
        "| smaller | within 0.5 dB (bpp) | smaller | JPEG 2000 at that bpp | encode (s) "
        "| decode (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for photo, result in results.items():
        j2k = lossy(result["classic"]["JPEG 2000"])
        for name, r in result["models"].items():
            tight, loose = r["within"]["0.1"], r["within"]["0.5"]
            at = psnr_at(j2k, loose["bpp"])
            lines.append(
                f"| {photo} ({result['channels']}) | {name} | {r['psnr']:.2f} "
                f"| {r['file_bpp']:.1f} | {tight['bpp']:.2f} | {r['file_bpp'] / tight['bpp']:.1f}x "
                f"| {loose['bpp']:.2f} | {r['file_bpp'] / loose['bpp']:.1f}x "
                f"| {'-' if at is None else f'{at:.2f}'} | {loose['encode_s']:.2f} "
                f"| {loose['decode_s']:.2f} |"
            )
    lines += [
        "",
        "JPEG 2000's column is its PSNR at the rate of the 0.5 dB stream; `-` where that "
        "rate is beyond its sweep (above about 8 bpp: near lossless).",
        "",
        "## PSNR against bits per pixel",
        "",
    ]
    for photo, result in results.items():
        j2k = lossy(result["classic"]["JPEG 2000"])
        lines += [
            f"### {photo} ({result['channels']})",
            "",
            "| estimator | " + " | ".join(f"{b} bits" for b in BITS) + " |",
            "|---|" + "---|" * len(BITS),
        ]
        for name, r in result["models"].items():
            cells = " | ".join(f"{row['bpp']:.2f} bpp, {row['psnr']:.2f} dB" for row in r["sweep"])
            at = [psnr_at(j2k, row["bpp"]) for row in r["sweep"]]
            shown = " | ".join("-" if v is None else f"{v:.2f} dB" for v in at)
            lines += [f"| {name} | {cells} |", f"| JPEG 2000 at those rates | {shown} |"]
        span = ", ".join(f"{b:.2f} bpp {p:.2f} dB" for b, p in j2k[:: max(1, len(j2k) // 4)])
        lines += ["", f"JPEG 2000's sweep in the same run: {span}.", ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = photo_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the page from model_codec.json"
    )
    args = parser.parse_args(argv)
    out = ROOT / "docs" / "benchmarks"
    if args.report_only:
        results = json.loads((out / "model_codec.json").read_text())
        text = report(results, args.size, "python benchmarks/model_codec.py")
        (out / "model_codec.md").write_text(text)
        print(text)
        return
    size, params = args.size, {}
    if args.quick:
        size, params = 32, {"max_iter": 30}
    results = {}
    for photo, image in photos(size).items():
        if args.images and photo not in args.images:
            continue
        print(f"{photo} ({size} x {size})", flush=True)
        results[photo] = {
            "channels": "gray" if image.ndim == 2 else "RGB",
            "classic": {"JPEG 2000": classic_curves(image)["JPEG 2000"]},
            "models": {name: measure(name, image, params) for name in ESTIMATORS},
        }
    command = "python benchmarks/model_codec.py" + (" --quick" if args.quick else "")
    text = report(results, size, command)
    print(text)
    if not args.quick:
        (out / "model_codec.md").write_text(text)
        (out / "model_codec.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
