"""LatentCodec's network: quantised latent lattices, their entropy model, a synthesis MLP.

The design follows Cool-chic / C3 (Ladune et al. ICCV 2023, Kim et al. CVPR 2024), with
two changes that make it a coordinate network:

- each lattice is read at any point by Keys' cubic (or linear) interpolation instead
  of a learned 2x upsampling of a pixel grid, so a decoded signal renders at any
  resolution and predicts between samples;
- the synthesis is pointwise (an MLP of the interpolated latents) instead of 3x3
  convolutions over the pixel grid.

The entropy model is Cool-chic's auto-regressive one (a small MLP predicting a Laplace's
mean and scale of each latent from its causal neighbours), with the latent at the same
place in the next coarser lattice as one more input. Its causal neighbours are the
lattice offsets in {-1, 0, 1}^d that precede a point in raster order, plus -2 along
each axis; a lattice then decodes in wavefronts (``wave = sum_k 2**(d-1-k) * i_k``):
every neighbour of a point lies in an earlier wave.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch
from torch import Tensor, nn

from ..nn.encodings import ORDERS, stencil
from ..nn.flops import linear_flops
from ..nn.layers import Linear

__all__ = ["LatentCodecNet", "causal_offsets", "lattice_shapes"]

# Scales of the latents' Laplaces, as powers of two (the coder's grid, _entropy.py).
MIN_SCALE_LOG2, MAX_SCALE_LOG2 = -5.0, 14.0


def lattice_shapes(samples: tuple[int, ...], n_levels: int) -> list[tuple[int, ...]]:
    """Points per axis of each level: the samples (level 0, points on the samples of a
    full grid), then about half as many per level, at least 2, over the same box."""
    return [
        tuple(max(math.ceil((n - 1) / 2**level) + 1, 2) for n in samples)
        for level in range(n_levels)
    ]


@functools.lru_cache(maxsize=8)
def causal_offsets(n_dims: int) -> tuple[tuple[int, ...], ...]:
    """The neighbours a latent's probability is predicted from (all decoded before it)."""
    near = [o for o in itertools.product((-1, 0, 1), repeat=n_dims) if o < (0,) * n_dims]
    far = [tuple(-2 if k == axis else 0 for k in range(n_dims)) for axis in range(n_dims)]
    return tuple(near + far)


def interpolation_matrix(positions: np.ndarray, size: int, order: str) -> np.ndarray:
    """``(len(positions), size)`` weights reading a 1-D lattice at ``positions`` (in
    lattice units), float64: the same stencil as the pointwise path."""
    pos = torch.as_tensor(np.asarray(positions, dtype=np.float64))[:, None]
    indices, weights = stencil(pos, torch.tensor([size]), order)
    matrix = torch.zeros(len(positions), size, dtype=torch.float64)
    matrix.scatter_add_(1, indices[..., 0], weights)
    return matrix.numpy()


def parent_matrices(shapes, level: int) -> list[np.ndarray]:
    """Per axis, linear interpolation of level ``level + 1`` at level ``level``'s points."""
    fine, coarse = shapes[level], shapes[level + 1]
    return [
        interpolation_matrix(np.arange(n) / (n - 1) * (m - 1), m, "linear")
        for n, m in zip(fine, coarse, strict=True)
    ]


def along_axes(values, matrices):
    """Apply one matrix per axis of ``values`` (numpy or torch, same dtype)."""
    for axis, matrix in enumerate(matrices):
        if isinstance(values, Tensor):
            values = torch.movedim(torch.tensordot(matrix, values, dims=([1], [axis])), 0, axis)
        else:
            values = np.moveaxis(np.tensordot(matrix, values, axes=([1], [axis])), 0, axis)
    return values


