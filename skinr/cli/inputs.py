"""What the command line reads and checks before any training, and the records it
writes: estimator options (``--set``, shortcuts, parameter help), signals, output
folders, render sizes, ``metrics.json`` fields and ``history.csv``.

Every check raises :class:`UsageError` (one line) before training starts.
"""

from __future__ import annotations

import ast
import csv
import difflib
import io as text_io
import json
import platform
import re
import tempfile
from pathlib import Path

import numpy as np

from .._core.loop import loss_psnr
from .._version import __version__
from ..comparison import estimator_named
from ..datasets import camera, resize
from ..io import Signal, read

DEFAULT_MODEL = "HashGrid"
#: Steps of the main job (``skinr fit`` without ``--steps``/``--seconds``) when the
#: model is the default: ~24 s of training on 2 CPU cores at 256 x 256, 63 dB.
DEFAULT_STEPS = 400
#: Side of the shipped camera image when ``skinr fit`` is given no signal.
DEMO_SIZE = 256
#: Largest render (values) a command writes; bigger asks are refused before training.
MAX_RENDER_VALUES = 2**26

#: Options that set an estimator parameter, for the estimators that have it.
SHORTCUTS = {
    "steps": "max_iter",
    "learning_rate": "learning_rate",
    "width": "width",
    "depth": "depth",
    "batch_size": "batch_size",
}


class UsageError(ValueError):
    """A command-line input that cannot work; reported in one line before training."""


# ----------------------------------------------------------------- parameters
def parameter_help(cls) -> dict[str, str]:
    """Each parameter of ``cls`` -> its type and the first sentence of its docstring."""
    doc = cls.__doc__ or ""
    section = re.search(
        r"Parameters\n\s*-+\n(.*?)(?:\n\s*\n\s*(?:Attributes|See Also|Notes|"
        r"References|Examples)\n\s*-+|\Z)",
        doc,
        re.S,
    )
    helps: dict[str, str] = {}
    if section is None:
        return helps
    current = None
    for line in section.group(1).splitlines():
        match = re.match(r"^\s{4}(\w+(?:, \w+)*) : (.+)$", line)
        if match:
            names, kind = match.groups()
            for name in names.split(", "):
                helps[name] = f"({kind.strip()})"
            current = names.split(", ")
        elif current and line.strip():
            for name in current:
                helps[name] += " " + line.strip()
    return {name: " ".join(text.split()) for name, text in helps.items()}


def parse_value(text: str):
    """A ``--set`` value: a Python literal (``20``, ``1e-3``, ``None``, ``(0, 1)``) or
    else the string itself (``cosine``, ``auto``)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def make_estimator(name: str, settings: list[str], shortcuts: dict, **fixed):
    """The estimator ``name`` with ``--set`` settings and shortcut options applied and
    validated against its parameter constraints (UsageError otherwise)."""
    cls = estimator_named(name)
    estimator = cls()
    known = estimator.get_params()
    params = dict(fixed)
    for option, value in shortcuts.items():
        if value is None:
            continue
        parameter = SHORTCUTS[option]
        if parameter not in known:
            raise UsageError(
                f"--{option.replace('_', '-')}: {cls.__name__} has no parameter "
                f"{parameter!r} (its parameters: skinr models {cls.__name__})"
            )
        params[parameter] = value
    for setting in settings:
        key, sep, text = setting.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {setting!r}: write it as NAME=VALUE (e.g. --set width=64)")
        if key not in known:
            near = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise UsageError(
                f"--set {key}: {cls.__name__} has no parameter {key!r}{hint} "
                f"(list them: skinr models {cls.__name__})"
            )
        params[key] = parse_value(text)
    estimator.set_params(**params)
    try:
        estimator._validate_params()
    except ValueError as error:  # sklearn's InvalidParameterError
        raise UsageError(str(error).splitlines()[0]) from None
    return estimator


# ---------------------------------------------------------------------- inputs
def load_signal(path: str | None, size: int | None) -> Signal:
    """The signal to fit: a file, or the shipped camera image; images shrunk to
    ``size`` along their longer side (never enlarged)."""
    if path is None:
        side = min(size or DEMO_SIZE, 512)  # the shipped image is 512 x 512
        image = camera(size=side)
        return Signal(
            image, "image", (1.0, 1.0), ("px", "px"), False, "camera (shipped with skinr)", "uint8"
        )
    signal = read(path)
    if size is None:
        return signal
    if signal.kind != "image":
        raise UsageError(f"--size applies to images; {path} is {signal.kind}")
    longest = max(signal.shape)
    if size >= longest:
        return signal
    shape = tuple(max(1, round(side * size / longest)) for side in signal.shape)
    return Signal(
        resize(signal.values, shape),
        "image",
        signal.spacing,
        signal.units,
        signal.has_channels,
        signal.source,
        signal.dtype,
    )


def check_output_folder(folder: str) -> Path:
    """Create ``folder`` and prove it writable, before any training."""
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".skinr-probe-"):
            pass
    except OSError as error:
        raise UsageError(
            f"--out {folder}: cannot write there ({error.strerror or error})"
        ) from None
    return out


def render_shape(shape: tuple[int, ...], scale: int) -> tuple[int, ...]:
    if scale < 1:
        raise UsageError(f"--scale must be at least 1; got {scale}")
    rendered = tuple(scale * n for n in shape)
    if int(np.prod(rendered, dtype=object)) > MAX_RENDER_VALUES:
        raise UsageError(
            f"--scale {scale}: a {' x '.join(map(str, rendered))} render exceeds "
            f"{MAX_RENDER_VALUES:,} samples; choose a smaller scale"
        )
    return rendered


def peak_of(signal: Signal) -> float:
    """PSNR's peak: 1 for images and video in [0, 1], 2 for audio in [-1, 1], the
    range of a volume's values."""
    if signal.kind in ("image", "video"):
        return 1.0
    if signal.kind == "audio":
        return 2.0
    return float(np.ptp(signal.values)) or 1.0


def versions() -> dict:
    import sklearn
    import torch

    return {
        "skinr": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


def jsonable_params(estimator) -> dict:
    """``get_params()`` as JSON: arrays become lists, other objects their repr."""
    params = {}
    for key, value in estimator.get_params().items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        try:
            json.dumps(value)
        except TypeError:
            value = repr(value)
        params[key] = value
    return params


def history_csv(model, peak: float) -> str:
    history = model.history_
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "loss", "psnr_db", "learning_rate", "seconds"])
    for step, loss, rate, seconds in zip(
        history["step"],
        history["loss"],
        history["learning_rate"],
        history["seconds"],
        strict=True,
    ):
        writer.writerow(
            [
                step,
                f"{loss:.6g}",
                f"{float(loss_psnr(loss, model.y_scale_, peak)):.4f}",
                f"{rate:.6g}",
                f"{seconds:.4f}",
            ]
        )
    return buffer.getvalue()


def parse_box(text: str, n_dims: int) -> list[tuple[float, float]]:
    """``"lo:hi,lo:hi"`` -> one (low, high) per axis, in the model's coordinates."""
    try:
        box = [tuple(float(v) for v in part.split(":")) for part in text.split(",")]
    except ValueError:
        box = []
    if len(box) != n_dims or any(len(pair) != 2 or not pair[0] < pair[1] for pair in box):
        raise UsageError(
            f"--box {text!r}: give {n_dims} ranges low:high (low < high) separated by commas"
        )
    return box
