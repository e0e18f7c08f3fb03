"""Hostile model files, generated from a valid one: every header field pushed to
extremes, every tensor's dtype and shape changed, random bit flips. ``load`` must
refuse each with skinr's one error, or return a model that predicts finite values,
within a bounded time. The checksum is recomputed for every edit (an attacker can: it
guards integrity, not authenticity), so the checks behind it are what is tested; a
new field added to the format is pushed to extremes here without a new test.
"""

import contextlib
import json
import math
import os
import signal

import numpy as np
import pytest
import torch
from safetensors.torch import load as decode
from safetensors.torch import save as encode

import skinr
from skinr import persistence
from skinr.codec import LatentCodec

from .conftest import ALL_ESTIMATORS, make_fast

EXTREMES = [10**7, 10**30, -1, 0, "2", None, math.nan, math.inf, 1e308, [], {"x": 1}]
DTYPES = [torch.bfloat16, torch.float16, torch.int8, torch.bool, torch.float64, torch.int64]
SECONDS_PER_CASE = 5


@pytest.fixture(scope="module")
def valid(tmp_path_factory, image_signal):
    return _valid(skinr.SIREN, tmp_path_factory, image_signal)


def _valid(Estimator, tmp_path_factory, image_signal):
    """A valid file of ``Estimator`` fitted to the test image, read apart."""
    X, y, _ = image_signal
    path = tmp_path_factory.mktemp("fuzz") / "valid.skinr"
    make_fast(Estimator).fit(X, y).save(path)
    data = path.read_bytes()
    header = json.loads(_metadata(data)["header"])
    return data, header, decode(data), X


def _metadata(data: bytes) -> dict:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size])["__metadata__"]


def _written(header: dict | str, tensors: dict) -> bytes:
    text = header if isinstance(header, str) else json.dumps(header)
    checksum = persistence._checksum(text, tensors)
    return encode(tensors, metadata={"format": "skinr-model", "header": text, "sha256": checksum})


