"""Searches and many-signal fits on a Dask cluster and in joblib workers; dying workers."""

import os
import subprocess
import textwrap

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

import skinr
from skinr.model_selection import FullSignalSplit, StructureSearchCV, flops_penalized_scorer
from skinr.parallel import torch_threads

from .conftest import make_fast, run_script, wrap_training_loss

distributed = pytest.importorskip("distributed")


def local_cluster():
    """Two worker processes with one thread each, on loopback, no dashboard."""
    return distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    )


@pytest.fixture(scope="module")
def dask_client():
    with local_cluster() as cluster, distributed.Client(cluster) as client:
        yield client


class DyingSIREN(skinr.SIREN):
    """A SIREN whose fit kills its worker process when width == 13."""

    def fit(self, X, y):
        if self.width == 13:
            os._exit(3)
        return super().fit(X, y)


class DyingOnceSIREN(skinr.SIREN):
    """A SIREN whose fit at width 13 kills its worker process the first time only.

    The fit that finds the file ``$DYING_ONCE_MARKER`` missing creates it and dies, as a
    worker lost to a node failure would; Dask's retry on another worker goes through.
    """

    def fit(self, X, y):
        marker = os.environ["DYING_ONCE_MARKER"]
        if self.width == 13 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(3)
        return super().fit(X, y)


def dying_search(n_jobs=None):
    """A search whose second candidate kills the worker that fits it."""
    return GridSearchCV(
        DyingSIREN(max_iter=5, device="cpu", random_state=0),
        {"width": [8, 13]},
        cv=FullSignalSplit(),
        n_jobs=n_jobs,
    )


def grid_search(X, y):
    return GridSearchCV(
        make_fast(skinr.SIREN, max_iter=30),
        {"width": [4, 16], "depth": [1, 2]},
        cv=FullSignalSplit(),
        scoring=flops_penalized_scorer(alpha=1.0),
    ).fit(X, y)


def test_gridsearch_on_dask_equals_sequential(dask_client, image_signal):
    X, y, _ = image_signal
    with joblib.parallel_backend("dask"), distributed.get_task_stream(dask_client) as stream:
        on_dask = grid_search(X, y)
    workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2  # the candidates really ran on the cluster's two workers
    # Dask's workers run torch on 1 thread (its nanny sets OMP_NUM_THREADS=1); do the same.
    with torch_threads(1):
        sequential = grid_search(X, y)
    assert on_dask.best_params_ == sequential.best_params_
    np.testing.assert_array_equal(
        on_dask.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"]
    )
    np.testing.assert_array_equal(
        on_dask.best_estimator_.predict(X), sequential.best_estimator_.predict(X)
    )


def test_structure_search_on_dask_equals_sequential(dask_client, image_signal):
    X, y, _ = image_signal

    def search():
        return StructureSearchCV(
            make_fast(skinr.EnsembleINR, max_iter=15),
            widths=(4, 8, 16),
            depths=(1, 2),
            alpha=2.0,
            max_flops=10**9,
            max_rounds=2,
            n_repeats=2,
            random_state=0,
        ).fit(X, y)

    with joblib.parallel_backend("dask"):
        on_dask = search()
    with torch_threads(1):
        sequential = search()
    assert on_dask.best_params_ == sequential.best_params_
    assert on_dask.best_score_ == sequential.best_score_
    assert on_dask.history_ == sequential.history_


def test_fit_many_on_dask_returns_fitted_estimators(dask_client, image_signal):
    X, y, shape = image_signal
    images = [y.reshape(*shape, -1) * scale for scale in (1.0, 0.5, 2.0)]
    template = make_fast(skinr.LoESine)
    with joblib.parallel_backend("dask"):
        models = skinr.fit_many(template, images)
    with torch_threads(1):
        expected = skinr.fit_many(template, images)
    assert not hasattr(template, "module_")
    for model, reference, image in zip(models, expected, images, strict=True):
        assert model.n_iter_ == 20 and model.device_ == "cpu"
        np.testing.assert_array_equal(model.predict(X), reference.predict(X))
        assert model.score(X, image.reshape(len(X), -1)) > 10


def test_search_survives_a_worker_lost_on_dask(image_signal, tmp_path, monkeypatch):
    X, y, _ = image_signal
    monkeypatch.setenv("DYING_ONCE_MARKER", str(tmp_path / "died"))  # workers inherit it

    def search(Estimator):
        return GridSearchCV(
            Estimator(max_iter=5, device="cpu", random_state=0),
            {"width": [8, 13, 16]},
            cv=FullSignalSplit(),
        ).fit(X, y)

    with local_cluster() as cluster, distributed.Client(cluster), joblib.parallel_backend("dask"):
        on_dask = search(DyingOnceSIREN)
    assert (tmp_path / "died").exists()  # a worker did die mid-search
    with torch_threads(1):
        sequential = search(skinr.SIREN)
    # Dask ran the lost candidate again on a live worker: no candidate is missing.
    np.testing.assert_array_equal(
        on_dask.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"]
    )
    assert on_dask.best_params_ == sequential.best_params_


