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

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral

import torch
from torch import Tensor

from .._core.sample_layout import corner_offsets, merge_distinct

__all__ = [
    "BlendedCells",
    "CellCensus",
    "CellLayout",
    "CellSort",
    "SharedGrid",
    "blend_outputs",
    "blend_width_doc",
    "blended_cells",
    "cell_bounds",
    "cells_read",
    "check_cell_counts",
    "check_cells",
    "corners_per_point",
    "from_cells",
    "group_by_cell",
    "grouped_blended_forward",
    "grouped_blended_mse",
    "grouped_mse",
    "locate_cells",
    "n_cells_total",
    "order_by_cell",
    "resolve_cells",
    "row_major",
    "shared_local_grid",
    "sort_by_cell",
    "to_cells",
]


def resolve_cells(value, n_dims: int, name: str) -> tuple[int, ...]:
    """A cell-count parameter as one positive int per dimension, or a clear ValueError.

    ``value`` is an int (the same count along every dimension) or a sequence with one
    entry per coordinate dimension; ``name`` is the parameter's name for the message.
    """
    cells = (value,) * n_dims if isinstance(value, Integral) else tuple(value)
    if len(cells) != n_dims:
        raise ValueError(
            f"{name}={value!r} has {len(cells)} entries, but X has {n_dims} coordinate "
            "dimensions; give one entry per dimension or an int."
        )
    if not all(isinstance(c, Integral) and c >= 1 for c in cells):
        raise ValueError(f"{name}={value!r} must hold positive ints.")
    return tuple(int(c) for c in cells)


class CellCensus:
    """Distinct coordinates per dimension and points per cell, gathered chunk by chunk.

    What the cell-based estimators check before training (no more cells along a
    dimension than distinct coordinates there; which cells got no points), computed
    over one tensor or over a stream of chunks of a signal too big to hold twice.
    """

    def __init__(self, n_cells: Sequence[int]) -> None:
        self.n_cells = tuple(n_cells)
        self.distinct: list[Tensor] | None = None
        self.counts: Tensor | None = None
        self.n_samples = 0

    @classmethod
    def of_chunks(cls, n_cells: Sequence[int], chunks: Iterable[Tensor]) -> CellCensus:
        """The census of a signal given as an iterable of coordinate chunks."""
        census = cls(n_cells)
        for chunk in chunks:
            census.add(chunk)
        return census

    def add(self, coords: Tensor) -> CellCensus:
        self.distinct = merge_distinct(self.distinct, coords)
        cell, _ = locate_cells(coords, self.n_cells)
        counts = torch.bincount(cell, minlength=n_cells_total(self.n_cells))
        self.counts = counts if self.counts is None else self.counts + counts
        self.n_samples += coords.shape[0]
        return self

    def check_resolvable(self, name: str, value) -> None:
        """Refuse more cells along a dimension than the data has distinct coordinates."""
        distinct = [values.numel() for values in self.distinct]
        check_cell_counts(self.n_cells, distinct, self.n_samples, name, value)

    def empty(self) -> Tensor:
        """Row-major indices of the cells that hold no point."""
        return torch.nonzero(self.counts == 0).ravel()


def check_cell_counts(
    n_cells: Sequence[int], distinct: Sequence[int], n_samples: int, name: str, value
) -> None:
    """Refuse more cells along a dimension than the data has distinct coordinates
    there (``name=value`` is the parameter in the message)."""
    for k, (cells, n_distinct) in enumerate(zip(n_cells, distinct, strict=True)):
        if cells > n_distinct:
            raise ValueError(
                f"{name}={value!r} asks for {cells} cells along dimension {k}, but "
                f"the training data has only {n_distinct} distinct coordinates there "
                f"({n_samples} sample{'s' if n_samples != 1 else ''} in all); use a coarser "
                f"{name}."
            )


def check_cells(module, chunks: Iterable[Tensor], name: str, value) -> CellCensus:
    """The one way the cell architectures meet their training data.

    Counts the points per cell of ``module.grid`` over ``chunks`` (normalised
    coordinates), refuses more cells along a dimension than the data has distinct
    coordinates (``name=value`` is the parameter in the message), and silences the
    cells without points (``module.silence_cells``: they predict the middle of the
    training range). The census's ``empty()`` is what the estimator reports as
    ``empty_cells_``.
    """
    census = CellCensus.of_chunks(module.grid, chunks)
    census.check_resolvable(name, value)
    module.silence_cells(census.empty())
    return census


