"""Bad input: a clear error before training, and no half-fitted estimator."""

import json

import numpy as np
import pytest
import torch

import skinr
from skinr._validation import resolve_device

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
}


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
    with pytest.raises(ValueError, match="is not a skinr model file"):
        skinr.load(not_model)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="is not a skinr model file"):
        skinr.load(foreign)
    with pytest.raises(FileNotFoundError):
        skinr.load(tmp_path / "missing.skinr")


def _rewrite_header(path, **changes):
    payload = torch.load(path, weights_only=True)
    header = json.loads(payload["header"])
    header.update(changes)
    payload["header"] = json.dumps(header)
    torch.save(payload, path)


def test_load_rejects_newer_format_and_unknown_class(tmp_path):
    model = make_fast(skinr.SIREN).fit(X_GOOD, Y_GOOD)
    newer = model.save(tmp_path / "newer.skinr")
    _rewrite_header(newer, format_version=skinr.persistence.FORMAT_VERSION + 1)
    with pytest.raises(ValueError, match="format version 2; this skinr reads versions up to 1"):
        skinr.load(newer)
    unknown = model.save(tmp_path / "unknown.skinr")
    _rewrite_header(unknown, **{"class": "os.system"})
    with pytest.raises(ValueError, match="not a skinr estimator"):
        skinr.load(unknown)
