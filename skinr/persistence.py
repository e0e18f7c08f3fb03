"""Saving and loading fitted estimators without pickle's code execution.

``save`` writes one file holding a JSON header (format version, estimator class,
``get_params()``, the fitted scalar attributes) and the tensors (module state and
fitted arrays). ``load`` reads it with ``torch.load(weights_only=True)``, which only
rebuilds tensors and plain containers, so a model file from a stranger cannot run
code. Files are written atomically: a temporary file in the same folder, then a
rename, so an interrupted save never leaves a truncated model behind.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from ._registry import ESTIMATORS

__all__ = ["FORMAT_VERSION", "DeviceWarning", "load", "place_module", "save"]

FORMAT_VERSION = 1
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
    raise TypeError(f"Cannot save {name}={value!r}: only numbers, strings, tuples and None are.")


def _from_json(value):
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
    arrays = {}
    for name, value in vars(estimator).items():
        if not name.endswith("_") or name.startswith("_") or name == "module_":
            continue
        if isinstance(value, np.ndarray):
            arrays[name] = torch.from_numpy(np.array(value, copy=True))
        else:
            header["fitted"][name] = _jsonable(value, name)
    state = {k: v.detach().to("cpu") for k, v in estimator.module_.state_dict().items()}
    payload = {"header": json.dumps(header), "state_dict": state, "arrays": arrays}
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _read_header(path: Path) -> tuple[dict, dict]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        header = json.loads(payload["header"])
        if header.get("format") != _MAGIC:
            raise KeyError
    except FileNotFoundError:
        raise
    except Exception:
        raise ValueError(f"{str(path)!r} is not a skinr model file.") from None
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} was written by format version {version}; this skinr reads "
            f"versions up to {FORMAT_VERSION}. Upgrade skinr to load it."
        )
    return header, payload


def load(path: str | os.PathLike, *, device: str | None = None, estimators: dict | None = None):
    """Read an estimator written by :func:`save`.

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
    header, payload = _read_header(path)
    if estimators is None:
        estimators = ESTIMATORS
    cls = estimators.get(header["class"])
    if cls is None:
        raise ValueError(
            f"{str(path)!r} holds a {header['class']!r}, which is not a skinr estimator "
            f"this version knows ({', '.join(sorted(estimators))})."
        )
    estimator = cls(**{k: _from_json(v) for k, v in header["params"].items()})
    for name, value in header["fitted"].items():
        setattr(estimator, name, _from_json(value))
    for name, tensor in payload["arrays"].items():
        setattr(estimator, name, tensor.numpy())
    # The weights are overwritten below; a private generator keeps the global RNG untouched.
    throwaway = torch.Generator().manual_seed(0)
    module = estimator._build_module(estimator._signal_dims(), estimator.n_outputs_, throwaway)
    module.load_state_dict(payload["state_dict"])
    estimator.module_, estimator.device_ = place_module(module.eval(), device or estimator.device_)
    return estimator
