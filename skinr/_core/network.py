"""The one place an estimator's network is built from outside its class."""

from __future__ import annotations

import contextlib
import inspect

import numpy as np
import torch
from torch import nn

from .params import COMMON_PARAM_NAMES
from .validation import (
    BYTES_PER_TRAINED_PARAMETER,
    LARGE_STRUCTURE_BYTES,
    MAX_PARAMETERS_PER_SAMPLE,
    device_memory,
)

__all__ = ["build_network", "check_structure_memory"]


def build_network(
    estimator,
    n_dims: int,
    n_outputs: int,
    *,
    X: np.ndarray | None = None,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = "meta",
) -> nn.Module:
    """The network ``estimator`` builds for ``n_dims`` coordinates and ``n_outputs``
    channels.

    Parameters
    ----------
    estimator : BaseINR
        Its parameters (and any data-dependent structure already fitted) fix the network.
    n_dims, n_outputs : int
        Coordinate dimensions in, channels out.
    X : ndarray of shape (n_samples, n_dims) or None
        Given, the data-dependent structure a fit on ``X`` would take (``_structure``)
        is assigned to ``estimator`` first: pass a copy where it must stay as it is.
        None: the structure ``estimator`` holds already (a fitted or loaded model).
    generator : torch.Generator or None
        Draws the initial weights; None uses a fixed seed, for callers that only read
        shapes or overwrite the weights.
    device : str, torch.device or None
        Where the tensors are created; the default "meta" allocates nothing (shapes
        only), which is how sizes are checked before anything is spent. None builds on
        the CPU without a device context, as a fit does before moving the module.
    """
    if X is not None:
        vars(estimator).update(estimator._structure(X, n_outputs))
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    context = contextlib.nullcontext() if device is None else torch.device(device)
    with context:
        return estimator._build_module(n_dims, n_outputs, generator)


def check_structure_memory(
    estimator, n_dims: int, n_outputs: int, n_samples: int, device: torch.device
) -> None:
    """Refuse a structure whose training state cannot fit on ``device``, or that spends
    more than ``LARGE_STRUCTURE_BYTES`` on more than ``MAX_PARAMETERS_PER_SAMPLE``
    parameters per sample, before any of it is allocated.

    The module is built on PyTorch's meta device (shapes only, no memory), so the count
    is exact for every architecture: cells, heads, tiles or partitions that multiply
    per coordinate dimension (EnsembleINR's default ``grid=8`` has 8**10 cells on 10-D
    data) are caught here with a one-line error that names the structure's parameters.
    """
    module = build_network(estimator, n_dims, n_outputs, device="meta")
    n_params = sum(p.numel() for p in module.parameters())
    needed = n_params * BYTES_PER_TRAINED_PARAMETER
    needed += sum(b.numel() * b.element_size() for b in module.buffers())
    available = device_memory(device)
    if available is not None and needed > available:
        reason = f"more than the {available / 2**30:.3g} GiB of {device.type} memory here"
    elif needed > LARGE_STRUCTURE_BYTES and n_params > MAX_PARAMETERS_PER_SAMPLE * n_samples:
        reason = f"for {n_samples:,} samples ({n_params // n_samples:,} parameters per sample)"
    else:
        return
    own = [
        name
        for name in inspect.signature(type(estimator).__init__).parameters
        if name not in COMMON_PARAM_NAMES
    ]
    settings = ", ".join(f"{name}={getattr(estimator, name)!r}" for name in own if name != "self")
    raise ValueError(
        f"{type(estimator).__name__} on {n_dims}-D coordinates has {n_params:,} parameters, "
        f"{needed / 2**30:,.3g} GiB to train, {reason}; lower its structure ({settings})."
    )
