"""Input checks, device resolution and seeding.

The only module that imports scikit-learn's private helpers (``_fit_context`` and the
parameter-constraint classes), so a change on scikit-learn's side touches one file.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import (
    Hidden,
    Interval,
    Options,
    StrOptions,
)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

__all__ = [
    "BYTES_PER_TRAINED_PARAMETER",
    "Hidden",
    "Interval",
    "Options",
    "StrOptions",
    "check_coords",
    "check_is_fitted",
    "check_score_data",
    "check_training_data",
    "fit_context",
    "make_generator",
    "resolve_device",
]

fit_context = _fit_context

_FLOAT_DTYPES = (np.float64, np.float32)


def check_training_data(estimator, X, y, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validate fit inputs: 2-D numeric finite X, numeric finite y of the same length."""
    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y is None."
        )
    X, y = validate_data(
        estimator,
        X,
        y,
        reset=reset,
        dtype=_FLOAT_DTYPES,
        multi_output=True,
        y_numeric=True,
        ensure_min_samples=1,
    )
    # float32 targets stay float32: a big signal is not copied to float64 here.
    y = np.asarray(y, dtype=y.dtype if y.dtype in _FLOAT_DTYPES else np.float64)
    if y.ndim > 2:
        raise ValueError(f"y must be 1-D or 2-D (n_samples, n_channels); got shape {y.shape}.")
    return X, y


def check_score_data(X, y, sample_weight) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate ``score``'s targets and weights: finite ``y`` as long as ``X``,
    non-negative weights of that length."""
    y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
    if len(y) != len(X):
        raise ValueError(f"y has {len(y)} samples but X has {len(X)}.")
    if sample_weight is not None:
        sample_weight = _check_sample_weight(
            sample_weight, y, dtype=np.float64, ensure_non_negative=True
        )
    return y, sample_weight


def check_coords(estimator, X) -> np.ndarray:
    """Validate predict-time coordinates against the fitted number of dimensions."""
    return validate_data(estimator, X, reset=False, dtype=_FLOAT_DTYPES)


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn the ``device`` parameter into a concrete ``torch.device``.

    ``"auto"`` is CUDA when available, else CPU. Errors are one line and raised
    before any training.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={device!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from None
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise ValueError(
            f"device={device!r} is not supported; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        )
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested, but no CUDA device is available "
            "(torch.cuda.is_available() is False); use device='auto' or 'cpu'."
        )
    if resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} was requested, but only {torch.cuda.device_count()} CUDA "
            "device(s) exist; use a smaller index or device='cuda'."
        )
    return resolved


def make_generator(random_state) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``random_state`` (None, int or RandomState).

    Every weight init and every batch draw uses it; the global torch seed is never
    touched, so fits are reproducible and thread-safe.
    """
    seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
    return torch.Generator().manual_seed(seed)


#: Bytes one trainable float32 parameter takes in training: the weight, its gradient
#: and Adam's two moments.
BYTES_PER_TRAINED_PARAMETER = 16
#: A structure this big (training state, bytes) is refused when it also has more than
#: MAX_PARAMETERS_PER_SAMPLE parameters per training sample: structures that multiply
#: per dimension (cells, heads) on small many-dimensional data.
LARGE_STRUCTURE_BYTES = 2**30
MAX_PARAMETERS_PER_SAMPLE = 1000


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory on ``device`` that a fit may take: free memory on a GPU (what
    other processes hold there is not ours), physical RAM on the CPU; None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
