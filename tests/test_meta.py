"""Learned priors: meta-learning an initialisation, starting fits from it, its files."""

import contextlib

import numpy as np
import pytest
import torch
from sklearn.base import clone

import skinr
from skinr.inverse import AreaDownsample
from skinr.meta import LearnedInit, load_prior
from skinr.signals import to_coords

SMALL = dict(width=16, depth=1)


def family(n, size=12, seed=0):
    """Images of one kind: a shared grating at a random contrast, plus a faint grating
    of random phase: what they share is what a prior can learn."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size] / size
    shared = np.sin(2 * np.pi * (2 * rows + cols))
    return [
        0.5
        + rng.uniform(0.25, 0.4) * shared
        + 0.05 * np.sin(2 * np.pi * (rows - 2 * cols) + rng.uniform(0, 2 * np.pi))
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def prior():
    return LearnedInit(
        skinr.SIREN(**SMALL, learning_rate=1e-3, random_state=0),
        meta_steps=100,
        random_state=0,
        device="cpu",
    ).fit(family(16))


def test_the_meta_loss_falls_and_a_new_signal_starts_ahead(prior):
    """Reptile lowers the adapted loss over the collection, and a signal of the same kind
    the prior never saw fits further in a few steps from the prior than from random."""
    curve = np.asarray(prior.loss_curve_)
    assert len(curve) == prior.n_iter_ == 100
    assert curve[-20:].mean() < 0.5 * curve[:20].mean()
    X, y = to_coords(family(1, seed=99)[0])
    from_prior = prior.initialized(max_iter=10).fit(X, y)
    from_random = skinr.SIREN(
        **SMALL, learning_rate=1e-3, random_state=0, max_iter=10, device="cpu"
    ).fit(X, y)
    assert from_prior.loss_curve_[-1] < 0.5 * from_random.loss_curve_[-1]
    assert from_prior.n_iter_ == 10 and len(from_prior.history_["step"]) == 10


def test_initialized_starts_at_the_learned_weights_in_the_priors_frame(prior):
    model = prior.initialized()
    assert model.warm_start and model.n_iter_ == 0 and model.loss_curve_ == []
    for learned, start in zip(
        prior.estimator_.module_.parameters(), model.module_.parameters(), strict=True
    ):
        torch.testing.assert_close(learned, start)
        assert learned is not start  # a copy: fitting it leaves the prior as it is
    assert model.y_offset_ == prior.estimator_.y_offset_


@pytest.mark.parametrize("method", ["reptile", "fomaml"])
def test_both_meta_updates_move_the_initialisation(method):
    images = family(4)
    start = LearnedInit(skinr.SIREN(**SMALL), meta_steps=1, random_state=0, method=method)
    moved = LearnedInit(skinr.SIREN(**SMALL), meta_steps=5, random_state=0, method=method)
    first = start.fit(images).estimator_.module_.state_dict()
    later = moved.fit(images).estimator_.module_.state_dict()
    assert any(not torch.equal(first[k], later[k]) for k in first)


def test_a_prior_works_through_an_operator(prior):
    """Super-resolution from the prior: a fit through AreaDownsample starts from it."""
    image = family(1, seed=5)[0]
    low = image.reshape(6, 2, 6, 2).mean(axis=(1, 3))
    model = prior.initialized(max_iter=5, operator=AreaDownsample(factor=2))
    model.fit(*to_coords(low))
    assert model.render((12, 12)).shape == (12, 12)
    assert model.operator_ is not None and model.n_iter_ == 5


def block_means(image, factor=2):
    size = image.shape[0] // factor
    return image.reshape(size, factor, size, factor).mean(axis=(1, 3))


def test_a_prior_learned_through_an_operator_reconstructs_from_measurements_alone():
    """The collection is what the fits will see (block means): each inner fit goes
    through the estimator's operator, the network lives on the signal's grid, and a
    new signal's reconstruction from its measurements starts ahead of a random start."""
    make = dict(**SMALL, learning_rate=1e-3, random_state=0, device="cpu")
    operator = AreaDownsample(factor=2)
    lows = [to_coords(block_means(image)) for image in family(16)]
    prior = LearnedInit(skinr.SIREN(**make, operator=operator), meta_steps=100, random_state=0).fit(
        lows
    )
    curve = np.asarray(prior.loss_curve_)
    assert curve[-20:].mean() < 0.5 * curve[:20].mean()
    fitted = prior.estimator_
    assert fitted.operator_ is not None and fitted.grid_shape_ == (6, 6)
    # The signal's frame, as a fit through the operator lays it: not the measurements'.
    direct = skinr.SIREN(**make, operator=operator, max_iter=1).fit(*lows[0])
    np.testing.assert_array_equal(fitted.domain_, direct.domain_)
    image = family(1, seed=99)[0]
    X, y = to_coords(block_means(image))
    from_prior = prior.initialized(max_iter=10).fit(X, y)
    from_random = skinr.SIREN(**make, operator=operator, max_iter=10).fit(X, y)
    error = {
        name: np.mean((model.render((12, 12)) - image) ** 2)
        for name, model in (("prior", from_prior), ("random", from_random))
    }
    assert error["prior"] < 0.5 * error["random"]