def _mlp(sizes: list[int], generator: torch.Generator | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(Linear(n_in, n_out, generator=generator))
        if k < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class LatentCodecNet(nn.Module):
    """Latent lattices, a synthesis MLP and an auto-regressive entropy model.

    ``(n_samples, n_dims) -> (n_samples, n_outputs)``: the latents, quantised (uniform
    noise or rounding with a straight-through gradient while training, rounding
    otherwise), interpolated at the points and decoded by the synthesis.
    """

    def __init__(
        self,
        shapes: list[tuple[int, ...]],
        n_outputs: int,
        *,
        width: int,
        depth: int,
        arm_width: int,
        order: str = "cubic",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.shapes, self.order = [tuple(s) for s in shapes], order
        self.n_dims = len(self.shapes[0])
        self.latents = nn.ParameterList(torch.zeros(shape) for shape in self.shapes)
        self.synthesis = _mlp([len(shapes), *[width] * depth, n_outputs], generator)
        self.n_context = len(causal_offsets(self.n_dims)) + 1
        self.arm = _mlp([self.n_context, arm_width, arm_width, 2], generator)
        # Steps trained, kept with the weights so that a resumed or warm-started fit
        # draws the same noise and switches to rounding at the same step.
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        # Training-time state, not weights: how latents are quantised, the noise's
        # seed, and the draw the current step's prediction and rate share.
        self.quantizer, self.seed, self._drawn = "noise", 0, None
        self._grid_cache: dict = {}

    def __getstate__(self):
        # A copy or a pickle holds the weights, not one fit's noise, draw or cache.
        state = dict(super().__getstate__())
        state.update(quantizer="noise", _drawn=None, _grid_cache={})
        return state

    # ----------------------------------------------------------------- latents
    def draw(self) -> list[Tensor]:
        """This step's quantised latents (shared by the prediction and the rate)."""
        if not self.training:
            return [torch.round(z) for z in self.latents]
        if self.quantizer == "noise":
            # One seed per step (not a running generator): the noise of step k is the
            # same in a fit and in one resumed from a checkpoint.
            device = self.latents[0].device
            generator = torch.Generator(device).manual_seed(self.seed + int(self.step))
            drawn = [
                z + torch.rand(z.shape, generator=generator, device=device).sub_(0.5)
                for z in self.latents
            ]
        else:
            drawn = [z + (torch.round(z) - z).detach() for z in self.latents]
        self._drawn = drawn
        return drawn

    def features(self, latents: list[Tensor], coords: Tensor) -> Tensor:
        """The latents interpolated at normalised ``coords``: ``(n, n_levels)``."""
        # Beyond the domain a codec has nothing to say: read the border (a cubic
        # stencil extrapolated far out overflows float32).
        coords = coords.clamp(-1.0, 1.0)
        out = []
        for z, shape in zip(latents, self.shapes, strict=True):
            sizes = torch.tensor(shape, device=coords.device)
            positions = (coords + 1) * 0.5 * (sizes - 1).to(coords.dtype)
            indices, weights = stencil(positions, sizes, self.order)
            strides = torch.tensor(
                [math.prod(shape[k + 1 :]) for k in range(len(shape))], device=coords.device
            )
            read = z.reshape(-1)[(indices * strides).sum(-1)]
            out.append((weights.to(read.dtype) * read).sum(-1))
        return torch.stack(out, -1)

    def forward(self, coords: Tensor) -> Tensor:
        return self.synthesis(self.features(self.draw(), coords))

    def on_grid(self, axes: tuple[Tensor, ...]) -> Tensor:
        """The prediction on the full grid ``axes`` (normalised coordinates per axis), in
        row-major order: the same interpolation as :meth:`forward`, as one matrix per
        axis and level (the training fast path)."""
        key = tuple((a.data_ptr(), a.numel()) for a in axes)
        if key not in self._grid_cache:
            self._grid_cache = {
                key: [
                    [
                        torch.as_tensor(
                            interpolation_matrix(
                                (a.double().cpu().numpy() + 1) * 0.5 * (n - 1), n, self.order
                            ),
                            dtype=axes[0].dtype,
                            device=axes[0].device,
                        )
                        for a, n in zip(axes, shape, strict=True)
                    ]
                    for shape in self.shapes
                ]
            }
        matrices = self._grid_cache[key]
        latents = self.draw()
        features = torch.stack(
            [along_axes(z, m).reshape(-1) for z, m in zip(latents, matrices, strict=True)], -1
        )
        return self.synthesis(features)

    # ------------------------------------------------------------------- rate
    def contexts(self, latents: list[Tensor]) -> Tensor:
        """Every latent's causal neighbours and parent, ``(n_latents, n_context)``."""
        offsets = causal_offsets(self.n_dims)
        rows = []
        for level, z in enumerate(latents):
            padded = nn.functional.pad(z[None, None], (2, 1) * self.n_dims)[0, 0]
            columns = [
                padded[tuple(slice(2 + o, 2 + o + n) for o, n in zip(off, z.shape, strict=True))]
                for off in offsets
            ]
            if level + 1 < len(latents):
                matrices = [
                    torch.as_tensor(m, dtype=z.dtype, device=z.device)
                    for m in parent_matrices(self.shapes, level)
                ]
                columns.append(along_axes(latents[level + 1], matrices))
            else:
                columns.append(torch.zeros_like(z))
            rows.append(torch.stack([c.reshape(-1) for c in columns], -1))
        return torch.cat(rows)

    def laplace(self, contexts: Tensor) -> tuple[Tensor, Tensor]:
        """The entropy model's mean and scale for each context row."""
        out = self.arm(contexts)
        log2 = out[:, 1].clamp(MIN_SCALE_LOG2, MAX_SCALE_LOG2)
        return out[:, 0], torch.exp2(log2)

    def rate_bits(self, latents: list[Tensor] | None = None) -> Tensor:
        """Bits of the quantised latents under the entropy model (a differentiable
        estimate of what the range coder writes)."""
        if latents is None:
            latents = self._drawn if self.training and self._drawn is not None else self.draw()
        symbols = torch.cat([z.reshape(-1) for z in latents])
        mean, scale = self.laplace(self.contexts(latents))

        def cdf(v):
            d = v - mean
            return 0.5 - 0.5 * torch.sign(d) * torch.expm1(-d.abs() / scale)

        p = (cdf(symbols + 0.5) - cdf(symbols - 0.5)).clamp_min(2.0**-24)
        return -torch.log2(p).sum()

    def flops(self, n_samples: int) -> int:
        """Interpolation and synthesis per point (the entropy model runs once per
        decode, not per prediction)."""
        taps = ORDERS[self.order] ** self.n_dims
        interp = len(self.shapes) * linear_flops(taps, 1, n_samples)
        return interp + sum(m.flops(n_samples) for m in self.synthesis if isinstance(m, Linear))
