"""Compression: fitted estimators as byte streams, and an estimator trained for its rate.

- :class:`LatentCodec`: latent lattices with a learned entropy model and a small
  synthesis MLP, trained on distortion + λ x rate (the Cool-chic / C3 family).
- :func:`encode` / :func:`decode`: any fitted model to bytes and back (a LatentCodec
  as fitted, any other estimator with its weights quantised after the fit),
  range-coded with constriction. A stream is a version, a bounded header and a
  payload under a CRC-32: a truncated, altered or oversized stream is one
  ``ValueError`` before anything it claims is allocated.

Measured rate-distortion, against JPEG, JPEG 2000, WebP, AVIF and JPEG XL:
``benchmarks/codec.py`` and ``docs/benchmarks/codec.md``.
"""

from __future__ import annotations

import math

from ._bytes import CODEC_VERSION, LATENT_KIND, MODEL_KIND, StreamError, unseal
from .latent import LatentCodec

__all__ = ["CODEC_VERSION", "LatentCodec", "StreamError", "decode", "encode"]

# Samples a stream may declare unless the caller allows more (a 4096 x 4096 image).
MAX_SAMPLES = 1 << 24
# Values a model stream's tensors may declare unless the caller allows more (256 MB
# of float32 weights).
MAX_WEIGHTS = 1 << 26
# Bits per weight when encode is given no target.
DEFAULT_BITS = 12.0


def encode(
    estimator,
    *,
    bits: float | None = None,
    psnr: float | None = None,
    size: int | None = None,
    X=None,
    y=None,
    refine: int = 0,
) -> bytes:
    """A fitted estimator as a byte stream.

    A :class:`LatentCodec` is written as it was fitted (its weights and latents were
    quantised during the fit; ``rate_weight`` sets its rate). Any other skinr estimator
    is written with its parameters quantised after the fit: each tensor on a uniform
    grid whose step is ``sqrt(12) * std / 2**bits``, range-coded under a Laplace or
    its own histogram, whichever is smaller. Give at most one of ``bits``, ``psnr``
    and ``size``.

    Parameters
    ----------
    estimator : skinr estimator
        A fitted model.
    bits : float in (0, 16], default=12
        Bits per weight were a tensor uniformly spread: more keeps more of the fitted
        model's PSNR and costs more bytes. The default keeps the fits of the benchmark
        photos within a few tenths of a dB; a SIREN is the most sensitive. Rates
        against PSNR per estimator: ``docs/benchmarks/model_codec.md``.
    psnr : float, optional
        The fewest bits (in steps of 1/8) whose decoded model scores at least this
        PSNR (dB) on ``(X, y)``; refused before any coding when the fitted model
        itself scores less.
    size : int, optional
        The most bits (in steps of 1/8) whose stream is at most ``size`` bytes;
        refused when even the smallest stream is larger.
    X, y : array-like, optional
        The signal ``psnr`` is measured on and ``refine`` trains on (the coordinates
        and values of the fit).
    refine : int, default=0
        Steps of quantisation-aware refinement before coding (Strümpler et al., ECCV
        2022): a copy of the model trains on ``(X, y)`` with its weights quantised in
        the forward pass (Adam at 0.3x the estimator's learning rate, straight-through
        gradients) and ends on the grid, recovering much of what quantising cost at a
        given ``bits``. With ``psnr``, every candidate is refined (a search of about 8
        refinements). Not for a model fitted through an operator.

    Returns
    -------
    bytes
        The stream. ``decode`` returns a model that predicts what ``encode``'s
        quantised weights predict.
    """
    from sklearn.utils.validation import check_is_fitted

    from ..base import BaseINR
    from ._latent_stream import latent_stream
    from ._model_stream import model_stream
    from ._rate import bits_for_psnr, bits_for_size, check_bits, coded
    from ._refine import check_refine

    given = [name for name, v in (("bits", bits), ("psnr", psnr), ("size", size)) if v is not None]
    if isinstance(estimator, LatentCodec):
        if given:
            raise ValueError(
                f"a LatentCodec is written as fitted; {given[0]}= applies to other "
                "estimators (a LatentCodec's rate is its rate_weight)."
            )
        check_is_fitted(estimator, "weight_steps_")
        return latent_stream(estimator)
    if not isinstance(estimator, BaseINR):
        raise TypeError(f"encode takes a fitted skinr estimator; got {type(estimator).__name__}.")
    check_is_fitted(estimator)
    if len(given) > 1:
        raise ValueError(f"give at most one of bits, psnr and size; got {' and '.join(given)}.")
    refine = check_refine(estimator, refine, X, y)
    if psnr is not None:
        bits = bits_for_psnr(estimator, psnr, X, y, refine)
    elif size is not None:
        bits = bits_for_size(estimator, size)
    else:
        bits = check_bits(DEFAULT_BITS if bits is None else bits)
    model, steps = coded(estimator, bits, X, y, refine)
    stream = model_stream(model, bits, steps)
    # A refined model's symbols spread a little differently: step down until it fits.
    while size is not None and len(stream) > size and bits > 1 / 8:
        bits -= 1 / 8
        model, steps = coded(estimator, bits, X, y, refine)
        stream = model_stream(model, bits, steps)
    return stream


def decode(data: bytes, *, max_samples: int = MAX_SAMPLES, max_weights: int = MAX_WEIGHTS):
    """The fitted estimator a stream from :func:`encode` holds.

    Parameters
    ----------
    data : bytes
        The stream.
    max_samples : int, default=2**24
        The most samples (pixels) a LatentCodec stream may declare; a larger claim is
        refused before anything is allocated.
    max_weights : int, default=2**26
        The most values the tensors of any other estimator's stream may declare, all
        together; a larger claim is refused before anything is allocated.

    Returns
    -------
    estimator
        A fitted model on the CPU: ``predict``, ``render`` and ``score`` as after fit
        (an estimator other than LatentCodec with its quantised weights; its training
        records, such as ``loss_curve_``, are not in the stream).

    Raises
    ------
    StreamError
        A ``ValueError``: the stream is truncated, altered, from a newer skinr, or
        declares more than ``max_samples`` samples or ``max_weights`` values.
    """
    from ._bytes import refuse
    from ._latent_stream import read_latent
    from ._model_stream import read_model

    version, kind, body = unseal(data, CODEC_VERSION)
    if kind == MODEL_KIND and version < 2:
        refuse(f"a version-{version} stream cannot hold a model (kind {kind})")
    if kind == MODEL_KIND:
        return read_model(body, max_weights, "cpu")
    if kind != LATENT_KIND:
        refuse(f"unknown stream kind {kind}")
    estimator = read_latent(body, max_samples, LatentCodec)
    estimator.stream_bytes_ = len(data)
    estimator.bits_per_sample_ = 8 * len(data) / math.prod(estimator.grid_shape_)
    return estimator
