"""skinr.codec.encode / decode of any fitted estimator: quantised weights, range-coded."""

import json
import zlib

import numpy as np
import pytest

import skinr

pytest.importorskip("constriction", reason="skinr.codec needs the codec extra")
from skinr.codec import CODEC_VERSION, LatentCodec, StreamError, decode, encode
from skinr.codec._bytes import MODEL_KIND, Writer, seal
from skinr.codec._model_stream import _HEADER_WORDS, quantised_copy
from skinr.inverse import AreaDownsample
from skinr.persistence import contents
from skinr.signals import to_coords


@pytest.fixture(scope="module")
def photo():
    yy, xx = np.mgrid[0:12, 0:14] / 6.0
    image = np.stack([np.sin(3 * xx + yy), np.cos(2 * yy), xx * yy], -1) * 0.4 + 0.5
    return to_coords(image, pixel_centers=True)


@pytest.fixture(scope="module")
def siren(photo):
    X, y = photo
    return skinr.SIREN(width=24, depth=2, max_iter=60, random_state=0).fit(X, y)


SMALL = {
    "Grid": dict(resolution=8),
    "HashGrid": dict(n_levels=4, base_resolution=4, log2_table_size=8, width=16),
    "FourierFeatureMLP": dict(width=16, depth=2, n_frequencies=8),
    "LocalGlobalSIREN": dict(n_params=3000, partitions=(2, 2)),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_stream_decodes_to_the_quantised_model(name, photo):
    # Buffers (Fourier frequencies), integer tables and fitted arrays (LocalGlobalSIREN's
    # partitions) travel losslessly; parameters decode to exactly what quantising gives.
    X, y = photo
    model = getattr(skinr, name)(**SMALL[name], max_iter=20, random_state=0).fit(X, y)
    data = encode(model, bits=10)
    decoded = decode(data)
    assert type(decoded) is type(model)
    np.testing.assert_array_equal(decoded.predict(X), quantised_copy(model, 10).predict(X))
    assert decoded.score(X, y) > model.score(X, y) - 1.0
    assert decoded.render((24, 28)).shape == (24, 28, 3)
    for name_, value in vars(model).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(getattr(decoded, name_), value)


def test_more_bits_cost_more_bytes_and_lose_less(siren, photo):
    X, _y = photo
    sizes, errors = [], []
    for bits in (3, 6, 9, 12):
        data = encode(siren, bits=bits)
        sizes.append(len(data))
        errors.append(np.abs(decode(data).predict(X) - siren.predict(X)).max())
    assert sizes == sorted(sizes) and len(set(sizes)) == 4, sizes
    assert errors == sorted(errors, reverse=True), errors
    # Far below the 32-bit model file.
    state = siren.module_.state_dict().values()
    assert len(encode(siren, bits=8)) < 0.4 * sum(4 * t.numel() for t in state)


def test_a_stream_holds_the_model_not_its_training_records(siren):
    decoded = decode(encode(siren))
    assert not hasattr(decoded, "loss_curve_") and not hasattr(decoded, "history_")
    assert decoded.get_params() == siren.get_params()
    assert decoded.hidden_omega_0_ == siren.hidden_omega_0_
    assert decoded.device_ == "cpu"
    assert encode(siren) == encode(siren, bits=12)  # the default, and deterministic


def test_a_psnr_target_takes_the_fewest_bits_that_reach_it(siren, photo):
    X, y = photo
    target = siren.score(X, y) - 0.5
    data = encode(siren, psnr=target, X=X, y=y)
    assert decode(data).score(X, y) >= target
    # One eighth of a bit less misses the target: the search found the fewest.
    fewer = [b / 8 for b in range(8, 129) if len(encode(siren, bits=b / 8)) == len(data)]
    assert fewer, "the chosen bits are on the search's grid of eighths"
    bits = min(fewer)
    assert quantised_copy(siren, bits - 1 / 8).score(X, y) < target
    with pytest.raises(ValueError, match="no stream of it reaches"):
        encode(siren, psnr=siren.score(X, y) + 1, X=X, y=y)
    with pytest.raises(ValueError, match="pass X and y"):
        encode(siren, psnr=20.0)


def test_a_size_target_takes_the_most_bits_that_fit(siren):
    size = len(encode(siren, bits=7))
    data = encode(siren, size=size)
    assert size - 40 <= len(data) <= size
    smallest = len(encode(siren, bits=1 / 8))
    with pytest.raises(ValueError, match=f"smallest stream is {smallest} bytes"):
        encode(siren, size=smallest - 1)


def test_bad_arguments_are_refused_in_one_line(siren, photo):
    X, y = photo
    for bits in (0, -1, 17, float("nan"), True, "8"):
        with pytest.raises(ValueError, match=r"bits must be a number in \(0, 16\]"):
            encode(siren, bits=bits)
    with pytest.raises(ValueError, match="at most one of bits, psnr and size"):
        encode(siren, bits=8, size=1000)
    with pytest.raises(ValueError, match="size must be a positive number of bytes"):
        encode(siren, size=0)
    with pytest.raises(Exception, match="not fitted"):
        encode(skinr.SIREN())
    with pytest.raises(TypeError, match="fitted skinr estimator"):
        encode(object())
    codec = LatentCodec(n_levels=2, width=4, depth=1, arm_width=4, max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match="rate_weight"):
        encode(codec, bits=8)


def test_a_model_fitted_through_an_operator_round_trips():
    rng = np.random.default_rng(0)
    small = rng.random((4, 4))
    operator = AreaDownsample(2)
    X, _ = to_coords(small, pixel_centers=True)
    model = skinr.Grid(resolution=8, max_iter=10, operator=operator).fit(X, small.reshape(-1))
    decoded = decode(encode(model, bits=12))
    assert type(decoded.operator_) is AreaDownsample
    np.testing.assert_allclose(decoded.render((8, 8)), model.render((8, 8)), atol=1e-3)


def _stream(header: dict, entries: list, words=b"") -> bytes:
    """A model stream with the given header and (name, dtype code, shape, raw bytes)
    lossless tensors."""
    w = Writer()
    compressor = zlib.compressobj(9, zdict=_HEADER_WORDS)
    w.raw(compressor.compress(json.dumps(header).encode()) + compressor.flush())
    w.uint(len(entries))
    for name, code, shape, data in entries:
        w.raw(name.encode())
        w.uint(code)
        w.uint(len(shape))
        for n in shape:
            w.uint(n)
        w.uint(0)
        w.raw(zlib.compress(data))
    w.raw(words)
    return seal(CODEC_VERSION, MODEL_KIND, w.getvalue())


def _lossless(model):
    header, tensors = contents(model)
    entries = []
    for key, tensor in tensors.items():
        code = 1 if tensor.dtype.is_floating_point and tensor.element_size() == 8 else 0
        data = tensor.numpy().tobytes()
        entries.append((key, code, tuple(tensor.shape), data))
    return header, entries


def test_a_hand_written_lossless_stream_is_read(siren, photo):
    # The helper below writes valid streams: the refusals after it are the stream's faults.
    X, _ = photo
    header, entries = _lossless(siren)
    np.testing.assert_array_equal(decode(_stream(header, entries)).predict(X), siren.predict(X))


def test_a_stream_claiming_huge_tensors_is_refused_before_allocation(siren):
    header, entries = _lossless(siren)
    huge = [*entries[:-1], (entries[-1][0], 0, (1 << 20, 1 << 20), b"")]
    with pytest.raises(StreamError, match="max_weights"):
        decode(_stream(header, huge))
    with pytest.raises(StreamError, match="max_weights"):
        decode(_stream(header, entries), max_weights=100)
    # A shape that differs from the declared structure's, with bytes to match it.
    key, code, shape, _ = entries[-1]
    wrong = [*entries[:-1], (key, code, (shape[0] + 1,), bytes(4 * (shape[0] + 1)))]
    with pytest.raises(StreamError, match="the structure needs"):
        decode(_stream(header, wrong))
    # Bytes that are not the shape's.
    short = [*entries[:-1], (key, code, shape, b"\x00" * 3)]
    with pytest.raises(StreamError, match="does not hold its shape's"):
        decode(_stream(header, short))


def test_a_hostile_header_is_one_error(siren):
    header, entries = _lossless(siren)
    for change, match in (
        ({"class": "Pickle"}, "not a skinr estimator"),
        ({"params": {**header["params"], "width": -3}}, "parameters are invalid"),
        ({"format_version": 99}, "Upgrade skinr"),
        ({"format": "other"}, "not a skinr header"),
    ):
        with pytest.raises(StreamError, match=match) as error:
            decode(_stream({**header, **change}, entries))
        assert "\n" not in str(error.value)


def test_a_damaged_model_stream_is_one_error(siren):
    data = encode(siren)
    for damaged in (data[:-5], data[:40], data[:-1] + bytes([data[-1] ^ 1])):
        with pytest.raises(StreamError, match="corrupt or not a skinr stream"):
            decode(damaged)


def test_cli_encodes_a_model_file_and_decodes_it_at_any_scale(tmp_path, siren, capsys):
    from skinr.cli import main

    # A model fitted in pixel units, as skinr fit writes them: --psnr is measured in
    # the model's own frame.
    image = skinr.datasets.camera(size=16)
    X, y = to_coords(image, pixel_centers=True)
    model = skinr.Grid(max_iter=30, random_state=0).fit(X * 8, y)
    model.save(tmp_path / "model.skinr")
    skinr.io.write(tmp_path / "camera.png", image, kind="image")
    out = tmp_path / "enc"
    target = model.score(X * 8, y) - 1
    args = ["encode", str(tmp_path / "model.skinr"), "--psnr", f"{target}"]
    assert main([*args, "--reference", str(tmp_path / "camera.png"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "smaller than" in printed and f"dB on {tmp_path / 'camera.png'}" in printed
    stream = (out / "model.skc").read_bytes()
    assert decode(stream).score(X * 8, y) >= target
    big = tmp_path / "big.png"
    assert main(["decode", str(out / "model.skc"), "--scale", "2", "--out", str(big)]) == 0
    assert skinr.io.read(big).values.shape == (32, 32)
    siren.save(tmp_path / "siren.skinr")
    assert main(["encode", str(tmp_path / "siren.skinr"), "--bits", "6", "--out", str(out)]) == 0
    assert len((out / "siren.skc").read_bytes()) == len(encode(siren, bits=6))
    args = ["encode", str(tmp_path / "model.skinr"), "--bits", "4", "--refine", "10"]
    assert main([*args, "--reference", str(tmp_path / "camera.png"), "--out", str(out)]) == 0
    refined = decode((out / "model.skc").read_bytes()).score(X * 8, y)
    assert refined >= decode(encode(model, bits=4)).score(X * 8, y) - 1e-6


def test_cli_refuses_model_options_that_do_not_apply(tmp_path, siren, capsys):
    from skinr.cli import main

    siren.save(tmp_path / "siren.skinr")
    cases = (
        (["--psnr", "30"], "--reference"),
        (["--steps", "5"], "fit a LatentCodec"),
        (["--bits", "4", "--bpp", "2"], "give one of"),
        (["--refine", "5"], "--reference"),
    )
    for extra, message in cases:
        assert main(["encode", str(tmp_path / "siren.skinr"), *extra, "--out", str(tmp_path)]) == 2
        assert message in capsys.readouterr().err
    assert main(["encode", "--bits", "4", "--out", str(tmp_path)]) == 2
    assert "model file" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.skc"))


def test_altered_bodies_with_a_valid_checksum_are_one_error(siren):
    # The CRC recomputed after each change: the parser itself meets the damage.
    from skinr.codec._bytes import unseal

    _, _, body = unseal(encode(siren, bits=6), CODEC_VERSION)
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(60):
        damaged = bytearray(body)
        for at in rng.integers(0, len(body), size=int(rng.integers(1, 4))):
            damaged[at] ^= 1 << int(rng.integers(0, 8))
        try:
            decode(seal(CODEC_VERSION, MODEL_KIND, bytes(damaged)))
            outcomes.add("decoded")  # a flip inside the payload may decode to other weights
        except StreamError as error:
            assert "\n" not in str(error)
            outcomes.add("refused")
    assert "refused" in outcomes


def test_refining_recovers_what_quantising_cost_and_never_loses(siren, photo):
    from skinr.codec._rate import coded

    X, y = photo
    before = siren.predict(X)
    plain = decode(encode(siren, bits=5)).score(X, y)
    stream = encode(siren, bits=5, X=X, y=y, refine=40)
    refined = decode(stream)
    assert refined.score(X, y) > plain + 1.0, (refined.score(X, y), plain)
    # The stream holds the refined weights exactly (they end on the grid it codes).
    model, steps = coded(siren, 5, X, y, 40)
    assert steps is not None
    np.testing.assert_array_equal(refined.predict(X), model.predict(X))
    np.testing.assert_array_equal(siren.predict(X), before)  # the fitted model is untouched
    # Refining keeps the best grid point it meets, plain rounding among them.
    grid = skinr.Grid(max_iter=20, random_state=0).fit(X, y)
    rounded = decode(encode(grid, bits=4)).score(X, y)
    assert decode(encode(grid, bits=4, X=X, y=y, refine=20)).score(X, y) >= rounded


def test_a_refined_psnr_target_needs_no_more_bits(siren, photo):
    X, y = photo
    target = siren.score(X, y) - 3
    plain = encode(siren, psnr=target, X=X, y=y)
    refined = encode(siren, psnr=target, X=X, y=y, refine=20)
    assert decode(refined).score(X, y) >= target
    assert len(refined) <= len(plain)


def test_bad_refine_requests_are_refused_in_one_line(siren, photo):
    X, y = photo
    for refine in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="refine must be a number of steps"):
            encode(siren, refine=refine, X=X, y=y)
    with pytest.raises(ValueError, match="pass X and y"):
        encode(siren, refine=10)
    with pytest.raises(ValueError, match="channel"):
        encode(siren, refine=10, X=X, y=y[:, 0])
    small = np.random.default_rng(0).random((4, 4))
    Xs, _ = to_coords(small, pixel_centers=True)
    through = skinr.Grid(resolution=8, max_iter=5, operator=AreaDownsample(2))
    through.fit(Xs, small.reshape(-1))
    with pytest.raises(ValueError, match="through an operator"):
        encode(through, refine=5, X=Xs, y=small.reshape(-1))
