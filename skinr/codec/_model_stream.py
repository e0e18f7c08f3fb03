"""Any fitted estimator as a stream: its model file's header, its weights quantised and
range-coded.

A model file (:mod:`skinr.persistence`) holds a JSON header and tensors; a stream holds
the same header (zlib-compressed, training records left out) and the same tensors,
each parameter of the module quantised on a uniform grid of its own step and coded
under the cheaper of two models (a Laplace, or the tensor's own histogram). Fitted
arrays (masks, boxes) and buffers travel losslessly. Decoding rebuilds the tensors and
hands them to the model loader, so a stream passes every check a model file does.
"""

from __future__ import annotations

import copy
import json
import math
import zlib

import numpy as np
import torch

from .. import persistence
from ._bytes import CODEC_VERSION, MODEL_KIND, Reader, StreamError, Writer, refuse, seal
from ._entropy import LaplaceStream, laplace_bits

__all__ = ["model_stream", "quantised", "quantised_copy", "read_model"]

# Fitted attributes that record the training, not the model: a stream leaves them out.
_TRAINING_RECORDS = (
    "loss_curve_",
    "history_",
    "fit_time_",
    "best_loss_",
    "n_iter_",
    "stopped_early_",
    "validation_scores_",
    "best_validation_score_",
)
# The dtypes a tensor may have, by code (safetensors' names, which the loader checks).
_DTYPES = (
    ("F32", torch.float32),
    ("F64", torch.float64),
    ("F16", torch.float16),
    ("I64", torch.int64),
    ("I32", torch.int32),
    ("I16", torch.int16),
    ("I8", torch.int8),
    ("U8", torch.uint8),
    ("BOOL", torch.bool),
)
_LOSSLESS, _LAPLACE, _TABLE = 0, 1, 2
# A histogram is stored for at most this many symbols; wider tensors take the Laplace.
_MAX_TABLE = 4096
_MAX_SYMBOL, _MAX_NDIM, _MAX_HEADER = 1 << 24, 8, 1 << 20
# The most symbols one tensor's range may span (constriction's coder works to 24 bits
# of probability; a span needs room below that for every symbol's probability).
_MAX_SPAN = 1 << 22
# Words zlib may refer back to in every header: a stream of a small model spends a few
# hundred bytes on its header, and half of them on names every header repeats. Part of
# the stream format: never edit it without a new CODEC_VERSION.
_HEADER_WORDS = (
    b'{"format": "skinr-model", "format_version": 4, "class": "SIREN", "params": '
    b'{"batch_size": null, "checkpoint_every": 100, "checkpoint_path": null, '
    b'"data_range": null, "depth": 3, "device": "auto", "domain": null, '
    b'"early_stopping": false, "first_omega_0": "auto", "hidden_omega_0": "auto", '
    b'"learning_rate": 0.0003, "lr_schedule": null, "max_iter": 300, "max_time": null, '
    b'"n_iter_no_change": null, "operator": null, "precision": "float32", '
    b'"predict_batch_size": 65536, "random_state": null, "tol": 0.0, '
    b'"torch_compile": "auto", "validation_fraction": 0.1, "validation_interval": 10, '
    b'"verbose": false, "warm_start": false, "width": 256, "base_resolution": 16, '
    b'"features_per_level": 2, "finest_resolution": "auto", "log2_table_size": 19, '
    b'"n_levels": 16, "resolution": "auto", "interpolation": "linear"}, "fitted": '
    b'{"n_features_in_": 2, "device_": "cpu", "compiled_": false, "y_offset_": 0.0, '
    b'"y_scale_": 1.0, "data_range_": 1.0, "y_ndim_": 1, "n_outputs_": 1, '
    b'"n_params_": 0, "operator_": null, "grid_shape_": {"__tuple__": [256, 256]}}}'
)


def _step(values: np.ndarray, bits: float) -> float:
    """A tensor's quantisation step: ``bits`` bits per weight were it uniform (the
    step is its standard deviation's sqrt(12) / 2**bits), so every tensor keeps the
    same share of its own spread whatever its scale."""
    spread = float(values.std())
    if spread > 0:
        return math.sqrt(12.0) * spread / 2.0**bits
    return float(np.abs(values).max()) or 1.0  # a constant tensor: one symbol


def quantised(
    module: torch.nn.Module, bits: float, steps: dict | None = None
) -> dict[str, tuple[np.ndarray, float]]:
    """Floating parameters as (integer symbols, step), by state-dict key; ``steps``
    fixes each tensor's step (a refined model keeps the steps of the fit it started
    from), else ``bits`` sets it."""
    out = {}
    for name, p in module.named_parameters():
        if not p.is_floating_point() or not p.numel():
            continue
        values = p.detach().cpu().double().numpy()
        step = float(np.float32(steps[name] if steps else _step(values, bits)))
        symbols = np.rint(values / step)
        if symbols.max() - symbols.min() >= _MAX_SPAN:
            raise ValueError(
                f"bits={bits} spreads {name} over {symbols.max() - symbols.min():.3g} "
                f"levels; the range coder takes fewer than {_MAX_SPAN:,}: ask for fewer bits."
            )
        out[name] = (symbols.astype(np.int64), step)
    return out