def test_a_ct_prior_learns_from_sinograms_on_the_images_grid(tmp_path):
    from skinr.inverse import Radon, radon_coords

    theta = np.linspace(0, 180, 6, endpoint=False)
    X = radon_coords(theta, (16, 16))
    rng = np.random.default_rng(0)
    # Any sinograms of this geometry: the test is about the frame the prior learns in.
    tasks = [(X, rng.random(len(X))) for _ in range(3)]
    ct = skinr.Grid(operator=Radon(pixel_size=2 / 16), random_state=0, device="cpu")
    prior = LearnedInit(ct, inner_steps=2, meta_steps=3, random_state=0).fit(tasks)
    assert prior.estimator_.grid_shape_ == (16, 16) and prior.n_iter_ == 3
    direct = clone(ct).set_params(max_iter=1).fit(*tasks[0])
    np.testing.assert_array_equal(prior.estimator_.domain_, direct.domain_)
    model = prior.initialized(max_iter=2).fit(*tasks[0])
    assert model.render((16, 16)).shape == (16, 16)
    # A file like any prior's: the operator travels with it.
    loaded = load_prior(prior.save(tmp_path / "ct.skinr"))
    again = loaded.initialized(max_iter=2).fit(*tasks[0])
    np.testing.assert_array_equal(again.render((16, 16)), model.render((16, 16)))
    with pytest.raises(ValueError, match="Radon"):
        LearnedInit(ct, meta_steps=1).fit([(np.zeros((5, 3)), np.zeros(5))])


def test_a_prior_is_a_model_file(prior, tmp_path):
    path = prior.save(tmp_path / "prior.skinr")
    loaded = load_prior(path)
    X, y = to_coords(family(1, seed=7)[0])
    a = prior.initialized(max_iter=3).fit(X, y).predict(X)
    b = loaded.initialized(max_iter=3).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("make", "signals", "message"),
    [
        (lambda: skinr.EnsembleINR(), family(2), "EnsembleINR cannot take a learned prior"),
        (lambda: skinr.MultiHeadReLU(), family(2), "MultiHeadReLU cannot take a learned prior"),
        (lambda: skinr.LoESine(), family(2), "LoESine cannot take a learned prior"),
        (lambda: skinr.LocalGlobalSIREN(), family(2), "LocalGlobalSIREN cannot take"),
        (lambda: skinr.SIREN(**SMALL), [np.zeros((8, 8)), np.zeros(30)], "coordinate dim"),
        (lambda: skinr.SIREN(**SMALL), [np.zeros((8, 8)), np.zeros((8, 8, 3))], "channels"),
        (lambda: skinr.SIREN(**SMALL), [np.zeros((8, 8)), np.zeros((90, 90))], "one size"),
        (lambda: skinr.SIREN(**SMALL), [], "at least one signal"),
        (
            lambda: skinr.SIREN(**SMALL, operator=AreaDownsample(2)),
            family(2),  # images, where its fits take (X, y) measurements
            "holds what its fits take",
        ),
    ],
)
def test_bad_collections_and_estimators_are_refused_before_training(
    make, signals, message, monkeypatch
):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(skinr.base.BaseINR, "_training_loop", staticmethod(refuse))
    with pytest.raises(ValueError, match=message):
        LearnedInit(make(), meta_steps=2).fit(signals)


