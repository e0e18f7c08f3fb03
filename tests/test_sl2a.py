"""SL2A: the code's architecture as equalities, the paper's parameter count, bad input."""

import numpy as np
import pytest
import torch

import skinr
from skinr import SL2A
from skinr.estimators.sl2a import ChebyshevLA, SL2ANet, chebyshev_basis
from skinr.signals import grid, to_coords


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_paper_parameter_counts():
    """0.461 M = width 256, degree 512, rank 128, 3 fusion layers, RGB (notes §5.1)."""
    assert sum(p.numel() for p in SL2ANet(2, 3, generator=_gen()).parameters()) == 461_315
    low_rank = SL2ANet(2, 3, 256, 3, degree=256, rank=32, generator=_gen())
    assert sum(p.numel() for p in low_rank.parameters()) == 182_787
    # An explicit degree is capped at the samples along the longest axis: 512 keep the
    # paper's; "auto" takes half the samples, the paper's 512 from 1024 on.
    X = grid((512, 2))
    model = SL2A(degree=512, max_iter=1, device="cpu").fit(X, np.stack([X[:, 0]] * 3, axis=1))
    assert model.n_params_ == 461_315 and model.degree_ == 512
    assert model.set_params(degree="auto").fit(X, X[:, 0]).degree_ == 256
    X = grid((1030, 2))
    assert SL2A(max_iter=1, device="cpu").fit(X, X[:, 0]).degree_ == 512
    X = grid((8, 8))
    small = SL2A(max_iter=1, device="cpu").fit(X, np.stack([X[:, 0]] * 3, axis=1))
    assert small.degree_ == 4 and small.module_.activation.degree == 4
    assert small.set_params(degree=100).fit(X, X[:, 0]).degree_ == 8


def test_chebyshev_basis_equals_recurrence():
    t = torch.linspace(-1, 1, 101, dtype=torch.float64)
    basis = chebyshev_basis(t, 40)
    recurrence = [torch.ones_like(t), t]
    for _ in range(39):
        recurrence.append(2 * t * recurrence[-1] - recurrence[-2])
    torch.testing.assert_close(basis, torch.stack(recurrence, dim=-1), rtol=1e-9, atol=1e-9)


def test_la_layer_is_tanh_then_chebyshev_sum_then_layernorm():
    layer = ChebyshevLA(2, 5, 6, generator=_gen())
    assert layer.coefficients.shape == (2, 5, 7)  # T_0 .. T_6
    bound = (6 / ((2 + 5) * 7)) ** 0.5
    assert layer.coefficients.abs().max() <= bound
    x = torch.rand(4, 2, generator=_gen(1)) * 2 - 1
    t = torch.tanh(x)
    summed = torch.zeros(4, 5)
    for j in range(2):
        for k in range(7):
            summed += torch.cos(k * torch.arccos(t[:, j : j + 1])) * layer.coefficients[j, :, k]
    torch.testing.assert_close(
        layer(x), torch.nn.functional.layer_norm(summed, (5,)), rtol=1e-4, atol=1e-5
    )


def test_la_layer_on_pixels_of_a_grid_sums_per_axis_tables_with_the_same_gradients():
    """Pixels of a grid share their coordinates along each axis: the layer contracts
    tables of the distinct values (fewer FLOPs), with the direct contraction's values
    and coefficient gradients; scattered points and points needing their own gradient
    take the direct contraction."""
    layer = ChebyshevLA(2, 16, 40, generator=_gen())
    pixels = torch.as_tensor(grid((64, 64)), dtype=torch.float32)
    batch = pixels[torch.randperm(len(pixels), generator=_gen(3))[:1000]]
    for x in (batch, torch.rand(300, 2, generator=_gen(4)) * 2 - 1):
        fast = layer(x)
        fast_grad = torch.autograd.grad(fast.square().sum(), layer.coefficients)[0]
        direct = layer.norm(layer._contract(x))
        direct_grad = torch.autograd.grad(direct.square().sum(), layer.coefficients)[0]
        torch.testing.assert_close(fast, direct, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(fast_grad, direct_grad, rtol=1e-4, atol=1e-4)
    calls = []
    original = ChebyshevLA._contract
    try:
        ChebyshevLA._contract = lambda self, x: calls.append(len(x)) or original(self, x)
        layer(batch)
        assert calls == []  # the per-axis tables
        layer(torch.rand(300, 2, generator=_gen(4)))
        wanting = batch.clone().requires_grad_()
        layer(wanting).sum().backward()
        assert calls == [300, 1000] and wanting.grad.abs().sum() > 0
    finally:
        ChebyshevLA._contract = original


@pytest.mark.parametrize("rank", [None, 3])
def test_every_layer_after_la_is_modulated(rank):
    net = SL2ANet(2, 1, 6, 2, degree=4, rank=rank, generator=_gen())
    x = torch.rand(5, 2, generator=_gen(2)) * 2 - 1
    psi = net.activation(x)
    h = torch.relu(net.hidden[0](psi * psi))  # the first fusion layer sees Psi * Psi
    h = torch.relu(net.hidden[1](psi * h))
    torch.testing.assert_close(net(x), net.output(psi * h))
    plain = SL2ANet(2, 1, 6, 2, degree=4, rank=rank, modulate=False, generator=_gen())
    h = torch.relu(plain.hidden[1](torch.relu(plain.hidden[0](plain.activation(x)))))
    torch.testing.assert_close(plain(x), plain.output(h))


def test_low_rank_layer_has_rank_at_most_r():
    net = SL2ANet(2, 1, 16, 1, degree=4, rank=3, generator=_gen())
    layer = net.hidden[0]
    assert torch.linalg.matrix_rank(layer.first @ layer.second) <= 3


def test_count_flops_includes_the_la_layer():
    X = grid((8, 2))  # 8 samples along the longest axis: degree 5 is not capped
    model = SL2A(width=8, depth=1, degree=5, rank=2, max_iter=1, device="cpu").fit(X, X[:, 0])
    # LA 2 inputs x 6 coefficients -> 8, low-rank 8->2->8, output 8->1; 2 per multiply-add.
    assert model.count_flops(X) == 16 * 2 * (2 * 6 * 8 + 8 * 2 + 2 * 8 + 8 * 1)


def test_fits_an_image_with_minibatches():
    X, y = to_coords(skinr.datasets.camera(32))
    model = SL2A(
        width=32,
        depth=2,
        degree=16,
        rank=8,
        batch_size=256,
        max_iter=60,
        random_state=0,
        device="cpu",
    ).fit(X, y)
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]
    # Beats the best constant prediction (the mean) by a clear margin.
    constant = skinr.metrics.psnr(y, np.full_like(y, y.mean()), data_range=model.data_range_)
    assert model.score(X, y) > constant + 3


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"degree": 0}, "degree"),
        ({"rank": 64, "width": 32}, "rank=64 is larger than width=32"),
        ({"modulate": "yes"}, "modulate"),
    ],
)
def test_bad_input(params, match):
    model = SL2A(max_iter=1, device="cpu", **params)
    with pytest.raises(ValueError, match=match):
        model.fit(grid((4, 4)), np.zeros(16))
    assert not [name for name in vars(model) if name.endswith("_")]
