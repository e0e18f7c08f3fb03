"""Operators (skinr.inverse) and fitting through them (``operator=``)."""

import pickle
from functools import partial

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

import skinr
from skinr import SIREN
from skinr.estimators.siren import SirenNet
from skinr.inverse import (
    AreaDownsample,
    Blur,
    GridFunction,
    Radon,
    TorchFunction,
    TVRegularized,
    radon_coords,
)
from skinr.metrics import psnr
from skinr.signals import grid, to_coords

from .conftest import make_fast


def blobs(points: np.ndarray) -> np.ndarray:
    """A smooth, asymmetric image (zero near the border), at ``(n, 2)`` points."""
    r, c = points[..., 0], points[..., 1]
    return np.exp(-((r - 0.2) ** 2 / 0.05 + (c + 0.3) ** 2 / 0.1)) + 0.5 * np.exp(
        -((r + 0.3) ** 2 + (c - 0.1) ** 2) / 0.02
    )


def blob_field(points: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(blobs(points.double().numpy()), dtype=torch.float32)[:, None]


def low_and_high(factor=4, n_low=8):
    n = factor * n_low
    image = blobs(grid((n, n), pixel_centers=True)).reshape(n, n)
    low = image.reshape(n_low, factor, n_low, factor).mean(axis=(1, 3))
    return image, low


# ---------------------------------------------------------------- the operators
@pytest.mark.parametrize("sampling", ["grid", "line"])
def test_radon_agrees_with_scikit_image(sampling):
    skimage_transform = pytest.importorskip("skimage.transform")
    n = 64
    image = blobs(grid((n, n), pixel_centers=True)).reshape(n, n)
    theta = np.linspace(0.0, 180.0, 12, endpoint=False)
    with pytest.warns(UserWarning, match="circle"):  # the blobs' tails cross the disc
        sinogram = skimage_transform.radon(image, theta)
    X = radon_coords(theta, (n, n))
    operator = Radon(pixel_size=2 / n, sampling=sampling).resolve(X)
    measured = operator.apply(blob_field, torch.as_tensor(X, dtype=torch.float32))
    error = np.abs(measured.numpy().ravel() - sinogram.ravel()).max()
    assert error < 0.01 * sinogram.max()


@pytest.mark.parametrize("sampling", ["grid", "line"])
def test_radon_square_chords_are_the_lines_through_the_box(sampling):
    X = np.array([[0.0, 0.0], [90.0, 0.5], [45.0, 0.0], [30.0, 1.9]])
    operator = Radon(circle=False, n_points=50, pixel_size=1.0, sampling=sampling).resolve(X)
    ones = operator.apply(lambda p: torch.ones(len(p), 1), torch.as_tensor(X, dtype=torch.float32))
    assert np.allclose(ones.numpy().ravel(), [2.0, 2.0, 2 * np.sqrt(2), 0.0], atol=1e-5)


def test_area_downsample_is_the_block_mean():
    _image, low = low_and_high()
    X, _ = to_coords(low, pixel_centers=True)
    operator = AreaDownsample(factor=4).resolve(X)
    assert operator.signal_grid()[0] == low.shape  # what the data resolve
    measured = operator.apply(blob_field, torch.as_tensor(X, dtype=torch.float32))
    assert np.allclose(measured.numpy().ravel(), low.ravel(), atol=1e-5)


@pytest.fixture
def siren_evaluations(monkeypatch):
    """The number of points of every SIREN forward pass, in order."""
    evaluated = []
    forward = SirenNet.forward

    def counting(module, points):
        evaluated.append(len(points))
        return forward(module, points)

    monkeypatch.setattr(SirenNet, "forward", counting)
    return evaluated


def assert_grid_render_equals_its_points(make, shape, read_points, field, every, nudge, outside):
    """``make(sampling)``'s grid render measures what its own points do: on the
    pixels, at every ``every``-th coordinate moved ``nudge`` between them (those take
    their own points) and at one coordinate ``outside`` the grid."""
    X = grid(shape, pixel_centers=True).reshape(-1, len(shape))
    on_grid = make("auto").resolve(X).within(10**6)
    by_points = make("points").resolve(X)
    assert (on_grid.sampling_, by_points.sampling_) == ("grid", "points")
    assert on_grid.shared_points == read_points
    coords = torch.as_tensor(X, dtype=torch.float32)
    coords[::every] += nudge
    coords[1] += outside
    expected = by_points.apply(field, coords)
    assert torch.allclose(on_grid.apply(field, coords), expected, atol=1e-5)


@pytest.mark.parametrize(("shape", "factor"), [((10,), 3), ((4, 6), 4), ((3, 2, 4), 2)])
def test_area_downsample_on_a_grid_render_equals_its_points(shape, factor):
    def field(points):
        return torch.sin(5 * points).sum(dim=1, keepdim=True) + points[:, -1:] ** 3

    assert_grid_render_equals_its_points(
        lambda sampling: AreaDownsample(factor, sampling=sampling),
        shape,
        np.prod(shape) * factor ** len(shape),
        field,
        every=3,
        nudge=0.011,
        outside=-2.0,
    )


def test_tv_through_area_downsample_shares_the_steps_render(siren_evaluations):
    # The means and the prior read the same sub-pixels: one render a step serves both.
    X, y = to_coords(np.random.default_rng(0).random((4, 6)), pixel_centers=True)
    evaluated = siren_evaluations
    operator = TVRegularized(AreaDownsample(factor=3), weight=0.5)
    make_fast(SIREN, max_iter=4, operator=operator).fit(X, y)
    assert evaluated == [12 * 18] * 4  # a render of the 12 x 18 sub-pixels a step
    evaluated.clear()
    points = TVRegularized(AreaDownsample(factor=3, sampling="points"), weight=0.5)
    make_fast(SIREN, max_iter=4, operator=points).fit(X, y)
    assert evaluated == [12 * 18] * 8  # the measurements' points, then the prior's


def test_blur_is_scipy_convolution_inside_the_image():
    n = 32
    image = blobs(grid((n, n), pixel_centers=True)).reshape(n, n)
    psf = np.outer([1.0, 2.0, 1.0], [0.0, 1.0, 3.0]) / 12  # asymmetric: catches a flip
    X, _ = to_coords(image, pixel_centers=True)
    operator = Blur(psf).resolve(X)
    measured = operator.apply(blob_field, torch.as_tensor(X, dtype=torch.float32))
    expected = ndimage.convolve(image, psf, mode="constant")
    inside = (slice(1, -1), slice(1, -1))
    assert np.allclose(measured.numpy().reshape(n, n)[inside], expected[inside], atol=1e-5)


@pytest.mark.parametrize(
    ("shape", "psf_shape"),
    [((40,), (5,)), ((12, 10), (3, 4)), ((12, 10), (9, 9)), ((6, 7, 5), (3, 2, 3))],
)
def test_blur_on_a_grid_render_equals_its_points(shape, psf_shape):
    # The grid path must read each point with the weight the points path gives it:
    # asymmetric and even-sized psfs catch a flip or a half-pixel shift.
    psf = np.random.default_rng(1).random(psf_shape)

    def field(points):
        return torch.sin(3 * points).sum(dim=1, keepdim=True) + points[:, :1] ** 3

    assert_grid_render_equals_its_points(
        lambda sampling: Blur(psf, sampling=sampling),
        shape,
        np.prod(np.add(shape, psf_shape) - 1),
        field,
        every=5,
        nudge=0.013,
        outside=2.0,
    )


def test_blur_fits_render_the_widened_grid_once_per_step(siren_evaluations):
    X, y = to_coords(np.random.default_rng(0).random((8, 8)), pixel_centers=True)
    evaluated = siren_evaluations
    make_fast(SIREN, max_iter=4, operator=Blur(np.ones((3, 3)) / 9)).fit(X, y)
    assert evaluated[:4] == [100] * 4  # 10 x 10 points for all 64 measurements
    evaluated.clear()
    make_fast(SIREN, max_iter=4, operator=Blur(np.ones((3, 3)) / 9, sampling="points")).fit(X, y)
    assert evaluated[:4] == [64 * 9] * 4


def test_blur_auto_evaluates_points_when_the_grid_exceeds_the_budget():
    X, y = to_coords(np.random.default_rng(0).random((8, 8)), pixel_centers=True)
    small = make_fast(SIREN, max_iter=3, predict_batch_size=90, operator=Blur(np.ones((3, 3))))
    assert small.fit(X, y).operator_.sampling_ == "points"
    assert small.predict(X).shape == y.shape
    forced = make_fast(
        SIREN, predict_batch_size=90, operator=Blur(np.ones((3, 3)), sampling="grid")
    )
    with pytest.raises(ValueError, match="100 signal points per step"):
        forced.fit(X, y)
    assert not hasattr(forced, "module_")


def test_grid_function_runs_a_torch_image_operator():
    image, low = low_and_high()
    shape = image.shape
    operator = GridFunction(
        lambda picture: torch.nn.functional.avg_pool2d(picture[None], 4)[0], shape
    ).resolve(np.arange(low.size)[:, None])
    index = torch.arange(low.size, dtype=torch.float32)[:, None]
    measured = operator.apply(blob_field, index)
    assert np.allclose(measured.numpy().ravel(), low.ravel(), atol=1e-5)


# ------------------------------------------------------ fitting through them
@pytest.mark.parametrize("steps", [60])
def test_every_estimator_fits_through_an_operator(Estimator, steps):
    image, low = low_and_high()
    X, y = to_coords(low, pixel_centers=True)
    model = make_fast(Estimator, max_iter=steps, operator=AreaDownsample(factor=4)).fit(X, y)
    assert model.predict(X).shape == y.shape
    assert model.render(image.shape).shape == image.shape
    assert model.footprint_ == pytest.approx(np.array([[-1.0, 1.0], [-1.0, 1.0]]))
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_super_resolution_through_area_downsample_matches_the_measurements():
    image, low = low_and_high()
    X, y = to_coords(low, pixel_centers=True)
    # 8 x 8 samples: a first layer of low frequency, or it fills the gaps with noise.
    model = SIREN(32, 2, first_omega_0=5, max_iter=300, learning_rate=1e-3, random_state=0)
    model.set_params(operator=AreaDownsample(factor=4)).fit(X, y)
    # predict and score live in the measurements' space...
    assert model.score(X, y) > 30
    # ...predict_signal and render in the signal's: the block means of the render
    # are the prediction, and the render is the image, not its blocks.
    render = model.render(image.shape)
    blocks = render.reshape(8, 4, 8, 4).mean(axis=(1, 3))
    assert np.allclose(blocks.ravel(), model.predict(X), atol=1e-4)
    fine = grid(image.shape, pixel_centers=True)
    assert np.allclose(model.predict_signal(fine), render.ravel())
    nearest = np.kron(low, np.ones((4, 4)))
    assert psnr(image, render, data_range=1) > psnr(image, nearest, data_range=1) + 3


def test_ct_reconstruction_from_a_sinogram():
    n = 16
    image = blobs(grid((n, n), pixel_centers=True)).reshape(n, n)
    theta = np.linspace(0.0, 180.0, 16, endpoint=False)
    X = radon_coords(theta, (n, n))
    operator = Radon(pixel_size=2 / n)
    y = operator.resolve(X).apply(blob_field, torch.as_tensor(X, dtype=torch.float32))
    y = y.numpy().ravel()
    model = SIREN(width=32, depth=2, max_iter=300, learning_rate=1e-3, random_state=0)
    model.set_params(operator=operator).fit(X, y)
    render = model.render((n, n))
    assert psnr(image, render, data_range=1) > 20
    # Nothing beyond the disc is measured: the reconstruction is zero there.
    outside = np.sum(grid((n, n), pixel_centers=True) ** 2, axis=1) > 1
    assert outside.any() and np.all(render.ravel()[outside] == 0)


def test_radon_on_a_grid_renders_once_per_step_and_counts_it(monkeypatch):
    n = 8
    theta = np.linspace(0.0, 180.0, 6, endpoint=False)
    X = radon_coords(theta, (n, n))
    y = np.ones(len(X))
    rendered = []
    model = make_fast(SIREN, max_iter=3, operator=Radon(pixel_size=2 / n))
    original = SIREN._forward

    def spy(self, module, coords):
        rendered.append(len(coords))
        return original(self, module, coords)

    monkeypatch.setattr(SIREN, "_forward", spy)
    model.fit(X, y)
    # Every step evaluates the network at the 8 x 8 pixel centres, whatever it measures.
    assert rendered[:3] == [n * n] * 3
    per_render = model.count_flops(X[:1])
    assert model.count_flops(X) == per_render
    assert per_render == clone(model).set_params(operator=None).fit(
        grid((n, n)), np.ones(n * n)
    ).count_flops(grid((n, n)))
    lines = clone(model).set_params(operator=Radon(pixel_size=2 / n, sampling="line")).fit(X, y)
    assert lines.count_flops(X) == len(X) * n * per_render // (n * n)


def test_predict_signal_without_an_operator_is_predict():
    X, y = to_coords(np.linspace(0, 1, 16))
    model = make_fast(SIREN).fit(X, y)
    assert model.operator_ is None
    assert np.array_equal(model.predict_signal(X), model.predict(X))


def test_batch_size_none_bounds_the_points_per_step(monkeypatch):
    _image, low = low_and_high()
    X, y = to_coords(low, pixel_centers=True)
    seen = []
    model = make_fast(SIREN, max_iter=3, predict_batch_size=64, operator=AreaDownsample(4))
    original = AreaDownsample.apply

    def spy(self, field, coords, generator=None):
        seen.append(len(coords))
        return original(self, field, coords, generator)

    monkeypatch.setattr(AreaDownsample, "apply", spy)
    model.fit(X, y)
    # 16 points per measurement, 64 per step: 4 measurements a step.
    assert seen[:3] == [4, 4, 4]


def test_early_stopping_scores_held_out_measurements():
    _image, low = low_and_high()
    X, y = to_coords(low, pixel_centers=True)
    model = make_fast(SIREN, max_iter=40, early_stopping=True, validation_interval=5)
    model.set_params(operator=AreaDownsample(4)).fit(X, y)
    assert len(model.validation_scores_) >= 1
    assert model.best_validation_score_ == max(model.validation_scores_)


# ------------------------------------------------------------- the prior
def isotropic_tv(image: np.ndarray) -> float:
    dr, dc = np.diff(image, axis=0)[:, :-1], np.diff(image, axis=1)[:-1, :]
    return float(np.sqrt(dr**2 + dc**2 + 1e-8).mean())


def test_tv_penalty_is_the_total_variation_of_the_render():
    X, y = to_coords(np.random.default_rng(0).random((8, 6)), pixel_centers=True)
    model = make_fast(SIREN, max_iter=3, operator=TVRegularized(weight=0.5)).fit(X, y)
    field = lambda points: torch.as_tensor(  # noqa: E731
        model.predict_signal(points.numpy()), dtype=torch.float32
    )[:, None]
    pixels = torch.as_tensor(grid((8, 6), pixel_centers=True), dtype=torch.float32)
    penalty = model.operator_.penalty(field, pixels, 0.25)
    expected = 0.5 * isotropic_tv(model.render((8, 6)) / 0.25)
    assert float(penalty()) == pytest.approx(expected, rel=1e-4)
    assert model.operator_.penalty_points == 48


def test_tv_through_area_downsample_is_measured_on_the_sub_pixels():
    # Super-resolution's prior must act where the block means leave the signal open.
    X, y = to_coords(np.random.default_rng(0).random((4, 6)), pixel_centers=True)
    operator = TVRegularized(AreaDownsample(factor=3), weight=0.5)
    model = make_fast(SIREN, max_iter=3, operator=operator).fit(X, y)
    assert model.operator_.signal_grid()[0] == (4, 6)
    assert model.operator_.prior_grid()[0] == (12, 18)
    assert model.operator_.penalty_points == 12 * 18
    field = lambda points: torch.as_tensor(  # noqa: E731
        model.predict_signal(points.numpy()), dtype=torch.float32
    )[:, None]
    pixels = torch.as_tensor(grid((12, 18), pixel_centers=True), dtype=torch.float32)
    expected = 0.5 * isotropic_tv(model.render((12, 18)) / 0.25)
    penalty = model.operator_.penalty(field, pixels, 0.25)
    assert float(penalty()) == pytest.approx(expected, rel=1e-4)
    # ... and it is what training adds: a weight changes the sub-pixels, not only the means.
    plain = make_fast(SIREN, max_iter=3, operator=AreaDownsample(factor=3)).fit(X, y)
    assert not np.allclose(model.render((12, 18)), plain.render((12, 18)))


def test_tv_weight_zero_is_the_operator_alone_and_a_weight_flattens_the_noise():
    rng = np.random.default_rng(0)
    clean = np.kron(np.eye(2), np.ones((8, 8)))  # two flat squares
    X, y = to_coords(clean + rng.normal(0, 0.2, clean.shape), pixel_centers=True)
    # The paper's hidden omega_0 fits the noise within the steps; the 16 x 16 default (8)
    # is slower to, and the prior must have noise to flatten.
    fast = partial(make_fast, SIREN, max_iter=150, hidden_omega_0=30.0)
    plain = fast(operator=AreaDownsample(factor=1)).fit(X, y)
    unweighted = fast(operator=TVRegularized(weight=0)).fit(X, y)
    assert np.array_equal(unweighted.predict(X), plain.predict(X))
    smoothed = fast(operator=TVRegularized(weight=0.3)).fit(X, y)
    assert isotropic_tv(smoothed.render((16, 16))) < 0.7 * isotropic_tv(plain.render((16, 16)))
    truth = clean.ravel()
    assert (
        psnr(truth, smoothed.predict(X), data_range=1)
        > psnr(truth, plain.predict(X), data_range=1) + 1
    )


def test_tv_regularized_wraps_radon_and_survives_save(tmp_path):
    theta = np.linspace(0.0, 180.0, 6, endpoint=False)
    X = radon_coords(theta, (8, 8))
    operator = TVRegularized(Radon(pixel_size=0.25), weight=1e-2)
    model = make_fast(SIREN, max_iter=3, operator=operator).fit(X, np.ones(len(X)))
    assert model.render((8, 8))[0, 0] == 0  # Radon's support: outside the disc
    assert clone(model).operator.operator.pixel_size == 0.25
    loaded = skinr.load(model.save(tmp_path / "ct.skinr"))
    assert isinstance(loaded.operator_.operator_, Radon)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.count_flops(X) == model.count_flops(X)


def test_radon_and_its_tv_penalty_render_the_grid_once_per_step(monkeypatch):
    theta = np.linspace(0.0, 180.0, 6, endpoint=False)
    X = radon_coords(theta, (8, 8))
    y = np.random.default_rng(0).random(len(X))
    grid_renders = []
    forward = SirenNet.forward

    def counting(module, points):
        grid_renders.append(len(points) == 64)
        return forward(module, points)

    monkeypatch.setattr(SirenNet, "forward", counting)
    plain = make_fast(SIREN, max_iter=4, operator=Radon(pixel_size=0.25)).fit(X, y)
    alone = sum(grid_renders)
    grid_renders.clear()
    operator = TVRegularized(Radon(pixel_size=0.25), weight=1e-2)
    regularized = make_fast(SIREN, max_iter=4, operator=operator).fit(X, y)
    assert alone >= 4
    assert sum(grid_renders) == alone  # the penalty reuses the measurements' render
    # ... and it is there: the weight changes what is learned.
    assert not np.allclose(regularized.render((8, 8)), plain.render((8, 8)))


# ------------------------------------------------------- declared data
def test_operators_survive_clone_pickle_and_save(tmp_path):
    _image, low = low_and_high()
    X, y = to_coords(low, pixel_centers=True)
    model = make_fast(SIREN, operator=Blur(np.ones((3, 3)) / 9)).fit(X, y)
    assert isinstance(clone(model).operator, Blur)
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(again.predict(X), model.predict(X))
    loaded = skinr.load(model.save(tmp_path / "m.skinr"))
    assert np.allclose(loaded.predict(X), model.predict(X))
    assert np.array_equal(loaded.operator.psf, model.operator.psf)
    assert np.array_equal(loaded.render((8, 8)), model.render((8, 8)))


def mean_of_two(field, X):
    return (field(X) + field(-X)) / 2


def test_a_users_function_pickles_but_is_not_saved(tmp_path):
    X, y = to_coords(np.random.default_rng(0).random((4, 4)), pixel_centers=True)
    model = make_fast(SIREN, operator=TorchFunction(mean_of_two, (4, 4))).fit(X, y)
    assert pickle.loads(pickle.dumps(model)).predict(X) == pytest.approx(model.predict(X))
    with pytest.raises(TypeError, match="declared operators only"):
        model.save(tmp_path / "m.skinr")
    assert not (tmp_path / "m.skinr").exists()


def test_a_file_naming_an_unknown_operator_is_refused(tmp_path):
    from skinr import persistence

    with pytest.raises(ValueError, match="not one of skinr's"):
        persistence._from_json({"__operator__": "os.system", "state": {}})


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("operator", "X", "match"),
    [
        (Radon(), np.zeros((4, 3)), "2 columns"),
        (Radon(), np.array([[0.0, 0.1], [400.0, 0.2]]), "degrees"),
        (Radon(), np.array([[0.0, 0.1], [10.0, 0.2]]), "single detector"),
        (Blur(np.ones((9, 9))), grid((4, 4), pixel_centers=True), "larger than"),
        (Blur(np.ones(3)), grid((4, 4), pixel_centers=True), "axes"),
        (Blur(np.ones((3, 3)), sampling="fft"), grid((4, 4), pixel_centers=True), "sampling"),
        (Blur(np.ones((1,) * 4), sampling="grid"), np.repeat([[0.0], [1.0]], 4, axis=1), "1 to 3"),
        (AreaDownsample(factor=0), grid((4, 4), pixel_centers=True), "positive int"),
        (GridFunction(lambda x: x, (4, 4)), np.array([[0.5]]), "indices"),
        (Radon(n_points=10**6, pixel_size=0.5), np.array([[0.0, 0.1]]), "predict_batch_size"),
        (TVRegularized(weight=-1.0), grid((4, 4), pixel_centers=True), "weight"),
        (TVRegularized(Radon()), np.array([[0.0, 0.1], [10.0, 0.2]]), "single detector"),
    ],
)
def test_bad_measurements_are_refused_before_training(operator, X, match):
    model = make_fast(SIREN, operator=operator)
    with pytest.raises(ValueError, match=match):
        model.fit(X, np.zeros(len(X)))
    assert not hasattr(model, "module_")