def _cases(valid):
    data, header, tensors, _ = valid
    for section in ("params", "fitted"):
        for name in header[section]:
            for value in EXTREMES:
                edited = json.loads(json.dumps(header))
                edited[section][name] = value
                yield f"{section}.{name}={value!r}", _written(edited, tensors)
            edited = json.loads(json.dumps(header))
            del edited[section][name]
            yield f"{section}.{name} missing", _written(edited, tensors)
    for value in ("meta", "bogus:0", "cuda:99999999999"):
        edited = json.loads(json.dumps(header))
        edited["fitted"]["device_"] = value
        yield f"device_={value}", _written(edited, tensors)
    yield "header nested 100,000 deep", _written("[" * 100_000 + "]" * 100_000, tensors)
    for name, tensor in tensors.items():
        for dtype in DTYPES:
            if tensor.dtype != dtype:
                yield f"{name} as {dtype}", _written(header, {**tensors, name: tensor.to(dtype)})
        for shape in ((), (*tensor.shape, 1), (0,)):
            changed = torch.zeros(shape, dtype=tensor.dtype)
            yield f"{name} of shape {shape}", _written(header, {**tensors, name: changed})
        if tensor.is_floating_point():
            poisoned = tensor.clone().reshape(-1)
            poisoned[0] = math.nan
            yield (
                f"{name} holding NaN",
                _written(header, {**tensors, name: poisoned.view_as(tensor)}),
            )
    yield "header size claimed 2**60", (2**60).to_bytes(8, "little") + data[8:]
    yield "truncated", data[: len(data) // 2]
    yield "empty", b""
    rng = np.random.default_rng(0)
    for _ in range(30):
        flipped = bytearray(data)
        bit = int(rng.integers(len(data) * 8))
        flipped[bit // 8] ^= 1 << (bit % 8)
        yield f"bit {bit} flipped", bytes(flipped)


class _PastDeadline(BaseException):
    """Not an Exception: load turns every Exception into its one refusal, and a case
    that runs past its deadline must fail, not count as refused."""


@contextlib.contextmanager
def _deadline(seconds):
    def expire(signum, frame):
        raise _PastDeadline(f"load ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("Estimator", ALL_ESTIMATORS, ids=lambda cls: cls.__name__)
def test_hostile_files_are_refused_in_one_line_or_load_a_working_model(
    Estimator, tmp_path, tmp_path_factory, image_signal
):
    if Estimator is LatentCodec:
        pytest.importorskip("constriction", reason="LatentCodec needs the codec extra")
    valid = _valid(Estimator, tmp_path_factory, image_signal)
    X = valid[3]
    outcomes = {"refused": 0, "loaded": 0}
    for label, data in _cases(valid):
        path = tmp_path / "hostile.skinr"
        path.write_bytes(data)
        try:
            with _deadline(SECONDS_PER_CASE):
                outcome = _load_and_predict(path, X[:8], label)
        except _PastDeadline as late:
            pytest.fail(f"{label}: {late}")
        outcomes[outcome] += 1
    assert outcomes["refused"] > 100 and outcomes["loaded"] > 0, outcomes


def _load_and_predict(path, X, label) -> str:
    """'refused' (in one line) or 'loaded' (and predicts finite values); else fails."""
    try:
        model = skinr.load(path)
    except ValueError as error:
        assert "\n" not in str(error), label
        return "refused"
    except Exception as error:
        pytest.fail(f"{label}: {type(error).__name__} escaped load: {error}")
    try:
        predicted = model.predict(X)
    except Exception as error:
        pytest.fail(f"{label}: loaded, then predict raised {type(error).__name__}: {error}")
    assert np.isfinite(predicted).all(), label
    return "loaded"


def test_a_structure_far_larger_than_its_file_is_refused_before_it_is_built(valid, tmp_path):
    _, header, tensors, _ = valid
    edited = json.loads(json.dumps(header))
    edited["params"]["depth"] = 10**7
    path = tmp_path / "deep.skinr"
    path.write_bytes(_written(edited, tensors))
    with _deadline(10), pytest.raises(ValueError, match="far more parts than the file"):
        skinr.load(path)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    path = tmp_path / "pipe.skinr"
    os.mkfifo(path)
    with _deadline(10), pytest.raises(ValueError, match="not a regular file"):
        skinr.load(path)


@pytest.mark.parametrize("target", ["", "fifo"])
def test_save_refuses_an_empty_path_or_a_fifo(valid, tmp_path, target):
    model = skinr.load(_valid_path(valid, tmp_path))
    if target == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
    with pytest.raises(ValueError, match=r"empty|not a regular file"):
        model.save(target)
    if target:
        assert not target.is_file()


def _valid_path(valid, tmp_path):
    path = tmp_path / "valid.skinr"
    path.write_bytes(valid[0])
    return path


@pytest.mark.parametrize(
    "name, value, kind",
    [
        ("first_omega_0_", "2", "finite float"),
        ("first_omega_0_", math.inf, "finite float"),
        ("hidden_omega_0_", [30.0], "finite float"),
        ("n_iter_", 2.5, "int"),
    ],
)
def test_a_fitted_number_of_the_wrong_type_is_refused(valid, tmp_path, name, value, kind):
    """A re-signed file whose documented float / int attribute holds another type
    loaded before (first_omega_0_='2' predicted through a string)."""
    _, header, tensors, _ = valid
    edited = json.loads(json.dumps(header))
    edited["fitted"][name] = value
    path = tmp_path / "edited.skinr"
    path.write_bytes(_written(edited, tensors))
    with pytest.raises(ValueError, match=f"{name}=.* is not an? {kind}"):
        skinr.load(path)


@pytest.mark.parametrize("Estimator", [skinr.EnsembleINR, skinr.MultiHeadReLU])
def test_a_format_3_blended_model_keeps_its_centre_to_centre_blend(
    image_signal, tmp_path, Estimator
):
    """Before format 4 a "smooth" blend ran from cell centre to cell centre; such a file
    has no blend_width and loads as the full-width blend it was fitted with, not as
    today's default."""
    X, y, _ = image_signal
    model = make_fast(Estimator).set_params(blending="smooth", blend_width=1.0).fit(X, y)
    path = tmp_path / "model.skinr"
    model.save(path)
    data = path.read_bytes()
    header, tensors = json.loads(_metadata(data)["header"]), decode(data)
    old = json.loads(json.dumps(header))
    old["format_version"] = 3
    del old["params"]["blend_width"]
    path.write_bytes(_written(old, tensors))
    loaded = skinr.load(path)
    assert loaded.blend_width == 1.0 != Estimator().blend_width
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("Estimator", [skinr.SIREN, skinr.FINER, skinr.LocalGlobalSIREN])
def test_a_format_2_file_from_before_auto_frequencies_loads(image_signal, tmp_path, Estimator):
    """Format 2 files may hold a resolved frequency as the parameter only (saved before
    the "auto" defaults); the loader migrates them, so each network reads its fitted
    attribute alone. Format 3 files must hold it."""
    X, y, _ = image_signal
    model = make_fast(Estimator).fit(X, y)
    path = tmp_path / "model.skinr"
    model.save(path)
    data = path.read_bytes()
    header, tensors = json.loads(_metadata(data)["header"]), decode(data)
    resolved = [
        name for name in ("first_omega_0", "hidden_omega_0", "omega_0") if name in header["params"]
    ]
    old = json.loads(json.dumps(header))
    old["format_version"] = 2
    for name in resolved:
        old["params"][name] = getattr(model, name + "_")
        old["fitted"].pop(name + "_", None)
    path.write_bytes(_written(old, tensors))
    np.testing.assert_array_equal(skinr.load(path).predict(X), model.predict(X))
    # The same header as format 3 lacks what every format-3 file holds.
    old["format_version"] = 3
    path.write_bytes(_written(old, tensors))
    with pytest.raises(ValueError, match="corrupt or not a skinr model"):
        skinr.load(path)
