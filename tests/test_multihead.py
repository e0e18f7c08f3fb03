"""MultiHeadReLU: the paper's parameter count, grid fast path vs general path, sparsity."""

import pickle

import numpy as np
import pytest
import torch

from skinr import MultiHeadReLU, load
from skinr._core.domain import normalise
from skinr._core.sample_layout import sample_footprint
from skinr.estimators.multihead import MultiHeadNet, SparseHeads
from skinr.nn.cells import locate_cells
from skinr.signals import grid, to_coords


def small(**overrides):
    params = dict(
        heads=4,
        width=16,
        depth=2,
        n_connections=4,
        max_iter=30,
        learning_rate=1e-2,
        device="cpu",
        random_state=0,
    )
    params.update(overrides)
    return MultiHeadReLU(**params)


@pytest.fixture(scope="module")
def texture():
    """A 16 x 16 two-channel image with detail at several scales."""
    rows, cols = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 16), indexing="ij")
    image = np.stack([np.sin(9 * rows) * np.cos(5 * cols), rows * cols**2], axis=-1)
    return to_coords(image)


def test_paper_parameter_count():
    # 64^2 heads, alpha 64, body 4 x 256, head bias: the paper's 0.464 M (464,384).
    X = grid((256, 256))
    model = MultiHeadReLU(max_iter=1, device="cpu", random_state=0).fit(X, np.zeros(len(X)))
    assert model.n_heads_ == 4096
    assert model.n_params_ == 768 + 3 * (256 * 256 + 256) + 64 * 4096 + 4096 == 464_384
    no_bias = MultiHeadReLU(head_bias=False, max_iter=1, device="cpu", random_state=0)
    assert no_bias.fit(X, np.zeros(len(X))).n_params_ == 464_384 - 4096


def test_render_flops_follow_the_grid_fast_path():
    X = grid((256, 256))
    model = MultiHeadReLU(
        max_iter=1, blending="nearest", device="cpu", random_state=0, predict_batch_size=2**18
    )
    model.fit(X, np.zeros(len(X)))
    render = model.grid_coordinates((512, 512))
    # 8 x 8 local positions per cell: the body runs 64 times, 4096 heads at each.
    body = 2 * (2 * 256 + 3 * 256 * 256)
    assert model.count_flops(render) == 64 * body + 64 * 4096 * 2 * 64
    # predict runs the body once per chunk: 4 chunks of 65,536 points, counted as such.
    model.set_params(predict_batch_size=65536)
    assert model.count_flops(render) == 4 * 64 * body + 64 * 4096 * 2 * 64
    # Scattered points pay the body once per point.
    scattered = np.random.RandomState(0).uniform(-1, 1, (1000, 2))
    assert model.count_flops(scattered) == 1000 * (body + 2 * 64)


def test_blended_render_flops_count_every_head_a_point_reads():
    X = grid((256, 256))
    model = MultiHeadReLU(
        max_iter=1, blend_width=1.0, device="cpu", random_state=0, predict_batch_size=2**18
    )
    model.fit(X, np.zeros(len(X)))
    render = model.grid_coordinates((512, 512))
    # Positions in a cell and its neighbours' frames: 16 x 16 distinct body inputs;
    # every point reads the heads of the 4 cells around it.
    body = 2 * (2 * 256 + 3 * 256 * 256)
    assert model.count_flops(render) == 256 * body + 4 * 512 * 512 * 2 * 64
    scattered = np.random.RandomState(0).uniform(-1, 1, (1000, 2))
    assert model.count_flops(scattered) == 4 * 1000 * (body + 2 * 64)


def test_the_default_blend_renders_any_regular_grid_within_twice_the_hard_cells_flops():
    """The paper's render savings survive the default blend: on the heads' own grid, on
    grids they do not divide and on one that does not reach the domain's edges."""
    X = grid((256, 256))
    fitted = {
        blending: MultiHeadReLU(
            max_iter=1, blending=blending, device="cpu", random_state=0, predict_batch_size=2**18
        ).fit(X, np.zeros(len(X)))
        for blending in ("nearest", "smooth")
    }
    render = fitted["smooth"].grid_coordinates
    for points in (
        render((512, 512)),
        render((700, 700)),
        grid((300, 300)),
        0.999 * grid((512, 512)),
    ):
        hard, blended = (fitted[b].count_flops(points) for b in ("nearest", "smooth"))
        assert hard < blended <= 2 * hard


