"""Saving and loading fitted estimators without pickle's code execution.

``save`` writes one safetensors file: the tensors (module state and fitted arrays) and,
in its metadata, a JSON header (format version, estimator class, ``get_params()``, the
fitted scalar attributes) with a SHA-256 checksum over everything. Neither part can
hold code, so a model file from a stranger runs none, whatever the torch version;
``load`` validates the header and the weights' shapes before it allocates what the
file declares. Files are written atomically: a temporary file in the same folder,
then a rename, so an interrupted save never leaves a truncated model behind.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import stat
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from ._core.files import atomic_write
from ._core.network import build_network
from ._core.registry import ESTIMATORS

__all__ = ["FORMAT_VERSION", "DeviceWarning", "load", "place_module", "save"]

# 2: safetensors (tensors) + a JSON header in its metadata, with a checksum; 1 was
# torch.save, which this version no longer reads.
FORMAT_VERSION = 4
# Format 3: the frequency an "auto" parameter resolves to is always a fitted attribute
# ``<name>_`` (SIREN and FINER's hidden_omega_0_, LocalGlobalSIREN's omega_0_ and
# first_omega_0_). A format-2 file may predate "auto": it holds the number as the
# parameter only, and the loader takes it from there.
_RESOLVED_SINCE_3 = ("first_omega_0", "hidden_omega_0", "omega_0")
# Parameters added with a default that behaves unlike the files written before them,
# by the format that added them: an older file without one meant the value given
# here. Format 4: blend_width (EnsembleINR, MultiHeadReLU); before it a "smooth"
# blend ran from cell centre to cell centre.
_ADDED_PARAMETERS = {4: {"blend_width": 1.0}}
_MAGIC = "skinr-model"


class DeviceWarning(UserWarning):
    """A model saved on a device that is missing here was placed on the CPU instead."""


def place_module(module: torch.nn.Module, device: str) -> tuple[torch.nn.Module, str]:
    """Move ``module`` to ``device``, falling back to the CPU (with a warning) without CUDA."""
    target = torch.device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"The model was fitted on {device!r}, but no CUDA device is available here; "
            "it is placed on the CPU.",
            DeviceWarning,
            stacklevel=3,
        )
        target = torch.device("cpu")
    return module.to(target), str(target)


def cpu_copy(module: torch.nn.Module) -> torch.nn.Module:
    """The module itself when it lives on the CPU, else a CPU copy of it."""
    if all(t.device.type == "cpu" for t in module.state_dict().values()):
        return module
    return copy.deepcopy(module).to("cpu")


def _jsonable(value, name: str):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple | list):
        return (
            {"__tuple__": [_jsonable(v, name) for v in value]}
            if isinstance(value, tuple)
            else [_jsonable(v, name) for v in value]
        )
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"__dict__": {key: _jsonable(v, f"{name}.{key}") for key, v in value.items()}}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"__array__": value.tolist()}
    from .inverse import OPERATORS, Operator

    if isinstance(value, Operator):
        if OPERATORS.get(type(value).__name__) is not type(value):
            raise TypeError(
                f"Cannot save {name}={type(value).__name__}(...): skinr.save writes "
                f"declared operators only ({', '.join(sorted(OPERATORS))}), and a "
                "function is code. Pickle the estimator instead (load it from trusted "
                "files only), or refit after loading."
            )
        # Parameters and what resolving it fixed (pixel sizes, the signal's grid).
        state = {k: _jsonable(v, f"{name}.{k}") for k, v in vars(value).items()}
        return {"__operator__": type(value).__name__, "state": state}
    raise TypeError(
        f"Cannot save {name}={value!r}: only numbers, strings, tuples, lists, dicts and None are."
    )


def _from_json(value):
    if isinstance(value, dict) and "__dict__" in value:
        return {key: _from_json(v) for key, v in value["__dict__"].items()}
    if isinstance(value, dict) and "__tuple__" in value:
        return tuple(_from_json(v) for v in value["__tuple__"])
    if isinstance(value, dict) and "__array__" in value:
        return np.asarray(value["__array__"], dtype=np.float64)
    if isinstance(value, dict) and "__operator__" in value:
        return _operator_from_json(value)
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _operator_from_json(value: dict):
    from .inverse import OPERATORS

    cls = OPERATORS.get(value["__operator__"])
    if cls is None or not isinstance(value.get("state"), dict):
        raise ValueError(
            f"The file names operator {value['__operator__']!r}, which is not one of "
            f"skinr's ({', '.join(sorted(OPERATORS))})."
        )
    state = {k: _from_json(v) for k, v in value["state"].items()}
    params = cls._get_param_names()
    operator = cls(**{k: state.pop(k) for k in params if k in state})
    for name, attribute in state.items():
        if not (name.endswith("_") or name == "signal_dims"):
            raise ValueError(f"The file's {cls.__name__} holds an unknown field {name!r}.")
        setattr(operator, name, attribute)
    return operator


def save(estimator, path: str | os.PathLike) -> Path:
    """Write a fitted skinr estimator to ``path`` (see the module docstring)."""
    from safetensors.torch import save as safetensors_bytes

    header, tensors = contents(estimator)
    _check_target(path)
    text = json.dumps(header)
    metadata = {"format": _MAGIC, "header": text, "sha256": _checksum(text, tensors)}
    data = safetensors_bytes(tensors, metadata=metadata)
    return atomic_write(path, data)


def contents(estimator) -> tuple[dict, dict]:
    """What a model file holds: the JSON header (format, class, ``get_params()``, fitted
    scalars) and the tensors (fitted arrays as ``array.<name>``, the module's state as
    ``state.<key>``). :mod:`skinr.codec` writes the same, quantised."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    params = estimator.get_params(deep=False)
    if not isinstance(params.get("random_state"), int | type(None)):
        params["random_state"] = None  # a RandomState instance has no portable form
    header = {
        "format": _MAGIC,
        "format_version": FORMAT_VERSION,
        "class": type(estimator).__name__,
        "params": {k: _jsonable(v, k) for k, v in params.items()},
        "fitted": {},
    }
    tensors = {}
    for name, value in vars(estimator).items():
        if not name.endswith("_") or name.startswith("_") or name == "module_":
            continue
        if isinstance(value, np.ndarray):
            tensors[ARRAY + name] = torch.from_numpy(np.array(value, copy=True))
        else:
            header["fitted"][name] = _jsonable(value, name)
    for key, tensor in estimator.module_.state_dict().items():
        tensors[STATE + key] = tensor.detach().to("cpu").contiguous()
    return header, tensors