@dataclass
class CellSort:
    """Points sorted by cell with a counting sort: ``order`` is a stable argsort of the
    cells, ``sorted_cell`` the cells in that order, ``rank`` each sorted point's place
    within its cell, ``counts`` the points per cell."""

    counts: Tensor
    order: Tensor
    sorted_cell: Tensor
    rank: Tensor

    @property
    def starts(self) -> Tensor:
        """Index of each cell's first point in the sorted order."""
        return torch.cumsum(self.counts, 0) - self.counts


def sort_by_cell(cell: Tensor, n_cells: int, counts: Tensor | None = None) -> CellSort:
    """Sort points by cell index (``counts``: the points per cell, when known)."""
    if counts is None:
        counts = torch.bincount(cell, minlength=n_cells)
    order = torch.argsort(cell, stable=True)
    sorted_cell = cell[order]
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(cell.numel(), device=cell.device) - starts[sorted_cell]
    return CellSort(counts, order, sorted_cell, rank)


def order_by_cell(
    cells_of_chunks: Callable[[], Iterator[Tensor]], n_cells: int, counts: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Points per cell and the sample indices sorted by cell, from a signal in chunks.

    ``cells_of_chunks()`` yields each chunk's cell indices, in sample order; it is
    called twice, or once when the points per cell are given as ``counts`` (e.g. from
    a :class:`CellCensus` of the same cells). Returns ``(counts, order)`` with ``order``
    equal to ``torch.argsort(cell, stable=True)`` of the whole signal: a counting sort
    that holds one chunk plus the result, stored as int32 below 2**31 samples.
    """
    if counts is None:
        for cell in cells_of_chunks():
            found = torch.bincount(cell.cpu(), minlength=n_cells)
            counts = found if counts is None else counts + found
    counts = counts.cpu()
    n_samples = int(counts.sum())
    index_dtype = torch.int32 if n_samples < 2**31 else torch.int64
    order = torch.empty(n_samples, dtype=index_dtype)
    next_free = torch.cumsum(counts, 0) - counts
    offset = 0
    for cell in cells_of_chunks():
        chunk = sort_by_cell(cell.cpu(), n_cells)
        destination = next_free[chunk.sorted_cell] + chunk.rank
        order[destination] = (chunk.order + offset).to(index_dtype)
        next_free += chunk.counts
        offset += cell.numel()
    return counts, order


def n_cells_total(n_cells: Sequence[int]) -> int:
    """Number of cells of a grid with ``n_cells[k]`` cells along dimension ``k``."""
    total = 1
    for n in n_cells:
        total *= int(n)
    return total


def _in_cell_units(coords: Tensor, n_cells: Sequence[int]) -> tuple[Tensor, Tensor]:
    """The cells per dimension and the coordinates in cell units, ``[0, n]`` inside."""
    if coords.shape[-1] != len(n_cells):
        raise ValueError(
            f"A cell grid of {len(n_cells)} dimensions cannot locate coordinates "
            f"with {coords.shape[-1]} dimensions."
        )
    counts = torch.as_tensor(list(n_cells), dtype=coords.dtype, device=coords.device)
    return counts, (coords + 1) * (0.5 * counts)


def row_major(per_dim: Tensor, n_cells: Sequence[int]) -> Tensor:
    """Flat row-major cell index of per-dimension cell indices ``(n, n_dims)``."""
    cell = torch.zeros(per_dim.shape[0], dtype=torch.long, device=per_dim.device)
    for k, n in enumerate(n_cells):
        cell = cell * int(n) + per_dim[:, k]
    return cell


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
    counts, scaled = _in_cell_units(coords, n_cells)
    per_dim = torch.minimum(torch.floor(scaled).clamp_min(0), counts - 1)
    local = 2 * (scaled - per_dim) - 1
    return row_major(per_dim.long(), n_cells), local


@dataclass
class BlendedCells:
    """The cells that share each point under a smooth partition of unity.

    Dense (``point`` is None): ``cell[c, i]`` is the ``c``-th of the (up to)
    ``2^n_dims`` cells whose centres surround point ``i``, ``local[c, i]`` the point's
    coordinate in that cell's frame (the cell spans [-1, 1]; the blend reaches into
    [-2, 2]), ``weight[c, i]`` its share. Sparse (a blend narrower than a cell): only
    the entries with a positive share, flat, entry ``e`` belonging to point
    ``point[e]``. Shares are non-negative and sum to 1 for every point.
    """

    cell: Tensor
    local: Tensor
    weight: Tensor
    point: Tensor | None = None
    n_points: int | None = None
    max_corners: int | None = None

    @property
    def n_corners(self) -> int:
        """Cells a point reads at most (dense: every point reads that many)."""
        return self.cell.shape[0] if self.point is None else self.max_corners

    @property
    def n_entries(self) -> int:
        """(cell, point) pairs to evaluate."""
        return self.cell.numel()


def _smoothstep(t: Tensor) -> Tensor:
    return t * t * (3 - 2 * t)


def blended_cells(coords: Tensor, n_cells: Sequence[int], width: float = 1.0) -> BlendedCells:
    """Cells, local coordinates and weights of a C1 blend of neighbouring cells.

    Along each dimension the share moves from cell ``j`` to cell ``j + 1`` across a band
    of ``width`` cells centred on their common border, as a smoothstep
    ``s = 3 t^2 - 2 t^3`` of the fraction ``t`` of the band crossed; a point's weight
    for a cell is the product over dimensions. ``width=1`` blends from centre to
    centre: every point reads the ``2^k`` cells around it (``k`` split dimensions) and
    only a cell's centre is its alone. A narrower band leaves each cell's middle to
    itself: a point reads a neighbour only along the dimensions where it lies in a
    band, so on average ``(1 + width)^k`` cells, and the blend comes back sparse
    (``point`` set). Since ``s`` has zero slope at both ends of its band, a blend of
    smooth cell functions stays smooth: no seam at cell borders, where hard cells
    (:func:`locate_cells`) jump. Beyond the outermost centres (and outside the domain)
    the edge cell takes the whole weight.
    """
    if not 0 < width <= 1:
        raise ValueError(f"width={width!r} must be in (0, 1].")
    counts, scaled = _in_cell_units(coords, n_cells)
    # Cell centres at the integers 0 .. n - 1; t runs from one centre to the next.
    centred = scaled - 0.5
    below = torch.floor(centred)
    t = (centred - below).clamp(0, 1)
    sparse = width < 1
    if sparse:
        t = ((t - 0.5) / width + 0.5).clamp(0, 1)
    upper_share = _smoothstep(t)
    # Beyond the outermost centres both corners are the edge cell (shares still sum to
    # 1). Full width keeps both: every cell then receives two cells' worth of points per
    # dimension, so the grouped batches of a regular grid need no padding. A sparse
    # blend gives the edge cell one entry instead.
    bounds = [torch.zeros_like(counts), counts - 1]
    lower, upper = below.clamp(*bounds), (below + 1).clamp(*bounds)
    if sparse:
        upper_share = torch.where(lower == upper, torch.ones_like(upper_share), upper_share)
    split = [k for k, n in enumerate(n_cells) if int(n) > 1]
    n_split = len(split)
    # takes_upper[c, k]: corner c takes the upper cell along dimension k; corners run
    # as itertools.product((0, 1), ...) over the split dimensions, the first slowest.
    # One broadcast over all corners: a Python loop per corner cost 2^n_dims small
    # operations per call (10-D inputs: 1,024 corners, every step).
    takes_upper = torch.zeros(2**n_split, len(n_cells), dtype=torch.bool, device=coords.device)
    takes_upper[:, split] = corner_offsets(n_split, coords.device)
    takes_upper = takes_upper[:, None, :]
    per_dim = torch.where(takes_upper, upper, lower)
    shares = torch.where(takes_upper, upper_share, 1 - upper_share)
    weight = shares[..., split].prod(dim=-1)
    local = 2 * (scaled - per_dim) - 1
    cell = row_major(per_dim.reshape(-1, per_dim.shape[-1]).long(), n_cells)
    cell = cell.view(per_dim.shape[:2])
    if not sparse:
        return BlendedCells(cell, local, weight)
    keep = weight > 0
    point = torch.arange(coords.shape[0], device=coords.device).expand_as(keep)[keep]
    return BlendedCells(cell[keep], local[keep], weight[keep], point, coords.shape[0], 2**n_split)


def corners_per_point(n_cells: Sequence[int], blending: str) -> int:
    """Cells a point reads at most: 1 with hard cells, 2 per split dimension blended."""
    if blending != "smooth":
        return 1
    return 2 ** sum(1 for n in n_cells if int(n) > 1)


def blend_width_doc(page: str) -> str:
    """The ``blend_width`` parameter's doc for an estimator whose page is ``page``."""
    return f"""blend_width : float in (0, 1], default=0.25
        Width, in cells, of the band along each internal cell border across which two
        neighbouring cells blend (``blending="smooth"`` only). Outside the bands a point
        reads its own cell alone, so on average a point reads ``(1 + blend_width)^k``
        cells (``k`` the dimensions split into several cells) instead of every one of
        the ``2^k`` around it, and a training sample further than ``blend_width / 2`` of
        a cell from every border trains its own cell only. ``blend_width=1`` blends from
        centre to centre. The default keeps hard cells' cost per step and per render
        within a small factor and most of what blending gains between samples; a wider
        band gains a little more at coarse super-resolution for more evaluations
        (measured: ``docs/estimators/{page}.md``, "Why the defaults")."""


