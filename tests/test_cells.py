"""Cell grids: index, local coordinates, borders, any dimensionality."""

import pytest
import torch

from skinr._core.sample_layout import distinct_rows
from skinr.estimators.ensemble import EnsembleNet
from skinr.nn.cells import (
    blend_outputs,
    blended_cells,
    cell_bounds,
    from_cells,
    group_by_cell,
    locate_cells,
    n_cells_total,
    to_cells,
)


def test_one_dimension_borders_and_local_coordinates():
    x = torch.tensor([[-1.0], [-0.75], [-0.5], [0.0], [0.25], [1.0]])
    cell, local = locate_cells(x, [4])
    assert cell.tolist() == [0, 0, 1, 2, 2, 3]  # internal borders go to the upper cell
    # the domain's upper edge stays in the last cell, at local +1
    torch.testing.assert_close(local[:, 0], torch.tensor([-1.0, 0.0, -1.0, -1.0, 0.0, 1.0]))


def test_row_major_numbering_in_2d():
    x = torch.tensor([[-0.9, -0.9], [-0.9, 0.9], [0.9, -0.9], [0.9, 0.9]])
    cell, _local = locate_cells(x, [2, 3])
    assert cell.tolist() == [0, 2, 3, 5]
    assert n_cells_total([2, 3]) == 6


def test_local_coordinates_span_each_cell_in_3d():
    torch.manual_seed(0)
    x = torch.rand(2000, 3) * 2 - 1
    cell, local = locate_cells(x, [2, 3, 4])
    assert cell.min() >= 0 and cell.max() < 24
    assert local.min() >= -1 and local.max() <= 1
    bounds = cell_bounds([2, 3, 4]).float()
    low, high = bounds[cell, :, 0], bounds[cell, :, 1]
    torch.testing.assert_close(low + (local + 1) / 2 * (high - low), x)


def test_points_outside_go_to_edge_cells():
    cell, local = locate_cells(torch.tensor([[-1.5], [1.5]]), [4])
    assert cell.tolist() == [0, 3]
    assert local[0, 0] < -1 and local[1, 0] > 1


def test_dimension_mismatch():
    with pytest.raises(ValueError, match="2 dimensions cannot locate coordinates with 3"):
        locate_cells(torch.zeros(1, 3), [2, 2])


def test_grouping_keeps_rows_for_occupied_cells_only_when_few_are():
    points = torch.arange(12.0).reshape(6, 2)
    # 3 of 8 cells occupied: rows for those three only, in cell order.
    sparse = group_by_cell(torch.tensor([5, 1, 5, 7, 1, 5]), n_cells=8)
    assert torch.equal(sparse.groups, torch.tensor([1, 5, 7]))
    grouped = to_cells(points, sparse)
    assert grouped.shape == (3, 3, 2)
    assert torch.equal(grouped[0, :2], points[[1, 4]])  # cell 1's points, in order
    assert torch.equal(from_cells(grouped, sparse), points)
    # 3 of 4 occupied: a row per cell, the empty one padded.
    dense = group_by_cell(torch.tensor([0, 1, 3, 3, 1, 0]), n_cells=4)
    assert dense.groups is None and to_cells(points, dense).shape == (4, 2, 2)
    assert torch.equal(from_cells(to_cells(points, dense), dense), points)


def test_sub_networks_of_a_chunk_match_the_full_ensemble():
    net = EnsembleNet(2, 3, (4, 4), width=8, depth=1, generator=torch.Generator().manual_seed(0))
    coords = torch.rand(64, 2, generator=torch.Generator().manual_seed(1)) - 1  # 4 of 16 cells
    cell, local = locate_cells(coords, (4, 4))
    layout = group_by_cell(cell, 16)
    assert layout.groups is not None and len(layout.groups) == 4
    # Row r of a compact batch goes through cell groups[r]'s sub-network.
    grouped = to_cells(local, layout)
    padded = torch.zeros(16, *grouped.shape[1:])
    padded[layout.groups] = grouped
    with torch.no_grad():
        compact = net.forward_cells(grouped, layout.groups)
        reference = net.forward_cells(padded)[layout.groups]
        torch.testing.assert_close(compact, reference)
        torch.testing.assert_close(net(coords), from_cells(reference, layout))


