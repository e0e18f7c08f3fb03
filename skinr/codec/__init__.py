"""Compression: fitted estimators as byte streams, and an estimator trained for its rate.

- :class:`LatentCodec`: latent lattices with a learned entropy model and a small
  synthesis MLP, trained on distortion + λ x rate (the Cool-chic / C3 family).
- :func:`encode` / :func:`decode`: a fitted model to bytes and back, range-coded with
  constriction. A stream is a version, a bounded header and a payload under a CRC-32:
  a truncated, altered or oversized stream is one ``ValueError`` before anything it
  claims is allocated.

Measured rate-distortion, against JPEG, JPEG 2000, WebP, AVIF and JPEG XL:
``benchmarks/codec.py`` and ``docs/benchmarks/codec.md``.
"""

from __future__ import annotations

import math

from ._bytes import CODEC_VERSION, LATENT_KIND, StreamError, unseal
from .latent import LatentCodec

__all__ = ["CODEC_VERSION", "LatentCodec", "StreamError", "decode", "encode"]

# Samples a stream may declare unless the caller allows more (a 4096 x 4096 image).
MAX_SAMPLES = 1 << 24


def encode(estimator) -> bytes:
    """A fitted :class:`LatentCodec` as a byte stream.

    Parameters
    ----------
    estimator : LatentCodec
        A fitted model (its weights are already quantised: the stream holds exactly
        the model, and decodes to the same predictions).

    Returns
    -------
    bytes
        The stream; ``len(encode(model)) == model.stream_bytes_``.
    """
    from sklearn.utils.validation import check_is_fitted

    from ._latent_stream import latent_stream

    if not isinstance(estimator, LatentCodec):
        raise TypeError(f"encode takes a fitted LatentCodec; got {type(estimator).__name__}.")
    check_is_fitted(estimator, "weight_steps_")
    return latent_stream(estimator)


def decode(data: bytes, *, max_samples: int = MAX_SAMPLES):
    """The fitted estimator a stream from :func:`encode` holds.

    Parameters
    ----------
    data : bytes
        The stream.
    max_samples : int, default=2**24
        The most samples (pixels) a stream may declare; a larger claim is refused
        before anything is allocated.

    Returns
    -------
    LatentCodec
        A fitted model on the CPU: ``predict``, ``render`` and ``score`` as after fit.

    Raises
    ------
    StreamError
        A ``ValueError``: the stream is truncated, altered, from a newer skinr, or
        declares more than ``max_samples`` samples.
    """
    from ._bytes import refuse
    from ._latent_stream import read_latent

    _, kind, body = unseal(data, CODEC_VERSION)
    if kind != LATENT_KIND:
        refuse(f"unknown stream kind {kind}")
    estimator = read_latent(body, max_samples, LatentCodec)
    estimator.stream_bytes_ = len(data)
    estimator.bits_per_sample_ = 8 * len(data) / math.prod(estimator.grid_shape_)
    return estimator