def quantised_copy(estimator, bits: float):
    """A shallow copy of ``estimator`` whose module holds its weights as ``bits``
    quantises them: what the stream decodes to, without coding it."""
    module = copy.deepcopy(estimator.module_)
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, (symbols, step) in quantised(estimator.module_, bits).items():
            params[name].copy_(torch.from_numpy(symbols * step).view_as(params[name]))
    out = copy.copy(estimator)
    out.module_ = module
    return out


def _table_bits(symbols: np.ndarray, low: int, high: int) -> tuple[float, np.ndarray | None]:
    """Bits of ``symbols`` under their own histogram, the histogram's varints included."""
    if high - low + 1 > _MAX_TABLE:
        return math.inf, None
    counts = np.bincount(symbols - low, minlength=high - low + 1)
    used = counts[counts > 0]
    coded = float(-(used * np.log2(used / symbols.size)).sum())
    varint_bytes = sum(max(1, math.ceil(int(c).bit_length() / 7)) for c in counts)
    return coded + 8 * varint_bytes, counts


def write_model(estimator, bits: float, steps: dict | None = None) -> bytes:
    """The body of a model stream."""
    header, tensors = persistence.contents(estimator)
    for name in _TRAINING_RECORDS:
        header["fitted"].pop(name, None)
    w = Writer()
    compressor = zlib.compressobj(9, zdict=_HEADER_WORDS)
    w.raw(compressor.compress(json.dumps(header).encode()) + compressor.flush())
    symbols_of = quantised(estimator.module_, bits, steps)
    codes = {dtype: k for k, (_, dtype) in enumerate(_DTYPES)}
    stream = LaplaceStream()
    w.uint(len(tensors))
    for key, tensor in tensors.items():
        w.raw(key.encode())
        if tensor.dtype not in codes:
            raise TypeError(f"{key} is a {tensor.dtype} tensor, which a stream does not hold")
        w.uint(codes[tensor.dtype])
        w.uint(tensor.dim())
        for n in tensor.shape:
            w.uint(n)
        name = key[len(persistence.STATE) :] if key.startswith(persistence.STATE) else None
        if name not in symbols_of:
            w.uint(_LOSSLESS)
            w.raw(zlib.compress(tensor.contiguous().numpy().tobytes(), 9))
            continue
        symbols, step = symbols_of[name]
        symbols = symbols.reshape(-1)
        low, high = int(symbols.min()), int(symbols.max())
        median = float(np.median(symbols))
        scale = max(float(np.abs(symbols - median).mean()), 0.05)
        table_bits, counts = _table_bits(symbols, low, high)
        if table_bits < laplace_bits(symbols, median, scale):
            w.uint(_TABLE)
            w.float32(step)
            w.int(low)
            w.uint(high - low)
            for c in counts:
                w.uint(c)
            stream.encode_table(symbols - low, counts)
        else:
            w.uint(_LAPLACE)
            w.float32(step)
            w.int(low)
            w.uint(high - low)
            w.float32(median)
            w.float32(scale)
            stream.encode(symbols, median, scale, low, high)
    w.words(stream.words())
    return w.getvalue()


def model_stream(estimator, bits: float, steps: dict | None = None) -> bytes:
    """The whole stream of any fitted estimator but a LatentCodec."""
    return seal(CODEC_VERSION, MODEL_KIND, write_model(estimator, bits, steps))


