"""Training checkpoints: what a killed fit needs to resume exactly where it stopped.

A checkpoint holds the module's weights, the optimizer's and scheduler's state and the
loss curve so far, together with a fingerprint of what was being fitted (estimator
class, its training parameters, the data). ``fit`` with the same ``checkpoint_path``
resumes from it; batches are redrawn from the seeded generator and the steps already
taken are skipped, so a resumed fit ends with the predictions of an uninterrupted one.

File layout: a magic line, one JSON header line (format and skinr versions, estimator
class, fingerprint, step, length and SHA-256 of the body), then the body written by
``torch.save`` and read back with ``weights_only=True`` (no code runs on load). The
checksum catches truncated or altered files. Writes go to a temporary file in the same
folder, flushed to disk, then renamed over the old checkpoint, so a kill during a write
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import torch

from .. import _version
from .files import atomic_write

__all__ = [
    "CheckpointError",
    "checkpointing",
    "data_fingerprint",
    "read_checkpoint",
    "write_checkpoint",
]

FORMAT_VERSION = 1
_MAGIC = b"skinr-checkpoint\n"

# Parameters that do not change what training computes; a fit may resume with them changed.
_RESUMABLE_PARAMS = frozenset(
    {
        "verbose",
        "checkpoint_path",
        "checkpoint_every",
        "predict_batch_size",
        "device",
        "data_range",
        "torch_compile",
        "max_time",
    }
)


class CheckpointError(ValueError):
    """A checkpoint file cannot be used to resume this fit."""


def _param_token(value) -> str:
    if isinstance(value, np.random.RandomState):
        return "RandomState"  # its state moves on every use; not part of the identity
    if isinstance(value, np.ndarray):
        return f"ndarray{value.shape}:{value.tolist()}"
    return repr(value)


def data_fingerprint(estimator, X: np.ndarray, y: np.ndarray) -> str:
    """A SHA-256 over the estimator class, its training parameters and the data."""
    digest = hashlib.sha256()
    digest.update(type(estimator).__name__.encode())
    params = estimator.get_params(deep=False)
    for name in sorted(params):
        if name not in _RESUMABLE_PARAMS:
            digest.update(f"{name}={_param_token(params[name])};".encode())
    for array in (X, y):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def write_checkpoint(path: str | os.PathLike, header: dict, body: dict) -> None:
    """Write ``body`` (tensors and plain containers) under ``header``, atomically."""
    buffer = io.BytesIO()
    torch.save(body, buffer)
    data = buffer.getvalue()
    header = {
        **header,
        "format_version": FORMAT_VERSION,
        "skinr_version": _version.__version__,
        "body_bytes": len(data),
        "body_sha256": hashlib.sha256(data).hexdigest(),
    }
    atomic_write(path, _MAGIC + json.dumps(header).encode() + b"\n" + data, sync=True)


def read_checkpoint(path: str | os.PathLike, *, estimator_class: str, fingerprint: str) -> dict:
    """The body of the checkpoint at ``path`` if it belongs to this fit, else raise.

    Raises
    ------
    CheckpointError
        The file is not a skinr checkpoint or is corrupt, or it was written by another
        skinr version, for another estimator, or for other parameters or data.
    """
    path = Path(path)
    where = f"Checkpoint {str(path)!r}"
    start_over = "delete it (or choose another checkpoint_path) to start a fresh fit"
    with open(path, "rb") as handle:
        if handle.read(len(_MAGIC)) != _MAGIC:
            raise CheckpointError(f"{where} is not a skinr checkpoint; {start_over}.")
        try:
            header = json.loads(handle.readline())
        except ValueError:
            raise CheckpointError(
                f"{where} is corrupt (unreadable header); {start_over}."
            ) from None
        data = handle.read()
    version = _version.__version__
    if header.get("format_version") != FORMAT_VERSION or header.get("skinr_version") != version:
        raise CheckpointError(
            f"{where} was written by skinr {header.get('skinr_version')} (checkpoint format "
            f"{header.get('format_version')}); this is skinr {version} (format "
            f"{FORMAT_VERSION}), which does not resume other versions' fits; {start_over}."
        )
    if len(data) != header.get("body_bytes") or (
        hashlib.sha256(data).hexdigest() != header.get("body_sha256")
    ):
        raise CheckpointError(f"{where} is corrupt (checksum mismatch); {start_over}.")
    if header.get("class") != estimator_class:
        raise CheckpointError(
            f"{where} belongs to a {header.get('class')} fit, not this {estimator_class}; "
            f"{start_over}."
        )
    if header.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{where} was written by a {estimator_class} fit with other parameters or other "
            f"data; {start_over}."
        )
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:
        # Not torch's own message: it would advise weights_only=False, i.e. running the
        # file's code.
        raise CheckpointError(
            f"{where} holds something other than tensors and plain data "
            f"({type(error).__name__}); {start_over}."
        ) from None


def check_checkpoint_folder(checkpoint_path) -> None:
    """Raise before training when ``checkpoint_path`` could never be written: a
    missing or unwritable folder would otherwise fail at the first checkpoint, after
    ``checkpoint_every`` steps of work."""
    if checkpoint_path is None:
        return
    path = Path(checkpoint_path)
    folder = path.parent
    if path.is_dir():
        raise ValueError(f"checkpoint_path={str(path)!r} is a folder; give a file path in it.")
    if not folder.is_dir():
        raise ValueError(
            f"checkpoint_path={str(path)!r}: the folder {str(folder)!r} does not exist; "
            "create it first."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(
            f"checkpoint_path={str(path)!r}: the folder {str(folder)!r} is not writable."
        )


def checkpointing(estimator, module: torch.nn.Module, X: np.ndarray, y: np.ndarray):
    """The resume state from ``estimator.checkpoint_path`` and a checkpoint writer.

    A matching checkpoint's weights are loaded into ``module`` and its training state
    returned for :func:`skinr._core.loop.train`; ``(None, None)`` when checkpointing is
    off. A checkpoint that does not belong to this fit raises before any training.
    """
    if estimator.checkpoint_path is None:
        return None, None
    path = Path(estimator.checkpoint_path)
    header = {"class": type(estimator).__name__, "fingerprint": data_fingerprint(estimator, X, y)}
    resume = None
    if path.exists():
        saved = read_checkpoint(
            path, estimator_class=header["class"], fingerprint=header["fingerprint"]
        )
        module.load_state_dict(saved["module"])
        resume = saved["training"]

    def save_checkpoint(training_state: dict) -> None:
        weights = {k: v.detach().to("cpu") for k, v in module.state_dict().items()}
        write_checkpoint(
            path,
            {**header, "step": len(training_state["loss_curve"])},
            {"module": weights, "training": training_state},
        )

    return resume, save_checkpoint
