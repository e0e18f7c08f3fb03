"""Command-line interface: ``skinr fit``, ``render``, ``compare`` and ``models``.

Every input is checked before any training starts (the signal file, the model's name
and parameters, the output folder, the sizes asked for); an error is one line on stderr
and exit status 2, with no traceback (``SKINR_DEBUG=1`` shows it). matplotlib (the
``cli`` extra) is imported by the commands that draw, so ``import skinr`` stays light.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .._core.files import atomic_write
from .._core.registry import ESTIMATORS
from .._version import __version__
from ..comparison import budgeted, compare, estimator_named
from ..io import KINDS, SignalFileError, write
from ..metrics import psnr, ssim
from . import figures
from .inputs import (
    DEFAULT_MODEL,
    DEFAULT_STEPS,
    DEMO_SIZE,
    SHORTCUTS,
    UsageError,
    check_output_folder,
    history_csv,
    jsonable_params,
    load_signal,
    make_estimator,
    parameter_help,
    parse_box,
    peak_of,
    render_shape,
    versions,
)


def fit_command(args: argparse.Namespace) -> dict:
    """``skinr fit``: fit a signal and write the reconstruction, renders, curves,
    history, metrics and model."""
    if args.size is not None and args.size < 8:
        raise UsageError(f"--size must be at least 8 pixels; got {args.size}")
    if args.seconds is not None and not args.seconds > 0:
        raise UsageError(f"--seconds must be positive; got {args.seconds}")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be at least 1; got {args.steps}")
    if args.steps is not None and args.seconds is not None:
        raise UsageError("give --steps or --seconds, not both")
    model_name = args.model or DEFAULT_MODEL
    shortcuts = {key: getattr(args, key) for key in SHORTCUTS if key != "steps"}
    estimator = make_estimator(
        model_name,
        args.set,
        shortcuts,
        random_state=args.seed,
        device=args.device,
        verbose=not args.quiet,
    )
    signal = load_signal(args.image, args.size)
    peak = peak_of(signal)
    estimator.set_params(data_range=peak)
    scale = (
        args.scale if args.scale is not None else (4 if signal.kind in ("image", "audio") else 2)
    )
    shape_up = render_shape(signal.shape, scale)
    out = check_output_folder(args.out)
    X, y = signal.to_coords()
    steps = args.steps
    if steps is None and args.seconds is None and args.model is None:
        steps = DEFAULT_STEPS
    say = (lambda *a: None) if args.quiet else (lambda text: print(text, file=sys.stderr))
    seconds = args.seconds
    if seconds is None:
        seconds = _fitting_budget(estimator, X, y, steps, args.steps is not None, say)
        if seconds is not None:
            steps = None
    try:
        model = budgeted(estimator, X, y, steps=steps, seconds=seconds)
    except ValueError as error:
        raise UsageError(f"--seconds: {error}") from None
    say(
        f"Fitting {type(model).__name__} to {signal.source}: {signal.kind} "
        f"{' x '.join(map(str, signal.values.shape))}, {model.max_iter} steps"
        + (f" or {seconds:g} s" if seconds else "")
        + " ..."
    )
    if model._compiles(_device(model), False):
        say(
            "Compiling the training step with torch.compile first (one-off, seconds to a "
            "minute; --set torch_compile=False skips it) ..."
        )
    interrupted = False
    try:
        with warnings.catch_warnings():
            # Said below in one line, without a Python warning's file and line.
            warnings.filterwarnings("ignore", message="Training interrupted")
            model.fit(X, y)
    except KeyboardInterrupt:
        if not hasattr(model, "n_iter_"):  # before the first step: nothing learned
            raise
        interrupted = True
        print(
            f"skinr: interrupted after {model.n_iter_} of {model.max_iter} steps; writing "
            f"what was learned to {out}/ (Ctrl-C again to stop at once)",
            file=sys.stderr,
        )
    reconstruction = model.render(signal.shape)
    started = time.perf_counter()
    rendered = model.render(shape_up)
    render_seconds = time.perf_counter() - started
    metrics = {
        "signal": {
            "source": signal.source,
            "kind": signal.kind,
            "shape": list(signal.values.shape),
            "spacing": list(signal.spacing),
            "units": list(signal.units),
            "dtype": signal.dtype,
        },
        "model": type(model).__name__,
        "params": jsonable_params(model),
        "psnr_db": psnr(signal.values, reconstruction, data_range=peak),
        "ssim": None,
        "steps": model.n_iter_,
        "interrupted": interrupted,
        "fit_seconds": model.fit_time_,
        "n_params": model.n_params_,
        "flops_per_sample": model.count_flops(X[:1]),
        "scale": scale,
        "render_seconds": render_seconds,
        "device": model.device_,
        "versions": versions(),
        "command": ["skinr", *(args.argv or [])],
    }
    if signal.kind == "image" and min(signal.shape) >= 11:  # SSIM's Gaussian window
        metrics["ssim"] = ssim(
            signal.values,
            reconstruction,
            data_range=peak,
            channel_axis=-1 if signal.has_channels else None,
        )
    written = figures.write_outputs(out, signal, reconstruction, rendered, scale, peak)
    # What the files hold, measured on the files: a format's precision is not the
    # model's (an 8-bit PNG, 16-bit PCM).
    metrics["files"] = {
        path.name: _file_psnr(path, signal, peak)
        for path in written
        if path.name.startswith("reconstruction.")
    }
    figures.plot_curve(out / "curve.png", model, peak)
    atomic_write(out / "history.csv", history_csv(model, peak).encode())
    atomic_write(out / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode())
    model.save(out / "model.skinr")
    print(
        f"PSNR {metrics['psnr_db']:.2f} dB after {model.n_iter_} steps in "
        f"{model.fit_time_:.1f} s; results in {out}/"
    )
    if interrupted:
        raise KeyboardInterrupt  # exit status 130, the outputs written
    return metrics


# A CLI fit given no budget trains at most this long: the model's max_iter may be an
# hour on a CPU. --steps runs them all.
DEFAULT_MAX_SECONDS = 600.0
# Fits of at most this many steps start without timing a probe first.
SHORT_FIT_STEPS = 20
# A fit expected to take longer than this says so before it starts.
ANNOUNCED_SECONDS = 60.0


def _fitting_budget(estimator, X, y, steps, steps_given, say) -> float | None:
    """What the fit will cost, said before it starts, and the seconds to train for
    instead of the steps when those would take longer than ``DEFAULT_MAX_SECONDS``
    and the user did not ask for them (None: train the steps)."""
    from ..comparison import step_seconds

    planned = steps if steps is not None else estimator.max_iter
    if planned <= SHORT_FIT_STEPS:
        return None
    per_step = step_seconds(estimator, X, y)
    expected = planned * per_step
    import torch

    threads = torch.get_num_threads()
    busy = _busy_cores()
    if busy is not None and threads > 1:
        say(
            f"This machine is busy (load {busy:.1f} on {os.cpu_count()} cores): torch's "
            f"{threads} threads may run several times slower than one; "
            "SKINR_TORCH_THREADS=1 sets one (docs/scaling.md)."
        )
    if expected <= ANNOUNCED_SECONDS:
        return None
    cost = f"{planned:,} steps x {per_step:.2g} s = {_duration(expected)} on this machine"
    if steps_given or expected <= DEFAULT_MAX_SECONDS:
        say(f"Expected: {cost}; --seconds N bounds it (Ctrl-C keeps what was learned).")
        return None
    say(
        f"{type(estimator).__name__}'s {cost}: training for "
        f"{_duration(DEFAULT_MAX_SECONDS)} instead (about "
        f"{int(DEFAULT_MAX_SECONDS / per_step):,} steps); --steps {planned} runs them all, "
        "--seconds N sets another budget."
    )
    return DEFAULT_MAX_SECONDS


def _duration(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _busy_cores() -> float | None:
    """The 1-minute load average where it exceeds the cores (None: not busy, or
    unknown on this system)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cores = os.cpu_count() or 1
    return load if load > cores + 0.5 else None


