"""The baselines users compare with: Grid, HashGrid, FINER, GaussINR, WIRE."""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import map_coordinates

import skinr
from skinr import FINER, WIRE, GaussINR, Grid, HashGrid
from skinr._core.domain import normalise
from skinr.inverse import AreaDownsample
from skinr.metrics import psnr
from skinr.nn.encodings import HashEncoding, level_resolutions, stencil
from skinr.nn.layers import (
    ComplexGaborLinear,
    ComplexLinear,
    GaussianLinear,
    VariablePeriodicLinear,
)
from skinr.signals import grid, to_coords


def smooth_image(n=32):
    rows, cols = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    return np.sin(5 * rows) * np.cos(4 * cols) + 0.5 * rows * cols


# ---------------------------------------------------------------- interpolation


@pytest.mark.parametrize("n_dims", [1, 2, 3, 4])
def test_linear_stencil_reproduces_linear_functions(n_dims):
    sizes = torch.tensor([5, 4, 6, 3][:n_dims])
    positions = torch.rand(50, n_dims, generator=torch.Generator().manual_seed(0))
    positions = positions * (sizes - 1)
    indices, weights = stencil(positions, sizes, "linear")
    assert indices.shape == (50, 2**n_dims, n_dims)
    torch.testing.assert_close(weights.sum(-1), torch.ones(50))
    slope = torch.arange(1.0, n_dims + 1)
    values = (indices.float() * slope).sum(-1)  # a linear function at the taps
    torch.testing.assert_close((weights * values).sum(-1), positions @ slope)


def test_cubic_stencil_reproduces_quadratics_inside():
    sizes = torch.tensor([8, 8])
    positions = 1 + torch.rand(40, 2, generator=torch.Generator().manual_seed(1)) * 5
    indices, weights = stencil(positions, sizes, "cubic")
    assert indices.shape == (40, 16, 2)
    f = indices.float()
    values = f[..., 0] ** 2 - 2 * f[..., 1] ** 2 + f[..., 0] * f[..., 1]
    expected = positions[:, 0] ** 2 - 2 * positions[:, 1] ** 2 + positions.prod(-1)
    torch.testing.assert_close((weights * values).sum(-1), expected, atol=1e-4, rtol=1e-5)


def test_grid_on_the_samples_interpolates_like_scipy():
    image = smooth_image(16)
    X, y = to_coords(image, pixel_centers=True)
    model = Grid(tv_weight=0.0, max_iter=400, random_state=0, device="cpu").fit(X, y)
    assert model.resolution_ == (16, 16)
    assert model.score(X, y) > 60
    # Every half pixel between the first and the last pixel centre.
    centres = np.linspace(-1 + 1 / 16, 1 - 1 / 16, 31)
    rows, cols = np.meshgrid(centres, centres, indexing="ij")
    fine = model.predict(np.column_stack([rows.ravel(), cols.ravel()]))
    index = np.mgrid[0:31, 0:31].reshape(2, -1) / 2
    expected = map_coordinates(image, index, order=1)
    np.testing.assert_allclose(fine, expected, atol=1e-3)


# ------------------------------------------------------------------------ Grid


def test_grid_budget_sets_the_resolution():
    X, y = to_coords(np.zeros((64, 32)))
    model = Grid(n_params=500, max_iter=1, device="cpu").fit(X, y)
    rows, cols = model.resolution_
    assert rows * cols <= 500 and model.n_params_ == rows * cols
    assert rows == pytest.approx(2 * cols, abs=1)  # the samples' proportions
    rgb = Grid(n_params=500, max_iter=1, device="cpu").fit(X, np.zeros((len(X), 3)))
    assert rgb.n_params_ <= 500 and math.prod(rgb.resolution_) * 3 == rgb.n_params_


