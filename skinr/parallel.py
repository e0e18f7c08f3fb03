"""Many fits at once: one INR per signal, and torch's thread count inside workers.

Everything parallel in skinr follows joblib's active backend, so the backend is the
user's choice and needs no code from skinr: processes on this machine (joblib's default,
loky), a Dask cluster (``with joblib.parallel_backend("dask"):``) or Ray
(``ray.util.joblib.register_ray()``, then ``parallel_backend("ray")``). On Dask, skinr's
own calls (:func:`fit_many`, ``StructureSearchCV``) submit to that backend's client
directly, so that a task Dask gives up on raises (see :func:`parallel_map`).

Threads: torch runs each fit on a pool of intra-op threads, one per core by default.
Several workers on one machine would then each start that many threads and fight for
the cores. Loky, Dask's nanny and Ray already set ``OMP_NUM_THREADS`` in the workers
they start (to cores per worker, 1 and 1), which torch reads at start-up; to choose the
number yourself, set the environment variable ``SKINR_TORCH_THREADS`` (read at every
``fit`` and ``predict``, also inside workers that inherit it) or call
:func:`torch_threads`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from joblib.parallel import get_active_backend
from sklearn.base import clone

from ._core.threads import torch_threads
from .signals import to_coords

__all__ = ["FitManyInterrupted", "fit_many", "torch_threads"]


def _as_coords(signal, index: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(signal, tuple) and len(signal) == 2:
        return signal
    if isinstance(signal, np.ndarray | list):
        return to_coords(np.asarray(signal))
    raise TypeError(
        f"signals[{index}] is a {type(signal).__name__}; each signal must be an (X, y) pair "
        "or an array signal (audio, image, video, volume) for skinr.signals.to_coords."
    )


def _fit_one(estimator, X, y):
    return clone(estimator).fit(X, y)


def parallel_map(function, arguments: list[tuple], n_jobs: int | None = None) -> Iterator:
    """``function(*args)`` for each tuple of ``arguments``, in order, in parallel.

    Runs through joblib's active backend. Results are yielded as they arrive (in order)
    where the backend can stream them. Under joblib's Dask backend the calls go to its
    client directly: joblib 1.6's Dask backend never returns when a task fails inside
    Dask itself (``KilledWorker``: the workers running it died, retries used up), since
    only successful tasks reach joblib's completion callback. Submitted here, such a
    task raises its error and the other calls are cancelled.
    """
    backend, _ = get_active_backend()
    client = getattr(backend, "client", None)
    if type(backend).__name__ == "DaskDistributedBackend" and client is not None:
        yield from _dask_map(client, function, arguments, backend.submit_kwargs)
        return
    # Ray's backend returns every result at the end; the others stream them.
    streaming = getattr(backend, "supports_return_generator", False)
    yield from Parallel(n_jobs=n_jobs, return_as="generator" if streaming else "list")(
        delayed(function)(*args) for args in arguments
    )


def _dask_map(client, function, arguments, submit_kwargs):
    # Large arrays travel to the cluster once, however many calls share them.
    shared = {}
    for args in arguments:
        for value in args:
            if isinstance(value, np.ndarray) and value.nbytes > 2**20 and id(value) not in shared:
                shared[id(value)] = client.scatter(value, hash=False)
    futures = [
        client.submit(function, *(shared.get(id(v), v) for v in args), pure=False, **submit_kwargs)
        for args in arguments
    ]
    try:
        for future in futures:
            yield future.result()
    finally:
        client.cancel(futures)


def fit_many(estimator, signals: Iterable, *, n_jobs: int | None = None, verbose: bool = False):
    """Fit one clone of ``estimator`` to each signal, in parallel through joblib.

    A dataset of images becomes a list of fitted INRs (compression, functa-style
    datasets). Each clone keeps ``estimator``'s parameters, ``random_state`` included,
    so the result does not depend on the backend or on ``n_jobs``.

    Parameters
    ----------
    estimator : skinr estimator
        The unfitted template; it is cloned, never fitted itself.
    signals : iterable
        Each item an ``(X, y)`` pair or an array signal, converted with
        :func:`skinr.signals.to_coords` (coordinates in [-1, 1]).
        With ``checkpoint_path`` set on ``estimator``, signal ``i`` checkpoints to
        ``<stem>-<i><suffix>`` beside it, so each fit resumes its own.
    n_jobs : int or None, default=None
        Parallel fits. None means 1 unless inside a ``joblib.parallel_backend``
        context (a Dask cluster uses all its workers); -1 uses every core.
    verbose : bool, default=False
        Show a progress bar over the signals (requires tqdm).

    Returns
    -------
    list of estimators
        The fitted clones, in the order of ``signals``.

    Raises
    ------
    FitManyInterrupted
        On Ctrl-C: a KeyboardInterrupt whose ``fitted`` holds the models finished
        before it.

    Examples
    --------
    >>> import numpy as np, skinr
    >>> images = [np.random.default_rng(i).random((8, 8)) for i in range(3)]
    >>> models = skinr.fit_many(skinr.SIREN(width=8, max_iter=5, device="cpu"), images)
    >>> [m.n_iter_ for m in models]
    [5, 5, 5]
    """
    pairs = [_as_coords(signal, i) for i, signal in enumerate(signals)]
    templates = [estimator] * len(pairs)
    if getattr(estimator, "checkpoint_path", None) is not None and len(pairs) > 1:
        # One checkpoint per signal: a shared file would be overwritten by every fit and
        # refused by the next one's resume (it holds another signal's fit).
        path = Path(estimator.checkpoint_path)
        templates = [
            clone(estimator).set_params(
                checkpoint_path=path.with_name(f"{path.stem}-{i}{path.suffix}")
            )
            for i in range(len(pairs))
        ]
    arguments = [(template, X, y) for template, (X, y) in zip(templates, pairs, strict=True)]
    results = parallel_map(_fit_one, arguments, n_jobs)
    if verbose:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(pairs), desc=f"fit_many {type(estimator).__name__}")
    fitted = []
    try:
        for model in results:
            fitted.append(model)
    except KeyboardInterrupt:
        raise FitManyInterrupted(fitted, len(pairs)) from None
    return fitted


class FitManyInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fit_many`: ``fitted`` holds the models finished before it,
    in the order of the signals (the first ``len(fitted)``), so they are not lost.

    It is a KeyboardInterrupt, so code that does not look for it stops as before.
    """

    def __init__(self, fitted: list, n_signals: int) -> None:
        super().__init__(
            f"fit_many interrupted after {len(fitted)} of {n_signals} signals; "
            "the finished models are in this exception's .fitted"
        )
        self.fitted = fitted