def _file_psnr(path: Path, signal, peak: float) -> dict:
    """PSNR of a written reconstruction against the signal, read back from the file
    (``identical``: the file holds the signal exactly)."""
    from ..io import read

    values = read(path).values
    if values.ndim == signal.values.ndim + 1:  # a gray video written as RGB frames
        values = values[..., 0]
    value = psnr(signal.values, values.reshape(signal.values.shape), data_range=peak)
    identical = not np.isfinite(value)
    return {"psnr_db": None if identical else value, "identical": identical}


def _device(model):
    from .._core.validation import resolve_device

    return resolve_device(model.device)


# --------------------------------------------------------------------- render
def render_command(args: argparse.Namespace) -> Path:
    """``skinr render``: render a saved model at another resolution or over a box."""
    from ..persistence import load
    from ..signals import grid, to_array

    if not Path(args.model).is_file():
        raise UsageError(f"{args.model}: no such model file")
    model = load(args.model, device=None if args.device == "auto" else args.device)
    n_dims = len(model.grid_shape_)
    box = parse_box(args.box, n_dims) if args.box else [tuple(b) for b in model.footprint_]
    if args.shape:
        try:
            shape = tuple(int(v) for v in args.shape.split(","))
        except ValueError:
            shape = ()
        if len(shape) != n_dims or min(shape) < 1:
            raise UsageError(f"--shape {args.shape!r}: give {n_dims} positive sizes, e.g. 512,512")
        render_shape(shape, 1)
    else:
        spacing = [
            (hi - lo) / n for (lo, hi), n in zip(model.footprint_, model.grid_shape_, strict=True)
        ]
        base = tuple(
            max(1, round((hi - lo) / step)) for (lo, hi), step in zip(box, spacing, strict=True)
        )
        shape = render_shape(base, args.scale)
    kind = args.kind or {1: "audio", 2: "image", 3: "volume"}.get(n_dims)
    if kind not in KINDS:
        raise UsageError(f"--kind: a {n_dims}-D model needs --kind video or volume")
    out = Path(args.out or f"render{_default_suffix(kind)}")
    check_output_folder(str(out.parent))
    values = to_array(model.predict_signal(grid(shape, box, pixel_centers=True)), shape)
    spacing = tuple((hi - lo) / n for (lo, hi), n in zip(box, shape, strict=True))
    write(out, values, kind=kind, spacing=spacing)
    print(f"rendered {' x '.join(map(str, shape))} to {out}")
    return out


