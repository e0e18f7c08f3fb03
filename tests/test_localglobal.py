"""LocalGlobalSIREN: the paper's sizes, locality, equal batches, cropping."""

import pickle

import numpy as np
import pytest
import torch

from skinr import LocalGlobalSIREN, load
from skinr._core.objective import FitSignal
from skinr._core.sample_layout import sample_footprint
from skinr.estimators.localglobal import auto_partitions, auto_widths
from skinr.signals import grid, to_coords


def small(**overrides):
    params = dict(
        partitions=4,
        local_width=8,
        global_width=12,
        depth=1,
        max_iter=30,
        learning_rate=1e-3,
        device="cpu",
        random_state=0,
    )
    params.update(overrides)
    return LocalGlobalSIREN(**params)


@pytest.fixture(scope="module")
def picture():
    rows, cols = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 16), indexing="ij")
    return to_coords(np.sin(6 * rows) * np.cos(4 * cols) + rows)


def test_paper_parameter_count():
    # Cameraman, 16 x 16 partitions, local 14, global 84, 3 hidden layers (paper Table 6).
    X = grid((32, 32))
    model = LocalGlobalSIREN(
        partitions=16, local_width=14, global_width=84, max_iter=1, device="cpu", random_state=0
    ).fit(X, np.zeros(len(X)))
    global_part = (2 * 84 + 84) + 3 * (84 * 84 + 84) + (98 * 14 + 14)
    local_part = 256 * ((2 * 14 + 14) + 3 * (14 * 14 + 14) + (14 + 1))
    assert (global_part, local_part) == (23_058, 175_872)
    assert model.n_params_ == global_part + local_part
    # One merge module, shared by every depth.
    assert model.module_.merge.weight.shape == (14, 98)


def test_automatic_partitioning_follows_appendix_a():
    partitions = auto_partitions((512, 512), 32)
    assert partitions == (16, 16)
    local, global_ = auto_widths(2, 1, 3, 256, 200_000, 0.1)
    assert local == 14 and global_ in range(80, 90)
    total = 256 * (2 * local + 3 * local**2 + local + 4 * local + 1) + (
        2 * global_ + 3 * global_**2 + 4 * global_
    )
    assert 0.99 * 200_000 <= total <= 1.01 * 200_000
    assert auto_widths(2, 1, 3, 256, 200_000, 0.1, local_only=True) == (15, 0)


def test_auto_fits_a_parameter_budget(picture):
    X, y = picture
    model = LocalGlobalSIREN(
        target_partition_size=4, n_params=6000, max_iter=5, device="cpu", random_state=0
    ).fit(X, y)
    assert model.partitions_ == (4, 4)
    assert 0.9 * 6000 < model.n_params_ < 1.1 * 6000


def test_a_partition_depends_only_on_its_local_network(picture):
    X, y = picture
    model = small().fit(X, y)
    before = model.predict(X)
    with torch.no_grad():
        model.module_.local_output.bias[5] += 1.0
    changed = ~np.isclose(before, model.predict(X))
    # Partition 5 of 4 x 4 is row 1, column 1: pixels 4..7 x 4..7 of the 16 x 16 image.
    expected = np.zeros((16, 16), dtype=bool)
    expected[4:8, 4:8] = True
    np.testing.assert_array_equal(changed, expected.ravel())


def test_local_only_has_no_global_network(picture):
    X, y = picture
    model = small(local_only=True).fit(X, y)
    assert not hasattr(model.module_, "global_layers") and model.global_width_ == 0
    assert model.n_params_ == 16 * ((2 * 8 + 8) + (8 * 8 + 8) + (8 + 1))


@pytest.mark.parametrize("merge", ["concat", "add"])
def test_merges_train(picture, merge):
    X, y = picture
    model = small(merge=merge, max_iter=80).fit(X, y)
    assert model.loss_curve_[-1] < 0.2 * model.loss_curve_[0]


def test_batches_hold_the_same_number_of_points_per_partition(picture):
    X, y = picture
    model = small(batch_size=48)
    vars(model).update(model._structure(X, 1))
    generator = torch.Generator().manual_seed(0)
    module = model._build_module(2, 1, generator)
    domain = sample_footprint(X)
    signal = FitSignal(X, y[:, None], domain, (0.5, 0.5), torch.device("cpu"), batch_size=48)
    batches = model._objective(module, signal, generator).batches
    coords = signal.held()[0]
    from skinr.nn.cells import locate_cells

    for _ in range(3):
        cell, _ = locate_cells(coords[next(batches)], (4, 4))
        assert torch.equal(torch.bincount(cell, minlength=16), torch.full((16,), 3))
    fitted = small(batch_size=48, max_iter=40).fit(X, y)
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]