def test_distinct_rows_groups_as_unique_over_rows_does():
    keys = torch.randint(0, 5, (400, 3), generator=torch.Generator().manual_seed(0))
    distinct, inverse = torch.unique(keys, dim=0, return_inverse=True)
    rank, n_distinct = distinct_rows(keys)
    assert n_distinct == distinct.shape[0] and torch.equal(rank, inverse)
    assert distinct_rows(keys, limit=n_distinct) is not None
    assert distinct_rows(keys, limit=n_distinct - 1) is None


def test_blended_corners_run_over_the_split_dimensions_first_slowest():
    coords = torch.rand(50, 3, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    blend = blended_cells(coords, (3, 1, 4))
    assert blend.cell.shape == (4, 50) and blend.local.shape == (4, 50, 3)
    torch.testing.assert_close(blend.weight.sum(0), torch.ones(50))
    rows, cols = blend.cell // 4, blend.cell % 4
    # corners (lower, lower), (lower, upper), (upper, lower), (upper, upper)
    assert bool((rows[0] == rows[1]).all() and (rows[2] == rows[3]).all())
    assert bool((cols[0] == cols[2]).all() and (cols[1] == cols[3]).all())
    assert bool((rows[2] >= rows[0]).all() and (cols[1] >= cols[0]).all())


def _blended(cell_function, coords, n_cells, width):
    """A per-cell function of the local coordinate, blended at ``coords``."""
    blend = blended_cells(coords, n_cells, width)
    n_dims = coords.shape[1]
    out = cell_function(blend.cell.reshape(-1), blend.local.reshape(-1, n_dims))
    return blend_outputs(out, blend), blend


def _cell_function(cell, local):
    # Differs from cell to cell, so a seam or a lost share would show.
    return (torch.sin(3 * cell.double()) + local.sum(-1).double() * (1 + cell % 3)).unsqueeze(-1)


@pytest.mark.parametrize("width", [0.1, 0.25, 0.5])
def test_a_narrow_blend_leaves_each_cells_middle_to_it_and_reads_a_neighbour_in_bands(width):
    grid = (4, 1, 3)
    coords = torch.rand(2000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    coords = coords * 2.4 - 1.2
    blend = blended_cells(coords, grid, width)
    assert blend.point is not None and bool((blend.weight > 0).all())
    total = blend_outputs(torch.ones(blend.n_entries, 1, dtype=coords.dtype), blend)
    torch.testing.assert_close(total, torch.ones(2000, 1, dtype=coords.dtype))
    # Along each split dimension a point reads a neighbour iff it lies within width / 2
    # of an internal border (in cell units).
    in_band = torch.ones(2000, dtype=torch.long)
    for k, n in enumerate(grid):
        if n == 1:
            continue
        units = (coords[:, k] + 1) * n / 2
        internal = torch.arange(1, n, dtype=coords.dtype)
        distance = (units[:, None] - internal).abs().min(dim=1).values
        in_band *= 1 + (distance < width / 2).long()
    reads = torch.bincount(blend.point, minlength=2000)
    assert torch.equal(reads, in_band)
    # Outside every band a point is its own cell's, at its own local coordinate.
    alone = (in_band == 1)[blend.point]
    cell, local = locate_cells(coords, grid)
    assert torch.equal(blend.cell[alone], cell[blend.point[alone]])
    torch.testing.assert_close(blend.local[alone], local[blend.point[alone]])


def test_a_narrow_blend_has_no_seam_and_a_full_width_one_is_the_classic_blend():
    # Across the border x = 0 of 4 cells: a narrow blend of distinct cell functions
    # moves in steps of the sampling's order (no jump), and as the band widens to a whole
    # cell the sparse form meets the dense centre-to-centre blend.
    x = torch.linspace(-0.2, 0.2, 4001, dtype=torch.float64)
    line = torch.stack([x, torch.full_like(x, 0.3)], dim=1)
    values, _ = _blended(_cell_function, line, (4, 4), 0.25)
    assert float(values.diff(dim=0).abs().max()) < 0.01
    hard = _cell_function(*locate_cells(line, (4, 4)))
    assert float(hard.diff(dim=0).abs().max()) > 0.5
    coords = torch.rand(500, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    coords = coords * 2 - 1
    dense, full = _blended(_cell_function, coords, (4, 3), 1.0)
    nearly, sparse = _blended(_cell_function, coords, (4, 3), 1 - 1e-9)
    assert full.point is None and sparse.point is not None
    torch.testing.assert_close(nearly, dense)


def test_a_blend_width_outside_zero_to_one_is_refused():
    for width in (0.0, 1.5):
        with pytest.raises(ValueError, match="width"):
            blended_cells(torch.zeros(1, 2), (2, 2), width)