def _default_suffix(kind: str) -> str:
    return {"image": ".png", "audio": ".wav", "video": ".mp4", "volume": ".npy"}[kind]


# -------------------------------------------------------------------- compare
def compare_command(args: argparse.Namespace):
    """``skinr compare``: fit several models on one signal, write a table and a montage."""
    if args.steps is not None and args.seconds is not None:
        raise UsageError("give --steps or --seconds, not both")
    if args.size is not None and args.size < 8:
        raise UsageError(f"--size must be at least 8 pixels; got {args.size}")
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    if not names:
        raise UsageError("--models: name at least one model, e.g. --models SIREN,HashGrid")
    estimators = [make_estimator(name, [], {}) for name in names]
    signal = load_signal(args.image, args.size)
    out = check_output_folder(args.out)
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be at least 1; got {args.steps}")
    if args.seconds is not None and not args.seconds > 0:
        raise UsageError(f"--seconds must be positive; got {args.seconds}")
    render_shape(signal.shape, args.scale)
    steps = args.steps if args.steps is not None or args.seconds is not None else 300
    fits = len(names) * (1 if args.no_held_out else 2)
    cost = f"; {fits} fits of {args.seconds:g} s each: about " if args.seconds else ""
    if args.seconds:
        cost += _duration(fits * args.seconds * 1.1)  # and a probe per fit
    print(f"Comparing {', '.join(names)} on {signal.source}{cost} ...", file=sys.stderr)
    table = compare(
        signal,
        estimators,
        steps=steps if args.seconds is None else None,
        seconds=args.seconds,
        held_out=not args.no_held_out,
        scale=args.scale,
        data_range=peak_of(signal),
        random_state=args.seed,
        device=args.device,
        progress=lambda text: print(text, file=sys.stderr),
    )
    atomic_write(out / "comparison.md", table.to_markdown().encode())
    atomic_write(out / "comparison.csv", table.to_csv().encode())
    if signal.kind == "image":
        figures.montage(out / "montage.png", table)
    print(table.to_markdown(), end="")
    print(f"results in {out}/")
    return table