class _StreamView:
    """A stream's tensors as the model loader reads a file's: names, dtypes and shapes
    at once; the lossless ones decompressed when asked, the coded ones decoded all
    together (one range coder, in order) at the first request for any of them."""

    def __init__(self, entries: dict, words: np.ndarray) -> None:
        self.entries, self.words, self.decoded = entries, words, {}

    def keys(self):
        return self.entries.keys()

    def shape(self, key: str) -> tuple[int, ...]:
        return self.entries[key]["shape"]

    def dtype(self, key: str) -> str:
        return _DTYPES[self.entries[key]["dtype"]][0]

    def get_tensor(self, key: str) -> torch.Tensor:
        entry = self.entries[key]
        if entry["coding"] == _LOSSLESS:
            return self._lossless(key, entry)
        if not self.decoded:
            self._decode_coded()
        return self.decoded[key]

    def _lossless(self, key, entry) -> torch.Tensor:
        dtype = _DTYPES[entry["dtype"]][1]
        size = math.prod(entry["shape"]) * torch.empty((), dtype=dtype).element_size()
        if not size:
            return torch.empty(entry["shape"], dtype=dtype)
        inflate = zlib.decompressobj()
        try:
            data = inflate.decompress(entry["data"], size + 1)
        except zlib.error:
            refuse(f"the tensor {key!r} cannot be decompressed")
        if len(data) != size or not inflate.eof:
            refuse(f"the tensor {key!r} does not hold its shape's {size} bytes")
        return torch.frombuffer(bytearray(data), dtype=dtype).reshape(entry["shape"]).clone()

    def _decode_coded(self) -> None:
        stream = LaplaceStream(self.words)
        try:
            for key, entry in self.entries.items():
                if entry["coding"] == _LOSSLESS:
                    continue
                count, low = math.prod(entry["shape"]), entry["low"]
                if entry["coding"] == _TABLE:
                    symbols = stream.decode_table(count, entry["counts"]) + low
                else:
                    high = low + entry["span"]
                    symbols = stream.decode(count, entry["median"], entry["scale"], low, high)
                values = symbols.astype(np.float64) * entry["step"]
                dtype = _DTYPES[entry["dtype"]][1]
                self.decoded[key] = torch.from_numpy(values).to(dtype).reshape(entry["shape"])
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # constriction's panics are BaseExceptions
            refuse(f"its payload cannot be decoded ({type(error).__name__})")


def read_model(body: bytes, max_weights: int, device: str | None):
    """The fitted estimator a model stream's body holds; the tensors' sizes are checked
    against ``max_weights`` as they are read, before any is allocated, and then against
    the structure the header declares."""
    r = Reader(body)
    inflate = zlib.decompressobj(zdict=_HEADER_WORDS)
    try:
        text = inflate.decompress(r.raw("header", _MAX_HEADER), _MAX_HEADER)
    except zlib.error:
        refuse("its header cannot be decompressed")
    if not inflate.eof:
        refuse(f"its header is longer than {_MAX_HEADER} bytes")
    try:
        header = json.loads(text)
    except (ValueError, RecursionError, UnicodeDecodeError):
        refuse("its header is not readable JSON")
    entries, total = {}, 0
    for _ in range(r.uint("tensors", 4096)):
        try:
            key = r.raw("tensor name", 256).decode()
        except UnicodeDecodeError:
            refuse("a tensor's name is not text")
        if key in entries:
            refuse(f"the tensor {key!r} appears twice")
        entry = {"dtype": r.uint("dtype", len(_DTYPES) - 1)}
        ndim = r.uint("ndim", _MAX_NDIM)
        entry["shape"] = tuple(r.uint("dimension", max_weights) for _ in range(ndim))
        total += math.prod(entry["shape"])
        if total > max_weights:
            refuse(
                f"its tensors hold more than {max_weights:,} values; decode reads at most "
                "that many (max_weights)"
            )
        entry["coding"] = r.uint("coding", _TABLE)
        if entry["coding"] == _LOSSLESS:
            entry["data"] = r.raw("tensor", len(body))
        else:
            if not _DTYPES[entry["dtype"]][1].is_floating_point:
                refuse(f"the integer tensor {key!r} is coded as weights")
            entry["step"] = r.float32("step")
            if not entry["step"] > 0:
                refuse(f"the tensor {key!r} has step {entry['step']}")
            entry["low"] = r.int("low", -_MAX_SYMBOL, _MAX_SYMBOL)
            entry["span"] = r.uint("span", _MAX_SPAN - 1)
            if entry["coding"] == _TABLE:
                if entry["span"] >= _MAX_TABLE:
                    refuse(f"the histogram of {key!r} has {entry['span'] + 1} symbols")
                entry["counts"] = np.array(
                    [r.uint("count", 1 << 40) for _ in range(entry["span"] + 1)], dtype=np.int64
                )
                if not entry["counts"].sum() > 0:
                    refuse(f"the histogram of {key!r} is empty")
            else:
                entry["median"] = r.float32("median")
                entry["scale"] = r.float32("scale")
                if not entry["scale"] > 0:
                    refuse(f"the tensor {key!r} has Laplace scale {entry['scale']}")
        entries[key] = entry
    words = r.words("payload")
    r.end()
    label = "the stream"
    try:
        header = persistence.check_header(label, header)
        return persistence.restore(label, header, _StreamView(entries, words), device, None, None)
    except persistence.Refused as error:
        refuse(error.reason)
    except StreamError:
        raise
    except ValueError as error:
        if "was written by format version" in str(error):
            raise StreamError(str(error).replace(repr(label), "The stream")) from None
        refuse(f"{type(error).__name__}: {error}")
    except Exception as error:  # the one error out of decode, whatever a stream provokes
        refuse(f"{type(error).__name__}: {error}")
