"""PSNR, SSIM and IoU against hand computations and scikit-image."""

import numpy as np
import pytest

from skinr.metrics import iou, psnr, ssim


def test_psnr_by_hand():
    y_true = np.array([0.0, 0.5, 1.0, 1.0])
    y_pred = np.array([0.1, 0.5, 0.9, 1.0])
    mse = (0.01 + 0.01) / 4
    assert psnr(y_true, y_pred, data_range=1.0) == pytest.approx(10 * np.log10(1 / mse))
    assert psnr(y_true, y_pred, data_range=2.0) == pytest.approx(10 * np.log10(4 / mse))
    assert psnr(y_true, y_true, data_range=1.0) == np.inf
    weighted = psnr(y_true, y_pred, data_range=1.0, sample_weight=[1, 0, 0, 0])
    assert weighted == pytest.approx(20.0)


def test_psnr_matches_skimage():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.RandomState(0)
    image = rng.random_sample((16, 16, 3))
    noisy = image + 0.05 * rng.standard_normal(image.shape)
    assert psnr(image, noisy, data_range=1.0) == pytest.approx(
        skimage_metrics.peak_signal_noise_ratio(image, noisy, data_range=1.0)
    )


def test_psnr_clip_and_errors():
    assert psnr([0.0, 1.0], [0.0, 1.5], data_range=1.0, clip=True) == np.inf
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros(3), np.zeros(4), data_range=1.0)
    with pytest.raises(ValueError, match="positive"):
        psnr(np.zeros(3), np.zeros(3), data_range=0)


def test_ssim_identity_and_degradation():
    pytest.importorskip("skimage")
    image = np.random.RandomState(0).random_sample((32, 32))
    assert ssim(image, image, data_range=1.0) == pytest.approx(1.0)
    assert ssim(image, image * 0.5, data_range=1.0) < 0.95
    rgb = np.stack([image] * 3, axis=-1)
    assert ssim(rgb, rgb, data_range=1.0, channel_axis=-1) == pytest.approx(1.0)


def test_iou():
    truth = np.array([1, 1, 0, 0, 0.0])
    pred = np.array([0.9, 0.2, 0.7, 0.1, 0.5])
    assert iou(truth, pred) == pytest.approx(1 / 3)  # 0.5 is not above the threshold
    assert iou(np.zeros(4), np.zeros(4)) == 1.0
    before = pred.copy()
    iou(truth, pred)
    np.testing.assert_array_equal(pred, before)