# --------------------------------------------------------------------- models
def models_command(args: argparse.Namespace) -> None:
    """``skinr models [NAME]``: list the estimators, or one estimator's parameters."""
    if args.name is None:
        for name, cls in ESTIMATORS.items():
            summary = (cls.__doc__ or "").strip().splitlines()[0]
            print(f"{name:18s} {summary}")
        return
    cls = estimator_named(args.name)
    helps = parameter_help(cls)
    print(f"{cls.__name__} parameters (set with --set NAME=VALUE):")
    for key, value in cls().get_params().items():
        print(f"  {key} = {value!r}\n      {helps.get(key, '')}")


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skinr",
        description="Fit implicit neural representations of images, audio, video and "
        "volumes from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"skinr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser(
        "fit",
        help="fit a signal; write reconstruction, renders, curves, history, metrics, model",
        description="Fit a signal file (image, audio, video, volume) and write the "
        "reconstruction beside the original, a super-resolution render, the loss curve, "
        "history.csv, metrics.json and model.skinr.",
    )
    fit.add_argument(
        "image",
        nargs="?",
        metavar="SIGNAL",
        help="signal file (PNG/JPEG/TIFF image, WAV/FLAC audio, MP4 video, .npy/.nii.gz "
        f"volume); default: the camera image shipped with skinr at {DEMO_SIZE} x {DEMO_SIZE}",
    )
    _model_options(fit)
    fit.add_argument(
        "--steps",
        type=int,
        help=f"optimizer steps (default: {DEFAULT_STEPS} for the default model, else the "
        "model's max_iter)",
    )
    fit.add_argument("--seconds", type=float, help="train for this many seconds instead of steps")
    fit.add_argument(
        "--size",
        type=int,
        help="shrink an image so its longer side has this many pixels (never enlarges; "
        "default: the image's own size)",
    )
    fit.add_argument(
        "--scale",
        "--superres",
        type=int,
        dest="scale",
        help="factor of the super-resolution render (default 4 for images and audio, "
        "2 for video and volumes)",
    )
    fit.add_argument(
        "--learning-rate",
        type=float,
        dest="learning_rate",
        help="Adam's learning rate (the model's learning_rate)",
    )
    fit.add_argument("--width", type=int, help="hidden features (models with a width)")
    fit.add_argument("--depth", type=int, help="hidden layers (models with a depth)")
    fit.add_argument(
        "--batch-size", type=int, dest="batch_size", help="coordinates per step (default: all)"
    )
    fit.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    _common_options(fit)
    fit.set_defaults(run=fit_command)

    render = commands.add_parser(
        "render",
        help="render a saved model at another resolution or over a box",
        description="Render a model saved by `skinr fit` (model.skinr) on a grid: the "
        "training resolution times --scale, an explicit --shape, over the fitted area or "
        "a --box of it.",
    )
    render.add_argument("model", metavar="MODEL", help="a .skinr file")
    render.add_argument(
        "--scale", type=int, default=4, help="times the training resolution (default 4)"
    )
    render.add_argument("--shape", help="explicit grid, e.g. 1024,1024 (overrides --scale)")
    render.add_argument(
        "--box",
        help="render only this box of the model's coordinates, e.g. 0:64,32:96 (pixels "
        "for an image fitted by `skinr fit`)",
    )
    render.add_argument(
        "--kind", choices=sorted(KINDS), help="what to write (default: by the model's dimensions)"
    )
    render.add_argument("--out", help="output file (default render.png/.wav/.npy)")
    render.add_argument("--device", default="auto", help="where to evaluate (default auto)")
    render.set_defaults(run=render_command)

    comparison = commands.add_parser(
        "compare",
        help="fit several models on one signal; write a table and a montage",
        description="Fit each model on the same signal with the same budget and write "
        "comparison.md, comparison.csv (PSNR, SSIM, held-out PSNR, parameters, FLOPs, "
        "seconds) and montage.png.",
    )
    comparison.add_argument(
        "image", nargs="?", metavar="SIGNAL", help="signal file; default: the shipped camera image"
    )
    comparison.add_argument(
        "--models",
        default="SIREN,FourierFeatureMLP,HashGrid",
        help="comma-separated model names (default %(default)s)",
    )
    comparison.add_argument("--steps", type=int, help="steps per fit (default 300)")
    comparison.add_argument("--seconds", type=float, help="seconds per fit instead of steps")
    comparison.add_argument(
        "--size", type=int, help="shrink an image to this longer side (never enlarges)"
    )
    comparison.add_argument(
        "--scale", type=int, default=4, help="factor of the renders in the montage (default 4)"
    )
    comparison.add_argument(
        "--no-held-out", action="store_true", help="skip the held-out fits (every second sample)"
    )
    _common_options(comparison, default_out="skinr-compare")
    comparison.set_defaults(run=compare_command)

    from .codec_commands import add_commands as add_codec_commands

    add_codec_commands(commands, _common_options)

    models = commands.add_parser("models", help="list the models, or one model's parameters")
    models.add_argument("name", nargs="?", metavar="MODEL", help="a model's name")
    models.set_defaults(run=models_command)
    return parser


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        help=f"estimator name, case-insensitive (default {DEFAULT_MODEL}; list: skinr models)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set any parameter of the model, e.g. --set first_omega_0=20 (repeatable; "
        "see skinr models MODEL)",
    )


def _common_options(parser: argparse.ArgumentParser, default_out: str = "skinr-out") -> None:
    parser.add_argument(
        "--device", default="auto", help='"auto" (a GPU when there is one), "cpu", "cuda", "cuda:N"'
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skinr`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        args.run(args)
    except KeyboardInterrupt:
        print("skinr: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("SKINR_DEBUG"):
            raise
        known = (UsageError, SignalFileError, ValueError, OSError, ImportError)
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if not isinstance(error, known):
            text = f"{type(error).__name__}: {text} (SKINR_DEBUG=1 shows the traceback)"
        print(f"skinr: error: {text}", file=sys.stderr)
        return 2
    return 0