@pytest.mark.parametrize(
    ("params", "data", "message"),
    [
        ({"n_params": 3}, (16, 16), "at least 2 points per axis"),
        ({"resolution": 8, "n_params": 100}, (16, 16), "not both"),
        ({"resolution": (4, 4, 4)}, (16, 16), "one entry per dimension"),
        ({"interpolation": "cubic"}, (3, 3, 3, 3, 1), "at most 3-D"),
    ],
)
def test_grid_refuses_structures_before_training(params, data, message):
    X, y = to_coords(np.zeros(data))
    model = Grid(**params, device="cpu")
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)
    assert not hasattr(model, "module_")


def test_total_variation_fills_unseen_lattice_points():
    image = smooth_image(32)
    X = grid((32, 32), pixel_centers=True)
    seen = np.zeros((32, 32), dtype=bool)
    seen[::2, ::2] = True
    unseen = ~seen.ravel()
    scores = {}
    for weight in (0.0, 1e-3):
        model = Grid(resolution=32, tv_weight=weight, max_iter=300, random_state=0, device="cpu")
        model.fit(X[seen.ravel()], image[seen])
        scores[weight] = psnr(image.ravel()[unseen], model.predict(X)[unseen], data_range=2.0)
    assert scores[1e-3] > scores[0.0] + 5


def test_penalty_reaches_a_fit_through_an_operator():
    image = smooth_image(32)
    low = image.reshape(16, 2, 16, 2).mean(axis=(1, 3))
    X, y = to_coords(low, pixel_centers=True)
    predictions = []
    for weight in (0.0, 0.5):
        model = Grid(
            resolution=32,
            tv_weight=weight,
            operator=AreaDownsample(2),
            max_iter=100,
            random_state=0,
            device="cpu",
        ).fit(X, y)
        predictions.append(model.predict_signal(grid((32, 32), bounds=model.operator_.box_)))
    # The penalty smooths the signal the operator sees: the renders differ.
    assert np.abs(predictions[0] - predictions[1]).max() > 1e-2


# -------------------------------------------------------------------- HashGrid


def test_levels_grow_geometrically_to_the_finest():
    levels = level_resolutions(16, 16, 512)
    assert levels[0] == 16 and levels[-1] == 512
    growth = (512 / 16) ** (1 / 15)
    ideal = 16 * growth ** np.arange(16)
    assert np.all(np.diff(levels) > 0)
    assert np.all((ideal - levels >= -1e-6) & (ideal - levels < 1))  # floor(N_min b^l)


def test_dense_levels_index_every_vertex_once_and_hashed_levels_stay_in_range():
    encoding = HashEncoding(
        2, n_levels=3, log2_table_size=7, base_resolution=4, finest_resolution=40
    )
    assert encoding.levels == [4, 12, 40]
    assert encoding.hashed.tolist() == [False, True, True]  # 5x5 fits in 128, 13x13 not
    # Every vertex of the dense level, at its exact position, reads its own slot.
    cells = encoding.levels[0]
    vertices = torch.stack(
        torch.meshgrid(torch.arange(cells + 1), torch.arange(cells + 1), indexing="ij"), -1
    ).reshape(-1, 2)
    with torch.no_grad():
        encoding.table.copy_(torch.arange(encoding.table.numel(), dtype=torch.float32).view(-1, 2))
        coords = vertices.float() / cells * 2 - 1
        first_level = encoding(coords)[:, :2]
    slots = first_level[:, 0] / 2
    assert sorted(slots.round().long().tolist()) == list(range((cells + 1) ** 2))
    with torch.no_grad():
        features = encoding(torch.rand(100, 2) * 2 - 1)
    assert torch.isfinite(features).all()
    # Hashed levels read inside their own table: the features stay within its slots.
    start, size = int(encoding.offsets[2]), int(encoding.sizes[2])
    assert features[:, 4].min() >= 2 * start - 1e-3
    assert features[:, 4].max() <= 2 * (start + size - 1) + 1e-3


