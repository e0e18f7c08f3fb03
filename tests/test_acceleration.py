"""Execution options: bf16 autocast, TF32, torch.compile."""

import shutil

import numpy as np
import pytest

import skinr

from .conftest import make_fast


def test_tf32_changes_nothing_on_the_cpu(image_signal):
    X, y, _ = image_signal
    plain = make_fast(skinr.SIREN).fit(X, y)
    tf32 = make_fast(skinr.SIREN, precision="tf32").fit(X, y)
    np.testing.assert_array_equal(plain.predict(X), tf32.predict(X))


@pytest.mark.parametrize("Estimator", [skinr.SIREN, skinr.EnsembleINR], ids=lambda c: c.__name__)
def test_bf16_autocast_trains_close_to_float32(Estimator, image_signal):
    X, y, _ = image_signal
    plain = make_fast(Estimator, max_iter=60).fit(X, y)
    bf16 = make_fast(Estimator, max_iter=60, precision="bf16").fit(X, y)
    assert bf16.loss_curve_ != plain.loss_curve_  # it really ran in bfloat16
    assert bf16.loss_curve_[-1] < 0.5 * bf16.loss_curve_[0]
    assert abs(bf16.score(X, y) - plain.score(X, y)) < 3.0  # dB
    assert bf16.predict(X).dtype == np.float64


@pytest.mark.skipif(shutil.which("c++") is None, reason="torch.compile needs a C++ compiler")
def test_compiled_training_matches_eager(image_signal):
    X, y, _ = image_signal
    eager = make_fast(skinr.SIREN).fit(X, y)
    compiled = make_fast(skinr.SIREN, torch_compile=True).fit(X, y)
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(compiled.predict(X), eager.predict(X), atol=1e-4)
    assert compiled.get_params()["torch_compile"] is True
