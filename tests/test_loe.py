"""LoESine: tilings, expert routing against a per-point reference, blending, bad input."""

import numpy as np
import pytest
import torch

from skinr import LoESine
from skinr._core.domain import normalise
from skinr.estimators._loe_routes import ExpertRoutes
from skinr.estimators.loe import LoENet, tile_scales
from skinr.signals import grid, to_coords


def small(**overrides):
    params = dict(width=8, depth=3, max_iter=30, device="cpu", random_state=0)
    params.update(overrides)
    return LoESine(**params)


def make_net(blending, shared_bias=True, activation="sine", n_dims=2, tiles=(2, 2)):
    scales, offsets = tile_scales("gray_code", 3)
    return LoENet(
        n_dims,
        2,
        5,
        tiles,
        torch.tensor(scales)[:, None].repeat(1, n_dims),
        torch.tensor(offsets),
        activation=activation,
        blending=blending,
        omega_0=3.0,
        shared_bias=shared_bias,
        generator=torch.Generator().manual_seed(0),
    )


def reference_forward(net, coords):
    """The LoE layer written per point: W(p) = sum_j B_j(alpha u + beta) W_j."""
    outputs = []
    tiles = np.array(net.tiles)
    for point in coords.double():
        unit = (point + 1) / 2
        h = point
        for k, layer in enumerate(net.experts):
            position = (unit * net.scales[k] + net.offsets[k]).numpy()
            weight = torch.zeros(layer.n_in, layer.n_out, dtype=torch.float64)
            bias = torch.zeros(layer.n_out, dtype=torch.float64)
            if net.blending == "nearest":
                corners = [(np.floor(position).astype(int) % tiles, 1.0)]
            else:
                low = np.floor(position - 0.5)
                fraction = position - 0.5 - low
                corners = []
                for step in np.ndindex(*(2,) * len(tiles)):
                    step = np.array(step)
                    share = np.prod(np.where(step == 1, fraction, 1 - fraction))
                    corners.append(((low.astype(int) + step) % tiles, share))
            for cell, share in corners:
                expert = int(np.ravel_multi_index(tuple(cell), tuple(tiles)))
                weight += share * layer.weight[expert].double()
                if layer.bias is not None:
                    bias += share * layer.bias[expert, 0].double()
            if net.shared_bias:
                bias = net.biases[k].double()
            h = h @ weight + bias
            h = (
                torch.sin(net.omega_0 * h)
                if net.activation == "sine"
                else h.clamp_min(0) + 0.2 * h.clamp_max(0)
            )
        outputs.append(h @ net.output.weight.double().T + net.output.bias.double())
    return torch.stack(outputs)


def test_tile_scales_of_the_three_patterns():
    assert tile_scales("quad_tree", 4) == ([2.0, 4.0, 8.0, 16.0], [0.0] * 4)
    assert tile_scales("fine_to_coarse", 4) == ([16.0, 8.0, 4.0, 2.0], [0.0] * 4)
    assert tile_scales("gray_code", 4) == ([2.0, 2.0, 4.0, 8.0], [0.0, 0.5, 0.5, 0.5])
    assert tile_scales("staggered", 4) == ([16.0, 8.0, 4.0, 2.0], [0.5] * 4)


def _shared_borders(scales, offsets) -> int:
    """Tiling borders inside (0, 1) that two or more layers share, along one axis."""
    borders = []
    for scale, offset in zip(scales, offsets, strict=True):
        k = np.arange(np.ceil(offset), np.floor(scale + offset) + 1)
        positions = (k - offset) / scale
        borders.extend(np.round(positions[(positions > 1e-9) & (positions < 1 - 1e-9)], 9))
    _, counts = np.unique(borders, return_counts=True)
    return int((counts > 1).sum())


def test_staggered_levels_never_share_a_border():
    scales, offsets = tile_scales("staggered", 9)
    assert _shared_borders(scales, offsets) == 0
    # The paper's arrangement puts a border at the centre (and more) in every layer.
    assert _shared_borders(*tile_scales("fine_to_coarse", 9)) == 255