def cells_read(
    n_samples: int, coords: Tensor | None, n_cells: Sequence[int], blending: str, width: float
) -> int:
    """(cell, point) pairs a forward over ``n_samples`` points evaluates under
    ``blending``: counted at ``coords``, or the most they can be without them."""
    if coords is not None and blending == "smooth" and width < 1:
        return blended_cells(coords, n_cells, width).n_entries
    return n_samples * corners_per_point(n_cells, blending)


def blend_outputs(out: Tensor, blend: BlendedCells) -> Tensor:
    """Outputs per entry, ``(n_entries, f)`` -> ``(n, f)`` weighted sums per point."""
    if blend.point is None:
        corners = out.view(blend.n_corners, -1, out.shape[-1])
        return (corners * blend.weight.unsqueeze(-1)).sum(dim=0)
    weighted = out * blend.weight.unsqueeze(-1)
    total = out.new_zeros((blend.n_points, out.shape[-1]))
    return total.index_add(0, blend.point, weighted)


def grouped_blended_forward(forward_cells, blend: BlendedCells, n_cells: int) -> Tensor:
    """A per-cell network blended over :func:`blended_cells`' neighbours, ``(n, f)``."""
    n_dims = blend.local.shape[-1]
    out = grouped_forward(
        forward_cells, blend.cell.reshape(-1), blend.local.reshape(-1, n_dims), n_cells
    )
    return blend_outputs(out, blend)


