"""Wall time of every training step of a fit, read from the training loop's reports."""

from __future__ import annotations

import time

import numpy as np

import skinr


def step_seconds(estimator, X, y) -> tuple[np.ndarray, object]:
    """Fit ``estimator`` on ``(X, y)``; return each step's wall seconds and the estimator.

    The training loop reports every step of a fit of at most 200 steps to its
    ``progress`` callback; a wrapper around it stamps each report. Entry 0 holds the
    set-up before the first step too (building, compiling), so a steady step time is
    best read from the later entries.
    """
    stamps = []
    train = skinr.base.BaseINR._training_loop

    def timed_train(*args, **kwargs):
        kwargs["progress"] = lambda step, loss: stamps.append(time.perf_counter())
        stamps.append(time.perf_counter())
        return train(*args, **kwargs)

    skinr.base.BaseINR._training_loop = staticmethod(timed_train)
    try:
        estimator.fit(X, y)
    finally:
        skinr.base.BaseINR._training_loop = staticmethod(train)
    return np.diff(stamps), estimator
