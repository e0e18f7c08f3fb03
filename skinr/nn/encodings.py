"""Grid encodings: learnable values on a lattice over the domain, read by interpolation.

:class:`DenseGrid` is a grid of values at one resolution (Kim & Fridovich-Keil's
baseline); :class:`HashEncoding` stacks many resolutions and stores the fine ones in
hash tables (Müller et al.'s multiresolution hash encoding). Both read their lattice
with :func:`stencil`, which works in any number of dimensions.

Coordinates arrive normalised to [-1, 1] (the base estimator's frame) and are mapped
to lattice positions here; a point outside the domain reads the border cell's
interpolant, extended linearly (or cubically).
"""

from __future__ import annotations

import functools
import itertools
import math

import torch
from torch import Tensor, nn

from . import _native as native
from .flops import linear_flops

__all__ = ["ORDERS", "DenseGrid", "HashEncoding", "stencil"]

#: Interpolation order -> taps per axis.
ORDERS = {"linear": 2, "cubic": 4}

# Cubic reads 4**n_dims values per point: 256 at n_dims=4, where the grid's memory
# traffic, not its fit, decides; linear serves any dimensionality.
MAX_CUBIC_DIMS = 3

# Instant-NGP's spatial hash primes (the first is 1: the first axis stays coherent),
# then primes just below 2**32 (2**32 - k) for signals of more dimensions.
HASH_PRIMES = (
    *(1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737),
    *(2**32 - k for k in (5, 17, 65, 99, 107, 135, 153, 185, 209, 267)),
)


def _cubic_weights(t: Tensor) -> Tensor:
    """Keys' cubic convolution (a = -1/2, Catmull-Rom) weights of taps -1, 0, 1, 2."""
    t2, t3 = t * t, t * t * t
    return torch.stack(
        [
            -0.5 * t3 + t2 - 0.5 * t,
            1.5 * t3 - 2.5 * t2 + 1.0,
            -1.5 * t3 + 2.0 * t2 + 0.5 * t,
            0.5 * t3 - 0.5 * t2,
        ],
        dim=-1,
    )


@functools.lru_cache(maxsize=32)
def _corners(taps: int, n_dims: int) -> Tensor:
    """Every tap offset of a stencil, ``(taps ** n_dims, n_dims)``, built once per shape."""
    return torch.tensor(list(itertools.product(range(taps), repeat=n_dims)))


def stencil(positions: Tensor, sizes: Tensor, order: str = "linear") -> tuple[Tensor, Tensor]:
    """The lattice points and weights that interpolate at ``positions``.

    Parameters
    ----------
    positions : Tensor of shape (..., n_dims)
        Positions in lattice units: 0 is the first point of an axis, ``size - 1`` the
        last.
    sizes : Tensor of shape (..., n_dims)
        Points per axis (broadcast against ``positions``; at least 2).
    order : {"linear", "cubic"}
        ``2 ** n_dims`` taps (multilinear) or ``4 ** n_dims`` (Keys' cubic).

    Returns
    -------
    indices : Tensor of shape (..., n_taps, n_dims), int64
        Lattice coordinates of the taps, clamped into the lattice (cubic taps past a
        border repeat the border value).
    weights : Tensor of shape (..., n_taps)
        Their weights; they sum to 1.
    """
    taps = ORDERS[order]
    last = sizes - 1
    # The cell a position falls in, kept inside the lattice so that a position outside
    # it extrapolates from the border cell.
    cell = torch.minimum(torch.floor(positions).clamp(min=0), (last - 1).to(positions.dtype))
    offset = positions - cell
    cell = cell.long()
    n_dims = positions.shape[-1]
    if order == "linear":
        axis_weights = torch.stack([1 - offset, offset], dim=-1)
        first_tap = 0
    else:
        axis_weights = _cubic_weights(offset)
        first_tap = -1
    corners = _corners(taps, n_dims).to(positions.device)
    indices = cell.unsqueeze(-2) + corners + first_tap
    indices = torch.minimum(indices.clamp(min=0), last.unsqueeze(-2).long())
    weights = axis_weights[..., 0, :][..., corners[:, 0]]
    for axis in range(1, n_dims):
        weights = weights * axis_weights[..., axis, :][..., corners[:, axis]]
    return indices, weights


class DenseGrid(nn.Module):
    """Learnable values on a regular lattice over [-1, 1]^n_dims, interpolated.

    Maps ``(n_samples, n_dims) -> (n_samples, n_outputs)``. The values start at zero,
    the middle of the normalised value range.

    Parameters
    ----------
    resolution : tuple of int
        Lattice points per axis (at least 2); the first and last sit on the domain's
        edges.
    n_outputs : int
        Values per lattice point.
    order : {"linear", "cubic"}, default="linear"
        Interpolation.
    """

    def __init__(self, resolution: tuple[int, ...], n_outputs: int, order: str = "linear") -> None:
        super().__init__()
        self.resolution, self.n_outputs, self.order = tuple(resolution), n_outputs, order
        self.values = nn.Parameter(torch.zeros(*self.resolution, n_outputs))
        self.register_buffer("sizes", torch.tensor(self.resolution), persistent=False)
        strides = [math.prod(self.resolution[axis + 1 :]) for axis in range(len(resolution))]
        self.register_buffer("strides", torch.tensor(strides), persistent=False)

    def forward(self, coords: Tensor) -> Tensor:
        positions = (coords + 1) * 0.5 * (self.sizes - 1).to(coords.dtype)
        indices, weights = stencil(positions, self.sizes, self.order)
        flat = (indices * self.strides).sum(-1)
        table = self.values.reshape(-1, self.n_outputs)
        read = table[flat]  # (n, taps, n_outputs)
        return (weights.unsqueeze(-1).to(read.dtype) * read).sum(-2)

    def total_variation(self) -> Tensor:
        """Mean squared difference between neighbouring lattice points, summed over axes."""
        values = self.values
        return sum(
            values.diff(dim=axis).square().mean()
            for axis in range(len(self.resolution))
            if self.resolution[axis] > 1
        )

    def flops(self, n_samples: int) -> int:
        """The weighted sum over the taps: a ``taps -> 1`` contraction per output."""
        taps = ORDERS[self.order] ** len(self.resolution)
        return linear_flops(taps, self.n_outputs, n_samples)


