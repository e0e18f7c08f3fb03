"""The frequency defaults that follow the sample density (SIREN, FourierFeatureMLP)."""

import numpy as np
import pytest

from skinr import FINER, SIREN, FourierFeatureMLP, LocalGlobalSIREN
from skinr.estimators.siren import auto_first_omega_0
from skinr.signals import to_coords


@pytest.mark.parametrize(("side", "expected"), [(16, 8.0), (32, 16.0), (60, 30.0), (256, 30.0)])
def test_siren_caps_its_first_frequency_at_half_the_samples(side, expected):
    X, y = to_coords(np.zeros((side, 4)), pixel_centers=True)
    model = SIREN(width=8, depth=1, max_iter=1, random_state=0).fit(X, y)
    assert model.first_omega_0_ == expected == auto_first_omega_0(side)
    assert model.module_.hidden[0].omega_0 == expected
    # The hidden layers take the same cap.
    assert model.hidden_omega_0_ == expected == model.module_.hidden[1].omega_0


def test_siren_keeps_an_explicit_hidden_frequency():
    X, y = to_coords(np.zeros((16, 16)), pixel_centers=True)
    model = SIREN(width=8, depth=1, max_iter=1, hidden_omega_0=30.0, random_state=0).fit(X, y)
    assert (model.first_omega_0_, model.hidden_omega_0_) == (8.0, 30.0)
    assert model.module_.hidden[1].omega_0 == 30.0


def test_siren_keeps_an_explicit_first_frequency():
    X, y = to_coords(np.zeros((8, 8)))
    model = SIREN(width=8, depth=1, max_iter=1, first_omega_0=30.0).fit(X, y)
    assert model.first_omega_0_ == 30.0


# Each network's "auto" frequencies on 32, 64 and 128 samples per axis: SIREN's rule
# (30 from 60 samples, half the samples below), FINER's and LocalGlobalSIREN's at twice
# the samples (FINER's activation runs about twice as fast at the same omega_0;
# LocalGlobalSIREN's by measurement).
SINE_FACTORS = [
    (SIREN, ("first_omega_0_", "hidden_omega_0_"), (16.0, 30.0, 30.0)),
    (FINER, ("first_omega_0_", "hidden_omega_0_"), (8.0, 16.0, 30.0)),
    (LocalGlobalSIREN, ("first_omega_0_", "omega_0_"), (8.0, 16.0, 30.0)),
]


@pytest.mark.parametrize(("Estimator", "names", "caps"), SINE_FACTORS)
@pytest.mark.parametrize("side", [32, 64, 128])
def test_sine_networks_cap_their_auto_frequencies_by_the_samples(Estimator, names, caps, side):
    expected = caps[[32, 64, 128].index(side)]
    X, y = to_coords(np.zeros((side, side)), pixel_centers=True)
    model = Estimator(max_iter=1, random_state=0).fit(X, y)
    assert [getattr(model, name) for name in names] == [expected, expected]
    # An explicit number is kept, whatever the samples.
    explicit = {name.rstrip("_"): 7.0 for name in names}
    model = Estimator(max_iter=1, random_state=0, **explicit).fit(X, y)
    assert [getattr(model, name) for name in names] == [7.0, 7.0]


def test_local_global_layers_use_the_resolved_frequencies():
    X, y = to_coords(np.zeros((32, 32)), pixel_centers=True)
    module = LocalGlobalSIREN(max_iter=1, random_state=0).fit(X, y).module_
    assert (module.first_omega_0, module.omega_0) == (8.0, 8.0)


@pytest.mark.parametrize(
    ("encoding", "side", "expected"),
    [("gaussian", 64, 2.0), ("gaussian", 256, 8.0), ("gaussian", 8, 0.5), ("positional", 64, 16.0)],
)
def test_fourier_scale_follows_the_samples(encoding, side, expected):
    X, y = to_coords(np.zeros((side, 2)))
    model = FourierFeatureMLP(
        width=8, depth=0, n_frequencies=4, encoding=encoding, max_iter=1, random_state=0
    ).fit(X, y)
    assert model.scale_ == expected
    assert FourierFeatureMLP(scale=10.0, width=8, depth=0, max_iter=1).fit(X, y).scale_ == 10.0


def test_fourier_auto_scale_sets_the_drawn_frequencies():
    X, y = to_coords(np.zeros((256, 2)))
    model = FourierFeatureMLP(width=8, depth=0, n_frequencies=256, max_iter=1, random_state=0)
    spread = model.fit(X, y).module_.encoding.frequencies.std().item()
    assert spread == pytest.approx(8.0, rel=0.15)