def test_dask_workers_do_not_oversubscribe(dask_client):
    threads = dask_client.run(torch.get_num_threads)
    assert len(threads) == 2 and set(threads.values()) == {1}


def run_in_child(script: str, deadline: float) -> subprocess.CompletedProcess:
    """``script`` run in a fresh Python; it must exit cleanly within ``deadline``."""
    child = run_script(script, deadline=deadline)
    assert child.returncode == 0, child.stderr[-2000:]
    return child


DYING_ON_DASK = textwrap.dedent(
    """
    import dask, distributed, joblib, numpy as np
    from skinr.signals import to_coords
    from tests.test_scaling import dying_search, local_cluster

    if __name__ == "__main__":
        X, y = to_coords(np.random.default_rng(0).random((8, 8)))
        search = dying_search()
        # Retry a task once on another worker, then fail.
        with (
            dask.config.set({"distributed.scheduler.allowed-failures": 1}),
            local_cluster() as cluster,
            distributed.Client(cluster),
            joblib.parallel_backend("dask"),
        ):
            try:
                search.fit(X, y)
            except Exception as error:
                print("RAISED", type(error).__name__, hasattr(search, "best_params_"))
    """
)


SKINR_CALLS_WITH_DYING_WORKERS = textwrap.dedent(
    """
    import dask, distributed, joblib, numpy as np
    import skinr
    from skinr.model_selection import StructureSearchCV
    from skinr.signals import to_coords
    from tests.test_scaling import DyingSIREN, local_cluster

    if __name__ == "__main__":
        image = np.random.default_rng(0).random((8, 8))
        X, y = to_coords(image)
        calls = {
            "fit_many": lambda: skinr.fit_many(
                DyingSIREN(width=13, max_iter=5, device="cpu"), [image, image * 0.5]
            ),
            "StructureSearchCV": lambda: StructureSearchCV(
                DyingSIREN(max_iter=5, device="cpu"),
                widths=(8, 13),
                depths=(1,),
                max_flops=10**9,
                n_repeats=1,
                random_state=0,
            ).fit(X, y),
        }
        with (
            dask.config.set({"distributed.scheduler.allowed-failures": 1}),
            local_cluster() as cluster,
            distributed.Client(cluster),
            joblib.parallel_backend("dask"),
        ):
            for name, call in calls.items():
                try:
                    call()
                    print(name, "returned")
                except Exception as error:
                    print(name, "raised", type(error).__name__, flush=True)
    """
)


def test_skinr_parallel_calls_on_dask_raise_when_workers_die():
    # fit_many and StructureSearchCV submit to the Dask client themselves: a task whose
    # workers all died raises KilledWorker. In a child with a deadline, in case it hangs.
    child = run_in_child(SKINR_CALLS_WITH_DYING_WORKERS, deadline=240)
    lines = child.stdout.splitlines()
    assert lines == ["fit_many raised KilledWorker", "StructureSearchCV raised KilledWorker"], (
        child.stdout + child.stderr[-2000:]
    )


@pytest.mark.slow
def test_dying_worker_on_dask_raises():
    # Slow-marked: it hangs in about 1 run of 3 on joblib 1.6, whose Dask backend passes
    # only successful tasks to joblib, so a KilledWorker can leave GridSearchCV waiting
    # forever (docs/scaling.md#faults). The child's deadline turns a hang into a failure.
    child = run_in_child(DYING_ON_DASK, deadline=180)
    raised = child.stdout.split()
    assert raised[:1] == ["RAISED"], child.stdout + child.stderr[-2000:]
    assert raised[1] in ("KilledWorker", "FutureCancelledError") and raised[2] == "False"


def test_dying_worker_in_local_processes_raises(image_signal):
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    X, y, _ = image_signal
    search = dying_search(n_jobs=2)
    with pytest.raises(TerminatedWorkerError):
        search.fit(X, y)


def test_fit_many_takes_pairs_and_arrays_in_order(image_signal):
    X, y, shape = image_signal
    template = make_fast(skinr.SIREN)
    models = skinr.fit_many(template, [(X, y), y.reshape(*shape, -1)], n_jobs=2)
    np.testing.assert_array_equal(models[0].predict(X), models[1].predict(X))
    with pytest.raises(TypeError, match=r"signals\[1\] is a str"):
        skinr.fit_many(template, [(X, y), "image.png"])


