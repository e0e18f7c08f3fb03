"""Cell grids: index, local coordinates, borders, any dimensionality."""

import pytest
import torch

from skinr._core.sample_layout import distinct_rows
from skinr.estimators.ensemble import EnsembleNet
from skinr.nn.cells import (
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
