"""Rate-distortion of skinr.codec.LatentCodec against the image codecs users have.

Run:  python benchmarks/codec.py            (256 x 256, 4 rates, 3 photos: ~15 min on 2 cores)
      python benchmarks/codec.py --quick    (smoke test: 32 x 32, 30 steps, 2 rates)
Writes docs/benchmarks/codec.md and codec.json (not with --quick).

For each photo (camera gray, astronaut and chelsea RGB from ``../shared/data``, else
skinr's own camera and scikit-image's astronaut / chelsea), area-downsampled to
``size x size`` and rounded to 8 bits: LatentCodec at several ``rate_weight`` values
(``random_state=0``, its defaults otherwise), every rate counted as the bytes of its
stream (header included), beside JPEG (libjpeg-turbo), JPEG 2000 (OpenJPEG), WebP,
AVIF and JPEG XL encoded in the same run through ``imagecodecs`` over a sweep of
their quality settings. PSNR is over 8-bit pixels (the decoded model's output rounded
to 8 bits), averaged per image. BD-rate (Bjøntegaard, cubic in log-rate over the
common PSNR range) is against JPEG 2000. Encode seconds are LatentCodec's fit plus
its stream; decode seconds are :func:`skinr.codec.decode` plus a full render. SSIM
(Wang et al.'s settings, over 8-bit pixels, RGB averaged over channels) beside
JPEG 2000's at the same rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import skinr  # noqa: E402
from skinr.codec import LatentCodec, decode, encode  # noqa: E402
from skinr.signals import to_coords  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
RATE_WEIGHTS = (3e-2, 1e-2, 3e-3, 1e-3)
# Published Kodak averages (their numbers, 768 x 512 RGB photos; not re-measured here).
PUBLISHED_KODAK = {
    "COIN (Dupont et al. 2021)": {0.25: 25.9, 1.0: 30.0},
    "Strümpler et al. (ECCV 2022)": {0.25: 28.3},
    "Cool-chic / C3 (2023-24)": {0.25: 31.3, 0.5: 34.5, 1.0: 38.9},
    "JPEG 2000, OpenJPEG (as they report)": {0.25: 28.7, 0.5: 31.5, 1.0: 35.0},
}


def photos(size: int) -> dict[str, np.ndarray]:
    """8-bit photos as floats in [0, 1], area-downsampled to ``size``."""
    out = {}
    for name in ("camera", "astronaut", "chelsea"):
        path = SHARED / f"{name}.png"
        if path.exists():
            image = skinr.io.read(path).values
        elif name == "camera":
            image = skinr.datasets.camera()
        else:
            from skimage import data

            image = getattr(data, name)() / 255.0
        image = skinr.datasets.resize(np.asarray(image, dtype=np.float64), (size, size))
        out[name] = np.round(np.clip(image, 0, 1) * 255) / 255
    return out


def psnr8(decoded: np.ndarray, image: np.ndarray) -> float:
    a = np.round(np.clip(decoded, 0, 1) * 255)
    b = np.round(image * 255)
    return float(10 * np.log10(255.0**2 / np.mean((a - b) ** 2)))


def host() -> str:
    """The machine, in words: its processor and how many cores this process may use."""
    import os
    import platform

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores of {name}"


def ssim8(decoded: np.ndarray, image: np.ndarray) -> float:
    """SSIM over 8-bit pixels (Wang et al.'s settings; RGB averaged over channels)."""
    from skinr.metrics import ssim

    a = np.round(np.clip(decoded, 0, 1) * 255)
    b = np.round(image * 255)
    return ssim(b, a, data_range=255.0, channel_axis=-1 if image.ndim == 3 else None)


def classic_curves(image: np.ndarray) -> dict[str, list[tuple[float, float, float]]]:
    """(bpp, PSNR, SSIM) of each classic codec over its quality sweep."""
    import imagecodecs

    pixels = np.round(image * 255).astype(np.uint8)
    n = image.shape[0] * image.shape[1]
    sweeps = {
        "JPEG": (imagecodecs.jpeg8_encode, imagecodecs.jpeg8_decode, "level", range(5, 100, 5)),
        "JPEG 2000": (
            lambda a, level: imagecodecs.jpeg2k_encode(a, level=level, codecformat="j2k"),
            imagecodecs.jpeg2k_decode,
            "level",
            [float(v) for v in range(22, 52, 2)],
        ),
        "WebP": (
            lambda a, level: imagecodecs.webp_encode(a, level=level, lossless=False),
            imagecodecs.webp_decode,
            "level",
            range(5, 100, 5),
        ),
        "AVIF": (imagecodecs.avif_encode, imagecodecs.avif_decode, "level", range(10, 100, 6)),
        "JPEG XL": (
            imagecodecs.jpegxl_encode,
            imagecodecs.jpegxl_decode,
            "distance",
            [0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0],
        ),
    }
    curves = {}
    for name, (enc, dec, key, values) in sweeps.items():
        points = []
        # WebP has no gray mode: a gray photo goes in as RGB with equal channels.
        source = (
            np.repeat(pixels[..., None], 3, -1) if name == "WebP" and pixels.ndim == 2 else pixels
        )
        for value in values:
            try:
                data = enc(source, **{key: value})
                decoded = np.asarray(dec(data), dtype=np.float64) / 255
                if decoded.ndim == 3 and pixels.ndim == 2:
                    decoded = decoded[..., :3].mean(-1)
            except Exception as error:  # a codec missing from this imagecodecs build
                print(f"  {name} {key}={value}: {type(error).__name__}", file=sys.stderr)
                continue
            decoded = decoded.reshape(image.shape)
            points.append((8 * len(data) / n, psnr8(decoded, image), ssim8(decoded, image)))
        curves[name] = sorted(points)
    return curves


def bd_rate(anchor, test) -> float | None:
    """Bjøntegaard delta rate (%) of ``test`` against ``anchor``, both (bpp, PSNR)."""
    a, t = np.array(sorted(anchor, key=lambda p: p[1])), np.array(sorted(test, key=lambda p: p[1]))
    if len(a) < 4 or len(t) < 4:
        return None
    low, high = max(a[:, 1].min(), t[:, 1].min()), min(a[:, 1].max(), t[:, 1].max())
    if low >= high:
        return None
    fits = [np.polyfit(c[:, 1], np.log(c[:, 0]), 3) for c in (a, t)]
    ints = [np.polyval(np.polyint(f), high) - np.polyval(np.polyint(f), low) for f in fits]
    return float((np.exp((ints[1] - ints[0]) / (high - low)) - 1) * 100)


def psnr_at(curve, bpp: float, column: int = 1) -> float | None:
    """A curve's PSNR (``column`` 2: SSIM) at ``bpp`` (linear in log-rate), None
    outside its range."""
    if any(len(p) <= column for p in curve):
        return None
    rates, values = np.array([p[0] for p in curve]), np.array([p[column] for p in curve])
    if not len(rates) or bpp < rates.min() or bpp > rates.max():
        return None
    return float(np.interp(np.log(bpp), np.log(rates), values))


def latent_curve(image, rate_weights, **params):
    X, y = to_coords(image, pixel_centers=True)
    rows = []
    for rate_weight in rate_weights:
        started = time.perf_counter()
        model = LatentCodec(rate_weight, random_state=0, **params).fit(X, y)
        stream = encode(model)
        encode_s = time.perf_counter() - started
        started = time.perf_counter()
        decoded = decode(stream)
        picture = decoded.render(image.shape[:2])
        decode_s = time.perf_counter() - started
        n = image.shape[0] * image.shape[1]
        arm = decoded.module_.arm
        latents = sum(z.numel() for z in decoded.module_.latents)
        arm_macs = sum(m.n_in * m.n_out for m in arm if hasattr(m, "n_in")) * latents / n
        synth_macs = decoded.count_flops(X[:1]) / 2
        rows.append(
            {
                "rate_weight": rate_weight,
                "bpp": 8 * len(stream) / n,
                "psnr": psnr8(picture.reshape(image.shape), image),
                "ssim": ssim8(picture.reshape(image.shape), image),
                "encode_s": encode_s,
                "decode_s": decode_s,
                "macs_per_pixel": synth_macs + arm_macs,
                "steps": model.n_iter_,
            }
        )
        print(
            f"  LatentCodec λ={rate_weight:g}: {rows[-1]['bpp']:.3f} bpp "
            f"{rows[-1]['psnr']:.2f} dB, encode {encode_s:.1f} s, decode {decode_s:.2f} s",
            flush=True,
        )
    return rows


def report(results: dict, size: int, command: str) -> str:
    lines = [
        "# Compression: LatentCodec against the image codecs",
        "",
        f"Measured by `{command}` on {host()}, "
        f"{size} x {size} photos rounded to 8 bits; PSNR over 8-bit pixels. Rates are "
        "bytes of the written stream, headers included.",
        "",
    ]
    for name, result in results.items():
        anchor = result["classic"]["JPEG 2000"]
        lines += [f"## {name} ({result['channels']})", ""]
        lines += [
            "| λ | bpp | PSNR (dB) | JPEG 2000 at that bpp | JPEG | WebP | AVIF | JPEG XL "
            "| SSIM | JPEG 2000's SSIM | encode (s) | decode (s) | mult./pixel |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in result["latent"]:
            others = [
                psnr_at(result["classic"][c], row["bpp"])
                for c in ("JPEG 2000", "JPEG", "WebP", "AVIF", "JPEG XL")
            ]
            shown = " | ".join("-" if v is None else f"{v:.2f}" for v in others)
            j2k_ssim = psnr_at(result["classic"]["JPEG 2000"], row["bpp"], column=2)
            ssims = " | ".join(
                "-" if v is None else f"{v:.3f}" for v in (row.get("ssim"), j2k_ssim)
            )
            lines.append(
                f"| {row['rate_weight']:g} | {row['bpp']:.3f} | {row['psnr']:.2f} | {shown} "
                f"| {ssims} | {row['encode_s']:.1f} | {row['decode_s']:.2f} "
                f"| {row['macs_per_pixel']:.0f} |"
            )
        curve = [(r["bpp"], r["psnr"]) for r in result["latent"]]
        bd = bd_rate(anchor, curve)
        others = {
            c: bd_rate(anchor, pts) for c, pts in result["classic"].items() if c != "JPEG 2000"
        }
        text = ", ".join(f"{c} {v:+.1f} %" for c, v in others.items() if v is not None)
        lines += [
            "",
            "BD-rate against JPEG 2000 (negative: fewer bits at equal PSNR): LatentCodec "
            + ("n/a (curves do not overlap)" if bd is None else f"{bd:+.1f} %")
            + f"; {text}.",
            "",
        ]
    lines += [
        "## Published Kodak figures (theirs, not re-measured; Kodak is not used here)",
        "",
        "| method | 0.25 bpp | 0.5 bpp | 1.0 bpp |",
        "|---|---|---|---|",
    ]
    for method, points in PUBLISHED_KODAK.items():
        cells = " | ".join(f"{points[r]:.1f}" if r in points else "-" for r in (0.25, 0.5, 1.0))
        lines.append(f"| {method} | {cells} |")
    return "\n".join(lines) + "\n"


def photo_parser(description: str) -> argparse.ArgumentParser:
    """Options every photo benchmark takes: --quick, --size, --images."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", nargs="*", default=None)
    return parser


def main(argv=None) -> None:
    parser = photo_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--classic-only",
        action="store_true",
        help="re-encode the classic codecs; keep LatentCodec's rows from codec.json",
    )
    args = parser.parse_args(argv)
    size, rates, params = args.size, RATE_WEIGHTS, {}
    if args.quick:
        size, rates, params = 32, (1e-3, 1e-4), {"max_iter": 30}
    results = {}
    for name, image in photos(size).items():
        if args.images and name not in args.images:
            continue
        print(f"{name} ({size} x {size})", flush=True)
        kept = ROOT / "docs" / "benchmarks" / "codec.json"
        latent = (
            json.loads(kept.read_text())[name]["latent"]
            if args.classic_only
            else latent_curve(image, rates, **params)
        )
        results[name] = {
            "channels": "gray" if image.ndim == 2 else "RGB",
            "classic": classic_curves(image),
            "latent": latent,
        }
    command = "python benchmarks/codec.py" + (" --quick" if args.quick else "")
    if args.classic_only:
        command += (
            "` (LatentCodec), the other codecs re-encoded by "
            "`python benchmarks/codec.py --classic-only"
        )
    text = report(results, size, command)
    print(text)
    if not args.quick:
        out = ROOT / "docs" / "benchmarks"
        (out / "codec.md").write_text(text)
        (out / "codec.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