def _check_target(path) -> None:
    """A path ``save`` may replace: named, and a regular file if it exists (a rename
    over a FIFO or a device node would silently replace it with a file)."""
    if not os.fspath(path):
        raise ValueError("save needs a file path; got an empty one.")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise ValueError(f"{os.fspath(path)!r} exists and is not a regular file; not replacing it.")


STATE, ARRAY = "state.", "array."


def _checksum(header: str, tensors: dict) -> str:
    """SHA-256 over the header and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256(header.encode())
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(
            tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        )
    return digest.hexdigest()


def _refuse(path: Path, reason: str):
    # One line, whatever a library's message below says (torch appends C++ frames).
    reason = (reason.strip().splitlines() or [""])[0]
    reason = reason if len(reason) <= 300 else reason[:297] + "..."
    raise Refused(f"{str(path)!r} is corrupt or not a skinr model: {reason}", reason) from None


# A header larger than this is refused before it is parsed (the largest skinr writes,
# LocalGlobalSIREN's with its partition table, is a few hundred kB).
_MAX_HEADER_BYTES = 16 << 20
# Safetensors dtypes a fitted array may have (numpy reads them); weights must have
# exactly the dtype of the structure the header declares.
_ARRAY_DTYPES = {"F64", "F32", "I64", "I32", "I16", "I8", "U8", "BOOL"}


def _read_once(path: Path) -> bytes:
    """The file's bytes, read through one descriptor: a save that replaces the path
    meanwhile is either wholly before or wholly after. A FIFO, a device or a folder
    is refused without waiting for a writer."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise
    except OSError as error:
        _refuse(path, f"it cannot be opened ({error.strerror})")
    with os.fdopen(descriptor, "rb") as stream:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            _refuse(path, "it is not a regular file")
        return stream.read()


