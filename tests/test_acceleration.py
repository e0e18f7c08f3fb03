"""Execution options: bf16 autocast, TF32, torch.compile."""

import shutil

import numpy as np
import pytest
import torch

import skinr

from .conftest import make_fast


def test_tf32_changes_nothing_on_the_cpu(image_signal):
    X, y, _ = image_signal
    plain = make_fast(skinr.SIREN).fit(X, y)
    tf32 = make_fast(skinr.SIREN, precision="tf32").fit(X, y)
    np.testing.assert_array_equal(plain.predict(X), tf32.predict(X))


@pytest.mark.parametrize("Estimator", [skinr.SIREN, skinr.EnsembleINR], ids=lambda c: c.__name__)
def test_bf16_autocast_trains_close_to_float32(Estimator, image_signal):
    X, y, _ = image_signal
    plain = make_fast(Estimator, max_iter=60).fit(X, y)
    bf16 = make_fast(Estimator, max_iter=60, precision="bf16").fit(X, y)
    assert bf16.loss_curve_ != plain.loss_curve_  # it really ran in bfloat16
    assert bf16.loss_curve_[-1] < 0.5 * bf16.loss_curve_[0]
    assert abs(bf16.score(X, y) - plain.score(X, y)) < 3.0  # dB
    assert bf16.predict(X).dtype == np.float64


@pytest.mark.skipif(shutil.which("c++") is None, reason="torch.compile needs a C++ compiler")
def test_compiled_training_matches_eager(image_signal):
    X, y, _ = image_signal
    eager = make_fast(skinr.SIREN).fit(X, y)
    compiled = make_fast(skinr.SIREN, torch_compile=True).fit(X, y)
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(compiled.predict(X), eager.predict(X), atol=1e-4)
    assert compiled.get_params()["torch_compile"] is True


def test_streamed_fit_compiles_the_forward_it_trains_with(image_signal, monkeypatch):
    # LocalGlobalSIREN trains with a grouped forward of its own, not module.forward:
    # that is what must go to torch.compile (a stand-in records the calls it gets).
    import torch

    X, y, _ = image_signal
    calls = []

    def compile_stand_in(target, **options):
        def call(*args):
            calls.append(type(target).__name__)
            return target(*args)

        return call

    monkeypatch.setattr(torch, "compile", compile_stand_in)
    model = make_fast(skinr.LocalGlobalSIREN, max_iter=3, batch_size=64, torch_compile=True)
    model.fit(X.astype(np.float32), y.astype(np.float32))
    assert model.compiled_ and calls == ["partial"] * 3


@pytest.fixture
def compiled_graphs(monkeypatch):
    """The graphs torch.compile compiles from here on (run eagerly, not by inductor)."""
    import torch

    graphs = []

    def counting_backend(graph, example_inputs):
        graphs.append(graph)
        return graph.forward

    real_compile = torch.compile
    monkeypatch.setattr(
        torch,
        "compile",
        lambda target, **options: real_compile(target, backend=counting_backend, **options),
    )
    torch._dynamo.reset()
    return graphs


def test_streamed_grouping_fit_compiles_a_bounded_number_of_graphs(compiled_graphs, image_signal):
    """Per-batch padding changes shapes every step; compiling must not follow each one.

    With ``dynamic=False`` this fit compiled 11 graphs; shape-generic graphs after the
    first change keep it at 7 with a blend from centre to centre, 10 with the default
    narrow band (its entries per batch are data-dependent: graph breaks), and three
    times the steps compile no more.
    """
    X, y, _ = image_signal
    counts = []
    for steps in (40, 120):
        torch._dynamo.reset()
        compiled_graphs.clear()
        model = skinr.EnsembleINR(
            grid=4, width=16, batch_size=64, torch_compile=True, max_iter=steps, random_state=0
        )
        model.fit(X, y)
        assert model.compiled_
        counts.append(len(compiled_graphs))
    assert 0 < counts[0] == counts[1] <= 10, counts


@pytest.mark.parametrize("Estimator", [skinr.SIREN, skinr.FINER])
def test_a_search_over_omega_0_compiles_one_graph(compiled_graphs, image_signal, Estimator):
    """torch.compile guards on float attributes: a sine layer's omega_0 held as a float
    compiled a graph per value and fell back to eager after 8 (a GridSearchCV over it)."""
    X, y, _ = image_signal
    renders = []
    for omega in (5.0, 10.0, 20.0):
        model = make_fast(Estimator, first_omega_0=omega, hidden_omega_0=omega, torch_compile=True)
        renders.append(model.fit(X, y).predict(X))
        assert model.compiled_ and model.module_.hidden[0].omega_0 == omega
    assert len(compiled_graphs) == 1
    assert not np.allclose(renders[0], renders[2])  # each value is the one trained with


def test_fits_of_many_shapes_in_one_process_keep_compiling(compiled_graphs):
    """torch.compile gives up on a code object after 8 graphs; every fit's loss shares
    skinr's source, so the ninth differently shaped fit in a process trained eagerly."""
    rng = np.random.default_rng(0)
    for fit, side in enumerate(range(6, 17)):
        X, y = skinr.signals.to_coords(rng.random((side, side)))
        make_fast(skinr.SIREN, width=8, depth=1, max_iter=2, torch_compile=True).fit(X, y)
        assert len(compiled_graphs) == fit + 1, f"the fit on {side} x {side} compiled nothing"


def test_auto_compile_falls_back_to_eager_with_a_warning(monkeypatch):
    import torch

    from skinr._core.acceleration import accelerate

    def broken_compile(fn, **kwargs):
        def fails(batch):
            raise RuntimeError("no C++ compiler")

        return fails

    monkeypatch.setattr(torch, "compile", broken_compile)

    def loss(batch):
        return torch.tensor(2.0)

    guarded = accelerate(loss, torch.device("cpu"), torch_compile=True, fall_back=True)
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*no C\\+\\+ compiler"):
        assert guarded(None).item() == 2.0
    assert guarded(None).item() == 2.0  # eager from now on, no second warning
    strict = accelerate(loss, torch.device("cpu"), torch_compile=True, fall_back=False)
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        strict(None)


def test_auto_compiles_only_long_cpu_fits_of_measured_architectures(monkeypatch):
    import torch

    cpu = torch.device("cpu")
    monkeypatch.setattr("skinr.base.cpp_compiler_available", lambda: True)
    assert skinr.SIREN(max_iter=1000)._compiles(cpu, streaming=False)
    assert not skinr.SIREN(max_iter=999)._compiles(cpu, streaming=False)
    assert not skinr.SIREN(max_iter=1000)._compiles(cpu, streaming=True)
    assert not skinr.SL2A(max_iter=5000)._compiles(cpu, streaming=False)  # measured slower
    assert not skinr.SIREN(max_iter=1000)._compiles(torch.device("meta"), streaming=False)
    assert skinr.SL2A(max_iter=5, torch_compile=True)._compiles(cpu, streaming=False)
    monkeypatch.setattr("skinr.base.cpp_compiler_available", lambda: False)
    assert not skinr.SIREN(max_iter=1000)._compiles(cpu, streaming=False)