def grouped_blended_mse(forward_cells, blend: BlendedCells, values: Tensor, n_cells: int):
    """:func:`grouped_mse` for a blended network: the (cell, point) entries are grouped
    once per fit, and every ``loss()`` runs the cells on them and sums each group's
    weighted outputs into its points in one scatter, without ungrouping first."""
    n_points, n_dims = values.shape[0], blend.local.shape[-1]
    cell, local = blend.cell.reshape(-1), blend.local.reshape(-1, n_dims)
    if blend.point is None:
        point = torch.arange(n_points, device=cell.device).repeat(blend.n_corners)
    else:
        point = blend.point
        if blend.n_entries == n_points:
            # No sample lies in a band: each reads its own cell alone, as hard cells do.
            return grouped_mse(forward_cells, cell, local, values[point], n_cells)
    layout = group_by_cell(cell, n_cells)
    grouped_inputs = to_cells(local, layout)
    grouped_weight = to_cells(blend.weight.reshape(-1, 1), layout)
    # Padding slots carry weight 0 and add nothing to point 0.
    grouped_point = to_cells(point.unsqueeze(1), layout).reshape(-1)

    def loss() -> Tensor:
        out = forward_cells(grouped_inputs, layout.groups) * grouped_weight
        predicted = out.new_zeros((n_points, out.shape[-1]))
        predicted = predicted.index_add(0, grouped_point, out.reshape(-1, out.shape[-1]))
        return torch.nn.functional.mse_loss(predicted, values)

    return loss


@dataclass
class SharedGrid:
    """Points that sit at the same local coordinates in every cell they occupy.

    ``template`` holds those local coordinates, ``(n_local, n_dims)``; ``cells`` the
    occupied cells in ascending order, ``(n_occupied,)``; ``index[i, j]`` is the point
    at ``template[j]`` in cell ``cells[i]``, ``(n_occupied, n_local)``.
    """

    template: Tensor
    cells: Tensor
    index: Tensor


