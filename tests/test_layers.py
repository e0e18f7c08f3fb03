"""Shared torch layers: shapes, initialisation, equivalences, FLOPs."""

import math

import numpy as np
import pytest
import torch

from skinr.estimators.fourier import FourierFeatureNet
from skinr.estimators.siren import SirenNet
from skinr.nn.layers import BatchedLinear, FourierFeatures, Linear, PositionalEncoding, SineLinear


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_siren_init_bounds():
    first = SineLinear(2, 4096, is_first=True, generator=gen())
    assert first.weight.abs().max() <= 1 / 2
    assert first.weight.abs().max() > 0.99 / 2  # uniform fills its interval
    hidden = SineLinear(256, 256, omega_0=30.0, generator=gen())
    bound = math.sqrt(6 / 256) / 30
    assert hidden.weight.abs().max() <= bound and hidden.weight.abs().max() > 0.99 * bound
    # std of U(-b, b) is b / sqrt(3)
    assert hidden.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert hidden.bias.abs().max() <= 1 / math.sqrt(256)


def test_sine_layer_computes_sin_of_scaled_affine():
    layer = SineLinear(3, 5, omega_0=7.0, generator=gen())
    x = torch.randn(4, 3, generator=gen(1))
    expected = torch.sin(7.0 * (x @ layer.weight.T + layer.bias))
    torch.testing.assert_close(layer(x), expected)
    assert layer.flops(10) == 10 * 2 * 3 * 5


def test_same_generator_same_weights():
    a = SirenNet(2, 3, 32, 2, generator=gen(5))
    b = SirenNet(2, 3, 32, 2, generator=gen(5))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_batched_linear_equals_loop_of_linears():
    batched = BatchedLinear(4, 3, 5, init="torch", generator=gen())
    x = torch.randn(4, 7, 3, generator=gen(1))
    out = batched(x)
    assert out.shape == (4, 7, 5)
    for g in range(4):
        single = Linear(3, 5)
        with torch.no_grad():
            single.weight.copy_(batched.weight[g].T)
            single.bias.copy_(batched.bias[g, 0])
        torch.testing.assert_close(out[g], single(x[g]))
    assert batched.flops(28) == Linear(3, 5).flops(28)


def test_batched_linear_init_per_group_fan_in():
    layer = BatchedLinear(16, 64, 64, init="siren", omega_0=30.0, generator=gen())
    bound = math.sqrt(6 / 64) / 30
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.98 * bound


def test_fourier_features_formula():
    enc = FourierFeatures(2, 8, scale=10.0, generator=gen())
    assert enc.frequencies.std().item() == pytest.approx(10.0, rel=0.5)
    x = torch.rand(5, 2, generator=gen(2)) * 2 - 1
    phase = 2 * math.pi * ((x + 1) / 2) @ enc.frequencies.T
    torch.testing.assert_close(enc(x), torch.cat([phase.cos(), phase.sin()], dim=1))
    assert enc.n_out == 16 and enc.flops(5) == 5 * 2 * 2 * 8


def test_positional_encoding_frequencies():
    enc = PositionalEncoding(2, 4, scale=16.0)
    torch.testing.assert_close(enc.frequencies, torch.tensor([1.0, 2.0, 4.0, 8.0]))
    x = torch.tensor([[-1.0, 1.0]])  # u = (0, 1): all phases multiples of 2 pi
    out = enc(x)
    assert out.shape == (1, enc.n_out) == (1, 16)
    assert enc.flops(10) == 0
    torch.testing.assert_close(out[0, :8], torch.ones(8))
    torch.testing.assert_close(out[0, 8:], torch.zeros(8), atol=1e-5, rtol=0)


@pytest.mark.parametrize("encoding", ["gaussian", "positional"])
def test_modules_work_without_an_estimator(encoding):
    siren = SirenNet(3, 2, 16, 2, generator=gen())
    ff = FourierFeatureNet(3, 2, 16, 2, n_frequencies=4, encoding=encoding, generator=gen())
    x = torch.rand(10, 3) * 2 - 1
    assert siren(x).shape == ff(x).shape == (10, 2)
    n_params = sum(p.numel() for p in ff.parameters())
    assert n_params == (ff.encoding.n_out * 16 + 16) + 2 * (16 * 16 + 16) + (16 * 2 + 2)
    assert np.isfinite(ff(x).detach().numpy()).all()
