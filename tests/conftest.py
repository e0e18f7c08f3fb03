"""Shared fixtures: small signals made in code, and fast settings per estimator."""

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skinr import (
    FINER,
    SIREN,
    SL2A,
    WIRE,
    EnsembleINR,
    FourierFeatureMLP,
    GaussINR,
    Grid,
    HashGrid,
    LocalGlobalSIREN,
    LoESine,
    MultiHeadReLU,
)
from skinr.codec import LatentCodec
from skinr.signals import to_coords

# Small networks and few steps: enough to exercise every code path quickly.
FAST_PARAMS = {
    SIREN: dict(width=16, depth=1, max_iter=20, learning_rate=1e-3),
    FourierFeatureMLP: dict(width=16, depth=1, n_frequencies=8, max_iter=20),
    EnsembleINR: dict(grid=2, width=8, depth=1, max_iter=20, learning_rate=1e-3),
    MultiHeadReLU: dict(
        heads=2, width=16, depth=2, n_connections=8, max_iter=20, learning_rate=1e-2
    ),
    LoESine: dict(width=16, depth=3, max_iter=20),
    LocalGlobalSIREN: dict(
        partitions=2, local_width=8, global_width=8, depth=1, max_iter=20, learning_rate=1e-3
    ),
    SL2A: dict(width=8, depth=1, degree=6, rank=4, max_iter=20),
    FINER: dict(width=16, depth=1, max_iter=20),
    GaussINR: dict(width=16, depth=1, scale=3.0, max_iter=20),
    WIRE: dict(width=16, depth=1, max_iter=20),
    Grid: dict(resolution=2, max_iter=20),
    HashGrid: dict(
        n_levels=3,
        features_per_level=2,
        log2_table_size=10,
        base_resolution=1,
        width=8,
        max_iter=20,
    ),
}
# LatentCodec writes its stream with constriction (the codec extra), which the floors
# job does not install.
if importlib.util.find_spec("constriction") is not None:
    FAST_PARAMS[LatentCodec] = dict(n_levels=3, width=8, depth=1, arm_width=4, max_iter=20)
ALL_ESTIMATORS = list(FAST_PARAMS)
ROOT = Path(__file__).resolve().parent.parent


def run_script(script: str, *args, deadline: float) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python from the repository root (so it can import
    ``tests``), with ``args`` as its argv; past ``deadline`` seconds it fails the test
    instead of stalling the suite."""
    return subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=deadline,
    )


@pytest.fixture(params=ALL_ESTIMATORS, ids=lambda cls: cls.__name__)
def Estimator(request):
    """Each of skinr's estimators in turn."""
    return request.param


def make_fast(Estimator, **overrides):
    """An estimator with the fast test settings (plus overrides), on the CPU."""
    params = {**FAST_PARAMS[Estimator], "device": "cpu", "random_state": 0}
    params.update(overrides)
    return Estimator(**params)


@pytest.fixture(scope="session")
def image_signal():
    """A 16 x 16 RGB image with smooth structure, as (X, y, shape)."""
    rows, cols = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 16), indexing="ij")
    image = np.stack([np.sin(3 * rows) * cols, np.cos(2 * cols), rows * cols], axis=-1)
    X, y = to_coords(image)
    return X, y, image.shape[:2]


@pytest.fixture(scope="session")
def audio_signal():
    """A 64-sample mono clip as (X, y) with 1-D y."""
    t = np.linspace(0, 1, 64)
    return to_coords(np.sin(2 * np.pi * 3 * t) + 0.3 * np.sin(2 * np.pi * 7 * t))


@pytest.fixture(scope="session")
def volume_signal():
    """An 8^3 occupancy-like volume as (X, y)."""
    axis = np.linspace(-1, 1, 8)
    z, yy, x = np.meshgrid(axis, axis, axis, indexing="ij")
    return to_coords((x**2 + yy**2 + z**2 < 0.6).astype(float), channel_axis=None)


def wrap_training_loss(monkeypatch, Estimator, wrap):
    """Make every fit of ``Estimator`` train on ``wrap(loss)`` instead of its own loss."""
    objective_of = Estimator._objective

    def wrapped_objective(self, module, signal, generator):
        objective = objective_of(self, module, signal, generator)
        return dataclasses.replace(objective, loss=wrap(objective.loss))

    monkeypatch.setattr(Estimator, "_objective", wrapped_objective)


def interrupt_after(model, n_steps, monkeypatch):
    """Make ``model``'s fit raise KeyboardInterrupt (as Ctrl-C does) after ``n_steps``."""

    def interrupting(loss_fn):
        calls = [0]

        def wrapped(batch):
            calls[0] += 1
            if calls[0] > n_steps:
                raise KeyboardInterrupt
            return loss_fn(batch)

        return wrapped

    wrap_training_loss(monkeypatch, type(model), interrupting)
