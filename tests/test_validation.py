"""Bad input: a clear error before training, and no half-fitted estimator."""

import json
import os
import warnings

import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch

import skinr
from skinr._core.validation import resolve_device

from .conftest import make_fast, wrap_training_loss

X_GOOD = np.random.RandomState(0).uniform(-1, 1, (20, 2))
Y_GOOD = np.sin(X_GOOD.sum(axis=1))


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


BAD_FITS = {
    "length mismatch": (X_GOOD, Y_GOOD[:-1], ValueError, "inconsistent numbers of samples"),
    "NaN in X": (_with(X_GOOD, (3, 1), np.nan), Y_GOOD, ValueError, "Input X contains NaN"),
    "inf in X": (_with(X_GOOD, (3, 1), np.inf), Y_GOOD, ValueError, "Input X contains inf"),
    "NaN in y": (X_GOOD, _with(Y_GOOD, 2, np.nan), ValueError, "Input y contains NaN"),
    "empty": (np.zeros((0, 2)), np.zeros(0), ValueError, "0 sample"),
    "1-D X": (Y_GOOD, Y_GOOD, ValueError, "Expected 2D array"),
    "strings": (np.array([["a", "b"]] * 20), Y_GOOD, ValueError, "could not convert"),
    "3-D y": (X_GOOD, np.zeros((20, 2, 2)), ValueError, "y"),
    "X range overflows": (
        np.vstack([X_GOOD, [[1e308, 0.0], [-1e308, 0.0]]]),
        np.r_[Y_GOOD, 0.0, 0.0],
        ValueError,
        "X spans a range that overflows",
    ),
    "y range overflows": (X_GOOD, _with(Y_GOOD, [0, 1], [1e308, -1e308]), ValueError, "y spans"),
}

