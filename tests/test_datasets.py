"""Offline sample signals."""

import numpy as np
import pytest

from skinr import datasets


def test_camera_ships_with_package():
    image = datasets.camera()
    assert image.shape == (512, 512) and 0 <= image.min() and image.max() <= 1
    small = datasets.camera(128)
    assert small.shape == (128, 128)
    np.testing.assert_allclose(small[0, 0], image[:4, :4].mean())


def test_camera_equals_scikit_image_camera():
    data = pytest.importorskip("skimage.data")
    np.testing.assert_array_equal(datasets.camera() * 255, data.camera())


def test_astronaut():
    pytest.importorskip("skimage")
    assert datasets.astronaut(64).shape == (64, 64, 3)


def test_perlin_frequency_controls_detail():
    low = datasets.perlin_noise((128, 128), frequency=2, random_state=0)
    high = datasets.perlin_noise((128, 128), frequency=32, random_state=0)
    assert low.min() == 0 and low.max() == 1
    np.testing.assert_array_equal(low, datasets.perlin_noise((128, 128), 2, random_state=0))

    def roughness(image):
        return np.abs(np.diff(image, axis=1)).mean()

    assert roughness(high) > 4 * roughness(low)
    octaves = datasets.perlin_noise((64, 64), 4, octaves=3, random_state=1)
    assert octaves.shape == (64, 64)


def test_audio_and_volume():
    clip = datasets.audio_clip(1000, random_state=0)
    assert clip.shape == (1000,) and np.abs(clip).max() == pytest.approx(1.0)
    torus = datasets.occupancy_volume(16)
    assert torus.shape == (16, 16, 16) and 0 < torus.mean() < 0.5
    assert torus[8, 8, 8] == 0  # the hole of the torus
    assert datasets.occupancy_volume(16, "sphere")[8, 8, 8] == 1
    with pytest.raises(ValueError, match="shape"):
        datasets.occupancy_volume(8, "cube")


def test_resize_non_integer_factor():
    image = datasets.camera(100)
    assert image.shape == (100, 100) and 0 <= image.min() and image.max() <= 1


def test_ellipse_phantoms_are_seeded_head_slices_in_the_unit_range():
    phantoms = datasets.ellipse_phantoms(3, 32, random_state=0)
    assert phantoms.shape == (3, 32, 32) and phantoms.min() == 0 and phantoms.max() <= 1
    np.testing.assert_array_equal(phantoms, datasets.ellipse_phantoms(3, 32, random_state=0))
    assert not np.array_equal(phantoms[0], phantoms[1])
    assert np.all(phantoms[:, 0, :] == 0) and np.all(phantoms[:, :, 0] == 0)  # outside the skull
    # The skull is the brightest ring; the inner ellipses make several levels inside it.
    assert all(len(np.unique(p)) > 4 for p in phantoms)
    with pytest.raises(ValueError, match="n >= 1"):
        datasets.ellipse_phantoms(0)
