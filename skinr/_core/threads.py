"""Torch's intra-op threads for the length of a fit or a prediction.

Public as :func:`skinr.parallel.torch_threads`; here so that the fit engine does not
import the module that runs many fits.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

__all__ = ["THREADS_ENV", "torch_threads"]

THREADS_ENV = "SKINR_TORCH_THREADS"


@contextlib.contextmanager
def torch_threads(n_threads: int | None = None) -> Iterator[int]:
    """Run the enclosed code with ``n_threads`` torch intra-op threads, then restore.

    Parameters
    ----------
    n_threads : int or None, default=None
        Threads to use; None reads ``SKINR_TORCH_THREADS`` and, when that is unset,
        leaves torch's setting alone.

    Yields
    ------
    int
        The number of threads in effect.
    """
    if n_threads is None:
        value = os.environ.get(THREADS_ENV, "").strip()
        if value:
            try:
                n_threads = int(value)
            except ValueError:
                raise ValueError(
                    f"{THREADS_ENV}={value!r} must be a positive integer (torch threads "
                    "per fit), or unset."
                ) from None
    if n_threads is not None and n_threads < 1:
        raise ValueError(f"torch threads must be at least 1; got {n_threads}.")
    previous = torch.get_num_threads()
    if n_threads is None or n_threads == previous:
        yield previous
        return
    torch.set_num_threads(n_threads)
    try:
        yield n_threads
    finally:
        torch.set_num_threads(previous)