class _FileView:
    """A safetensors file held in memory: its header (names, dtypes, shapes, metadata)
    parsed with a bounded size, and its tensors decoded by safetensors only when asked,
    after every check that needs no tensor."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data, self._tensors = path, data, None
        if len(data) < 8:
            _refuse(path, "not a safetensors file (too short)")
        size = int.from_bytes(data[:8], "little")
        if size > _MAX_HEADER_BYTES or size > len(data) - 8:
            _refuse(path, f"its header claims {size} bytes (at most {_MAX_HEADER_BYTES} read)")
        header = _json(path, data[8 : 8 + size], "the safetensors header")
        if not isinstance(header, dict):
            _refuse(path, "not a safetensors file (its header is not a table)")
        self._metadata = header.pop("__metadata__", None) or {}
        self.entries = {}
        for name, entry in header.items():
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("dtype"), str)
                and isinstance(entry.get("shape"), list)
                and all(type(n) is int and n >= 0 for n in entry["shape"])
            ):
                _refuse(path, f"not a safetensors file (entry {name[:40]!r})")
            self.entries[name] = entry
        if not isinstance(self._metadata, dict):
            _refuse(path, "not a safetensors file (its metadata is not a table)")

    def metadata(self) -> dict:
        return self._metadata

    def keys(self):
        return self.entries.keys()

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.entries[key]["shape"])

    def dtype(self, key: str) -> str:
        return self.entries[key]["dtype"]

    def get_tensor(self, key: str):
        if self._tensors is None:
            from safetensors.torch import load as decode

            try:
                self._tensors = decode(self.data)
            except Exception as error:
                _refuse(self.path, f"its tensors cannot be read ({type(error).__name__})")
        return self._tensors[key]


def _json(path: Path, text, what: str):
    """``json.loads`` with every failure (syntax, nesting deep enough to exhaust the
    recursion limit) turned into the one refusal."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError, UnicodeDecodeError):
        _refuse(path, f"{what} is not readable JSON")


def _open(path: Path):
    """The file's header and a view of its tensors, without decoding any tensor."""
    handle = _FileView(path, _read_once(path))
    metadata = handle.metadata()
    if metadata.get("format") != _MAGIC or not isinstance(metadata.get("header"), str):
        _refuse(path, "no skinr header")
    header = check_header(path, _json(path, metadata["header"], "the header"))
    return header, metadata, handle


def check_header(path, header):
    """``header`` if it is a skinr header of a version this skinr reads."""
    if not isinstance(header, dict) or header.get("format") != _MAGIC:
        _refuse(path, "the header is not a skinr header")
    version = header.get("format_version")
    if type(version) is not int or version < 1:
        _refuse(path, f"format_version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} was written by format version {version}; this skinr reads "
            f"versions up to {FORMAT_VERSION}. Upgrade skinr to load it."
        )
    for field, kind in (("class", str), ("params", dict), ("fitted", dict)):
        if not isinstance(header.get(field), kind):
            _refuse(path, f"the header's {field!r} is missing or not a {kind.__name__}")
    return header


_SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_BUILDING = threading.local()


class _TooManyParts(Exception):
    pass


def _count_part(*_args) -> None:
    budget = getattr(_BUILDING, "budget", None)
    if budget is None:
        return
    _BUILDING.budget = budget - 1
    if budget <= 0:
        raise _TooManyParts


_PART_HOOKS = []


def _bounded_parts(budget: int):
    """While inside (this thread only), building more than ``budget`` modules,
    parameters and buffers raises: a structure cannot have more parts than a small
    multiple of the tensors its file holds, so a 5 kB file declaring ``depth=10**7``
    is refused after a few hundred layers instead of building all of them."""
    if not _PART_HOOKS:
        from torch.nn.modules import module as torch_module

        _PART_HOOKS.extend(
            register(_count_part)
            for register in (
                torch_module.register_module_module_registration_hook,
                torch_module.register_module_parameter_registration_hook,
                torch_module.register_module_buffer_registration_hook,
            )
        )

    class Bound:
        def __enter__(self):
            _BUILDING.budget = budget

        def __exit__(self, *exc):
            _BUILDING.budget = None

    return Bound()


def build_checked(path, estimator, n_tensors: int, device=None) -> torch.nn.Module:
    """The structure the header declares, built with a bounded number of parts (on the
    meta device by default: nothing allocated); any failure is the one refusal."""
    try:
        with _bounded_parts(16 * n_tensors + 256):
            return build_network(
                estimator, estimator._signal_dims(), estimator.n_outputs_, device=device or "meta"
            )
    except _TooManyParts:
        _refuse(path, f"its structure has far more parts than the file's {n_tensors} tensors")
    except Exception as error:
        _refuse(path, f"its structure cannot be built ({type(error).__name__}: {error})")


