"""Uniform cell grids over the normalised domain [-1, 1]^n_dims.

EnsembleINR's ``grid``, MultiHeadReLU's ``heads``, LocalGlobalSIREN's ``partitions``
split the domain into equal cells. Assigning a coordinate to its cell, and rescaling
it to a local coordinate in [-1, 1], is done here once.

Border rule: cells are half-open ``[low, high)`` along each dimension, except the last,
which also holds the domain's upper edge. A point exactly on an internal border
therefore belongs to the cell above it, deterministically. Points outside the domain
are assigned to the nearest edge cell; their local coordinates fall outside [-1, 1].
Cells are numbered in row-major order over the grid (the last dimension fastest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "CellLayout",
    "cell_bounds",
    "from_cells",
    "group_by_cell",
    "locate_cells",
    "n_cells_total",
    "to_cells",
]


def n_cells_total(n_cells: Sequence[int]) -> int:
    """Number of cells of a grid with ``n_cells[k]`` cells along dimension ``k``."""
    total = 1
    for n in n_cells:
        total *= int(n)
    return total


def locate_cells(coords: Tensor, n_cells: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Cell index and local coordinate of every point.

    Parameters
    ----------
    coords : Tensor of shape (n_samples, n_dims)
        Coordinates in the normalised domain [-1, 1]^n_dims.
    n_cells : sequence of int, one per dimension
        Cells along each dimension.

    Returns
    -------
    cell : LongTensor of shape (n_samples,)
        Row-major flat cell index.
    local : Tensor of shape (n_samples, n_dims)
        Coordinate rescaled so that its cell spans [-1, 1].
    """
    if coords.shape[-1] != len(n_cells):
        raise ValueError(
            f"A cell grid of {len(n_cells)} dimensions cannot locate coordinates "
            f"with {coords.shape[-1]} dimensions."
        )
    counts = torch.as_tensor(list(n_cells), dtype=coords.dtype, device=coords.device)
    scaled = (coords + 1) * (0.5 * counts)
    per_dim = torch.minimum(torch.floor(scaled).clamp_min(0), counts - 1)
    local = 2 * (scaled - per_dim) - 1
    per_dim = per_dim.long()
    cell = torch.zeros(coords.shape[0], dtype=torch.long, device=coords.device)
    for k, n in enumerate(n_cells):
        cell = cell * int(n) + per_dim[:, k]
    return cell, local


def cell_bounds(n_cells: Sequence[int]) -> Tensor:
    """Lower and upper corner of every cell, shape ``(n_cells_total, n_dims, 2)``."""
    axes = [torch.linspace(-1.0, 1.0, int(n) + 1, dtype=torch.float64) for n in n_cells]
    lows = torch.meshgrid(*[a[:-1] for a in axes], indexing="ij")
    highs = torch.meshgrid(*[a[1:] for a in axes], indexing="ij")
    low = torch.stack([m.reshape(-1) for m in lows], dim=1)
    high = torch.stack([m.reshape(-1) for m in highs], dim=1)
    return torch.stack([low, high], dim=2)


@dataclass
class CellLayout:
    """Where each point sits when points are grouped by cell into a padded batch.

    ``order`` sorts the points by cell; point ``order[i]`` goes to row ``cell[i]``,
    column ``slot[i]`` of a ``(n_cells, capacity, ...)`` tensor; ``valid`` marks the
    filled entries; ``counts`` is the number of points per cell.
    """

    order: Tensor
    cell: Tensor
    slot: Tensor
    counts: Tensor
    capacity: int
    valid: Tensor

    @property
    def is_full(self) -> bool:
        """True when every cell holds the same number of points (no padding)."""
        return bool((self.counts == self.capacity).all())


def group_by_cell(cell: Tensor, n_cells: int) -> CellLayout:
    """Group points by cell index for batched per-cell computation (see ``CellLayout``)."""
    counts = torch.bincount(cell, minlength=n_cells)
    order = torch.argsort(cell, stable=True)
    sorted_cell = cell[order]
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(cell.shape[0], device=cell.device) - starts[sorted_cell]
    capacity = int(counts.max()) if cell.numel() else 0
    valid = torch.arange(capacity, device=cell.device) < counts[:, None]
    return CellLayout(order, sorted_cell, slot, counts, capacity, valid)


def to_cells(points: Tensor, layout: CellLayout) -> Tensor:
    """``(n, f) -> (n_cells, capacity, f)``, zero-padded."""
    n_cells = layout.counts.shape[0]
    padded = points.new_zeros((n_cells, layout.capacity, points.shape[-1]))
    padded[layout.cell, layout.slot] = points[layout.order]
    return padded


def from_cells(padded: Tensor, layout: CellLayout) -> Tensor:
    """Inverse of :func:`to_cells`: ``(n_cells, capacity, f) -> (n, f)`` in the original order."""
    out = padded.new_empty((layout.order.shape[0], padded.shape[-1]))
    out[layout.order] = padded[layout.cell, layout.slot]
    return out
