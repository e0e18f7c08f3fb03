"""``skinr encode`` and ``skinr decode``: an image to a LatentCodec stream and back."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from ..comparison import jpeg2000_psnr
from ..io import write
from .inputs import UsageError, check_output_folder, load_signal

# A file with one of these suffixes is a fitted model (skinr fit writes model.skinr).
MODEL_SUFFIXES = (".skinr", ".safetensors")
# Fixed bytes of a 2-D stream besides the weights and latents: preamble, sizes, frame.
_HEADER_BYTES = 10 + 12 + 4 * (4 + 4 + 3) + 8
# Quick fits that find the rate weight for --bpp / --psnr, at this share of the steps.
_PROBE_SHARE, _PROBES = 0.25, 3


def _fit(X, y, rate_weight, steps, seed, device, verbose=False):
    from ..codec import LatentCodec

    return LatentCodec(
        rate_weight, max_iter=steps, random_state=seed, device=device, verbose=verbose
    ).fit(X, y)


def _achieved(model, X, y, target_kind):
    return model.bits_per_sample_ if target_kind == "bpp" else model.score(X, y)


def choose_rate_weight(X, y, target_kind, target, steps, seed, device, say):
    """λ for a target rate or PSNR: short fits, each moving λ along the log-log line
    through the last two (a secant), starting from the default 1e-2."""
    tried = []
    rate_weight = 1e-2
    probe_steps = max(20, int(steps * _PROBE_SHARE))
    for _ in range(_PROBES):
        model = _fit(X, y, rate_weight, probe_steps, seed, device)
        value = _achieved(model, X, y, target_kind)
        say(f"  probe λ={rate_weight:.3g}: {value:.3f} {target_kind}")
        tried.append((math.log(rate_weight), value if target_kind == "psnr" else math.log(value)))
        goal = target if target_kind == "psnr" else math.log(target)
        if len(tried) == 1:
            # More λ, fewer bits and less PSNR: step by a factor 4 towards the goal.
            above = tried[0][1] > goal
            rate_weight *= 4.0 if above else 0.25
            continue
        (x0, v0), (x1, v1) = tried[-2], tried[-1]
        slope = (v1 - v0) / (x1 - x0) if x1 != x0 and v1 != v0 else -1.0
        rate_weight = math.exp(np.clip(x1 + (goal - v1) / slope, math.log(1e-6), math.log(1.0)))
    return rate_weight


def encode_command(args: argparse.Namespace) -> dict:
    """``skinr encode``: fit LatentCodec to an image and write its stream, or write a
    fitted model file (``skinr encode model.skinr``) as a stream."""
    from .. import codec
    from ..signals import to_array, to_coords
    from .figures import codec_figure

    given = [
        name for name in ("bpp", "psnr", "rate_weight", "bits") if getattr(args, name) is not None
    ]
    if len(given) > 1:
        raise UsageError(f"give one of --bpp, --psnr, --rate-weight or --bits; got {given}")
    if args.image is not None and Path(args.image).suffix in MODEL_SUFFIXES:
        return encode_model_command(args)
    if args.bits is not None or args.reference is not None or args.refine:
        raise UsageError(
            "--bits, --reference and --refine apply to a model file (.skinr): name one"
        )
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be at least 1; got {args.steps}")
    signal = load_signal(args.image, args.size)
    if signal.kind != "image":
        raise UsageError(f"skinr encode compresses images; {args.image} is {signal.kind}")
    image = signal.values
    n_pixels = image.shape[0] * image.shape[1]
    if args.bpp is not None and args.bpp * n_pixels / 8 < _HEADER_BYTES:
        raise UsageError(
            f"--bpp {args.bpp} is {args.bpp * n_pixels / 8:.0f} bytes for this "
            f"{image.shape[0]} x {image.shape[1]} image, below the stream's "
            f"{_HEADER_BYTES}-byte header; ask for more"
        )
    out = check_output_folder(args.out)
    say = (lambda text: None) if args.quiet else print
    X, y = to_coords(image, pixel_centers=True)
    steps = args.steps or 2000
    rate_weight = args.rate_weight
    if args.bpp is not None or args.psnr is not None:
        kind, target = ("bpp", args.bpp) if args.bpp is not None else ("psnr", args.psnr)
        say(f"finding the rate weight for {target} {kind} ({_PROBES} short fits)")
        rate_weight = choose_rate_weight(X, y, kind, target, steps, args.seed, args.device, say)
    rate_weight = 1e-2 if rate_weight is None else rate_weight
    model = _fit(X, y, rate_weight, steps, args.seed, args.device, verbose=not args.quiet)
    stream = codec.encode(model)
    name = Path(args.image).stem if args.image else "camera"
    path = out / f"{name}.skc"
    path.write_bytes(stream)
    decoded = codec.decode(stream)
    picture = np.clip(to_array(decoded.predict(X), image.shape), 0, 1)
    quality = float(10 * np.log10(1.0 / np.mean((np.round(picture * 255) / 255 - image) ** 2)))
    result = {
        "file": str(path),
        "bytes": len(stream),
        "bpp": 8 * len(stream) / n_pixels,
        "psnr": quality,
        "rate_weight": rate_weight,
        "steps": model.n_iter_,
        "seconds": model.fit_time_,
    }
    result["jpeg2000_psnr_same_bytes"] = jpeg2000_psnr(image, len(stream))
    codec_figure(image, picture, result, out / "encode.png")
    same = result["jpeg2000_psnr_same_bytes"]
    say(
        f"wrote {path}: {len(stream):,} bytes ({result['bpp']:.3f} bpp), PSNR {quality:.2f} dB"
        + ("" if same is None else f"; JPEG 2000 at the same size: {same:.2f} dB")
        + f"; picture {out / 'encode.png'}"
    )
    return result


def encode_model_command(args: argparse.Namespace) -> dict:
    """``skinr encode model.skinr``: a saved model as a stream, its weights quantised
    (``--bits``; or the fewest bits for ``--psnr`` on ``--reference``; or the most
    within ``--bpp``)."""
    from .. import codec
    from ..persistence import load
    from ..signals import grid, to_array

    if args.rate_weight is not None or args.steps is not None:
        raise UsageError("--rate-weight and --steps fit a LatentCodec; a model file is fitted")
    source = Path(args.image)
    if not source.is_file():
        raise UsageError(f"{args.image}: no such file")
    if (args.psnr is not None or args.refine) and args.reference is None:
        raise UsageError(
            "--psnr and --refine of a model file use the fitted image: name it with --reference"
        )
    model = load(source, device="cpu")
    image = None
    if args.reference is not None:
        image = load_signal(args.reference, args.size).values
        if tuple(image.shape) != tuple(model.grid_shape_) + image.shape[2:]:
            raise UsageError(
                f"{args.reference} is {' x '.join(map(str, image.shape[:2]))}; the model was "
                f"fitted on {' x '.join(map(str, model.grid_shape_))}"
            )
    n_samples = math.prod(model.grid_shape_)
    out = check_output_folder(args.out)
    # The pixels' coordinates in the model's own frame (skinr fit's are physical units).
    X = grid(model.grid_shape_, [tuple(b) for b in model.footprint_], pixel_centers=True)
    signal = {} if image is None else {"X": X, "y": image.reshape(n_samples, -1)}
    signal["refine"] = args.refine
    if args.psnr is not None:
        stream = codec.encode(model, psnr=args.psnr, **signal)
    elif args.bpp is not None:
        stream = codec.encode(model, size=max(1, int(args.bpp * n_samples / 8)), **signal)
    else:
        stream = codec.encode(model, bits=args.bits, **signal)
    path = out / f"{source.stem}.skc"
    path.write_bytes(stream)
    result = {
        "file": str(path),
        "bytes": len(stream),
        "model_file_bytes": source.stat().st_size,
        "bits_per_sample": 8 * len(stream) / n_samples,
    }
    if image is not None:
        picture = np.clip(to_array(codec.decode(stream).predict(X), image.shape), 0, 1)
        error = np.mean((np.round(picture * 255) / 255 - image) ** 2)
        result["psnr"] = float(10 * np.log10(1.0 / error))
        result["jpeg2000_psnr_same_bytes"] = jpeg2000_psnr(image, len(stream))
    if not args.quiet:
        same = result.get("jpeg2000_psnr_same_bytes")
        print(
            f"wrote {path}: {len(stream):,} bytes ({result['bits_per_sample']:.3f} bits per "
            f"sample), {result['model_file_bytes'] / len(stream):.1f}x smaller than {source}"
            + (f"; PSNR {result['psnr']:.2f} dB on {args.reference}" if "psnr" in result else "")
            + ("" if same is None else f"; JPEG 2000 at the same size: {same:.2f} dB")
        )
    return result


def decode_command(args: argparse.Namespace) -> Path:
    """``skinr decode``: a stream rendered at ``--scale`` times its resolution."""
    from .. import codec
    from ..signals import grid, to_array

    if args.scale < 1:
        raise UsageError(f"--scale must be at least 1; got {args.scale}")
    source = Path(args.stream)
    if not source.is_file():
        raise UsageError(f"{args.stream}: no such file")
    model = codec.decode(source.read_bytes())
    if getattr(model, "grid_shape_", None) is None or len(model.grid_shape_) != 2:
        raise UsageError(f"{args.stream} holds no image fit; decode it with skinr.codec.decode")
    shape = tuple(n * args.scale for n in model.grid_shape_)
    box = [tuple(b) for b in model.footprint_]
    values = to_array(model.predict_signal(grid(shape, box, pixel_centers=True)), shape)
    out = Path(args.out or source.with_suffix(".png").name)
    check_output_folder(str(out.parent))
    write(out, np.clip(values, 0, 1), kind="image")
    print(f"decoded {source} at {' x '.join(map(str, shape))} to {out}")
    return out


def add_commands(commands, common_options) -> None:
    """The ``encode`` and ``decode`` sub-commands (``common_options`` adds --device,
    --seed and --out as the other commands have them)."""
    encode = commands.add_parser(
        "encode",
        help="compress an image with LatentCodec, or a fitted model file; write the stream",
        description="Fit LatentCodec to an image and write its stream (.skc) and "
        "encode.png (original, decoded, error, with the rate and PSNR, and JPEG 2000's "
        "PSNR at the same size); given a fitted model file, write it as a stream.",
    )
    encode.add_argument(
        "image",
        nargs="?",
        metavar="IMAGE",
        help="image file (default: the shipped camera), or a fitted model file (.skinr, "
        "from skinr fit or save) to write as a stream with its weights quantised",
    )
    encode.add_argument("--bpp", type=float, help="target bits per pixel")
    encode.add_argument("--psnr", type=float, help="target PSNR (dB)")
    encode.add_argument(
        "--rate-weight", type=float, dest="rate_weight", help="λ directly (default 1e-2)"
    )
    encode.add_argument("--steps", type=int, help="optimizer steps (default 2000)")
    encode.add_argument(
        "--reference",
        metavar="IMAGE",
        help="with a model file: the image --psnr is measured on (and reported)",
    )
    encode.add_argument("--bits", type=float, help="a model file's bits per weight (default 12)")
    encode.add_argument(
        "--refine",
        type=int,
        default=0,
        metavar="N",
        help="with a model file and --reference: N steps of quantisation-aware refinement "
        "on the image before coding (default 0)",
    )
    encode.add_argument("--size", type=int, help="shrink to this longer side first")
    encode.add_argument("--quiet", action="store_true", help="no progress or messages")
    common_options(encode, default_out="skinr-encode")
    encode.set_defaults(run=encode_command)

    decode = commands.add_parser(
        "decode",
        help="decode a stream of an image to a PNG, at any scale",
        description="Decode a stream written by `skinr encode` and write it as a PNG, "
        "--scale times its resolution.",
    )
    decode.add_argument("stream", metavar="STREAM", help="a .skc file")
    decode.add_argument("--scale", type=int, default=1, help="times the resolution (default 1)")
    decode.add_argument("--out", help="output PNG (default: the stream's name, .png)")
    decode.set_defaults(run=decode_command)