def _check_shapes(path, estimator, handle) -> None:
    """The file's weights have exactly the shapes and dtypes the declared structure
    builds, checked on the meta device (nothing allocated) before any tensor is read."""
    stored = {k for k in handle.keys() if k.startswith(STATE)}
    module = build_checked(path, estimator, len(handle.keys()))
    expected = {STATE + k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}
    if stored != set(expected):
        missing, extra = sorted(set(expected) - stored), sorted(stored - set(expected))
        _refuse(path, f"weights missing {missing[:3]} or unexpected {extra[:3]}")
    for key, (shape, dtype) in expected.items():
        found = handle.shape(key)
        if found != shape:
            _refuse(path, f"{key[len(STATE) :]} has shape {found}, the structure needs {shape}")
        if handle.dtype(key) != _SAFETENSORS_DTYPES.get(dtype):
            _refuse(
                path,
                f"{key[len(STATE) :]} has dtype {handle.dtype(key)}, the structure needs {dtype}",
            )


def load(path: str | os.PathLike, *, device: str | None = None, estimators: dict | None = None):
    """Read an estimator written by :func:`save`.

    The file is checked before anything the header claims is allocated: a known format
    version, a known class, parameters that pass the estimator's constraints, fitted
    attributes the class documents, weights with exactly the shapes the declared
    structure builds (checked on PyTorch's meta device), and a SHA-256 checksum over the
    header and every tensor. Any failure is one ``ValueError``: "corrupt or not a skinr
    model: <reason>".

    Parameters
    ----------
    path : str or path-like
        The model file.
    device : str or None, default=None
        Where to put the module; None uses the device it was fitted on, or the CPU
        (with a :class:`DeviceWarning`) when that device is missing here.
    estimators : dict or None
        Class name -> estimator class that may be loaded; skinr's public estimators
        by default. A file naming any other class is refused.

    Returns
    -------
    estimator
        The fitted estimator, with predictions identical to the saved one's.
    """
    path = Path(path)
    try:
        header, metadata, handle = _open(path)
        checksum = (metadata["header"], metadata.get("sha256"))
        return restore(path, header, handle, device, estimators, checksum)
    except (FileNotFoundError, Refused):
        raise
    except ValueError as error:
        if "was written by format version" in str(error):
            raise
        _refuse(path, f"{type(error).__name__}: {error}")
    except Exception as error:  # the one error out of load, whatever a file provokes
        _refuse(path, f"{type(error).__name__}: {error}")