# Parameters that can only fail against the data or the file system: they must fail
# before the first step, not after checkpoint_every steps of work.
BAD_SETTINGS = {
    "infinite domain": ({"domain": [(-np.inf, np.inf)] * 2}, "must be finite"),
    "checkpoint folder missing": (
        {"checkpoint_path": "/nonexistent-skinr-folder/fit.ckpt"},
        "does not exist",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_bad_settings_raise_before_training(Estimator, case, monkeypatch):
    params, match = BAD_SETTINGS[case]
    trained = []
    monkeypatch.setattr(
        skinr.base.BaseINR, "_training_loop", staticmethod(lambda *a, **k: trained.append(1))
    )
    model = make_fast(Estimator, **params)
    with pytest.raises(ValueError, match=match):
        model.fit(X_GOOD, Y_GOOD)
    assert trained == [] and not [name for name in vars(model) if name.endswith("_")]


def test_unwritable_checkpoint_folder_raises_before_training(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ValueError, match="not writable"):
        make_fast(skinr.SIREN, checkpoint_path=locked / "fit.ckpt").fit(X_GOOD, Y_GOOD)


BAD_SCORES = {
    "NaN in y": (_with(Y_GOOD, 0, np.nan), None, "Input y contains NaN"),
    "y too short": (Y_GOOD[:-1], None, "y has 19 samples but X has 20"),
    "negative weight": (Y_GOOD, -np.ones(20), "Negative values"),
    "weights too short": (Y_GOOD, np.ones(3), "sample_weight.shape"),
    "channels": (np.c_[Y_GOOD, Y_GOOD], None, "channel"),
}


@pytest.mark.parametrize("case", list(BAD_SCORES))
def test_bad_score_input_is_refused(Estimator, case):
    model = make_fast(Estimator, max_iter=2).fit(X_GOOD, Y_GOOD)
    y, weight, match = BAD_SCORES[case]
    with pytest.raises(ValueError, match=match):
        model.score(X_GOOD, y, sample_weight=weight)


def test_predict_where_float32_may_overflow_is_refused(Estimator):
    """FINER, Grid and HashGrid predicted NaN at 1e20 with only a warning."""
    model = make_fast(Estimator, max_iter=2).fit(X_GOOD, Y_GOOD)
    for scale in (1e20, 1e39):
        with pytest.raises(ValueError, match="float32 arithmetic may overflow"):
            model.predict(X_GOOD * scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isfinite(model.predict(X_GOOD[:4] * 1e12)).all()


@pytest.mark.parametrize("case", list(BAD_FITS))
def test_bad_fit_input_raises_and_leaves_no_state(Estimator, case):
    X, y, error, match = BAD_FITS[case]
    model = make_fast(Estimator)
    with pytest.raises(error, match=match):
        model.fit(X, y)
    assert not [name for name in vars(model) if name.endswith("_")]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"device": "meta"}, "not supported"),
        ({"device": "tpu"}, "is not a device"),
        ({"device": "banana"}, "is not a device"),
        ({"lr_schedule": "sometimes"}, "lr_schedule"),
        ({"width": 0}, "width"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_parameters(Estimator, params, match):
    if "width" in params and Estimator is skinr.LocalGlobalSIREN:
        params, match = {"local_width": 0}, "local_width"
    if "width" in params and Estimator is skinr.Grid:  # a grid's size is its lattice
        params, match = {"resolution": 1}, "resolution"
    model = make_fast(Estimator, **params)
    with pytest.raises(ValueError, match=match):
        model.fit(X_GOOD, Y_GOOD)
    assert not [name for name in vars(model) if name.endswith("_")]


def test_cuda_without_gpu_is_one_line(Estimator, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = make_fast(Estimator, device="cuda")
    with pytest.raises(ValueError) as info:
        model.fit(X_GOOD, Y_GOOD)
    message = str(info.value)
    assert "no CUDA device is available" in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__ is False
    assert not [name for name in vars(model) if name.endswith("_")]


def test_device_resolution(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(ValueError, match="only 1 CUDA device"):
        resolve_device("cuda:3")


def test_predict_with_wrong_dimensions(Estimator):
    model = make_fast(Estimator).fit(X_GOOD, Y_GOOD)
    with pytest.raises(ValueError, match=r"X has 3 features, but .* is expecting 2"):
        model.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.predict(_with(X_GOOD, (0, 0), np.nan))


def test_warm_start_with_other_outputs_refuses(Estimator):
    model = make_fast(Estimator, warm_start=True).fit(X_GOOD, Y_GOOD)
    before = model.predict(X_GOOD)
    fitted_state = dict(vars(model))
    with pytest.raises(ValueError, match="warm_start=True: y has 2 outputs"):
        model.fit(X_GOOD, np.stack([Y_GOOD, Y_GOOD], axis=1))
    assert vars(model) == fitted_state
    np.testing.assert_array_equal(model.predict(X_GOOD), before)


def test_error_during_training_leaves_no_state(Estimator, monkeypatch):
    """An exception inside the training loop (after validation) unwinds every attribute."""
    model = make_fast(Estimator)

    def failing(loss_fn):
        def wrapped(batch):
            raise RuntimeError("simulated failure inside a training step")

        return wrapped

    wrap_training_loss(monkeypatch, type(model), failing)
    with pytest.raises(RuntimeError, match="simulated failure"):
        model.fit(X_GOOD, Y_GOOD)
    assert not [name for name in vars(model) if name.endswith("_")]


def test_load_rejects_other_files(tmp_path):
    not_model = tmp_path / "notes.txt"
    not_model.write_text("hello")
    with pytest.raises(ValueError, match="corrupt or not a skinr model: not a safetensors"):
        skinr.load(not_model)
    foreign = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="corrupt or not a skinr model: no skinr header"):
        skinr.load(foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save({"weights": torch.zeros(3)}, pickled)
    with pytest.raises(ValueError, match="corrupt or not a skinr model"):
        skinr.load(pickled)
    with pytest.raises(FileNotFoundError):
        skinr.load(tmp_path / "missing.skinr")


def _rewrite(path, *, tensors=None, resign=True, **changes):
    """Rewrite a model file with header ``changes`` (and other ``tensors``), re-signed
    with a valid checksum as a forger would, unless ``resign`` is False."""
    loaded = safetensors.torch.load_file(path)
    with safetensors.safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    header = json.loads(metadata["header"])
    header.update(changes)
    metadata["header"] = json.dumps(header)
    loaded.update(tensors or {})
    if resign:
        metadata["sha256"] = skinr.persistence._checksum(metadata["header"], loaded)
    safetensors.torch.save_file(loaded, path, metadata=metadata)
    return path


def test_load_rejects_newer_format_and_unknown_class(tmp_path):
    model = make_fast(skinr.SIREN).fit(X_GOOD, Y_GOOD)
    newer = _rewrite(
        model.save(tmp_path / "newer.skinr"), format_version=skinr.persistence.FORMAT_VERSION + 1
    )
    current = skinr.persistence.FORMAT_VERSION
    with pytest.raises(
        ValueError, match=f"format version {current + 1}; this skinr reads versions up to {current}"
    ):
        skinr.load(newer)
    unknown = _rewrite(model.save(tmp_path / "unknown.skinr"), **{"class": "os.system"})
    with pytest.raises(ValueError, match="not a skinr estimator"):
        skinr.load(unknown)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"format_version": 1.5}, "not a positive integer"),
        ({"format_version": "2"}, "not a positive integer"),
        ({"params": "width=3"}, "'params' is missing or not a dict"),
        ({"fitted": {"__class__": 1}}, "no fitted attribute '__class__'"),
        ({"fitted": {"n_features_in_": 10**9}}, "n_features_in_"),
    ],
)
def test_load_validates_the_header_before_building(tmp_path, changes, reason):
    model = make_fast(skinr.SIREN).fit(X_GOOD, Y_GOOD)
    path = model.save(tmp_path / "m.skinr")
    if "fitted" in changes:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            fitted = json.loads(handle.metadata()["header"])["fitted"]
        changes = {"fitted": {**fitted, **changes["fitted"]}}
    with pytest.raises(ValueError, match=f"corrupt or not a skinr model: .*{reason}"):
        skinr.load(_rewrite(path, **changes))