@pytest.mark.parametrize("blending", ["nearest", "smooth"])
def test_training_runs_the_grid_fast_path_and_it_equals_the_general_path(texture, blending):
    X, y = texture
    fast = small(blending=blending).fit(X, y)
    general = small(blending=blending, fast_path=False).fit(X, y)
    assert fast.grid_fast_path_ and not general.grid_fast_path_
    # Same initial weights, same function: the loss curves agree to float32 precision.
    np.testing.assert_allclose(fast.loss_curve_, general.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(fast.predict(X), general.predict(X), atol=1e-5)


@pytest.mark.parametrize("blending", ["nearest", "smooth"])
def test_prediction_paths_agree_on_grids_and_scattered_points(texture, blending):
    X, y = texture
    model = small(blending=blending).fit(X, y)
    render = model.grid_coordinates((32, 32))
    scattered = np.random.RandomState(1).uniform(X.min(0), X.max(0), (300, 2))
    for points in (X, render, scattered):
        on_path = model.predict(points)
        model.set_params(fast_path=False)
        off_path = model.predict(points)
        model.set_params(fast_path="auto")
        np.testing.assert_allclose(on_path, off_path, atol=1e-5)


@pytest.mark.parametrize("shape, chunk", [((48, 48), 1000), ((32, 32), 333), ((24, 40), 4096)])
def test_any_regular_grid_and_chunking_runs_the_body_once_per_position(texture, shape, chunk):
    """Resolutions the heads do not divide, and chunks that cut cells, still share the
    body across cells; the same function as the general path; counted as computed."""
    X, y = texture
    model = small().fit(X, y)
    render = model.grid_coordinates(shape)
    model.set_params(predict_batch_size=chunk)
    fast = model.predict(render)
    fast_flops = model.count_flops(render)
    model.set_params(fast_path=False)
    np.testing.assert_allclose(fast, model.predict(render), atol=1e-5)
    assert fast_flops < model.count_flops(render) / 2


def test_grid_detection():
    net = MultiHeadNet(2, 1, (4, 4), 8, 1, 4, generator=torch.Generator().manual_seed(0))
    X = grid((16, 16))
    # Normalised over its footprint, a 16 x 16 grid puts 4 x 4 points in each cell.
    normalised = torch.as_tensor(normalise(X, sample_footprint(X)))
    shared = net.shared_grid(normalised)
    assert shared is not None and shared.template.shape == (16, 2) and shared.cells.numel() == 16
    # Shuffling the points does not hide the grid; dropping one point does.
    permuted = normalised[torch.randperm(256, generator=torch.Generator().manual_seed(0))]
    assert net.shared_grid(permuted) is not None
    assert net.shared_grid(normalised[1:]) is None
    # 15 x 15 points cannot split evenly into 4 x 4 cells; nor can 16 x 16 over its box.
    assert (
        net.shared_grid(
            torch.as_tensor(normalise(grid((15, 15)), sample_footprint(grid((15, 15)))))
        )
        is None
    )
    assert net.shared_grid(torch.as_tensor(X, dtype=torch.float32)) is None


def test_sample_footprint_widens_regular_axes_by_half_a_spacing():
    X = grid((5, 3), bounds=[(0, 4), (0, 1)])
    np.testing.assert_allclose(sample_footprint(X), [[-0.5, 4.5], [-0.25, 1.25]])
    # A masked grid (a missing row) keeps the spacing; scattered points keep their box.
    np.testing.assert_allclose(sample_footprint(X[X[:, 0] != 2])[0], [-0.5, 4.5])
    scattered = np.array([[0.0], [0.3], [1.0]])
    np.testing.assert_allclose(sample_footprint(scattered), [[0.0, 1.0]])
    # Gathered chunk by chunk (big signals), the distinct coordinates are the same.
    for chunk_size in (1, 2, 4):
        np.testing.assert_array_equal(sample_footprint(X, chunk_size), sample_footprint(X))
        np.testing.assert_array_equal(
            sample_footprint(scattered, chunk_size), sample_footprint(scattered)
        )


def nudged_head(model, X, head=5):
    """Points, how much each prediction moves when ``head``'s bias grows by 1 (in the
    network's [-1, 1] units), and the points normalised."""
    points = np.random.RandomState(2).uniform(X.min(0), X.max(0), (200, 2))
    before = model.predict(points)
    with torch.no_grad():
        model.module_.heads.bias[head] += 1.0
    change = (model.predict(points) - before)[:, 0] / np.asarray(model.y_scale_).reshape(-1)[0]
    coords = torch.as_tensor((points - model.domain_.mean(1)) / (np.ptp(model.domain_, 1) / 2))
    return change, coords.float()


def test_a_point_reads_only_its_own_head(texture):
    X, y = texture
    model = small(blending="nearest").fit(X, y)
    change, coords = nudged_head(model, X)
    cell, _ = locate_cells(coords, model.module_.grid)
    np.testing.assert_array_equal(~np.isclose(change, 0), (cell == 5).numpy())
    assert (cell == 5).any()


def test_a_blended_point_reads_the_heads_around_it_and_nothing_jumps(texture):
    from skinr.nn.cells import blended_cells

    X, y = texture
    model = small().fit(X, y)
    change, coords = nudged_head(model, X)
    blend = blended_cells(coords, model.module_.grid, model.blend_width)
    share = torch.zeros(len(coords)).index_add(0, blend.point, blend.weight * (blend.cell == 5))
    np.testing.assert_allclose(change, share.numpy(), atol=1e-5)
    assert ((share > 0) & (share < 1)).any() and (share == 1).any()
    # Either side of a cell border (x = 0 splits 4 heads per axis), the same value.
    border = np.array([[-1e-5, 0.2], [1e-5, 0.2]]) * np.ptp(model.domain_, 1) / 2
    side = model.predict(border + model.domain_.mean(1))
    assert abs(side[1, 0] - side[0, 0]) < 1e-3


def test_connections_are_sparse_distinct_and_seeded():
    heads = SparseHeads(50, 32, 6, 2, generator=torch.Generator().manual_seed(0))
    assert heads.weight.shape == (50, 6, 2)  # stored sparse, never (50, 32)
    connections = heads.connections
    assert all(len(set(row.tolist())) == 6 for row in connections)
    assert int(connections.min()) >= 0 and int(connections.max()) < 32
    again = SparseHeads(50, 32, 6, 2, generator=torch.Generator().manual_seed(0))
    other = SparseHeads(50, 32, 6, 2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(connections, again.connections)
    assert not torch.equal(connections, other.connections)
    # Every body neuron is equally likely: each is used about 50 * 6 / 32 times.
    usage = torch.bincount(connections.ravel(), minlength=32)
    assert usage.sum() == 300 and usage.max() < 25
    dense = heads.dense_weight()
    assert torch.equal((dense != 0).sum(dim=1), torch.full((50, 2), 6))


def test_full_connections_equal_a_dense_multi_head_layer():
    generator = torch.Generator().manual_seed(0)
    heads = SparseHeads(12, 8, 8, 3, init_bound=0.5, generator=generator)
    with torch.no_grad():
        heads.bias.uniform_(-1, 1, generator=generator)
    features = torch.randn(5, 8, generator=generator)
    dense = heads.dense_weight()
    assert (dense != 0).all()
    expected = torch.einsum("pw,hwo->pho", features, dense) + heads.bias
    torch.testing.assert_close(heads.forward_grid(features), expected)
    cells = torch.arange(5) % 12
    torch.testing.assert_close(
        heads.forward_points(features, cells), expected[torch.arange(5), cells]
    )


def test_head_init_bound_is_the_keras_default_or_the_given_one():
    heads = SparseHeads(4096, 256, 64, 1, generator=torch.Generator().manual_seed(0))
    bound = np.sqrt(3 / (64 * 4096))
    assert float(heads.weight.detach().abs().max()) <= bound
    assert float(heads.weight.detach().abs().max()) > 0.9 * bound
    wide = SparseHeads(10, 8, 4, 1, init_bound=0.3, generator=torch.Generator().manual_seed(0))
    assert 0.25 < float(wide.weight.detach().abs().max()) <= 0.3


def test_heads_not_dividing_the_grid_fall_back_to_the_general_path():
    X, y = to_coords(np.random.RandomState(0).random_sample((15, 15)))
    model = small(heads=4).fit(X, y)
    assert not model.grid_fast_path_
    assert model.score(X, y) > 10
    with pytest.raises(ValueError, match=r"heads=4 do not split.*divide"):
        small(heads=4, fast_path=True).fit(X, y)


def test_bad_parameters_fail_before_training(texture):
    X, y = texture
    with pytest.raises(ValueError, match=r"n_connections=32 exceeds the body width \(16\)"):
        small(n_connections=32).fit(X, y)
    with pytest.raises(ValueError, match=r"heads=\(2, 2, 2\) has 3 entries.*2 coordinate"):
        small(heads=(2, 2, 2)).fit(X, y)
    with pytest.raises(ValueError, match=r"heads=32 asks for 32 cells.*16 distinct"):
        small(heads=32).fit(X, y)
    with pytest.raises(ValueError, match="cannot be combined with batch_size"):
        small(fast_path=True, batch_size=16).fit(X, y)
    with pytest.raises(ValueError, match="fast_path"):
        small(fast_path="always").fit(X, y)
    with pytest.raises(ValueError, match="weight_decay"):
        small(weight_decay=-1e-4).fit(X, y)


def test_weight_decay_shrinks_the_body_and_the_heads(texture):
    X, y = texture
    norms = {}
    for decay in (0.0, 0.05):
        module = small(weight_decay=decay, max_iter=60).fit(X, y).module_
        norms[decay] = {
            part: sum(float(p.square().sum()) for p in getattr(module, part).parameters())
            for part in ("body", "heads")
        }
    for part in ("body", "heads"):
        assert norms[0.05][part] < 0.9 * norms[0.0][part], (part, norms)


def test_empty_cells_predict_the_middle_of_the_range():
    X, y = to_coords(np.random.RandomState(0).random_sample((8, 8)))
    left = X[:, 1] < 0
    model = small(heads=2, blending="nearest", domain=(-1.0, 1.0)).fit(X[left], y[left])
    np.testing.assert_array_equal(model.empty_cells_, [1, 3])
    right_points = np.array([[-0.5, 0.5], [0.5, 0.9]])
    np.testing.assert_allclose(model.predict(right_points), model.y_offset_, atol=1e-6)


@pytest.mark.parametrize("shape", [(64,), (8, 8, 8)])
def test_one_and_three_dimensional_signals(shape):
    signal = np.random.RandomState(0).random_sample(shape)
    X, y = to_coords(signal, channel_axis=None)
    model = small(heads=4).fit(X, y)
    assert model.grid_fast_path_ and model.n_heads_ == 4 ** len(shape)
    assert model.score(X, y) > 10


def test_round_trips_keep_connections(texture, tmp_path):
    X, y = texture
    model = small().fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    loaded = load(model.save(tmp_path / "mh.skinr"))
    for other in (restored, loaded):
        assert torch.equal(other.module_.heads.connections, model.module_.heads.connections)
        np.testing.assert_array_equal(other.predict(X), model.predict(X))


def test_one_sample_per_cell_trains():
    # As many heads as pixels: every local coordinate is the cell centre, 0.
    X, y = to_coords(np.random.RandomState(0).random_sample((8, 8)))
    model = small(heads=8, n_connections=8, head_bias=False, max_iter=200).fit(X, y)
    assert model.grid_fast_path_
    assert model.score(X, y) > 30


def test_auto_heads_keep_four_samples_per_cell():
    """The paper's 64 x 64 heads on 256 pixels, scaled to the signal's own size."""
    for shape, expected in (((32, 32), (8, 8)), ((16, 24), (4, 6)), ((512, 8), (64, 2))):
        X = grid(shape, pixel_centers=True)
        model = MultiHeadReLU(width=16, depth=1, n_connections=4, max_iter=2, device="cpu")
        assert model.fit(X, np.zeros(len(X))).heads_ == expected, shape
    model = MultiHeadReLU(heads=(2, 3), width=16, depth=1, n_connections=4, max_iter=2)
    assert model.fit(grid((8, 9)), np.zeros(72)).heads_ == (2, 3)