def restore(path, header: dict, handle, device, estimators, checksum: tuple | None):
    """The estimator a checked ``header`` and a view of its tensors describe, every
    check of :func:`load` passed. ``checksum``: the header's text and the SHA-256 the
    file states; None skips it (a codec stream carries its own CRC)."""
    from ._core.params import documented_attribute_types, documented_attributes

    if estimators is None:
        estimators = ESTIMATORS
    cls = estimators.get(header["class"])
    if cls is None:
        raise Refused(
            f"{str(path)!r} holds a {header['class']!r}, which is not a skinr estimator "
            f"this version knows ({', '.join(sorted(estimators))})."
        )
    params = dict(header["params"])
    for since, added in _ADDED_PARAMETERS.items():
        if header["format_version"] < since:
            names = cls._get_param_names()
            params.update({k: v for k, v in added.items() if k in names and k not in params})
    try:
        estimator = cls(**{k: _from_json(v) for k, v in params.items()})
        estimator._validate_params()
    except Exception as error:
        _refuse(path, f"its parameters are invalid ({error})")
    allowed = documented_attributes(cls)
    for name, value in header["fitted"].items():
        if allowed and name not in allowed:
            _refuse(path, f"{cls.__name__} has no fitted attribute {name!r}")
        try:
            setattr(estimator, name, _from_json(value))
        except Exception as error:
            _refuse(path, f"fitted attribute {name!r}: {error}")
    if header["format_version"] < 3:
        for name in _RESOLVED_SINCE_3:
            if name + "_" in allowed and name + "_" not in header["fitted"]:
                header["fitted"][name + "_"] = header["params"].get(name)
                setattr(estimator, name + "_", getattr(estimator, name))
    kinds = documented_attribute_types(cls)
    for name in header["fitted"]:
        # A scalar the class documents as a number must be one, and finite.
        value, kind = getattr(estimator, name), kinds.get(name)
        if kind == "float" and (type(value) not in (int, float) or not math.isfinite(value)):
            _refuse(path, f"fitted attribute {name}={value!r} is not a finite float")
        if kind == "int" and type(value) is not int:
            _refuse(path, f"fitted attribute {name}={value!r} is not an int")
    for name in ("n_features_in_", "n_outputs_"):
        value = getattr(estimator, name, None)
        if type(value) is not int or not 1 <= value <= _MAX_DIMS:
            _refuse(path, f"{name}={value!r} is not an int in [1, {_MAX_DIMS}]")
    for name in ("y_offset_", "y_scale_", "data_range_"):
        value = getattr(estimator, name, None)
        if type(value) not in (int, float) or not math.isfinite(value):
            _refuse(path, f"{name}={value!r} is not a finite number")
    if not estimator.y_scale_ > 0:
        _refuse(path, f"y_scale_={estimator.y_scale_!r} is not positive")
    fitted_device = getattr(estimator, "device_", None)
    if not isinstance(fitted_device, str) or fitted_device.split(":")[0] not in _DEVICES:
        _refuse(path, f"device_={fitted_device!r} is not one of {', '.join(_DEVICES)}")
    # Fitted arrays (masks, boxes) may shape the structure: read them first; they are
    # what the file holds, not what it claims.
    arrays = [key for key in handle.keys() if key.startswith(ARRAY)]
    for key in arrays:
        name = key[len(ARRAY) :]
        if allowed and name not in allowed:
            _refuse(path, f"{cls.__name__} has no fitted attribute {name!r}")
        if handle.dtype(key) not in _ARRAY_DTYPES or not handle.shape(key):
            _refuse(path, f"{name} is a {handle.dtype(key)} array of shape {handle.shape(key)}")
    tensors = {key: handle.get_tensor(key) for key in arrays}
    for key, tensor in tensors.items():
        setattr(estimator, key[len(ARRAY) :], _finite(path, key, tensor).numpy())
    for name in ("domain_", "footprint_"):
        box = getattr(estimator, name, None)
        if name == "footprint_" and box is None:
            continue
        box = np.asarray(box) if isinstance(box, np.ndarray | list) else None
        if (
            box is None
            or box.shape != (estimator.n_features_in_, 2)
            or not (box[:, 0] < box[:, 1]).all()
        ):
            _refuse(path, f"{name} is not a box of {estimator.n_features_in_} (low, high) pairs")
    operator = getattr(estimator, "operator_", None)
    if operator is not None:
        from ._core.routes import check_points

        dims = getattr(operator, "signal_dims", None)
        if type(dims) is not int or not 1 <= dims <= _MAX_DIMS:
            _refuse(path, f"its operator's signal_dims={dims!r} is not an int in [1, {_MAX_DIMS}]")
        try:
            # The loader's budget, not the file's: predict_batch_size is the file's word.
            check_points(operator, min(estimator.predict_batch_size, _MAX_POINTS))
        except ValueError as error:
            _refuse(path, str(error))
    _check_shapes(path, estimator, handle)
    tensors.update({key: handle.get_tensor(key) for key in handle.keys() if key.startswith(STATE)})
    if checksum is not None and _checksum(checksum[0], tensors) != checksum[1]:
        _refuse(path, "the checksum does not match (the file was altered or damaged)")
    for key, tensor in tensors.items():
        _finite(path, key, tensor)
    module = build_checked(path, estimator, len(tensors), device="cpu")
    module.load_state_dict({k[len(STATE) :]: v for k, v in tensors.items() if k.startswith(STATE)})
    estimator.module_, estimator.device_ = place_module(module.eval(), device or estimator.device_)
    _check_predicts(path, estimator)
    return estimator


class Refused(ValueError):
    """skinr's refusal of a file, raised as is by :func:`load`; ``reason`` is the
    refusal without the file's name."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason


def _finite(path, key, tensor):
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        _refuse(path, f"{key.split('.', 1)[1]} holds NaN or infinite values")
    return tensor


def _check_predicts(path, estimator) -> None:
    """One prediction at the estimator's probe point (the centre of the fitted domain):
    a file whose parts each pass but contradict one another (a missing domain,
    partitions against their mask) is refused here, not at the user's first predict."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, may_be_nan = estimator._load_probe()
    finite = np.isfinite(value).all() or (may_be_nan and not np.isinf(value).any())
    if value.size != estimator.n_outputs_ or not finite:
        _refuse(path, "its model does not predict finite values")


# Devices a file may name (the loader places the model on the CPU where one is missing).
_DEVICES = ("cpu", "cuda", "mps", "xpu")
# Points one measurement may evaluate in a loaded file, whatever predict_batch_size it
# names (the default is 65,536).
_MAX_POINTS = 1 << 24
# Coordinate dimensions and output channels a file may declare.
_MAX_DIMS = 1024
