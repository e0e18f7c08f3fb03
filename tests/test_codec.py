"""skinr.codec: LatentCodec's stream round trip, its rate control, and hostile streams."""

import struct
import zlib

import numpy as np
import pytest

import skinr

pytest.importorskip("constriction", reason="skinr.codec needs the codec extra")
from skinr.codec import CODEC_VERSION, LatentCodec, StreamError, decode, encode
from skinr.codec._bytes import MAGIC, Writer, seal
from skinr.signals import to_coords

FAST = dict(n_levels=3, width=8, depth=1, arm_width=4, max_iter=40, random_state=0)


@pytest.fixture(scope="module")
def photo():
    # An odd-sized RGB image: no side is a multiple of a block or a power of two.
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:13, 0:17] / 8.0
    image = np.stack([np.sin(3 * xx + yy), np.cos(2 * yy), xx * yy], -1) * 0.4 + 0.5
    image += 0.02 * rng.standard_normal(image.shape)
    return to_coords(image, pixel_centers=True)


@pytest.fixture(scope="module")
def fitted(photo):
    X, y = photo
    return LatentCodec(**FAST).fit(X, y)


def test_a_stream_decodes_to_the_fitted_model(fitted, photo):
    X, y = photo
    data = encode(fitted)
    assert len(data) == fitted.stream_bytes_
    assert fitted.bits_per_sample_ == pytest.approx(8 * len(data) / (13 * 17))
    decoded = decode(data)
    np.testing.assert_array_equal(decoded.predict(X), fitted.predict(X))
    assert decoded.render((26, 34)).shape == (26, 34, 3)
    assert decoded.score(X, y) == fitted.score(X, y)
    # The stream is the model: encoding the decoded model writes the same bytes.
    assert encode(decoded) == data


def test_the_same_seed_writes_the_same_stream(fitted, photo):
    X, y = photo
    assert encode(LatentCodec(**FAST).fit(X, y)) == encode(fitted)


def test_a_larger_rate_weight_writes_fewer_bytes(photo):
    X, y = photo
    sizes = [
        LatentCodec(rate_weight, **FAST).fit(X, y).stream_bytes_ for rate_weight in (0, 1e-4, 1e-2)
    ]
    assert sizes[0] > sizes[1] > sizes[2], sizes


def test_gray_one_dimensional_values_round_trip():
    X, y = to_coords(skinr.datasets.camera(16), pixel_centers=True)
    model = LatentCodec(**FAST).fit(X, y)
    decoded = decode(encode(model))
    assert decoded.predict(X).shape == y.shape
    np.testing.assert_array_equal(decoded.predict(X), model.predict(X))


def test_encode_takes_a_fitted_model(photo):
    with pytest.raises(TypeError, match="fitted skinr estimator"):
        encode("a model")
    with pytest.raises(Exception, match="not fitted"):
        encode(LatentCodec())


def test_a_damaged_stream_is_one_error(fitted):
    data = encode(fitted)
    for damaged in (data[:-3], data[:10], data[:3], data[:-1] + bytes([data[-1] ^ 1])):
        with pytest.raises(StreamError, match="corrupt or not a skinr stream") as error:
            decode(damaged)
        assert "\n" not in str(error.value)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    with pytest.raises(StreamError, match="checksum"):
        decode(bytes(flipped))
    with pytest.raises(StreamError, match="magic"):
        decode(b"PNG0" + data[4:])
    with pytest.raises(TypeError, match="bytes"):
        decode("a string")


def test_a_newer_stream_asks_for_an_upgrade(fitted):
    data = bytearray(encode(fitted))
    data[4] = CODEC_VERSION + 1
    with pytest.raises(StreamError, match="Upgrade skinr"):
        decode(bytes(data))


def test_a_version_1_stream_still_decodes(fitted, photo):
    # Version 2 added streams of other estimators; LatentCodec's kind is unchanged.
    from skinr.codec._bytes import unseal

    X, _ = photo
    version, kind, body = unseal(encode(fitted), CODEC_VERSION)
    assert (version, kind) == (CODEC_VERSION, 1)
    np.testing.assert_array_equal(decode(seal(1, 1, body)).predict(X), fitted.predict(X))
    with pytest.raises(StreamError, match="cannot hold a model"):
        decode(seal(1, 2, body))


def _claiming(sides):
    w = Writer()
    w.uint(len(sides))
    for n in sides:
        w.uint(n)
    return seal(CODEC_VERSION, 1, w.getvalue() + b"\x00" * 16)


def test_a_header_claiming_a_huge_image_is_refused_before_allocation():
    with pytest.raises(StreamError, match="max_samples"):
        decode(_claiming((60000, 60000)))
    with pytest.raises(StreamError, match=r"samples=70000 is outside"):
        decode(_claiming((70000, 2)))
    with pytest.raises(StreamError, match="max_samples"):
        decode(_claiming((64, 64)), max_samples=1000)


def test_a_stream_cut_inside_its_header_is_refused():
    body = Writer()
    body.uint(2)
    body.uint(13)
    with pytest.raises(StreamError, match="ends inside"):
        decode(seal(CODEC_VERSION, 1, body.getvalue()))
    preamble = struct.pack("<4sBBI", MAGIC, CODEC_VERSION, 9, zlib.crc32(b""))
    with pytest.raises(StreamError, match="unknown stream kind"):
        decode(preamble)


def test_signals_of_more_than_three_dimensions_are_refused_before_training():
    X = np.random.default_rng(0).random((50, 4))
    model = LatentCodec(**FAST)
    with pytest.raises(ValueError, match="at most 3 coordinate dimensions"):
        model.fit(X, X[:, 0])
    assert not [name for name in vars(model) if name.endswith("_")]


def test_cli_encode_writes_a_stream_that_decode_renders_at_any_scale(tmp_path):
    pytest.importorskip("matplotlib")
    from skinr.cli import main

    out = tmp_path / "enc"
    assert main(["encode", "--size", "16", "--steps", "20", "--quiet", "--out", str(out)]) == 0
    stream = out / "camera.skc"
    assert (out / "encode.png").is_file()
    model = decode(stream.read_bytes())
    assert model.grid_shape_ == (16, 16)
    target = tmp_path / "big.png"
    assert main(["decode", str(stream), "--scale", "2", "--out", str(target)]) == 0
    picture = skinr.io.read(target).values
    assert picture.shape == (32, 32)


def test_cli_refuses_a_rate_below_the_header_before_fitting(tmp_path, capsys):
    from skinr.cli import main

    assert main(["encode", "--size", "16", "--bpp", "0.5", "--out", str(tmp_path)]) == 2
    assert "below the stream's" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.skc"))
