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
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ._files import atomic_write
from ._registry import ESTIMATORS

__all__ = ["FORMAT_VERSION", "DeviceWarning", "load", "place_module", "save"]

# 2: safetensors (tensors) + a JSON header in its metadata, with a checksum; 1 was
# torch.save, which this version no longer reads.
FORMAT_VERSION = 2
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
            tensors[_ARRAY + name] = torch.from_numpy(np.array(value, copy=True))
        else:
            header["fitted"][name] = _jsonable(value, name)
    for key, tensor in estimator.module_.state_dict().items():
        tensors[_STATE + key] = tensor.detach().to("cpu").contiguous()
    text = json.dumps(header)
    metadata = {"format": _MAGIC, "header": text, "sha256": _checksum(text, tensors)}
    data = safetensors_bytes(tensors, metadata=metadata)
    return atomic_write(path, data)


_STATE, _ARRAY = "state.", "array."


def _checksum(header: str, tensors: dict) -> str:
    """SHA-256 over the header and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256(header.encode())
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


class _Corrupt(ValueError):
    pass


def _refuse(path: Path, reason: str):
    raise ValueError(f"{str(path)!r} is corrupt or not a skinr model: {reason}") from None


def _open(path: Path):
    """The file's header and a reader of its tensors, without reading any tensor."""
    from safetensors import safe_open

    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except FileNotFoundError:
        raise
    except Exception as error:
        _refuse(path, f"not a safetensors file ({type(error).__name__})")
    metadata = handle.metadata() or {}
    if metadata.get("format") != _MAGIC or "header" not in metadata:
        _refuse(path, "no skinr header")
    try:
        header = json.loads(metadata["header"])
    except ValueError:
        _refuse(path, "the header is not JSON")
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
    return header, metadata, handle


def _check_shapes(path, estimator, handle) -> None:
    """The file's weights have exactly the shapes the declared structure builds, checked
    on the meta device (nothing allocated) before any tensor is read."""
    throwaway = torch.Generator().manual_seed(0)
    try:
        with torch.device("meta"):
            module = estimator._build_module(
                estimator._signal_dims(), estimator.n_outputs_, throwaway
            )
    except Exception as error:
        _refuse(path, f"its structure cannot be built ({type(error).__name__}: {error})")
    expected = {_STATE + k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}
    stored = {k for k in handle.keys() if k.startswith(_STATE)}
    if stored != set(expected):
        missing, extra = sorted(set(expected) - stored), sorted(stored - set(expected))
        _refuse(path, f"weights missing {missing[:3]} or unexpected {extra[:3]}")
    for key, (shape, _) in expected.items():
        found = tuple(handle.get_slice(key).get_shape())
        if found != shape:
            _refuse(path, f"{key[len(_STATE) :]} has shape {found}, the structure needs {shape}")


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
    from ._param_docs import documented_attributes

    path = Path(path)
    header, metadata, handle = _open(path)
    if estimators is None:
        estimators = ESTIMATORS
    cls = estimators.get(header["class"])
    if cls is None:
        raise ValueError(
            f"{str(path)!r} holds a {header['class']!r}, which is not a skinr estimator "
            f"this version knows ({', '.join(sorted(estimators))})."
        )
    try:
        estimator = cls(**{k: _from_json(v) for k, v in header["params"].items()})
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
    for name in ("n_features_in_", "n_outputs_"):
        value = getattr(estimator, name, None)
        if type(value) is not int or not 1 <= value <= _MAX_DIMS:
            _refuse(path, f"{name}={value!r} is not an int in [1, {_MAX_DIMS}]")
    # Fitted arrays (masks, boxes) may shape the structure: read them first; they are
    # what the file holds, not what it claims.
    tensors = {key: handle.get_tensor(key) for key in handle.keys() if key.startswith(_ARRAY)}
    for key, tensor in tensors.items():
        name = key[len(_ARRAY) :]
        if allowed and name not in allowed:
            _refuse(path, f"{cls.__name__} has no fitted attribute {name!r}")
        setattr(estimator, name, tensor.numpy())
    operator = getattr(estimator, "operator_", None)
    if operator is not None:
        from ._measured import check_points

        try:
            check_points(operator, estimator.predict_batch_size)
        except ValueError as error:
            _refuse(path, str(error))
    _check_shapes(path, estimator, handle)
    tensors.update({key: handle.get_tensor(key) for key in handle.keys() if key.startswith(_STATE)})
    if _checksum(metadata["header"], tensors) != metadata.get("sha256"):
        _refuse(path, "the checksum does not match (the file was altered or damaged)")
    throwaway = torch.Generator().manual_seed(0)
    module = estimator._build_module(estimator._signal_dims(), estimator.n_outputs_, throwaway)
    module.load_state_dict(
        {k[len(_STATE) :]: v for k, v in tensors.items() if k.startswith(_STATE)}
    )
    estimator.module_, estimator.device_ = place_module(module.eval(), device or estimator.device_)
    return estimator


# Coordinate dimensions and output channels a file may declare.
_MAX_DIMS = 1024