def test_hash_tables_learn_through_the_gather():
    encoding = HashEncoding(
        3, n_levels=2, log2_table_size=10, base_resolution=2, finest_resolution=20
    )
    encoding(torch.rand(64, 3) * 2 - 1).square().sum().backward()
    touched = (encoding.table.grad.abs().sum(-1) > 0).sum()
    assert 0 < touched < encoding.table.shape[0]


@pytest.mark.parametrize("pixel_centers", [True, False])
def test_hashgrid_auto_puts_the_finest_vertices_on_the_samples(pixel_centers):
    X, y = to_coords(smooth_image(24)[:, :20], pixel_centers=pixel_centers)
    model = HashGrid(n_levels=3, base_resolution=4, max_iter=1, random_state=0).fit(X, y)
    assert model.finest_resolution_ == 23  # intervals between 24 samples
    unit = (torch.as_tensor(normalise(X, model.domain_)) + 1) / 2
    positions = unit[:, 0] * model.module_.encoding.cells[-1]
    torch.testing.assert_close(positions, positions.round(), atol=1e-4, rtol=0)


def test_hashgrid_fits_an_image_and_uses_the_papers_adam(monkeypatch):
    seen = {}
    train = skinr.base.BaseINR._training_loop

    def spy(*args, **kwargs):
        seen.update(kwargs["adam_options"])
        return train(*args, **kwargs)

    monkeypatch.setattr(skinr.base.BaseINR, "_training_loop", staticmethod(spy))
    X, y = to_coords(smooth_image(32), pixel_centers=True)
    model = HashGrid(max_iter=150, random_state=0, device="cpu").fit(X, y)
    assert seen == {"betas": (0.9, 0.99), "eps": 1e-15}
    assert model.finest_resolution_ == 31  # vertices on the 32 samples per axis
    assert model.score(X, y) > 35


@pytest.mark.parametrize(
    ("params", "n_dims", "message"),
    [
        ({"log2_table_size": 8}, 2, "fewer than the coarsest level's 289 vertices"),
        ({"finest_resolution": 8}, 2, "below base_resolution"),
        ({"base_resolution": 1, "log2_table_size": 20}, 18, "at most 17"),
    ],
)
def test_hashgrid_refuses_structures_before_training(params, n_dims, message):
    X = np.random.default_rng(0).uniform(-1, 1, (40, n_dims))
    model = HashGrid(**params, device="cpu")
    with pytest.raises(ValueError, match=message):
        model.fit(X, X[:, 0])
    assert not hasattr(model, "module_")


# ----------------------------------------------------------------- activations