def test_a_prior_for_other_settings_or_another_architecture_is_refused(prior, tmp_path):
    with pytest.raises(ValueError, match="another structure"):
        prior.initialized(skinr.SIREN(width=32, depth=1))
    with pytest.raises(ValueError, match="this prior is for SIREN; got a HashGrid"):
        prior.initialized(skinr.HashGrid())


def test_a_codec_model_file_is_refused_as_a_prior(tmp_path):
    pytest.importorskip("constriction", reason="LatentCodec needs the codec extra")
    X, y = to_coords(family(1)[0])
    codec_file = skinr.LatentCodec(max_iter=2, n_levels=2, width=4, depth=1).fit(X, y)
    path = codec_file.save(tmp_path / "codec.skinr")
    with pytest.raises(ValueError, match="cannot be a prior"):
        load_prior(path)


def test_ctrl_c_keeps_the_prior_and_a_checkpoint_resumes_as_if_uninterrupted(tmp_path, monkeypatch):
    images = family(6)
    settings = dict(meta_steps=6, random_state=0, device="cpu", checkpoint_every=2)
    whole = LearnedInit(skinr.SIREN(**SMALL), **settings).fit(images)
    path = tmp_path / "meta.ckpt"

    class CtrlCAfterThreeSteps:
        """The loop's Ctrl-C flag, as if pressed during the third meta step."""

        checks = 0

        def is_set(self):
            self.checks += 1
            return self.checks == 3

    @contextlib.contextmanager
    def pressed():
        yield CtrlCAfterThreeSteps()

    monkeypatch.setattr(skinr.meta, "ctrl_c_between_steps", pressed)
    stopped = LearnedInit(skinr.SIREN(**SMALL), **settings, checkpoint_path=path)
    with pytest.raises(KeyboardInterrupt):
        stopped.fit(images)
    assert stopped.n_iter_ == 3 and path.is_file()
    monkeypatch.undo()
    resumed = LearnedInit(skinr.SIREN(**SMALL), **settings, checkpoint_path=path).fit(images)
    assert resumed.n_iter_ == 6 and not path.is_file()
    np.testing.assert_allclose(resumed.loss_curve_, whole.loss_curve_, rtol=1e-6)
    for a, b in zip(
        resumed.estimator_.module_.parameters(),
        whole.estimator_.module_.parameters(),
        strict=True,
    ):
        torch.testing.assert_close(a, b)


def test_the_shipped_prior_loads_and_starts_a_fit_ahead():
    """skinr/data/prior_siren_64.skinr (benchmarks/priors.py) is a SIREN prior for 64 x 64
    grey images; the bundled photograph (not in its collection) starts ahead from it."""
    from importlib.resources import files

    prior = load_prior(files("skinr") / "data" / "prior_siren_64.skinr")
    assert type(prior.estimator_) is skinr.SIREN and prior.estimator_.width == 128
    X, y = to_coords(skinr.datasets.camera(size=64))
    from_prior = prior.initialized(max_iter=20, device="cpu").fit(X, y)
    from_random = skinr.SIREN(width=128, depth=3, max_iter=20, random_state=0, device="cpu")
    from_random.fit(X, y)
    assert from_prior.score(X, y) > from_random.score(X, y) + 3  # dB
