"""Entropy coding of integer symbols under quantised Laplace models, with constriction.

The range coder is constriction's (``constriction.stream.queue``): skinr writes no
arithmetic coder of its own. Every model parameter that reaches the coder is first
snapped to a coarse grid (:func:`snap_laplace`), so that an encoder and a decoder
that compute the same network in slightly different floating-point order still hand
the coder identical parameters.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LaplaceStream", "laplace_bits", "laplace_scale", "snap_laplace"]

# Scales the coder sees, as powers of two on a grid of 1/16: a finer grid buys nothing
# measurable (the rate of a Laplace changes by < 0.1 % between neighbours).
SCALE_LOG2_STEPS = 16
MIN_SCALE_LOG2, MAX_SCALE_LOG2 = -5.0, 14.0
MEAN_STEPS = 64


def _coder():
    try:
        import constriction
    except ImportError as exc:  # pragma: no cover - the extra's own message
        raise ImportError(
            "skinr.codec writes its streams with constriction's range coder; install it "
            "with pip install 'skinr[codec]'."
        ) from exc
    return constriction


def snap_laplace(mean, scale) -> tuple[np.ndarray, np.ndarray]:
    """Means on a grid of 1/64 and scales on a grid of 2**(1/16), as float64 arrays."""
    mean = np.round(np.asarray(mean, dtype=np.float64) * MEAN_STEPS) / MEAN_STEPS
    log2 = np.log2(np.maximum(np.asarray(scale, dtype=np.float64), 2.0**MIN_SCALE_LOG2))
    log2 = np.clip(
        np.round(log2 * SCALE_LOG2_STEPS) / SCALE_LOG2_STEPS, MIN_SCALE_LOG2, MAX_SCALE_LOG2
    )
    return mean, np.exp2(log2)


def laplace_bits(symbols: np.ndarray, mean, scale) -> float:
    """Ideal code length in bits of integer ``symbols`` under quantised Laplaces."""
    symbols = np.asarray(symbols, dtype=np.float64)

    def cdf(v):
        d = v - mean
        return 0.5 - 0.5 * np.sign(d) * np.expm1(-np.abs(d) / scale)

    p = np.maximum(cdf(symbols + 0.5) - cdf(symbols - 0.5), 2.0**-24)
    return float(-np.log2(p).sum())


class LaplaceStream:
    """One range-coded stream of integer symbols, each under a quantised Laplace.

    Each call names the symbols' range ``[low, high]`` (the stream's header carries
    the bounds). Encoding and decoding run in the same order (a queue).
    """

    def __init__(self, words: np.ndarray | None = None) -> None:
        self._constriction = constriction = _coder()
        self._models: dict[tuple[int, int], object] = {}
        if words is None:
            self.coder = constriction.stream.queue.RangeEncoder()
        else:
            self.coder = constriction.stream.queue.RangeDecoder(words)

    def _model(self, low: int, high: int):
        key = (int(low), int(high))
        if key not in self._models:
            self._models[key] = self._constriction.stream.model.QuantizedLaplace(*key)
        return self._models[key]

    def encode(self, symbols: np.ndarray, mean, scale, low: int, high: int) -> None:
        symbols = np.asarray(symbols, dtype=np.int32).reshape(-1)
        if not symbols.size or low == high:
            return  # a one-symbol range holds no information (and constriction needs two)
        mean, scale = snap_laplace(
            np.broadcast_to(mean, symbols.shape), np.broadcast_to(scale, symbols.shape)
        )
        self.coder.encode(symbols, self._model(low, high), mean, scale)

    def decode(self, count: int, mean, scale, low: int, high: int) -> np.ndarray:
        if not count or low == high:
            return np.full(int(count), low, dtype=np.int32)
        shape = (int(count),)
        mean, scale = snap_laplace(np.broadcast_to(mean, shape), np.broadcast_to(scale, shape))
        return np.asarray(self.coder.decode(self._model(low, high), mean, scale), dtype=np.int32)

    def encode_table(self, symbols: np.ndarray, counts: np.ndarray) -> None:
        """``symbols`` in ``[0, len(counts))`` under the histogram ``counts``."""
        if len(counts) > 1:
            self.coder.encode(np.asarray(symbols, dtype=np.int32).reshape(-1), self._table(counts))

    def decode_table(self, count: int, counts: np.ndarray) -> np.ndarray:
        if len(counts) == 1:
            return np.zeros(int(count), dtype=np.int32)
        return np.asarray(self.coder.decode(self._table(counts), int(count)), dtype=np.int32)

    def _table(self, counts: np.ndarray):
        # Integer counts as float64: both sides hand constriction identical numbers.
        probabilities = np.asarray(counts, dtype=np.float64)
        return self._constriction.stream.model.Categorical(probabilities, perfect=False)

    def words(self) -> np.ndarray:
        """The compressed words (uint32) of an encoder."""
        return np.asarray(self.coder.get_compressed(), dtype=np.uint32)


def laplace_scale(symbols: np.ndarray) -> float:
    """The maximum-likelihood Laplace scale of integer symbols (mean 0), at least 0.05."""
    return max(float(np.abs(symbols).mean()) if symbols.size else 0.0, 0.05)