def level_resolutions(n_levels: int, base: int, finest: int) -> list[int]:
    """Instant-NGP's geometric resolutions ``floor(base * b**l)`` from ``base`` to ``finest``."""
    if n_levels == 1:
        return [base]
    growth = math.exp((math.log(finest) - math.log(base)) / (n_levels - 1))
    return [math.floor(base * growth**level + 1e-9) for level in range(n_levels)]


class HashEncoding(nn.Module):
    """Multiresolution hash encoding (Müller et al., SIGGRAPH 2022).

    ``n_levels`` lattices from ``base_resolution`` to ``finest_resolution`` cells per
    axis; each stores ``features_per_level`` values per vertex, in a dense table while
    ``(N + 1) ** n_dims`` vertices fit in ``2 ** log2_table_size`` entries, else in a
    table of that size indexed by the paper's spatial hash (XOR of the vertex
    coordinates times large primes). Each level is read by multilinear interpolation
    and the levels are concatenated: ``(n, n_dims) -> (n, n_levels * features_per_level)``.
    The tables start at U(±1e-4), as in the paper. On the CPU, skinr's native kernel
    (``skinr/_native/hash_encoding.c``) computes the same arithmetic point by point
    where it could be built; :meth:`torch_forward` is the PyTorch path.
    """

    def __init__(
        self,
        n_dims: int,
        *,
        n_levels: int = 16,
        features_per_level: int = 2,
        log2_table_size: int = 19,
        base_resolution: int = 16,
        finest_resolution: int = 512,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_dims, self.n_levels, self.features_per_level = n_dims, n_levels, features_per_level
        self.levels = level_resolutions(n_levels, base_resolution, finest_resolution)
        capacity = 2**log2_table_size
        sizes, hashed = [], []
        for cells in self.levels:
            vertices = (cells + 1) ** n_dims
            sizes.append(min(vertices, capacity))
            hashed.append(vertices > capacity)
        self.table_sizes = sizes
        offsets = [0, *itertools.accumulate(sizes)][:-1]
        self.table = nn.Parameter(torch.empty(sum(sizes), features_per_level))
        self.register_buffer("cells", torch.tensor(self.levels), persistent=False)
        self.register_buffer("offsets", torch.tensor(offsets), persistent=False)
        self.register_buffer("sizes", torch.tensor(sizes), persistent=False)
        self.register_buffer("hashed", torch.tensor(hashed), persistent=False)
        strides = [[(cells + 1) ** axis for axis in range(n_dims)] for cells in self.levels]
        self.register_buffer("strides", torch.tensor(strides), persistent=False)
        self.register_buffer("primes", torch.tensor(HASH_PRIMES[:n_dims]), persistent=False)
        self.reset_parameters(generator)

    @property
    def n_out(self) -> int:
        return self.n_levels * self.features_per_level

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the tables from U(±1e-4)."""
        with torch.no_grad():
            self.table.uniform_(-1e-4, 1e-4, generator=generator)

    def forward(self, coords: Tensor) -> Tensor:
        if native.hash_supported(coords, self.table):
            return native.hash_encoding(
                coords,
                self.table,
                self.cells,
                self.offsets,
                self.sizes,
                self.hashed,
                self.primes,
            )
        return self.torch_forward(coords)

    def torch_forward(self, coords: Tensor) -> Tensor:
        """The encoding in PyTorch operations (any device and dtype; what the native
        CPU kernel is tested against)."""
        unit = (coords + 1) * 0.5
        # (n, levels, dims): the positions in each level's lattice of N + 1 vertices.
        positions = unit.unsqueeze(-2) * self.cells.unsqueeze(-1).to(coords.dtype)
        vertices = (self.cells + 1).unsqueeze(-1).expand(-1, self.n_dims)
        indices, weights = stencil(positions, vertices, "linear")  # (n, L, taps, d)
        dense = (indices * self.strides.unsqueeze(-2)).sum(-1)
        spatial = indices * self.primes
        hashed = spatial[..., 0]
        for axis in range(1, self.n_dims):
            hashed = hashed ^ spatial[..., axis]
        slot = torch.where(self.hashed.unsqueeze(-1), hashed, dense)
        slot = torch.remainder(slot, self.sizes.unsqueeze(-1)) + self.offsets.unsqueeze(-1)
        read = self.table[slot]  # (n, L, taps, F)
        features = (weights.unsqueeze(-1).to(read.dtype) * read).sum(-2)
        return features.flatten(start_dim=-2)

    def flops(self, n_samples: int) -> int:
        """The weighted sums over each level's taps."""
        taps = 2**self.n_dims
        return self.n_levels * linear_flops(taps, self.features_per_level, n_samples)