def test_thread_knob(monkeypatch, image_signal):
    X, y, _ = image_signal
    seen = []
    monkeypatch.setenv("SKINR_TORCH_THREADS", "1")
    model = make_fast(skinr.SIREN)

    def recording(loss_fn):
        seen.append(torch.get_num_threads())
        return loss_fn

    wrap_training_loss(monkeypatch, type(model), recording)
    before = torch.get_num_threads()
    model.fit(X, y)
    assert seen == [1] and torch.get_num_threads() == before
    monkeypatch.setenv("SKINR_TORCH_THREADS", "many")
    with pytest.raises(ValueError, match="SKINR_TORCH_THREADS='many' must be a positive"):
        model.fit(X, y)


def test_search_and_fit_many_on_ray_equal_sequential(image_signal):
    """Ray's joblib backend (not in the test extra, ~240 MB; skipped without ray)."""
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    X, y, shape = image_signal
    images = [y.reshape(*shape, -1) * scale for scale in (1.0, 0.5)]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        register_ray()
        with joblib.parallel_backend("ray"):
            on_ray = grid_search(X, y)
            models = skinr.fit_many(make_fast(skinr.SIREN), images)
        threads = ray.get(ray.remote(lambda: torch.get_num_threads()).remote())
    finally:
        ray.shutdown()
    with torch_threads(1):
        sequential = grid_search(X, y)
        expected = skinr.fit_many(make_fast(skinr.SIREN), images)
    assert threads == 1
    assert on_ray.best_params_ == sequential.best_params_
    np.testing.assert_array_equal(
        on_ray.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"]
    )
    for model, reference in zip(models, expected, strict=True):
        np.testing.assert_array_equal(model.predict(X), reference.predict(X))


def test_gpu_style_worker_resources_route_tasks(image_signal):
    """The one-worker-per-GPU recipe of docs/scaling.md, with CPU stand-ins for GPUs."""
    _, y, shape = image_signal
    images = [y.reshape(*shape, -1) * scale for scale in (1.0, 0.5, 2.0)]
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            resources={"GPU": 1},
        ) as cluster,
        distributed.Client(cluster) as client,
        distributed.get_task_stream(client) as stream,
        joblib.parallel_backend("dask", resources={"GPU": 1}),
    ):
        models = skinr.fit_many(make_fast(skinr.SIREN), images)
    assert [m.n_iter_ for m in models] == [20, 20, 20]
    assert len({task["worker"] for task in stream.data}) >= 1


def test_dask_path_forwards_worker_resources_and_ships_shared_arrays_once():
    # skinr's own parallel calls submit to joblib's Dask client with the backend's
    # submit options (resources={"GPU": 1} is how a task asks for a GPU worker).
    from concurrent.futures import Future

    from skinr.parallel import _dask_map

    class RecordingClient:
        def __init__(self):
            self.scattered, self.submitted, self.cancelled = [], [], []

        def scatter(self, value, hash):
            self.scattered.append(value)
            return f"scattered-{len(self.scattered)}"

        def submit(self, function, *args, pure, **options):
            self.submitted.append((args, pure, options))
            future = Future()
            future.set_result(function(*args))
            return future

        def cancel(self, futures):
            self.cancelled.extend(futures)

    client = RecordingClient()
    big, small = np.zeros(2**18 + 1), np.zeros(3)  # just over 1 MB, and tiny
    calls = [(big, small, 1), (big, small, 2)]
    results = list(_dask_map(client, lambda a, b, k: (a, k), calls, {"resources": {"GPU": 1}}))
    assert results == [("scattered-1", 1), ("scattered-1", 2)]  # in order
    assert len(client.scattered) == 1 and client.scattered[0] is big
    for args, pure, options in client.submitted:
        assert args[1] is small and pure is False and options == {"resources": {"GPU": 1}}
    assert len(client.cancelled) == 2  # nothing left running once the results are in


def test_fit_many_interrupted_keeps_the_finished_fits(monkeypatch):
    from skinr import parallel

    images = [np.random.default_rng(i).random((6, 6)) for i in range(4)]
    calls = []
    fit_one = parallel._fit_one

    def interrupted_on_the_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fit_one(*args)

    monkeypatch.setattr(parallel, "_fit_one", interrupted_on_the_third)
    template = skinr.SIREN(width=8, depth=1, max_iter=3, device="cpu", random_state=0)
    with pytest.raises(KeyboardInterrupt) as caught:
        parallel.fit_many(template, images, n_jobs=1)
    assert isinstance(caught.value, parallel.FitManyInterrupted)
    assert [m.n_iter_ for m in caught.value.fitted] == [3, 3]
    assert "after 2 of 4 signals" in str(caught.value)