def shared_local_grid(
    local: Tensor, cell: Tensor, n_cells: int, atol: float = 1e-5
) -> SharedGrid | None:
    """Detect a grid whose cells all hold the same local coordinates.

    Each occupied cell must hold the same number of points, and after sorting each
    cell's points lexicographically by local coordinate, the ``j``-th point of every
    cell must lie within ``atol`` of the same position. Returns None otherwise. The
    template is the mean position over cells, so it differs from any cell's own local
    coordinates by at most ``atol``.
    """
    if cell.numel() == 0:
        return None
    counts = torch.bincount(cell, minlength=n_cells)
    occupied = torch.nonzero(counts).ravel()
    n_local = int(counts[occupied[0]])
    if not bool((counts[occupied] == n_local).all()):
        return None
    index = torch.argsort(cell, stable=True).view(occupied.numel(), n_local)
    for k in reversed(range(local.shape[1])):
        # Stable sorts from the last key to the first give a lexicographic order.
        key = local[index, k]
        index = index.gather(1, torch.argsort(key, dim=1, stable=True))
    positions = local[index]
    template = positions.mean(dim=0)
    if float((positions - template).abs().max()) > atol:
        return None
    return SharedGrid(template, occupied, index)


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

    ``order`` sorts the points by cell; point ``order[i]`` goes to row ``row[i]``,
    column ``slot[i]`` of a ``(n_rows, capacity, ...)`` tensor; ``valid`` marks the
    filled entries; ``counts`` is the number of points per row. Rows are all the cells
    (``groups`` is None) or, when at most half of them hold points (a chunk of a big
    signal read in order), only those: row ``r`` is cell ``groups[r]``.
    """

    order: Tensor
    row: Tensor
    slot: Tensor
    counts: Tensor
    capacity: int
    valid: Tensor
    groups: Tensor | None

    @property
    def is_full(self) -> bool:
        """True when every row holds the same number of points (no padding)."""
        return bool((self.counts == self.capacity).all())


def group_by_cell(cell: Tensor, n_cells: int) -> CellLayout:
    """Group points by cell index for batched per-cell computation (see ``CellLayout``)."""
    counts = torch.bincount(cell, minlength=n_cells)
    groups = None
    occupied = torch.nonzero(counts).ravel()
    if occupied.numel() <= n_cells // 2:
        # Rows for the occupied cells only: padding every cell would cost n_cells rows.
        groups, counts = occupied, counts[occupied]
        cell = torch.searchsorted(occupied, cell)
    sort = sort_by_cell(cell, counts.numel(), counts)
    capacity = int(counts.max()) if cell.numel() else 0
    valid = torch.arange(capacity, device=cell.device) < counts[:, None]
    return CellLayout(sort.order, sort.sorted_cell, sort.rank, counts, capacity, valid, groups)


def to_cells(points: Tensor, layout: CellLayout) -> Tensor:
    """``(n, f) -> (n_rows, capacity, f)``, zero-padded."""
    n_rows = layout.counts.shape[0]
    padded = points.new_zeros((n_rows, layout.capacity, points.shape[-1]))
    padded[layout.row, layout.slot] = points[layout.order]
    return padded


def from_cells(padded: Tensor, layout: CellLayout) -> Tensor:
    """Inverse of :func:`to_cells`: ``(n_rows, capacity, f) -> (n, f)`` in the original order."""
    out = padded.new_empty((layout.order.shape[0], padded.shape[-1]))
    out[layout.order] = padded[layout.row, layout.slot]
    return out


def grouped_mse(forward_cells, cell: Tensor, inputs: Tensor, values: Tensor, n_cells: int):
    """The mean squared error of a per-cell network over a whole held signal.

    ``forward_cells(grouped, groups)`` maps ``(n_rows, n_points, f)`` grouped inputs to
    grouped outputs, row ``r`` through cell ``groups[r]`` (all cells if None). The
    signal is grouped once, here; cells with fewer points are padded and masked out.
    Returns ``loss()``.
    """
    layout = group_by_cell(cell, n_cells)
    grouped_inputs, grouped_values = to_cells(inputs, layout), to_cells(values, layout)
    mask = None if layout.is_full else layout.valid.unsqueeze(-1).to(values.dtype)
    n_values = values.numel()

    def loss() -> Tensor:
        error = forward_cells(grouped_inputs, layout.groups) - grouped_values
        if mask is None:
            return error.square().mean()
        return (error.square() * mask).sum() / n_values

    return loss


def grouped_forward(forward_cells, cell: Tensor, inputs: Tensor, n_cells: int) -> Tensor:
    """A per-cell network at points in any order: grouped by ``cell``, then ungrouped."""
    layout = group_by_cell(cell, n_cells)
    return from_cells(forward_cells(to_cells(inputs, layout), layout.groups), layout)