def test_a_tv_grid_beyond_the_step_budget_is_refused():
    X, y = to_coords(np.zeros((16, 16)), pixel_centers=True)
    model = make_fast(SIREN, predict_batch_size=100, operator=TVRegularized())
    with pytest.raises(ValueError, match="256 signal points per step in its penalty"):
        model.fit(X, y)
    assert not hasattr(model, "module_")


def test_operator_must_be_an_operator():
    X, y = to_coords(np.zeros((4, 4)))
    with pytest.raises(InvalidParameterError, match="operator"):
        make_fast(SIREN, operator=lambda f, x: f(x)).fit(X, y)
    with pytest.raises(TypeError, match="TVRegularized: operator must be"):
        make_fast(SIREN, operator=TVRegularized(operator="radon")).fit(X, y)


def test_predict_signal_checks_the_signal_dims():
    theta = np.linspace(0.0, 180.0, 4, endpoint=False)
    X = radon_coords(theta, (8, 8))
    model = make_fast(SIREN, max_iter=2, operator=Radon(pixel_size=0.25)).fit(X, np.ones(len(X)))
    with pytest.raises(ValueError, match="2 dimensions"):
        model.predict_signal(np.zeros((3, 3)))


@pytest.mark.parametrize(
    ("attribute", "claim", "match"),
    [("n_points_", 10**12, "quadrature points"), ("shape_", [10**6, 10**6], "points per step")],
)
def test_a_file_whose_operator_claims_huge_quadratures_is_refused(
    tmp_path, attribute, claim, match
):
    import json

    import safetensors
    import safetensors.torch

    from skinr import persistence

    X = radon_coords(np.linspace(0.0, 180.0, 4, endpoint=False), (8, 8))
    model = make_fast(SIREN, max_iter=2, operator=Radon(pixel_size=0.25)).fit(X, np.ones(len(X)))
    path = model.save(tmp_path / "ct.skinr")
    tensors = safetensors.torch.load_file(path)
    with safetensors.safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    header = json.loads(metadata["header"])
    header["fitted"]["operator_"]["state"][attribute] = claim
    metadata["header"] = json.dumps(header)
    metadata["sha256"] = persistence._checksum(metadata["header"], tensors)
    safetensors.torch.save_file(tensors, path, metadata=metadata)
    with pytest.raises(ValueError, match=rf"corrupt or not a skinr model: .*{match}"):
        skinr.load(path)


def test_a_file_whose_area_downsample_claims_a_huge_factor_is_refused(tmp_path):
    """The quadrature count is checked from the factor, before any offsets exist."""
    import json

    import safetensors
    import safetensors.torch

    from skinr import persistence

    X, y = to_coords(np.random.default_rng(0).random((4, 4)), pixel_centers=True)
    model = make_fast(SIREN, max_iter=2, operator=AreaDownsample(2)).fit(X, y)
    path = model.save(tmp_path / "superres.skinr")
    tensors = safetensors.torch.load_file(path)
    with safetensors.safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    header = json.loads(metadata["header"])
    header["fitted"]["operator_"]["state"]["factor"] = 10**6
    metadata["header"] = json.dumps(header)
    metadata["sha256"] = persistence._checksum(metadata["header"], tensors)
    safetensors.torch.save_file(tensors, path, metadata=metadata)
    with pytest.raises(ValueError, match=r"corrupt or not a skinr model: .*quadrature points"):
        skinr.load(path)
