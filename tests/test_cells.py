"""Cell grids: index, local coordinates, borders, any dimensionality."""

import pytest
import torch

from skinr._cells import cell_bounds, locate_cells, n_cells_total


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
