"""EnsembleINR: the paper's properties as equalities, FLOPs of Table I, bad input."""

import numpy as np
import pytest
import torch

import skinr
from skinr import EnsembleINR
from skinr._core.objective import FitSignal
from skinr.estimators.ensemble import EnsembleNet
from skinr.estimators.siren import SirenNet
from skinr.signals import grid, to_coords


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    ("grid_size", "depth", "width", "expected_mflops"),
    [
        (1, 3, 256, 6484.39),
        (2, 5, 64, 681.58),
        (4, 2, 64, 278.92),
        (8, 1, 128, 557.84),
        (16, 1, 128, 557.84),
        (32, 1, 128, 557.84),
    ],
)
def test_flops_reproduce_table_one(grid_size, depth, width, expected_mflops):
    """ENRP Table I at 128 x 128 RGB: 6.48 G (SIREN), 681.58 M, 278.92 M, 557.84 M.

    The closed form gives 681.5744 M for S0, printed as 681.58 in the paper: agreement
    is to the paper's last printed digit (0.01 M).
    """
    net = EnsembleNet(2, 3, (grid_size, grid_size), width, depth, generator=_gen())
    assert abs(net.flops(128 * 128) / 1e6 - expected_mflops) <= 0.01 + 1e-9


def test_params_scale_with_cells():
    X = grid((16, 16))
    y = np.sin(X[:, :1] * 3).repeat(3, axis=1)
    model = EnsembleINR(grid=4, width=64, depth=2, max_iter=1, device="cpu").fit(X, y)
    one = (2 * 64 + 64) + 2 * (64 * 64 + 64) + (64 * 3 + 3)
    assert model.n_params_ == 16 * one and model.n_cells_ == 16
    per_point = 2 * (2 * 64 + 2 * 64 * 64 + 64 * 3)
    # Blended from centre to centre, every point runs through the 4 cells around it.
    model.set_params(blend_width=1.0).fit(X, y)
    assert model.count_flops(X) == 4 * 256 * per_point
    # A band an eighth of a cell either side of each border: of the 16 coordinates per
    # axis (-1 + 2k / 15) only -0.467 and 0.467 lie in one (1 / 30 from -0.5 and 0.5),
    # so each axis reads 18 cells per 16 points.
    model.set_params(blend_width=0.25).fit(X, y)
    assert model.count_flops(X) == 18 * 18 * per_point
    model.set_params(blending="nearest").fit(X, y)
    assert model.count_flops(X) == 256 * per_point


def test_batched_cells_equal_independent_sirens():
    net = EnsembleNet(2, 1, (2, 3), 16, 2, generator=_gen())
    local = torch.rand(6, 5, 2, generator=_gen(1)) * 2 - 1
    batched = net.forward_cells(local)
    for m in range(6):
        siren = SirenNet(2, 1, 16, 2)
        layers = [*siren.hidden, siren.output]
        with torch.no_grad():
            for layer, source in zip(layers, [*net.hidden, net.output], strict=True):
                layer.weight.copy_(source.weight[m].T)
                layer.bias.copy_(source.bias[m, 0])
        torch.testing.assert_close(batched[m], siren(local[m]))


def test_grid_fast_path_equals_scattered_path():
    """Training uses cells grouped once; predict groups arbitrary points. Same function."""
    X, y = to_coords(skinr.datasets.perlin_noise((32, 32), 4, random_state=0))
    model = EnsembleINR(grid=4, width=16, max_iter=30, device="cpu", random_state=0).fit(X, y)
    signal = FitSignal(
        X, y[:, None], model.domain_, (model.y_offset_, model.y_scale_), torch.device("cpu")
    )
    loss_fn = model._objective(model.module_, signal, torch.Generator()).loss
    with torch.no_grad():
        fast = loss_fn(None).item()
    scattered = np.mean(((model.predict(X) - y) / model.y_scale_) ** 2)
    assert fast == pytest.approx(scattered, rel=1e-4)
    shuffled = np.random.RandomState(0).permutation(len(X))
    np.testing.assert_allclose(
        model.predict(X[shuffled]), model.predict(X)[shuffled], rtol=1e-5, atol=1e-6
    )


