"""LatentCodec's stream: its header, its quantised weights, its latents in wavefronts."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..nn.layers import Linear
from ._bytes import CODEC_VERSION, LATENT_KIND, Reader, Writer, refuse, seal
from ._entropy import (
    MAX_SCALE_LOG2,
    MIN_SCALE_LOG2,
    SCALE_LOG2_STEPS,
    LaplaceStream,
    laplace_scale,
)
from ._latent_net import MAX_SCALE_LOG2 as ARM_MAX
from ._latent_net import MIN_SCALE_LOG2 as ARM_MIN
from ._latent_net import (
    LatentCodecNet,
    along_axes,
    causal_offsets,
    lattice_shapes,
    parent_matrices,
)

__all__ = ["read_latent", "write_latent"]

_ORDERS = ("cubic", "linear")
_GROUPS = ("synthesis.weight", "synthesis.bias", "arm.weight", "arm.bias")
# Bounds a stream's header is held to (the estimator's own constraints, and symbols a
# float32 weight or latent can hold exactly).
_MAX_SIDE, _MAX_SYMBOL = 1 << 16, 1 << 22


def _arm_layers(module) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (m.weight.detach().double().cpu().numpy().T, m.bias.detach().double().cpu().numpy())
        for m in module.arm
        if isinstance(m, Linear)
    ]


def _laplace_rows(layers, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = contexts
    for k, (weight, bias) in enumerate(layers):
        h = h @ weight + bias
        if k < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h[:, 0], np.exp2(np.clip(h[:, 1], ARM_MIN, ARM_MAX))


def _code_latents(module, stream: LaplaceStream, low: int, high: int, symbols=None):
    """Encode ``symbols`` (one int array per level) or decode them, coarsest level
    first, each level in wavefronts; the entropy model runs in float64 on exactly the
    rows the other side sees."""
    shapes, layers = module.shapes, _arm_layers(module)
    n_dims = len(shapes[0])
    weights = 2 ** np.arange(n_dims - 1, -1, -1)
    out: list[np.ndarray | None] = [None] * len(shapes)
    for level in reversed(range(len(shapes))):
        shape = shapes[level]
        padded_shape = tuple(n + 3 for n in shape)
        padded = np.zeros(padded_shape)
        if level + 1 < len(shapes):
            parent = along_axes(out[level + 1].astype(np.float64), parent_matrices(shapes, level))
        else:
            parent = np.zeros(shape)
        parent = parent.reshape(-1)
        nodes = np.indices(shape).reshape(n_dims, -1).T
        base = np.ravel_multi_index(tuple((nodes + 2).T), padded_shape)
        deltas = [
            int(np.ravel_multi_index(tuple(np.array(o) + 2), padded_shape))
            - int(np.ravel_multi_index((2,) * n_dims, padded_shape))
            for o in causal_offsets(n_dims)
        ]
        wave = nodes @ weights
        order = np.argsort(wave, kind="stable")
        bounds = np.searchsorted(wave[order], np.arange(int(wave.max()) + 2))
        flat = padded.reshape(-1)
        given = None if symbols is None else symbols[level].reshape(-1)
        for w in range(len(bounds) - 1):
            rows = order[bounds[w] : bounds[w + 1]]
            if not len(rows):
                continue
            at = base[rows]
            contexts = np.stack([flat[at + d] for d in deltas] + [parent[rows]], -1)
            mean, scale = _laplace_rows(layers, contexts)
            if given is None:
                values = stream.decode(len(rows), mean, scale, low, high)
            else:
                values = given[rows]
                stream.encode(values, mean, scale, low, high)
            flat[at] = values
        out[level] = padded[tuple(slice(2, 2 + n) for n in shape)].astype(np.int64)
    return out


def _weight_tensors(module):
    """(name, parameter, group) of the synthesis and entropy-model weights, in order."""
    for name, p in module.named_parameters():
        net = name.split(".")[0]
        if net in ("synthesis", "arm"):
            yield name, p, f"{net}.{name.rsplit('.', 1)[-1]}"


def write_latent(estimator) -> bytes:
    """The body of a LatentCodec stream."""
    module = estimator.module_
    w = Writer()
    samples = estimator.lattice_shapes_[0]
    w.uint(len(samples))
    for n in samples:
        w.uint(n)
    for value in (estimator.n_levels, estimator.width, estimator.depth, estimator.arm_width):
        w.uint(value)
    w.uint(_ORDERS.index(estimator.interpolation_))
    w.uint(estimator.n_outputs_)
    w.uint(estimator.y_ndim_)
    for box in (estimator.domain_, estimator.footprint_):
        for value in np.asarray(box, dtype=np.float64).reshape(-1):
            w.float32(value)
    for value in (estimator.y_offset_, estimator.y_scale_, estimator.data_range_):
        w.float32(value)
    for group in _GROUPS:
        w.int(estimator.weight_steps_[group])
    stream = LaplaceStream()
    for _, p, group in _weight_tensors(module):
        symbols = np.rint(p.detach().double().cpu().numpy() / 2.0 ** estimator.weight_steps_[group])
        symbols = symbols.astype(np.int64)
        index = round(math.log2(laplace_scale(symbols)) * SCALE_LOG2_STEPS)
        low, high = int(symbols.min()), int(symbols.max())
        for value in (index, low, high):
            w.int(value)
        stream.encode(symbols, 0.0, 2.0 ** (index / SCALE_LOG2_STEPS), low, high)
    latents = [z.detach().cpu().numpy().astype(np.int64) for z in module.latents]
    low = min(int(z.min()) for z in latents)
    high = max(int(z.max()) for z in latents)
    w.int(low)
    w.int(high)
    _code_latents(module, stream, low, high, latents)
    w.words(stream.words())
    return w.getvalue()


def latent_stream(estimator) -> bytes:
    """The whole stream of a fitted LatentCodec: sealed header and body."""
    return seal(CODEC_VERSION, LATENT_KIND, write_latent(estimator))


def read_latent(body: bytes, max_samples: int, LatentCodec):
    """A fitted ``LatentCodec`` (the class, passed in: it imports this module) from a
    stream's body; every size checked before use."""

    r = Reader(body)
    n_dims = r.uint("n_dims", 8, 1)
    samples = tuple(r.uint("samples", _MAX_SIDE, 2) for _ in range(n_dims))
    if math.prod(samples) > max_samples:
        refuse(
            f"it declares {math.prod(samples):,} samples; decode reads at most "
            f"{max_samples:,} (max_samples)"
        )
    n_levels = r.uint("n_levels", 16, 1)
    width = r.uint("width", 1024, 1)
    depth = r.uint("depth", 16, 1)
    arm_width = r.uint("arm_width", 256, 1)
    order = _ORDERS[r.uint("interpolation", len(_ORDERS) - 1)]
    if order == "cubic" and n_dims > 3:
        refuse(f"cubic interpolation of {n_dims}-D lattices")
    n_outputs = r.uint("n_outputs", 64, 1)
    y_ndim = r.uint("y_ndim", 2, 1)
    if y_ndim == 1 and n_outputs != 1:
        refuse(f"1-D values with {n_outputs} channels")
    boxes = [np.array([r.float32("box") for _ in range(2 * n_dims)]).reshape(n_dims, 2)]
    boxes.append(np.array([r.float32("box") for _ in range(2 * n_dims)]).reshape(n_dims, 2))
    for box in boxes:
        if not (box[:, 0] < box[:, 1]).all():
            refuse("its domain is not a box of (low, high) pairs")
    y_offset, y_scale, data_range = (r.float32(name) for name in ("y_offset", "y_scale", "range"))
    if not (y_scale > 0 and data_range > 0):
        refuse("its value scale is not positive")
    steps = {group: r.int("step exponent", -40, 10) for group in _GROUPS}
    estimator = LatentCodec(
        n_levels=n_levels, width=width, depth=depth, arm_width=arm_width, interpolation=order
    )
    shapes = lattice_shapes(samples, n_levels)
    with torch.device("cpu"):
        module = LatentCodecNet(
            shapes, n_outputs, width=width, depth=depth, arm_width=arm_width, order=order
        )
    stream_fields = []
    for _, p, group in _weight_tensors(module):
        index = r.int(
            "weight scale",
            int(MIN_SCALE_LOG2 * SCALE_LOG2_STEPS) - 1,
            int(MAX_SCALE_LOG2 * SCALE_LOG2_STEPS) + 1,
        )
        low = r.int("weight low", -_MAX_SYMBOL, _MAX_SYMBOL)
        high = r.int("weight high", low, _MAX_SYMBOL)
        stream_fields.append((p, steps[group], index, low, high))
    low = r.int("latent low", -_MAX_SYMBOL, _MAX_SYMBOL)
    high = r.int("latent high", low, _MAX_SYMBOL)
    words = r.words("payload")
    r.end()
    stream = LaplaceStream(words)
    try:
        with torch.no_grad():
            for p, exponent, index, lo, hi in stream_fields:
                symbols = stream.decode(p.numel(), 0.0, 2.0 ** (index / SCALE_LOG2_STEPS), lo, hi)
                p.copy_(torch.from_numpy(symbols.astype(np.float64) * 2.0**exponent).view_as(p))
            latents = _code_latents(module, stream, low, high)
            for z, values in zip(module.latents, latents, strict=True):
                z.copy_(torch.from_numpy(values.astype(np.float32)))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # constriction's panics are BaseExceptions
        refuse(f"its payload cannot be decoded ({type(error).__name__})")
    fitted = {
        "module_": module.eval(),
        "lattice_shapes_": shapes,
        "interpolation_": order,
        "weight_steps_": steps,
        "n_features_in_": n_dims,
        "n_outputs_": n_outputs,
        "y_ndim_": y_ndim,
        "domain_": boxes[0],
        "footprint_": boxes[1],
        "y_offset_": y_offset,
        "y_scale_": y_scale,
        "data_range_": data_range,
        "device_": "cpu",
        "compiled_": False,
        "operator_": None,
        "grid_shape_": samples,
        "n_params_": sum(p.numel() for p in module.parameters()),
        "loss_curve_": [],
        "best_loss_": math.inf,
        "n_iter_": 0,
        "history_": {},
        "stopped_early_": False,
        "fit_time_": 0.0,
        "validation_scores_": None,
        "best_validation_score_": None,
        "stream_bytes_": None,
        "bits_per_sample_": None,
    }
    for name, value in fitted.items():
        setattr(estimator, name, value)
    return estimator