def test_a_small_file_claiming_a_huge_network_allocates_nothing(tmp_path, monkeypatch):
    model = make_fast(skinr.SIREN).fit(X_GOOD, Y_GOOD)
    path = model.save(tmp_path / "m.skinr")
    with safetensors.safe_open(str(path), framework="pt") as handle:
        params = json.loads(handle.metadata()["header"])["params"]
    forged = _rewrite(path, params={**params, "width": 10**9})
    assert forged.stat().st_size < 100_000
    built = []
    original = skinr.SIREN._build_module

    def spy(self, *args, **kwargs):
        built.append(torch.get_default_device())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(skinr.SIREN, "_build_module", spy)
    with pytest.raises(ValueError, match=r"has shape .* the structure needs"):
        skinr.load(forged)
    assert all(device.type == "meta" for device in built)  # never built for real


def test_load_refuses_invalid_parameters(tmp_path):
    model = make_fast(skinr.SIREN).fit(X_GOOD, Y_GOOD)
    path = model.save(tmp_path / "m.skinr")
    with safetensors.safe_open(str(path), framework="pt") as handle:
        params = json.loads(handle.metadata()["header"])["params"]
    with pytest.raises(ValueError, match="parameters are invalid"):
        skinr.load(_rewrite(path, params={**params, "width": -3}))


def test_every_bit_flip_is_caught(tmp_path):
    model = make_fast(skinr.SIREN).fit(X_GOOD, Y_GOOD)
    path = model.save(tmp_path / "m.skinr")
    original = path.read_bytes()
    header_length = int.from_bytes(original[:8], "little")
    rng = np.random.default_rng(0)
    # Flips in the tensors' bytes (past the 8-byte length and the JSON header).
    for position in rng.integers(8 + header_length, len(original), size=26):
        damaged = bytearray(original)
        damaged[position] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="checksum does not match"):
            skinr.load(path)


def test_saved_files_follow_the_umask(tmp_path):
    model = make_fast(skinr.SIREN).fit(X_GOOD, Y_GOOD)
    previous = os.umask(0o022)
    try:
        path = model.save(tmp_path / "m.skinr")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644


def _count_allocations(monkeypatch):
    """Counts modules built on a real device (the meta-device estimate builds none)."""
    built = []
    original = torch.nn.Module.to

    def counting_to(module, *args, **kwargs):
        built.append(module)
        return original(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", counting_to)
    return built


def test_a_structure_too_big_for_memory_is_refused_before_allocation(monkeypatch):
    built = _count_allocations(monkeypatch)
    with pytest.raises(ValueError, match=r"SIREN on 2-D coordinates has .* GiB to train.*width="):
        skinr.SIREN(width=10**6, max_iter=2).fit(X_GOOD, Y_GOOD)
    assert not built


def test_cells_that_multiply_per_dimension_are_refused_before_allocation(monkeypatch):
    """EnsembleINR's default grid=8 on scikit-learn's many-dimensional test data asked
    torch for terabytes; now it is a one-line error naming grid."""
    built = _count_allocations(monkeypatch)
    X = np.random.RandomState(0).uniform(size=(20, 10))
    with pytest.raises(
        ValueError, match=r"EnsembleINR on 10-D coordinates .* lower its structure \(grid=8"
    ):
        skinr.EnsembleINR(max_iter=2).fit(X, X[:, 0])
    # On 4-D data it would fit in memory (1.1 GiB) but is 3.5 million parameters per sample.
    with pytest.raises(ValueError, match=r"for 20 samples \(3,539,148 parameters per sample\)"):
        skinr.EnsembleINR(max_iter=2).fit(X[:, :4], X[:, 0])
    assert not built