def test_complex_linear_is_the_complex_product():
    layer = ComplexLinear(5, 3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(7, 5, dtype=torch.complex64)
    weight = torch.complex(layer.weight_real, layer.weight_imag)
    bias = torch.complex(layer.bias_real, layer.bias_imag)
    expected = x @ weight.T + bias
    out = layer(torch.cat([x.real, x.imag], dim=-1))
    torch.testing.assert_close(torch.complex(*out.chunk(2, dim=-1)), expected)
    layer.real_only = True
    torch.testing.assert_close(layer(torch.cat([x.real, x.imag], dim=-1)), expected.real)


def test_gabor_layer_is_wires_wavelet():
    layer = ComplexGaborLinear(4, 6, omega_0=20.0, sigma_0=10.0)
    x = torch.randn(9, 8) * 0.1
    z = layer.linear(x)
    z = torch.complex(*z.chunk(2, dim=-1))
    expected = torch.exp(1j * 20.0 * z - (10.0 * z).abs().square())
    out = layer(x)
    torch.testing.assert_close(torch.complex(*out.chunk(2, dim=-1)), expected)


def test_finer_and_gauss_layers():
    finer = VariablePeriodicLinear(3, 4, omega_0=30.0, is_first=True, bias_scale=5.0)
    assert finer.bias.abs().max() <= 5.0 and finer.bias.abs().max() > 1 / math.sqrt(3)
    x = torch.randn(10, 3)
    z = x @ finer.weight.T + finer.bias
    torch.testing.assert_close(finer(x), torch.sin(30.0 * (z.abs() + 1) * z))
    gauss = GaussianLinear(3, 4, scale=7.0)
    z = x @ gauss.weight.T + gauss.bias
    torch.testing.assert_close(gauss(x), torch.exp(-((7.0 * z) ** 2)))


def test_wire_keeps_the_real_parameter_count_and_trains_under_bf16():
    X, y = to_coords(smooth_image(24), pixel_centers=True)
    model = WIRE(width=32, depth=1, max_iter=200, learning_rate=1e-3, random_state=0, device="cpu")
    model.fit(X, y)
    complex_width = int(32 / math.sqrt(2))
    assert model.module_.hidden[0].linear.n_out == complex_width
    constant = psnr(y, np.full_like(y, y.mean()), data_range=y.max() - y.min())
    assert model.score(X, y) > constant + 8
    bf16 = WIRE(
        width=32,
        depth=1,
        max_iter=200,
        learning_rate=1e-3,
        random_state=0,
        device="cpu",
        precision="bf16",
    ).fit(X, y)
    assert np.isfinite(bf16.predict(X)).all()
    assert bf16.score(X, y) > model.score(X, y) - 3


@pytest.mark.parametrize("Estimator", [FINER, GaussINR, WIRE])
def test_activation_baselines_fit_and_survive_save_load(Estimator, tmp_path):
    X, y = to_coords(smooth_image(24), pixel_centers=True)
    model = Estimator(width=32, depth=1, max_iter=100, random_state=0, device="cpu").fit(X, y)
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]
    model.save(tmp_path / "model.skinr")
    loaded = skinr.load(tmp_path / "model.skinr")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_size_parameters_are_searchable():
    """A structure search over a grid's budget and a hash grid's table size."""
    from sklearn.model_selection import GridSearchCV

    from skinr.model_selection import FullSignalSplit

    X, y = to_coords(smooth_image(32), pixel_centers=True)
    search = GridSearchCV(
        Grid(max_iter=100, random_state=0, device="cpu"),
        {"n_params": [16, 100, 1024]},
        cv=FullSignalSplit(),
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert list(scores) == sorted(scores) and search.best_params_ == {"n_params": 1024}
    assert search.best_estimator_.n_params_ == 1024
    hashed = GridSearchCV(
        HashGrid(n_levels=4, base_resolution=4, max_iter=30, random_state=0, device="cpu"),
        {"log2_table_size": [5, 7]},
        cv=FullSignalSplit(),
    ).fit(X, y)
    assert hashed.best_estimator_.n_params_ > 0
    assert len(hashed.cv_results_["mean_test_score"]) == 2


def test_gaussian_and_gabor_widths_follow_the_sample_density():
    X, y = to_coords(smooth_image(24), pixel_centers=True)
    common = dict(width=8, depth=1, max_iter=1, random_state=0, device="cpu")
    assert GaussINR(**common).fit(X, y).scale_ == pytest.approx(30 * 24 / 300)
    wire = WIRE(**common).fit(X, y)
    assert (wire.omega_0_, wire.sigma_0_) == pytest.approx((20 * 24 / 320, 10 * 24 / 320))
    assert wire.module_.hidden[0].omega_0 == pytest.approx(wire.omega_0_)
    # Dense enough signals keep the official values; explicit values are kept as given.
    line = np.linspace(-1, 1, 400)[:, None]
    assert GaussINR(**common).fit(line, np.sin(9 * line[:, 0])).scale_ == 30.0
    fixed = WIRE(omega_0=20.0, sigma_0=10.0, **common).fit(X, y)
    assert (fixed.omega_0_, fixed.sigma_0_) == (20.0, 10.0)