def test_uneven_partitions_are_padded_and_masked():
    X, y = to_coords(np.random.RandomState(0).random_sample((15, 13)))
    model = small(max_iter=60).fit(X, y)
    assert model.partitions_ == (4, 4)
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_crop_keeps_predictions_and_drops_parameters(picture, tmp_path):
    X, y = picture
    model = small().fit(X, y)
    top_left = model.crop(keep=([-1, -1], [-0.1, -0.1]))  # overlaps 2 x 2 partitions
    assert top_left.partition_mask_.sum() == 4 and model.partition_mask_.all()
    per_partition = (2 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    assert model.n_params_ - top_left.n_params_ == 12 * per_partition
    inside = (X[:, 0] < 0) & (X[:, 1] < 0)
    np.testing.assert_allclose(top_left.predict(X[inside]), model.predict(X[inside]), atol=1e-6)
    with pytest.raises(ValueError, match="outside the kept partitions"):
        top_left.predict(X)
    as_nan = model.crop(keep=([-1, -1], [-0.1, -0.1]), outside="nan")
    predicted = as_nan.predict(X)
    assert np.isnan(predicted[~inside]).all() and not np.isnan(predicted[inside]).any()
    # A chunk of points all outside (a whole predict call, or one predict_batch_size chunk).
    assert np.isnan(as_nan.predict(X[~inside])).all()
    # The same crop as a partition mask; both survive pickling and save/load.
    mask = np.zeros((4, 4), dtype=bool)
    mask[:2, :2] = True
    by_mask = model.crop(partitions=mask)
    np.testing.assert_array_equal(by_mask.predict(X[inside]), top_left.predict(X[inside]))
    for other in (pickle.loads(pickle.dumps(by_mask)), load(by_mask.save(tmp_path / "c.skinr"))):
        assert other.n_params_ == by_mask.n_params_
        np.testing.assert_array_equal(other.predict(X[inside]), by_mask.predict(X[inside]))
        with pytest.raises(ValueError, match="outside the kept partitions"):
            other.predict(X[~inside][:3])


def test_crops_compose_and_refuse_empty_or_bad_requests(picture):
    X, y = picture
    model = small().fit(X, y)
    left = model.crop(keep=([-1, -1], [1, -0.1]))
    corner = left.crop(keep=([-1, -1], [-0.1, -0.1]))
    assert corner.partition_mask_.sum() == 4
    with pytest.raises(ValueError, match="keeps no partition"):
        left.crop(keep=([-1, 0.2], [1, 1]))
    with pytest.raises(ValueError, match="exactly one"):
        model.crop()
    with pytest.raises(ValueError, match="16 partitions"):
        model.crop(partitions=np.ones(9, dtype=bool))
    with pytest.raises(ValueError, match="outside="):
        model.crop(keep=([-1, -1], [0, 0]), outside="zero")


def test_bad_partitions_fail_before_training(picture):
    X, y = picture
    with pytest.raises(ValueError, match=r"partitions=\(2, 2, 2\) has 3 entries"):
        small(partitions=(2, 2, 2)).fit(X, y)
    with pytest.raises(ValueError, match=r"partitions=32 asks for 32 cells"):
        small(partitions=32).fit(X, y)
    with pytest.raises(ValueError, match="merge"):
        small(merge="sum").fit(X, y)


def test_audio_with_32_partitions():
    t = np.linspace(0, 1, 1024)
    X, y = to_coords(np.sin(2 * np.pi * 40 * t) * np.exp(-3 * t))
    model = small(partitions=32, max_iter=100).fit(X, y)
    assert model.partitions_ == (32,)
    assert model.score(X, y) > 15


@pytest.fixture(scope="module")
def halves():
    """A 16 x 16 picture as (top half X, y), (bottom half X, y), (whole X, y)."""
    rows, cols = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 16), indexing="ij")
    X, y = to_coords(np.sin(6 * rows) * np.cos(4 * cols) + rows)
    top = X[:, 0] < 0
    return (X[top], y[top]), (X[~top], y[~top]), (X, y)


def test_extend_new_keeps_old_partitions_exact_and_learns_the_new_ones(halves):
    (X_top, y_top), (X_bottom, y_bottom), _ = halves
    model = small(partitions=(2, 4), max_iter=150).fit(X_top, y_top)
    before_top = model.predict(X_top)
    extrapolated = model.score(X_bottom, y_bottom)
    grown = model.extend(X_bottom, y_bottom, fine_tune="new", max_iter=150)
    assert grown.partitions_ == (4, 4) and grown.partition_mask_.all()
    assert model.partitions_ == (2, 4)  # the original is untouched
    np.testing.assert_allclose(grown.predict(X_top), before_top, atol=1e-6)
    assert grown.score(X_bottom, y_bottom) > extrapolated + 5
    per_partition = (2 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    assert grown.n_params_ - model.n_params_ == 8 * per_partition
    assert grown.n_iter_ == 300 and grown.max_iter == 150 and not grown.warm_start


def test_extend_mirrors_the_neighbouring_partitions(halves):
    (X_top, y_top), (X_bottom, y_bottom), _ = halves
    model = small(partitions=(2, 4), max_iter=20).fit(X_top, y_top)
    grown = model.extend(X_bottom, y_bottom, fine_tune="new", max_iter=1, learning_rate=1e-12)
    old = model.module_.local[0].weight.detach()
    new = grown.module_.local[0].weight.detach()
    # Old grid rows 0-1 sit at rows 0-1; new row 2 mirrors old row 1, row 3 old row 0.
    for col in range(4):
        torch.testing.assert_close(new[2 * 4 + col], old[1 * 4 + col], atol=1e-9, rtol=0)
        torch.testing.assert_close(new[3 * 4 + col], old[0 * 4 + col], atol=1e-9, rtol=0)


def test_extend_all_fine_tunes_everything_and_round_trips(halves, tmp_path):
    (X_top, y_top), _, (X, y) = halves
    model = small(partitions=(2, 4), max_iter=100).fit(X_top, y_top)
    grown = model.extend(X, y, max_iter=100)
    assert grown.score(X, y) > model.score(X_top, y_top) - 10
    assert not np.allclose(grown.predict(X_top), model.predict(X_top))
    for other in (pickle.loads(pickle.dumps(grown)), load(grown.save(tmp_path / "g.skinr"))):
        np.testing.assert_array_equal(other.predict(X), grown.predict(X))


def test_extend_refuses_data_inside_the_fitted_partitions(halves):
    (X_top, y_top), _, _ = halves
    model = small(partitions=(2, 4), max_iter=5).fit(X_top, y_top)
    with pytest.raises(ValueError, match="within the fitted partitions"):
        model.extend(X_top, y_top)
    with pytest.raises(ValueError, match="fine_tune="):
        model.extend(X_top, y_top, fine_tune="old")
