"""The bits a fitted SIREN, Grid and HashGrid need: skinr.codec.encode against their
32-bit model files and against JPEG 2000.

Run:  python benchmarks/model_codec.py           (256 x 256, 3 photos: ~20 min on 2 cores)
      python benchmarks/model_codec.py --quick   (smoke test: 32 x 32, 30 steps)
Writes docs/benchmarks/model_codec.md and model_codec.json (not with --quick).

For each photo of ``benchmarks/codec.py`` (camera gray, astronaut and chelsea RGB,
area-downsampled and rounded to 8 bits), each estimator is fitted at its defaults
(``random_state=0``) and written three ways: its model file (``save``, 32-bit
weights), streams of ``encode(model, bits=b)`` over a sweep of ``b``, and the
fewest bits that keep the fitted model's PSNR within 0.1 and 0.5 dB, or within them
of 60 dB for a fit above it (``encode(model, psnr=..., X=X, y=y)``). Rates are bytes
on disk, headers included;
PSNR is over 8-bit pixels of the decoded model's render. JPEG 2000 (OpenJPEG, through
imagecodecs) is encoded over its quality sweep in the same run, and the rate it needs
for each stream's PSNR is interpolated in log-rate (no BD-rate: a stream's curve is
flat once the bits exceed what the fit resolves, and the two curves barely share a
rate); PNG and lossless JPEG 2000 files of each photo are written too.
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

from codec import classic_curves, photo_parser, photos, psnr8  # noqa: E402

import skinr  # noqa: E402
from skinr.codec import decode, encode  # noqa: E402
from skinr.signals import to_coords  # noqa: E402

ESTIMATORS = ("SIREN", "Grid", "HashGrid")
BITS = (3, 4, 5, 6, 7, 8, 10, 12)
WITHIN_DB = (0.1, 0.5)
# Quantisation-aware refinement: these bits, this many steps (encode(refine=...)).
REFINE_BITS, REFINE_STEPS = (4, 6, 8), 100
# A fit above this PSNR is exact once rendered to 8 bits: "within 0.1 dB" is of this.
CEILING_DB = 60.0


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
        "refined": [],
        "within": {},
    }
    for bits in BITS:
        started = time.perf_counter()
        data = encode(model, bits=bits)
        row = {"bits": bits, "encode_s": time.perf_counter() - started, **stream_row(image, data)}
        result["sweep"].append(row)
    for bits in REFINE_BITS:
        started = time.perf_counter()
        data = encode(model, bits=bits, X=X, y=y, refine=REFINE_STEPS)
        row = {"bits": bits, "encode_s": time.perf_counter() - started, **stream_row(image, data)}
        result["refined"].append(row)
    for loss in WITHIN_DB:
        started = time.perf_counter()
        data = encode(model, psnr=min(fitted, CEILING_DB) - loss, X=X, y=y)
        row = {"encode_s": time.perf_counter() - started, **stream_row(image, data)}
        result["within"][str(loss)] = row
    print(
        f"  {name}: fit {fit_s:.0f} s, {result['psnr']:.2f} dB, file {file_bpp:.1f} bpp; "
        + ", ".join(f"{b['bits']}b {b['bpp']:.2f} bpp {b['psnr']:.2f} dB" for b in result["sweep"]),
        flush=True,
    )
    return result


def lossless_bpp(image: np.ndarray) -> dict[str, float]:
    """Bits per pixel of the photo's lossless files: what a user keeps a photo in."""
    import imagecodecs

    pixels = np.round(image * 255).astype(np.uint8)
    n = image.shape[0] * image.shape[1]
    png = imagecodecs.png_encode(pixels, level=9)
    j2k = imagecodecs.jpeg2k_encode(pixels, level=0, codecformat="j2k", reversible=True)
    return {"PNG": 8 * len(png) / n, "JPEG 2000 lossless": 8 * len(j2k) / n}