@pytest.mark.parametrize("blending", ["nearest", "linear"])
@pytest.mark.parametrize("shared_bias", [True, False])
def test_batched_forward_equals_the_per_point_definition(blending, shared_bias):
    net = make_net(blending, shared_bias)
    coords = torch.rand(40, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(
            net(coords).double(), reference_forward(net, coords), atol=1e-5, rtol=1e-4
        )


def test_leaky_relu_and_three_dimensional_tiles_follow_the_definition():
    net = make_net("nearest", activation="leaky_relu", n_dims=3, tiles=(2, 3, 1))
    coords = torch.rand(30, 3, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(
            net(coords).double(), reference_forward(net, coords), atol=1e-5, rtol=1e-4
        )


def test_routes_come_from_each_call_s_coordinates():
    X, y = to_coords(np.random.RandomState(0).random_sample((16, 16)))
    model = small(blending="nearest").fit(X, y)
    first = model.predict(X[:50])
    # A finer grid between the training pixels: its own experts, not the training routes.
    fine = grid((23, 23))
    coords = torch.as_tensor(normalise(fine, model.domain_))
    with torch.no_grad():
        expected = reference_forward(model.module_, coords).numpy().ravel()
    predicted = (model.predict(fine) - model.y_offset_) / model.y_scale_
    # float32 against float64 through three sin(30 x) layers: 1e-4 differences; a wrong
    # expert changes a value by O(1).
    np.testing.assert_allclose(predicted, expected, atol=2e-3)
    np.testing.assert_array_equal(model.predict(X[:50]), first)


def test_nearest_switches_experts_at_cell_borders_and_linear_is_continuous():
    coords = torch.tensor([[-0.001, 0.3], [0.001, 0.3]])  # across the middle border
    with torch.no_grad():
        jump = make_net("nearest")(coords).diff(dim=0).abs().max()
        smooth = make_net("linear")(coords).diff(dim=0).abs().max()
    assert jump > 20 * smooth


def test_gaps_trains_as_nearest_and_predicts_alike_at_the_samples():
    X, y = to_coords(np.random.RandomState(0).random_sample((24, 24)), pixel_centers=True)
    nearest = small(blending="nearest", min_samples_per_cell=4).fit(X, y)
    gaps = small(min_samples_per_cell=4).fit(X, y)
    assert gaps.blending == "gaps"
    assert gaps.loss_curve_ == nearest.loss_curve_
    np.testing.assert_allclose(gaps.predict(X), nearest.predict(X), atol=1e-6)
    assert gaps.count_flops(X) == nearest.count_flops(X)  # no sample lies in a gap
    fine = grid((96, 96), pixel_centers=True)
    assert not np.allclose(gaps.predict(fine), nearest.predict(fine), atol=1e-3)


def test_gaps_render_has_no_jump_at_the_cell_borders():
    """Hard selection jumps where a border falls between two samples; "gaps" ramps
    from one side's output to the other's across that gap."""
    rng = np.random.RandomState(0)
    X, y = to_coords(np.cumsum(rng.standard_normal(32)), pixel_centers=True)
    fine = np.linspace(-1, 1, 3201)[:, None]
    largest_step = {}
    for blending in ("nearest", "gaps"):
        model = small(blending=blending, depth=4, min_samples_per_cell=8, max_iter=100)
        largest_step[blending] = np.abs(np.diff(model.fit(X, y).predict(fine))).max()
    # 3,200 steps over a signal of 32 samples: a continuous render moves little per step.
    assert largest_step["nearest"] > 10 * largest_step["gaps"], largest_step


def test_gaps_count_the_corner_passes_they_run(monkeypatch):
    X, y = to_coords(np.random.RandomState(0).random_sample((16, 16)), pixel_centers=True)
    model = small(min_samples_per_cell=4).fit(X, y)
    fine = grid((64, 64), pixel_centers=True)
    per_point = small(blending="nearest").fit(X, y).count_flops(fine[:1])
    calls = []
    real_forward = type(model.module_).forward
    monkeypatch.setattr(
        type(model.module_),
        "forward",
        lambda net, coords, routes=None: (
            calls.append(len(coords)) or real_forward(net, coords, routes)
        ),
    )
    model.predict(fine)
    # Every point once, then the 4 corners of some in one batched pass.
    assert len(calls) == 2 and calls[0] == len(fine) and 0 < calls[1] < 4 * len(fine)
    assert calls[1] % 4 == 0
    assert model.count_flops(fine) == per_point * sum(calls)


def test_parameters_and_flops():
    X = grid((16, 16))
    y = np.zeros(len(X))
    model = small(width=8, depth=3).fit(X, y)
    experts = 4 * (2 * 8 + 8 * 8 + 8 * 8)
    assert model.n_params_ == experts + 3 * 8 + (8 + 1)
    per_expert_bias = small(width=8, depth=3, shared_bias=False).fit(X, y)
    assert per_expert_bias.n_params_ == experts + 4 * 3 * 8 + (8 + 1)
    # Nearest blending costs a dense MLP per point; linear blending evaluates all 4 experts.
    dense = 2 * (2 * 8 + 8 * 8 + 8 * 8 + 8 * 1)
    assert model.count_flops(X) == len(X) * dense
    linear = small(width=8, depth=3, blending="linear").fit(X, y)
    assert linear.count_flops(X) == len(X) * (4 * (dense - 2 * 8) + 2 * 8)


def test_scales_finer_than_the_samples_are_capped():
    X, y = to_coords(np.random.RandomState(0).random_sample((8, 32)))
    model = small(depth=5, min_samples_per_cell=1).fit(X, y)  # 32, 16, 8, 4, 2 per unit
    np.testing.assert_array_equal(model.tile_scales_[:, 0], [8, 8, 8, 4, 2])
    np.testing.assert_array_equal(model.tile_scales_[:, 1], [32, 16, 8, 4, 2])
    model.set_params(min_samples_per_cell=4).fit(X, y)
    np.testing.assert_array_equal(model.tile_scales_[:, 0], [2, 2, 2, 2, 2])
    np.testing.assert_array_equal(model.tile_scales_[:, 1], [8, 8, 8, 4, 2])


def test_a_lattice_needs_its_samples_on_its_nodes():
    from skinr._core.sample_layout import sample_lattice

    rows = torch.tensor([0.0, 0.1, 0.3, 0.4])  # a missing row keeps the lattice
    scattered = torch.tensor([0.0, 0.013, 0.31, 0.7])
    lattice = sample_lattice([rows, scattered])
    torch.testing.assert_close(lattice[:, 0], torch.tensor([0.0, 0.1, 4.0]))
    assert lattice[:, 1].tolist() == [0.0, 0.0, 0.0]


def test_scattered_samples_get_no_gap_blending_and_cells_by_their_mean_gap():
    """Between scattered samples there is no lattice to blend across: a 10-D fit of 40
    points would otherwise run 1,024 lattice corners per point (1.5 GB in predict)."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (40, 10))
    model = small(width=8, depth=3).fit(X, X[:, 0])
    assert not model.module_.lattice.any()
    queries = rng.uniform(-1, 1, (25, 10))
    assert model.count_flops(queries) == model.module_.flops(25)
    # 40 distinct values per axis over [0, 1]: a mean gap of ~1/39; 8 of them per cell.
    spread = (X.max(0) - X.min(0)) / np.ptp(model.domain_, 1)
    np.testing.assert_allclose(model.tile_scales_[0], 39 / (8 * spread), rtol=1e-5)


@pytest.mark.parametrize(
    "params",
    [
        dict(pattern="quad_tree"),
        dict(pattern="gray_code"),
        dict(pattern="staggered"),
        dict(activation="leaky_relu", learning_rate=3e-3),
        dict(blending="linear"),
        dict(init="siren"),
    ],
)
def test_options_fit(params):
    rows, cols = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 16), indexing="ij")
    X, y = to_coords(np.sin(4 * rows) * np.cos(3 * cols))
    model = small(max_iter=60, **params).fit(X, y)
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]


@pytest.mark.parametrize("shape", [(64,), (6, 6, 6)])
def test_one_and_three_dimensional_signals(shape):
    X, y = to_coords(np.random.RandomState(0).random_sample(shape), channel_axis=None)
    model = small(max_iter=40).fit(X, y)
    assert model.tile_scales_.shape == (3, len(shape))
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_bad_parameters_fail_before_training():
    X, y = to_coords(np.random.RandomState(0).random_sample((16, 16)))
    with pytest.raises(ValueError, match="pattern"):
        small(pattern="coarse_to_fine").fit(X, y)
    with pytest.raises(ValueError, match=r"tiles=\(2, 2, 2\) has 3 entries.*2 coordinate"):
        small(tiles=(2, 2, 2)).fit(X, y)
    with pytest.raises(ValueError, match=r"depth=1 is too small for pattern='quad_tree'"):
        small(depth=1, pattern="quad_tree").fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        small(activation="relu").fit(X, y)


def test_grouped_layout_round_trips_and_its_gradient_is_exact():
    generator = torch.Generator().manual_seed(0)
    # Unequal expert counts: every layout has padding rows.
    experts = [torch.randint(0, 4, (37,), generator=generator) for _ in range(3)]
    routes = ExpertRoutes.from_experts(experts, 4)
    assert any(g.numel() > 37 for g in routes.gathers)
    point_of_row = torch.arange(37)
    for expert, gather in zip(experts, routes.gathers, strict=True):
        # Layer k's layout: expert e's points fill the first rows of block e.
        point_of_row = point_of_row[gather]
        capacity = gather.numel() // 4
        block, slot = (
            torch.arange(gather.numel()) // capacity,
            torch.arange(gather.numel()) % capacity,
        )
        real = slot < torch.bincount(expert, minlength=4)[block]
        assert int(real.sum()) == 37
        torch.testing.assert_close(expert[point_of_row[real]], block[real])
        assert sorted(point_of_row[real].tolist()) == list(range(37))

    def through_layers(x):
        h = x
        for k in range(3):
            h = torch.sin(routes.regroup(k, h))
        return h.index_select(0, routes.rows)

    x = torch.randn(37, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    torch.testing.assert_close(through_layers(x), torch.sin(torch.sin(torch.sin(x))))
    assert torch.autograd.gradcheck(through_layers, (x,))