def test_nearest_cells_are_independent():
    """Changing the signal inside one cell changes no other cell's predictions."""
    X, y = to_coords(skinr.datasets.perlin_noise((16, 16), 2, random_state=1))
    changed = y.copy()
    block = (X[:, 0] < -0.5) & (X[:, 1] < -0.5)  # part of cell 0 of a 2 x 2 grid
    changed[block] = y.min() + 0.5 * (y[block] - y.min())
    params = dict(grid=2, width=16, max_iter=40, device="cpu", random_state=0, domain=(-1, 1))
    params["blending"] = "nearest"
    a = EnsembleINR(**params).fit(X, y)
    b = EnsembleINR(**params).fit(X, changed)
    assert a.y_offset_ == b.y_offset_  # the range did not change
    other = X[:, 0] >= 0
    np.testing.assert_allclose(a.predict(X[other]), b.predict(X[other]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(a.predict(X[block]), b.predict(X[block]))


def test_border_points_go_to_the_upper_cell():
    X, y = to_coords(np.arange(64, dtype=float).reshape(8, 8), pixel_centers=False)
    model = EnsembleINR(
        grid=2, width=8, max_iter=5, blending="nearest", device="cpu", random_state=0
    ).fit(X, y)
    border = np.array([[0.0, 0.5]])  # on the line between the two rows of cells
    local = torch.tensor([[[-1.0, 0.0]]])  # bottom-right cell 3, local (-1, 0)
    with torch.no_grad():
        cells = model.module_.forward_cells(local.expand(4, 1, 2).contiguous())
    expected = cells[3, 0, 0].item() * model.y_scale_ + model.y_offset_
    assert model.predict(border)[0] == pytest.approx(expected, rel=1e-5)


def test_empty_cells_predict_the_middle_of_the_range():
    X, y = to_coords(skinr.datasets.perlin_noise((16, 16), 2, random_state=2))
    keep = ~((X[:, 0] > 0) & (X[:, 1] > 0))  # no training point in the last cell
    model = EnsembleINR(
        grid=2,
        width=8,
        max_iter=20,
        blending="nearest",
        device="cpu",
        random_state=0,
        domain=(-1, 1),
    ).fit(X[keep], y[keep])
    np.testing.assert_array_equal(model.empty_cells_, [3])
    hole = model.predict(np.array([[0.5, 0.5], [0.9, 0.2]]))
    np.testing.assert_allclose(hole, model.y_offset_)


@pytest.mark.parametrize("base", ["siren", "relu", "fourier"])
@pytest.mark.parametrize("shape", [(64,), (8, 8, 8)])
def test_bases_and_dimensionalities(base, shape):
    signal = np.random.RandomState(0).random_sample(shape)
    X, y = to_coords(signal, channel_axis=None)
    model = EnsembleINR(
        grid=2, width=8, base=base, max_iter=20, device="cpu", random_state=0, learning_rate=1e-3
    )
    model.fit(X, y)
    assert model.predict(X).shape == y.shape and model.n_cells_ == 2 ** len(shape)
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_minibatch_training_matches_full_batch_objective():
    X, y = to_coords(skinr.datasets.perlin_noise((16, 16), 2, random_state=3))
    model = EnsembleINR(
        grid=4,
        width=8,
        max_iter=30,
        batch_size=64,
        device="cpu",
        random_state=0,
        learning_rate=1e-3,
    ).fit(X, y)
    assert model.n_iter_ == 30 and model.loss_curve_[-1] < model.loss_curve_[0]


def test_save_load_and_pickle_round_trip(tmp_path):
    import pickle

    X, y = to_coords(skinr.datasets.perlin_noise((16, 16), 2, random_state=4))
    keep = X[:, 0] < 0.5
    model = EnsembleINR(
        grid=(2, 4), width=8, max_iter=10, device="cpu", random_state=0, domain=(-1, 1)
    ).fit(X[keep], y[keep])
    for restored in (
        skinr.load(model.save(tmp_path / "e.skinr")),
        pickle.loads(pickle.dumps(model)),
    ):
        np.testing.assert_array_equal(restored.predict(X), model.predict(X))
        np.testing.assert_array_equal(restored.empty_cells_, model.empty_cells_)
        assert restored.grid == (2, 4)


@pytest.mark.parametrize(
    ("params", "X", "match"),
    [
        (
            {"grid": 16},
            grid((8, 8)),
            "asks for 16 cells along dimension 0, but the training data has only 8 distinct",
        ),
        ({"grid": (2, 2, 2)}, grid((8, 8)), r"grid=\(2, 2, 2\) has 3 entries, but X has 2"),
        ({"grid": (2, 0)}, grid((8, 8)), "must hold positive ints"),
        ({"grid": 0}, grid((8, 8)), "grid"),
        ({"base": "wire"}, grid((8, 8)), "base"),
    ],
)
def test_bad_input(params, X, match):
    model = EnsembleINR(width=4, max_iter=2, device="cpu", **params)
    with pytest.raises(ValueError, match=match):
        model.fit(X, np.zeros(len(X)))
    assert not hasattr(model, "module_")


def test_smooth_blend_is_a_partition_of_unity_peaked_at_cell_centres():
    from skinr.nn.cells import blended_cells

    coords = torch.rand(500, 3, generator=torch.Generator().manual_seed(0)) * 2.4 - 1.2
    blend = blended_cells(coords, [4, 1, 3])
    assert blend.n_corners == 4  # the single-cell dimension adds no corner
    assert bool((blend.weight >= 0).all())
    torch.testing.assert_close(blend.weight.sum(0), torch.ones(500))
    centre = torch.tensor([[-0.25, 0.3, 2 / 3]])  # centre of cell (1, 0, 2)
    at_centre = blended_cells(centre, [4, 1, 3])
    owner = at_centre.weight[:, 0].argmax()
    assert at_centre.weight[owner, 0] == pytest.approx(1, abs=1e-6)
    assert at_centre.cell[owner, 0] == 1 * 3 + 2
    torch.testing.assert_close(at_centre.local[owner, 0], torch.tensor([0.0, 0.3, 0.0]))


def test_smooth_blending_removes_the_step_at_cell_borders():
    """Just below and above a border, hard cells jump; blended cells agree."""
    X, y = to_coords(skinr.datasets.perlin_noise((16, 16), 4, random_state=0))
    border = np.array([[-1e-4, 0.3], [1e-4, 0.3], [0.3, -1e-4], [0.3, 1e-4]])
    jumps = {}
    for blending in ("nearest", "smooth"):
        model = EnsembleINR(
            grid=2, width=16, max_iter=40, blending=blending, device="cpu", random_state=0
        ).fit(X, y)
        p = model.predict(border)
        jumps[blending] = max(abs(p[1] - p[0]), abs(p[3] - p[2]))
    assert jumps["smooth"] < 1e-3 < jumps["nearest"]
