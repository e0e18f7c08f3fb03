"""Choosing the bits per weight of a model stream for a target PSNR or size."""

from __future__ import annotations

import math
import numbers

from ._model_stream import model_stream, quantised, quantised_copy
from ._refine import refined

__all__ = ["bits_for_psnr", "bits_for_size", "check_bits", "coded"]

# The bits a search tries: 1/8 to 16 in steps of 1/8 (finer moves the rate by < 1 %;
# at 16 bits a weight is kept to 1/65,536 of its tensor's spread).
_EIGHTHS = (1, 128)
MAX_BITS = 16


def check_bits(bits) -> float:
    if (
        not isinstance(bits, numbers.Real)
        or isinstance(bits, bool)
        or not math.isfinite(bits)
        or not 0 < bits <= MAX_BITS
    ):
        raise ValueError(f"bits must be a number in (0, {MAX_BITS}]; got {bits!r}.")
    return float(bits)


def _search(good, low: int, high: int) -> int:
    """The smallest eighth in [low, high] where ``good`` holds (it holds at ``high``),
    ``good`` assumed monotone."""
    while low < high:
        mid = (low + high) // 2
        if good(mid):
            high = mid
        else:
            low = mid + 1
    return high


def coded(estimator, bits: float, X, y, refine: int):
    """``(model, steps)``: what a stream at ``bits`` holds (refined ``refine`` steps
    on (X, y) first when asked), and each tensor's step, set by ``bits`` on the
    fitted weights (the model's own weights are on those grids already)."""
    if refine:
        return refined(estimator, bits, X, y, refine)
    steps = {name: step for name, (_, step) in quantised(estimator.module_, bits).items()}
    return quantised_copy(estimator, bits), steps


def bits_for_psnr(estimator, target, X, y, refine: int = 0) -> float:
    """The fewest bits whose quantised (and refined) model scores ``target`` dB on
    (X, y)."""
    if X is None or y is None:
        raise ValueError("psnr= needs the signal it is measured on: pass X and y.")
    if not isinstance(target, numbers.Real) or not math.isfinite(target):
        raise ValueError(f"psnr must be a finite number of dB; got {target!r}.")
    reached = estimator.score(X, y)
    if reached < target:
        raise ValueError(
            f"the fitted model scores {reached:.2f} dB on (X, y); no stream of it reaches "
            f"psnr={target}. Ask for less, or fit longer."
        )
    low, high = _EIGHTHS

    def reaches(eighths: int) -> bool:
        return coded(estimator, eighths / 8, X, y, refine)[0].score(X, y) >= target

    if not reaches(high):
        raise ValueError(
            f"psnr={target} dB is within the last hundredths of the fitted model's "
            f"{reached:.2f} dB: even 16 bits per weight lose more. Ask for less."
        )
    return _search(reaches, low, high) / 8


def bits_for_size(estimator, size) -> float:
    """The most bits whose stream is at most ``size`` bytes."""
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive number of bytes; got {size!r}.")
    low, high = _EIGHTHS
    smallest = len(model_stream(estimator, low / 8))
    if smallest > size:
        raise ValueError(
            f"size={size} bytes cannot be met: this model's smallest stream is {smallest} "
            "bytes (its header, its lossless tensors and one symbol per weight)."
        )
    # The most bits that fit is one less than the fewest that do not.
    if len(model_stream(estimator, high / 8)) <= size:
        return high / 8
    return (_search(lambda k: len(model_stream(estimator, k / 8)) > size, low, high) - 1) / 8
