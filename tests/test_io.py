"""Signal files: every reader's conventions, units and size limit; writers round-trip."""

import warnings

import numpy as np
import pytest

from skinr.io import Signal, SignalFileError, read, write
from skinr.signals import to_coords

Image = pytest.importorskip("PIL.Image")


def test_eight_and_sixteen_bit_grey_images_scale_to_unit_range(tmp_path):
    values = np.array([[0, 1000, 65535], [30000, 2, 40000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    signal = read(tmp_path / "deep.png")
    assert signal.kind == "image" and signal.dtype == "uint16" and not signal.has_channels
    np.testing.assert_allclose(signal.values, values / 65535)
    Image.fromarray((values // 257).astype(np.uint8)).save(tmp_path / "byte.png")
    np.testing.assert_allclose(read(tmp_path / "byte.png").values, (values // 257) / 255)


def test_alpha_is_composited_on_white_like_scikit_image(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[0, 0, 3], rgba[0, 1, 3], rgba[1, :, 3] = 255, 0, 128
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    values = read(tmp_path / "alpha.png").values
    assert values.shape == (2, 2, 3)
    np.testing.assert_allclose(values[0, 0], [1, 0, 0])  # opaque red
    np.testing.assert_allclose(values[0, 1], [1, 1, 1])  # transparent: white
    skimage_color = pytest.importorskip("skimage.color")
    np.testing.assert_allclose(values, skimage_color.rgba2rgb(rgba / 255.0), atol=1e-12)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((10, 30, 3), dtype=np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert read(tmp_path / "rotated.jpg").values.shape == (30, 10, 3)


def test_audio_spacing_is_seconds_and_coordinates_carry_them(tmp_path):
    from scipy.io import wavfile

    samples = (np.sin(np.linspace(0, 20, 800)) * 20000).astype(np.int16)
    wavfile.write(tmp_path / "mono.wav", 8000, samples)
    signal = read(tmp_path / "mono.wav")
    assert signal.kind == "audio" and signal.spacing == (1 / 8000,) and signal.units == ("s",)
    np.testing.assert_allclose(signal.values, samples / 32767, atol=1e-4)
    X, _ = signal.to_coords()
    assert X[0, 0] == pytest.approx(0.5 / 8000) and X[-1, 0] == pytest.approx(0.1 - 0.5 / 8000)


def test_stereo_wav_keeps_its_channels(tmp_path):
    stereo = np.random.RandomState(0).uniform(-1, 1, (300, 2))
    write(tmp_path / "stereo.wav", stereo, kind="audio", spacing=(1 / 16000,))
    signal = read(tmp_path / "stereo.wav")
    assert signal.has_channels and signal.values.shape == (300, 2)
    np.testing.assert_allclose(signal.values, stereo, atol=1e-4)
    X, y = signal.to_coords()
    assert X.shape == (300, 1) and y.shape == (300, 2)


def test_to_coords_warns_when_it_guesses_stereo_is_an_image():
    with pytest.warns(UserWarning, match="channel_axis=-1"):
        X, _ = to_coords(np.zeros((100, 2)))
    assert X.shape == (200, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_coords(np.zeros((100, 2)), channel_axis=-1)
        to_coords(np.zeros((10, 12)))  # an ordinary image: no guess, no warning
        to_coords(np.zeros((10, 12, 3)))


def test_volumes_from_numpy_nifti_and_tiff(tmp_path):
    volume = np.random.RandomState(0).random_sample((4, 5, 6))
    np.save(tmp_path / "v.npy", volume)
    np.savez(tmp_path / "v.npz", volume=volume)
    for name in ("v.npy", "v.npz"):
        signal = read(tmp_path / name)
        assert signal.kind == "volume" and np.array_equal(signal.values, volume)
    if pytest.importorskip("nibabel"):
        write(tmp_path / "v.nii.gz", volume, kind="volume", spacing=(0.5, 0.5, 2.0))
        signal = read(tmp_path / "v.nii.gz")
        assert signal.spacing == (0.5, 0.5, 2.0) and signal.units == ("mm",) * 3
        assert signal.bounds[2] == (0.0, 12.0)
        np.testing.assert_allclose(signal.values, volume, atol=1e-6)
    pytest.importorskip("tifffile")
    write(tmp_path / "v.tif", volume, kind="volume")
    assert read(tmp_path / "v.tif").values.shape == (4, 5, 6)


def test_video_round_trip_with_frame_rate(tmp_path):
    pytest.importorskip("av")
    video = np.random.RandomState(0).random_sample((3, 8, 10, 3))
    write(tmp_path / "clip.mp4", video, kind="video", spacing=(0.1, 1, 1))
    signal = read(tmp_path / "clip.mp4")
    assert signal.kind == "video" and signal.values.shape == (3, 8, 10, 3)
    assert signal.spacing[0] == pytest.approx(0.1) and signal.units == ("s", "px", "px")


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".png", ".wav", ".tif"])
def test_declared_sizes_are_checked_before_decoding(tmp_path, suffix):
    path = tmp_path / f"big{suffix}"
    if suffix == ".npy":
        np.save(path, np.zeros((20, 20)))
    elif suffix == ".npz":
        np.savez_compressed(path, a=np.zeros((20, 20)))
    elif suffix == ".png":
        Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(path)
    elif suffix == ".wav":
        write(path, np.zeros(400), kind="audio", spacing=(1e-3,))
    else:
        pytest.importorskip("tifffile")
        write(path, np.zeros((20, 20)), kind="image")
    with pytest.raises(SignalFileError, match="more than max_samples=100"):
        read(path, max_samples=100)


def test_a_npy_header_claiming_terabytes_is_refused_without_allocating(tmp_path):
    from numpy.lib import format as npy_format

    path = tmp_path / "liar.npy"
    with open(path, "wb") as handle:
        npy_format.write_array_header_1_0(
            handle, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
        )
        handle.write(b"\0" * 64)
    with pytest.raises(SignalFileError, match="more than max_samples"):
        read(path)


def test_bad_files_are_one_clear_error(tmp_path):
    (tmp_path / "fake.wav").write_bytes(b"RIFF nonsense")
    (tmp_path / "obj.npy").write_bytes(b"\x93NUMPY")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for name, message in [
        ("missing.png", "no such file"),
        ("fake.wav", "not a readable .wav file"),
        ("obj.npy", "not a readable .npy file"),
        ("objects.npy", "not a readable .npy file"),  # pickles are never loaded
    ]:
        with pytest.raises(SignalFileError, match=message):
            read(tmp_path / name)


def test_write_clips_and_refuses_unknown_kinds(tmp_path):
    write(tmp_path / "clipped.png", np.array([[-1.0, 2.0]]), kind="image")
    assert read(tmp_path / "clipped.png").values.tolist() == [[0.0, 1.0]]
    with pytest.raises(ValueError, match="kind"):
        write(tmp_path / "x.png", np.zeros((2, 2)), kind="picture")
    with pytest.raises(ValueError, match="needs kind"):
        write(tmp_path / "x.png", np.zeros((2, 2)))


def test_signal_coordinates_tile_the_box():
    signal = Signal(np.zeros((2, 4)), "image", (1.0, 1.0), ("px", "px"), False)
    X, _ = signal.to_coords()
    assert X[:, 0].min() == 0.5 and X[:, 1].max() == 3.5