def rate_at(curve, psnr: float) -> str:
    """A codec's bpp at ``psnr`` (linear in log-rate), or where it stops."""
    if not curve:
        return "-"
    rates, values = np.array([p[0] for p in curve]), np.array([p[1] for p in curve])
    order = np.argsort(values)
    if psnr > values.max():
        return "lossless"
    if psnr < values.min():
        return f"< {rates.min():.2f}"
    return f"{np.exp(np.interp(psnr, values[order], np.log(rates[order]))):.2f}"


def ratios(file_bpp: float, *streams: float) -> str:
    shown = sorted({f"{file_bpp / bpp:.1f}" for bpp in streams}, key=float)
    return "-".join(shown) + "x"


def lossy(curve):
    """A codec's (bpp, PSNR) points short of lossless (infinite PSNR)."""
    return [point for point in curve if np.isfinite(point[1])]


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
        "| within 0.5 dB (bpp) | smaller than the file | JPEG 2000 at that PSNR (bpp) "
        "| PNG (bpp) | encode (s) | decode (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for photo, result in results.items():
        j2k = lossy(result["classic"]["JPEG 2000"])
        for name, r in result["models"].items():
            tight, loose = r["within"]["0.1"], r["within"]["0.5"]
            lines.append(
                f"| {photo} ({result['channels']}) | {name} | {r['psnr']:.2f} "
                f"| {r['file_bpp']:.1f} | {tight['bpp']:.2f} | {loose['bpp']:.2f} "
                f"| {ratios(r['file_bpp'], tight['bpp'], loose['bpp'])} "
                f"| {rate_at(j2k, loose['psnr'])} | {result['lossless']['PNG']:.2f} "
                f"| {loose['encode_s']:.2f} | {loose['decode_s']:.2f} |"
            )
    lines += [
        "",
        "JPEG 2000 at that PSNR: the rate its quality sweep needs for the 0.5 dB stream's "
        "8-bit PSNR (*lossless* above its sweep, where the stream's render is exact). "
        "Lossless files of the same photos: "
        + "; ".join(
            f"{photo} PNG {r['lossless']['PNG']:.2f} bpp, JPEG 2000 lossless "
            f"{r['lossless']['JPEG 2000 lossless']:.2f} bpp"
            for photo, r in results.items()
        )
        + ".",
        "",
        f"## Refined before coding ({REFINE_STEPS} steps)",
        "",
        f"`encode(model, bits=b, X=X, y=y, refine={REFINE_STEPS})`: the weights trained "
        "with their quantised values in the forward pass first (the best grid point met is "
        "kept). In brackets: the same bits without refinement. Encode seconds include "
        "the refinement.",
        "",
        "| photo | estimator | " + " | ".join(f"{b} bits" for b in REFINE_BITS) + " | encode (s) |",
        "|---|---|" + "---|" * (len(REFINE_BITS) + 1),
    ]
    for photo, result in results.items():
        for name, r in result["models"].items():
            if not r.get("refined"):
                continue
            plain = {row["bits"]: row for row in r["sweep"]}
            cells = " | ".join(
                f"{row['bpp']:.2f} bpp, {row['psnr']:.2f} dB ({plain[row['bits']]['psnr']:.2f})"
                for row in r["refined"]
            )
            seconds = "-".join(
                sorted({f"{row['encode_s']:.0f}" for row in r["refined"]}, key=float)
            )
            lines.append(f"| {photo} ({result['channels']}) | {name} | {cells} | {seconds} |")
    lines += [
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
            shown = " | ".join(rate_at(j2k, row["psnr"]) for row in r["sweep"])
            lines += [f"| {name} | {cells} |", f"| JPEG 2000 at that PSNR (bpp) | {shown} |"]
        span = ", ".join(f"{p[0]:.2f} bpp {p[1]:.2f} dB" for p in j2k[:: max(1, len(j2k) // 4)])
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
        images = photos(args.size)
        for photo, result in results.items():
            result.setdefault("lossless", lossless_bpp(images[photo]))
        (out / "model_codec.json").write_text(json.dumps(results, indent=1))
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
            "lossless": lossless_bpp(image),
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
