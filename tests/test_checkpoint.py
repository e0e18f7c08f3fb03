"""Checkpoints: a killed fit resumes exactly; bad checkpoints are refused before training."""

import signal
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import skinr
from skinr._core.checkpoint import CheckpointError

from .conftest import ALL_ESTIMATORS, interrupt_after, make_fast, run_script

# A fit in a child process that SIGKILLs itself right after its third checkpoint write,
# or (mode "during-write") while writing its third, between the data and the rename.
KILLED_FIT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import skinr, skinr._core.checkpoint as ckpt
    from tests.conftest import make_fast

    estimator_name, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    data = np.load(sys.argv[4])
    writes = [0]
    write = ckpt.write_checkpoint
    real_replace = os.replace

    def dying_replace(src, dst):
        if mode == "during-write" and writes[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)

    def counting_write(*args, **kwargs):
        writes[0] += 1
        write(*args, **kwargs)
        if mode == "after-write" and writes[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = dying_replace
    ckpt.write_checkpoint = counting_write
    model = make_fast(skinr.ESTIMATORS[estimator_name], max_iter=40, batch_size=64,
                      lr_schedule="cosine", checkpoint_path=path, checkpoint_every=5)
    model.fit(data["X"], data["y"])
    print("finished without being killed")
    """
)


def run_killed_fit(tmp_path, Estimator, X, y, mode):
    data = tmp_path / "signal.npz"
    np.savez(data, X=X, y=y)
    path = tmp_path / "fit.ckpt"
    child = run_script(KILLED_FIT, Estimator.__name__, path, mode, data, deadline=300)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    return path


# A real SIGKILL costs a fresh interpreter (~8 s of imports on 2 cores) per estimator:
# the default run kills three whose saved state differs most (plain MLP, a shared
# body with per-cell heads, grouped per-cell networks); every estimator is killed
# under -m slow, and has its periodic checkpoint resumed in-process below.
KILLED_BY_DEFAULT = {"SIREN", "MultiHeadReLU", "EnsembleINR"}


@pytest.mark.parametrize(
    "Estimator",
    [
        E if E.__name__ in KILLED_BY_DEFAULT else pytest.param(E, marks=pytest.mark.slow)
        for E in ALL_ESTIMATORS
    ],
    ids=lambda c: c.__name__,
)
def test_sigkilled_fit_resumes_to_identical_predictions(Estimator, image_signal, tmp_path):
    X, y, _ = image_signal
    path = run_killed_fit(tmp_path, Estimator, X, y, "after-write")
    assert b'"step": 15' in path.read_bytes().split(b"\n", 2)[1]  # killed after step 15
    assert_resumes_like_an_uninterrupted_fit(Estimator, X, y, path)


class _Died(BaseException):
    """Stands for the process dying: not an Exception, so nothing in fit handles it."""


@pytest.mark.parametrize("Estimator", ALL_ESTIMATORS, ids=lambda c: c.__name__)
def test_fit_dead_after_a_periodic_checkpoint_resumes_identically(
    Estimator, image_signal, tmp_path, monkeypatch
):
    X, y, _ = image_signal
    path = tmp_path / "fit.ckpt"
    writes = []
    write = skinr._core.checkpoint.write_checkpoint

    def dying_write(*args, **kwargs):
        write(*args, **kwargs)
        writes.append(1)
        if len(writes) == 3:
            raise _Died

    monkeypatch.setattr(skinr._core.checkpoint, "write_checkpoint", dying_write)
    dying = make_fast(
        Estimator,
        max_iter=40,
        batch_size=64,
        lr_schedule="cosine",
        checkpoint_path=path,
        checkpoint_every=5,
    )
    with pytest.raises(_Died):
        dying.fit(X, y)
    monkeypatch.undo()
    assert b'"step": 15' in path.read_bytes().split(b"\n", 2)[1]
    assert_resumes_like_an_uninterrupted_fit(Estimator, X, y, path)


def assert_resumes_like_an_uninterrupted_fit(Estimator, X, y, path):
    params = dict(max_iter=40, batch_size=64, lr_schedule="cosine")
    resumed = make_fast(Estimator, **params, checkpoint_path=path, checkpoint_every=5)
    resumed.fit(X, y)
    reference = make_fast(Estimator, **params).fit(X, y)

    assert resumed.n_iter_ == 40
    np.testing.assert_array_equal(resumed.loss_curve_[:15], reference.loss_curve_[:15])
    np.testing.assert_allclose(resumed.predict(X), reference.predict(X), rtol=0, atol=1e-6)
    assert not path.exists()  # a completed fit leaves nothing to resume


def test_kill_during_a_write_keeps_the_previous_checkpoint(image_signal, tmp_path):
    X, y, _ = image_signal
    path = run_killed_fit(tmp_path, skinr.SIREN, X, y, "during-write")
    # The third write never landed: the file is the intact second checkpoint (step 10).
    header = path.read_bytes().split(b"\n", 2)[1]
    assert b'"step": 10' in header
    params = dict(max_iter=40, batch_size=64, lr_schedule="cosine")
    resumed = make_fast(skinr.SIREN, **params, checkpoint_path=path, checkpoint_every=5)
    reference = make_fast(skinr.SIREN, **params).fit(X, y)
    np.testing.assert_allclose(resumed.fit(X, y).predict(X), reference.predict(X), atol=1e-6)


def test_ctrl_c_writes_a_checkpoint_the_next_fit_resumes(image_signal, tmp_path, monkeypatch):
    X, y, _ = image_signal
    path = tmp_path / "fit.ckpt"
    model = make_fast(skinr.SIREN, max_iter=30, checkpoint_path=path, checkpoint_every=100)
    with monkeypatch.context() as patch:
        interrupt_after(model, 7, patch)
        with pytest.raises(KeyboardInterrupt), pytest.warns(RuntimeWarning, match="7 of 30"):
            model.fit(X, y)
    assert model.n_iter_ == 7 and path.exists()
    model.fit(X, y)
    reference = make_fast(skinr.SIREN, max_iter=30).fit(X, y)
    assert model.n_iter_ == 30
    np.testing.assert_allclose(model.predict(X), reference.predict(X), atol=1e-6)


@pytest.fixture
def interrupted_checkpoint(image_signal, tmp_path, monkeypatch):
    X, y, _ = image_signal
    path = tmp_path / "fit.ckpt"
    model = make_fast(skinr.SIREN, max_iter=30, checkpoint_path=path)
    with monkeypatch.context() as patch:
        interrupt_after(model, 4, patch)
        with pytest.raises(KeyboardInterrupt), pytest.warns(RuntimeWarning):
            model.fit(X, y)
    return path


def refused(model, X, y, match):
    with pytest.raises(CheckpointError, match=match):
        model.fit(X, y)
    assert not hasattr(model, "module_")  # refused before training, nothing half-fitted


def test_checkpoint_of_another_estimator_is_refused(image_signal, interrupted_checkpoint):
    X, y, _ = image_signal
    model = make_fast(skinr.FourierFeatureMLP, checkpoint_path=interrupted_checkpoint)
    refused(model, X, y, "belongs to a SIREN fit, not this FourierFeatureMLP")


def test_checkpoint_of_other_params_or_data_is_refused(image_signal, interrupted_checkpoint):
    X, y, _ = image_signal
    refused(
        make_fast(skinr.SIREN, max_iter=31, checkpoint_path=interrupted_checkpoint),
        X,
        y,
        "other parameters or other data",
    )
    refused(
        make_fast(skinr.SIREN, max_iter=30, checkpoint_path=interrupted_checkpoint),
        X,
        y + 0.1,
        "other parameters or other data",
    )


def test_checkpoint_of_another_version_is_refused(
    image_signal, interrupted_checkpoint, monkeypatch
):
    X, y, _ = image_signal
    monkeypatch.setattr(skinr._version, "__version__", "99.0")
    model = make_fast(skinr.SIREN, max_iter=30, checkpoint_path=interrupted_checkpoint)
    refused(model, X, y, "written by skinr 0.1.0.dev0 .* this is skinr 99.0")


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_checkpoint_is_detected_not_loaded(image_signal, interrupted_checkpoint, damage):
    X, y, _ = image_signal
    data = bytearray(interrupted_checkpoint.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "flip":
        data[-50] ^= 0xFF
    else:
        data = bytearray(b"not a checkpoint at all")
    interrupted_checkpoint.write_bytes(bytes(data))
    model = make_fast(skinr.SIREN, max_iter=30, checkpoint_path=interrupted_checkpoint)
    match = "not a skinr checkpoint" if damage == "garbage" else "corrupt"
    refused(model, X, y, match)


def test_checkpointing_does_not_change_the_fit(image_signal, tmp_path):
    X, y, _ = image_signal
    path = tmp_path / "fit.ckpt"
    with_checkpoints = make_fast(skinr.SIREN, checkpoint_path=path, checkpoint_every=3).fit(X, y)
    plain = make_fast(skinr.SIREN).fit(X, y)
    np.testing.assert_array_equal(with_checkpoints.predict(X), plain.predict(X))
    assert not path.exists()


def test_a_checkpoint_holding_objects_gets_skinrs_error(tmp_path):
    from skinr._core.checkpoint import read_checkpoint, write_checkpoint

    # A well-formed, checksummed checkpoint whose body pickles an arbitrary class.
    path = tmp_path / "evil.ckpt"
    header = {"class": "SIREN", "fingerprint": "f"}
    write_checkpoint(path, header, {"module": {}, "training": OrderedCounter()})
    with pytest.raises(CheckpointError, match="other than tensors") as caught:
        read_checkpoint(path, estimator_class="SIREN", fingerprint="f")
    assert "weights_only" not in str(caught.value)


class OrderedCounter(dict):
    """Any class torch's safe loader does not know."""


def test_fit_many_gives_each_signal_its_own_checkpoint(tmp_path, monkeypatch):
    from skinr._core import checkpoint as _checkpoint

    written = []
    write = _checkpoint.write_checkpoint

    def spy(path, *args):
        written.append(Path(path))
        write(path, *args)

    monkeypatch.setattr(_checkpoint, "write_checkpoint", spy)
    images = [np.random.default_rng(i).random((8, 8)) for i in range(3)]
    template = make_fast(
        skinr.SIREN, max_iter=6, checkpoint_every=2, checkpoint_path=tmp_path / "fit.ckpt"
    )
    models = skinr.fit_many(template, images)
    assert [m.n_iter_ for m in models] == [6, 6, 6]
    assert sorted({p.name for p in written}) == ["fit-0.ckpt", "fit-1.ckpt", "fit-2.ckpt"]
    assert list(tmp_path.iterdir()) == []  # complete fits leave no checkpoint or temporary
    assert template.checkpoint_path == tmp_path / "fit.ckpt"  # the template is untouched


def test_concurrent_checkpoint_writes_never_share_a_temporary(tmp_path):
    from skinr._core.checkpoint import write_checkpoint

    path = tmp_path / "shared.ckpt"
    names = []
    real_mkstemp = __import__("tempfile").mkstemp

    def spy(*args, **kwargs):
        handle, name = real_mkstemp(*args, **kwargs)
        names.append(name)
        return handle, name

    import skinr._core.files as module

    original = module.tempfile.mkstemp
    module.tempfile.mkstemp = spy
    try:
        for step in range(3):
            write_checkpoint(path, {"step": step}, {"weights": torch.zeros(2)})
    finally:
        module.tempfile.mkstemp = original
    assert len(set(names)) == 3 and path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["shared.ckpt"]


@pytest.fixture(autouse=True)
def pythons_sigint_handler():
    """Tests here deliver real SIGINTs: run them under Python's own handler, also where
    the test process was started with SIGINT ignored (a shell's background job)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_process_that_ignores_ctrl_c_trains_on(image_signal, monkeypatch):
    X, y, _ = image_signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    model = make_fast(skinr.SIREN, max_iter=10)
    with monkeypatch.context() as patch:
        calls = _signal_during_step(model, patch, at_step=3)
        model.fit(X, y)
    assert calls[0] == 10 and model.n_iter_ == 10
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def _signal_during_step(model, monkeypatch, at_step, count=1):
    """Deliver ``count`` real SIGINTs from inside the loss of step ``at_step``, as a
    Ctrl-C that lands in the middle of a step does; return the per-step call counter."""
    import os

    calls = [0]

    def interrupting(loss_fn):
        def wrapped(batch):
            calls[0] += 1
            if calls[0] == at_step:
                for _ in range(count):
                    os.kill(os.getpid(), signal.SIGINT)
            return loss_fn(batch)

        return wrapped

    from .conftest import wrap_training_loss

    wrap_training_loss(monkeypatch, type(model), interrupting)
    return calls


def test_ctrl_c_inside_a_step_finishes_it_and_checkpoints_that_step(
    image_signal, tmp_path, monkeypatch
):
    X, y, _ = image_signal
    path = tmp_path / "fit.ckpt"
    model = make_fast(skinr.SIREN, max_iter=30, checkpoint_path=path, checkpoint_every=100)
    with monkeypatch.context() as patch:
        _signal_during_step(model, patch, at_step=6)
        with pytest.raises(KeyboardInterrupt), pytest.warns(RuntimeWarning, match="6 of 30"):
            model.fit(X, y)
    assert model.n_iter_ == 6 and len(model.loss_curve_) == 6
    saved = skinr._core.checkpoint.read_checkpoint(
        path,
        estimator_class="SIREN",
        fingerprint=skinr._core.checkpoint.data_fingerprint(model, X, y),
    )
    assert len(saved["training"]["loss_curve"]) == 6  # not one update ahead of the weights
    for key, value in model.module_.state_dict().items():
        torch.testing.assert_close(saved["module"][key], value.cpu(), rtol=0, atol=0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    model.fit(X, y)
    reference = make_fast(skinr.SIREN, max_iter=30).fit(X, y)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), atol=1e-6)


def test_a_second_ctrl_c_interrupts_at_once(image_signal, monkeypatch):
    X, y, _ = image_signal
    model = make_fast(skinr.SIREN, max_iter=30)
    _signal_during_step(model, monkeypatch, at_step=6, count=2)
    with pytest.raises(KeyboardInterrupt), pytest.warns(RuntimeWarning, match="5 of 30"):
        model.fit(X, y)
    assert model.n_iter_ == 5


def test_ctrl_c_stops_fit_many_and_searches(image_signal, monkeypatch):
    from sklearn.model_selection import GridSearchCV, KFold

    X, y, shape = image_signal
    image = y.reshape(*shape, -1)
    model = make_fast(skinr.SIREN, max_iter=10)
    calls = _signal_during_step(model, monkeypatch, at_step=15)  # inside the second fit
    with pytest.raises(KeyboardInterrupt), pytest.warns(RuntimeWarning, match="5 of 10"):
        skinr.fit_many(model, [image, image, image])
    assert calls[0] == 15  # the third signal never started
    calls[0] = 0
    search = GridSearchCV(model, {"width": [4, 8, 16]}, cv=KFold(2))
    with pytest.raises(KeyboardInterrupt), pytest.warns(RuntimeWarning):
        search.fit(X, y)
    assert calls[0] == 15 and not hasattr(search, "cv_results_")


def test_warm_start_interrupted_then_resumed_counts_each_step_once(
    image_signal, tmp_path, monkeypatch
):
    X, y, _ = image_signal
    path = tmp_path / "fit.ckpt"
    model = make_fast(
        skinr.SIREN, max_iter=10, warm_start=True, checkpoint_path=path, checkpoint_every=100
    )
    model.fit(X, y)
    with monkeypatch.context() as patch:
        interrupt_after(model, 4, patch)
        with pytest.raises(KeyboardInterrupt), pytest.warns(RuntimeWarning, match="4 of 10"):
            model.fit(X, y)
    assert model.n_iter_ == 14
    model.fit(X, y)  # resumes the checkpoint of the second fit
    assert model.n_iter_ == 20 and len(model.loss_curve_) == 20
    assert model.history_["step"] == list(range(1, 21))
    reference = make_fast(skinr.SIREN, max_iter=10, warm_start=True).fit(X, y).fit(X, y)
    np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), atol=1e-6)
