"""The estimator contract on the device named by ``SKINR_TEST_DEVICE``.

``SKINR_TEST_DEVICE=cuda python -m pytest tests/test_device.py`` runs every check here
for all twelve estimators on that device (``benchmarks/gpu_check.sh`` does, on a GPU
machine). Without the variable the device is the CPU and only SIREN runs, so the
checks stay alive in the default suite without repeating what the rest of it covers;
nothing else in the suite changes.
"""

import os

import numpy as np
import pytest
import torch

import skinr
from skinr import SIREN, EnsembleINR
from skinr.inverse import AreaDownsample, Blur, Radon, TVRegularized, radon_coords
from skinr.parallel import fit_many
from skinr.signals import to_coords

from .conftest import ALL_ESTIMATORS, interrupt_after, make_fast

DEVICE = os.environ.get("SKINR_TEST_DEVICE", "cpu")
ON_ACCELERATOR = torch.device(DEVICE).type != "cpu"
ESTIMATORS = ALL_ESTIMATORS if ON_ACCELERATOR else [SIREN]
if ON_ACCELERATOR and torch.device(DEVICE).type == "cuda" and not torch.cuda.is_available():
    pytest.skip(f"SKINR_TEST_DEVICE={DEVICE} but no CUDA device here", allow_module_level=True)


def on_device(Estimator, **overrides):
    return make_fast(Estimator, **overrides).set_params(device=DEVICE)


@pytest.fixture(params=ESTIMATORS, ids=lambda cls: cls.__name__)
def Estimator(request):
    return request.param


def test_fit_predict_score_render_on_the_device(Estimator, image_signal):
    X, y, shape = image_signal
    model = on_device(Estimator).fit(X, y)
    assert torch.device(model.device_).type == torch.device(DEVICE).type
    assert all(p.device.type == torch.device(DEVICE).type for p in model.module_.parameters())
    predicted = model.predict(X)
    assert predicted.dtype == np.float64 and np.isfinite(predicted).all()
    assert np.isfinite(model.score(X, y))
    assert model.render(shape[:2]).shape == (*shape[:2], 3)


def test_saved_on_the_device_loads_on_the_cpu(Estimator, image_signal, tmp_path):
    X, y, _ = image_signal
    model = on_device(Estimator).fit(X, y)
    model.save(tmp_path / "m.skinr")
    loaded = skinr.load(tmp_path / "m.skinr", device="cpu")
    assert loaded.device_ == "cpu"
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-4, atol=1e-5)


def test_an_interrupted_fit_resumes_on_the_device(Estimator, image_signal, tmp_path, monkeypatch):
    X, y, _ = image_signal
    whole = on_device(Estimator, max_iter=8).fit(X, y)
    path = tmp_path / "fit.ckpt"
    model = on_device(Estimator, max_iter=8, checkpoint_path=str(path), checkpoint_every=2)
    interrupt_after(model, 5, monkeypatch)
    with pytest.raises(KeyboardInterrupt), pytest.warns(RuntimeWarning, match="interrupted"):
        model.fit(X, y)
    monkeypatch.undo()
    model.fit(X, y)
    assert model.n_iter_ == 8
    np.testing.assert_allclose(model.predict(X), whole.predict(X), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("precision", ["bf16", "tf32"])
def test_reduced_precision_trains_on_the_device(precision, image_signal):
    X, y, _ = image_signal
    model = on_device(SIREN, precision=precision).fit(X, y)
    assert np.isfinite(model.predict(X)).all() and model.predict(X).dtype == np.float64


@pytest.mark.skipif(not ON_ACCELERATOR, reason="compiling on the CPU: test_acceleration.py")
def test_compiled_training_matches_eager_on_the_device(image_signal):
    X, y, _ = image_signal
    eager = on_device(SIREN).fit(X, y)
    compiled = on_device(SIREN, torch_compile=True).fit(X, y)
    assert compiled.compiled_
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-3)


def test_a_streamed_fit_moves_only_its_batches_to_the_device(image_signal):
    X, y, _ = image_signal
    model = on_device(SIREN, batch_size=64, max_iter=10).fit(X, y)
    assert np.isfinite(model.predict(X)).all()


def _ct(n=8):
    theta = np.linspace(0.0, 180.0, 6, endpoint=False)
    return radon_coords(theta, (n, n))


@pytest.mark.parametrize("name", ["Radon", "AreaDownsample", "Blur", "TV"])
def test_operators_fit_on_the_device(name):
    if name == "Radon":
        X = _ct()
        operator = Radon(pixel_size=2 / 8)
        y = operator.resolve(X).apply(
            lambda p: torch.exp(-4 * (p**2).sum(dim=1, keepdim=True)),
            torch.as_tensor(X, dtype=torch.float32),
        )
        y = y.numpy().ravel()
    else:
        X, y = to_coords(np.random.default_rng(0).random((4, 6)), pixel_centers=True)
        operator = {
            "AreaDownsample": AreaDownsample(factor=2),
            "Blur": Blur(np.full((3, 3), 1 / 9)),
            "TV": TVRegularized(AreaDownsample(factor=2), weight=1e-2),
        }[name]
    model = on_device(SIREN, max_iter=4, operator=operator).fit(X, y)
    assert np.isfinite(model.predict(X)).all()
    assert np.isfinite(model.render((8, 8))).all()


def test_native_cpu_kernels_step_aside_off_the_cpu(image_signal):
    from skinr.nn import _native

    X, y, _ = image_signal
    model = on_device(EnsembleINR, grid=2).fit(X, y)
    x = torch.zeros(4, 8, 16, device=DEVICE)
    weight = torch.zeros(4, 16, 16, device=DEVICE)
    if ON_ACCELERATOR:
        assert not _native.supports(x, weight)
    assert np.isfinite(model.predict(X)).all()


@pytest.mark.skipif(not ON_ACCELERATOR, reason="workers on the CPU: test_scaling.py")
def test_fit_many_with_several_workers_on_the_device(image_signal):
    X, y, _ = image_signal
    fitted = fit_many(on_device(SIREN, max_iter=4), [(X, y), (X, y[:, ::-1].copy())], n_jobs=2)
    assert len(fitted) == 2
    assert all(torch.device(m.device_).type == torch.device(DEVICE).type for m in fitted)
    np.testing.assert_allclose(
        fitted[0].predict(X),
        on_device(SIREN, max_iter=4).fit(X, y).predict(X),
        rtol=1e-4,
        atol=1e-5,
    )
