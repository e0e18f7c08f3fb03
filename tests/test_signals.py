"""Array signals <-> (X, y) conversions and masks."""

import numpy as np
import pytest

from skinr.signals import box_mask, grid, random_mask, to_array, to_coords


def test_grid_order_and_endpoints():
    X = grid((2, 3))
    np.testing.assert_array_equal(X[:, 0], [-1, -1, -1, 1, 1, 1])
    np.testing.assert_array_equal(X[:, 1], [-1, 0, 1, -1, 0, 1])
    X = grid((3,), bounds=(0, 10))
    np.testing.assert_array_equal(X.ravel(), [0, 5, 10])
    X = grid((2, 2), bounds=[(0, 1), (-2, 2)])
    np.testing.assert_array_equal(X[-1], [1, 2])


@pytest.mark.parametrize(
    ("shape", "channel_axis", "n_dims", "y_shape"),
    [
        ((50,), "auto", 1, (50,)),
        ((50, 2), -1, 1, (50, 2)),
        ((8, 6), "auto", 2, (48,)),
        ((8, 6, 3), "auto", 2, (48, 3)),
        ((4, 8, 6, 3), "auto", 3, (192, 3)),
        ((4, 5, 6), None, 3, (120,)),
        ((4, 5, 3), None, 3, (60,)),
    ],
)
def test_to_coords_and_back(shape, channel_axis, n_dims, y_shape):
    array = np.random.RandomState(0).random_sample(shape)
    X, y = to_coords(array, channel_axis=channel_axis, pixel_centers=False)
    assert X.shape == (y_shape[0], n_dims) and y.shape == y_shape
    spatial = shape if len(y_shape) == 1 else shape[:-1]
    np.testing.assert_array_equal(to_array(y, spatial), array)
    # The value at a coordinate is the array entry at the matching index.
    index = tuple(s - 1 for s in spatial)
    np.testing.assert_array_equal(X[-1], np.ones(n_dims))
    np.testing.assert_array_equal(y[-1], array[index])


def test_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        to_coords(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="needs 6"):
        to_array(np.zeros(5), (2, 3))
    with pytest.raises(ValueError, match="one pair per dimension"):
        grid((2, 2), bounds=[(0, 1)] * 3)
    with pytest.raises(ValueError, match="channel_axis"):
        to_coords(np.zeros((3, 3, 3)), channel_axis=0)


def test_masks():
    mask = random_mask((100, 100), keep=0.3, random_state=0)
    assert mask.dtype == bool and abs(mask.mean() - 0.3) < 0.02
    np.testing.assert_array_equal(mask, random_mask((100, 100), keep=0.3, random_state=0))
    box = box_mask((4, 4), (1, 1), (3, 4))
    assert box.sum() == 6 and box[1, 3] and not box[0, 0]
    with pytest.raises(ValueError, match="keep"):
        random_mask((3,), keep=0)


def test_pixel_centers_tile_the_bounds():
    np.testing.assert_allclose(grid(4, pixel_centers=True)[:, 0], [-0.75, -0.25, 0.25, 0.75])
    fine = grid((6, 4), bounds=[(0, 3), (-1, 1)], pixel_centers=True)
    np.testing.assert_allclose(np.unique(fine[:, 0]), [0.25, 0.75, 1.25, 1.75, 2.25, 2.75])
    # Area-downsampling by 2 along each axis: the centre of each 2 x 2 block of fine
    # pixels is the coarse pixel's centre, so both resolutions share one frame.
    fine, coarse = grid((8, 8), pixel_centers=True), grid((4, 4), pixel_centers=True)
    blocks = fine.reshape(4, 2, 4, 2, 2).mean(axis=(1, 3)).reshape(-1, 2)
    np.testing.assert_allclose(blocks, coarse)
    # The endpoint convention does not have this property.
    ends = grid((8, 8)).reshape(4, 2, 4, 2, 2).mean(axis=(1, 3)).reshape(-1, 2)
    assert not np.allclose(ends, grid((4, 4)))
    X, y = to_coords(np.arange(6.0).reshape(2, 3), pixel_centers=True)
    np.testing.assert_allclose(X, grid((2, 3), pixel_centers=True))
    np.testing.assert_array_equal(y, np.arange(6.0))


def test_to_coords_lays_areas_on_pixel_centres_and_points_on_endpoints():
    """The default follows the user guide: images, volumes and video are pixel
    centres, 1-D signals (audio) endpoints; either can be asked for."""
    from skinr.signals import grid, to_coords

    image_X, _ = to_coords(np.zeros((4, 6)))
    np.testing.assert_array_equal(image_X, grid((4, 6), pixel_centers=True))
    rgb_X, _ = to_coords(np.zeros((4, 6, 3)))
    np.testing.assert_array_equal(rgb_X, grid((4, 6), pixel_centers=True))
    audio_X, _ = to_coords(np.zeros(5))
    np.testing.assert_array_equal(audio_X[:, 0], [-1.0, -0.5, 0.0, 0.5, 1.0])
    endpoints, _ = to_coords(np.zeros((4, 6)), pixel_centers=False)
    assert endpoints[0].tolist() == [-1.0, -1.0] and endpoints[-1].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="pixel_centers must be"):
        to_coords(np.zeros((4, 6)), pixel_centers="centres")
