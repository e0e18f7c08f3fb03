"""Model selection for INRs: structure search, splitters and scorers.

An INR search usually compares structures on one signal. ``GridSearchCV`` with the
default ``cv=5`` cuts raster-ordered coordinates into contiguous bands, which tests
extrapolation; pass ``KFold(shuffle=True)`` to hold out scattered samples
(interpolation), or :class:`FullSignalSplit` to fit and score on the whole signal, the
question a compression-style structure search asks.
"""

from __future__ import annotations

import copy
import inspect
import math
import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state

from ._core.domain import fit_domain, normalise
from ._core.network import build_network
from ._core.validation import Interval, check_is_fitted, fit_context
from .parallel import parallel_map

__all__ = ["FullSignalSplit", "StructureSearchCV", "flops_penalized_scorer"]


class FullSignalSplit(BaseCrossValidator):
    """A single "split" whose training and test sets are both the whole signal.

    With it, ``GridSearchCV`` ranks candidates by how well they fit the signal itself
    (fit PSNR), as the INR papers' structure searches do.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr.model_selection import FullSignalSplit
    >>> [(len(tr), len(te)) for tr, te in FullSignalSplit().split(np.zeros((5, 2)))]
    [(5, 5)]
    """

    def split(self, X, y=None, groups=None):
        """Yield the one split: every index as both training and test set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_dims)
            Coordinates (only their number is used).
        y, groups : ignored
            Present for API compatibility.

        Yields
        ------
        train, test : ndarray
            ``arange(n_samples)`` twice.
        """
        indices = np.arange(len(X))
        yield indices, indices

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return 1.

        Parameters
        ----------
        X, y, groups : ignored
            Present for API compatibility.

        Returns
        -------
        int
            The number of splits, 1.
        """
        return 1

    def _iter_test_indices(self, X=None, y=None, groups=None):
        yield np.arange(len(X))


def _finite_or_worst(score: float) -> float:
    return score if math.isfinite(score) else -math.inf


def flops_penalized_scorer(alpha: float = 7.0):
    """Make a scorer ``PSNR - alpha * log10(FLOPs)``, the ENRP paper's structure score.

    With ``alpha = 7`` a tenfold increase in FLOPs must buy at least 7 dB. Use it with
    :class:`FullSignalSplit` so that the FLOPs are those of rendering the whole signal.

    Parameters
    ----------
    alpha : float, default=7.0
        PSNR (dB) that one decade of FLOPs is worth.

    Returns
    -------
    callable
        ``scorer(estimator, X, y)`` for ``GridSearchCV(scoring=...)``: the estimator's
        PSNR (dB) on ``(X, y)`` minus ``alpha * log10(estimator.count_flops(X))``.

    Examples
    --------
    >>> from skinr.model_selection import flops_penalized_scorer
    >>> scorer = flops_penalized_scorer(alpha=7)
    """

    def scorer(estimator, X, y):
        return estimator.score(X, y) - alpha * math.log10(estimator.count_flops(X))

    scorer.__name__ = f"flops_penalized_scorer(alpha={alpha})"
    return scorer


def _candidate_flops(estimator, X, y) -> int:
    """FLOPs to predict at ``X`` of the network ``estimator`` would build, without training."""
    y2d = np.asarray(y).reshape(len(X), -1)
    estimator._validate_params()
    # A copy takes the data-dependent structure a fit would give it (e.g. SL2A's degree).
    module = build_network(copy.copy(estimator), X.shape[1], y2d.shape[1], X=np.asarray(X))
    if "coords" not in inspect.signature(module.flops).parameters:
        return int(module.flops(len(X)))
    # Blended cells: what a point costs depends on where it falls in its cell, in the
    # frame the fit would give it.
    domain = fit_domain(
        X,
        estimator.domain,
        footprint=estimator._domain_is_footprint,
        chunk_size=estimator.predict_batch_size,
    )
    return int(module.flops(len(X), torch.as_tensor(normalise(np.asarray(X), domain))))


def _fit_and_score(estimator, X, y):
    """Fit one candidate on the whole signal; return it with its PSNR and MSE."""
    started = time.perf_counter()
    estimator.fit(X, y)
    prediction = estimator.predict(X)
    mse = float(np.mean((prediction - np.asarray(y).reshape(prediction.shape)) ** 2))
    return estimator, estimator.score(X, y), mse, time.perf_counter() - started


class StructureSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Width/depth search by coordinate ascent on a FLOP-penalised PSNR (ENRP Algorithm 1).

    Starting from ``start = (width, depth)``, each round first picks the width from
    ``widths`` that maximises ``score = PSNR - alpha * log10(FLOPs)`` subject to
    ``FLOPs <= max_flops`` at the current depth, then the depth from ``depths`` with
    that width; it stops when neither changes or after ``max_rounds`` rounds. Every
    candidate is fitted ``n_repeats`` times on the whole signal (seeds
    ``random_state + r``) and its PSNR averaged; a candidate met again is not retrained.

    Parameters
    ----------
    estimator : skinr estimator
        Any estimator with ``width`` and ``depth`` parameters; its other parameters
        (grid, steps, learning rate) stay fixed.
    widths : sequence of int, default=(16, 32, 64, 128, 256, 512)
        Width search set.
    depths : sequence of int, default=(1, 2, 3, 4, 5)
        Depth search set.
    alpha : float, default=7.0
        PSNR (dB) that one decade of FLOPs must buy (the paper's alpha).
    max_flops : float, default=1e9
        FLOP budget to render the signal once (the paper's F_max); candidates above it
        are never trained.
    max_rounds : int, default=5
        Maximum number of width-then-depth rounds (the paper's iter_max).
    n_repeats : int, default=5
        Fits per candidate, averaged (the paper uses 5).
    start : (int, int), default=(256, 3)
        Initial (width, depth), SIREN's structure; it need not be feasible.
    random_state : int or None, default=0
        Seed of the first repeat; repeat ``r`` uses ``random_state + r``.
    n_jobs : int or None, default=None
        Candidates and repeats of one step are fitted in parallel through joblib (any
        joblib backend, e.g. dask); None means 1.
    verbose : int, default=0
        Print each step's choice.

    Attributes
    ----------
    best_params_ : dict
        ``{"width": w, "depth": d}`` where the ascent stopped.
    best_score_ : float
        Its FLOP-penalised score.
    best_estimator_ : estimator
        The best candidate as fitted (its first repeat).
    history_ : list of dict
        One entry per step: round, step ("width" or "depth"), the chosen width and
        depth, their score, and the candidates compared.
    cv_results_ : dict of ndarray
        Every evaluated candidate: ``params``, ``param_width``, ``param_depth``,
        ``flops``, ``mean_psnr``, ``std_psnr``, ``mean_mse`` (data units), ``score``,
        ``rank_score``, ``mean_fit_time``, ``round`` (when it was first evaluated).
    n_rounds_ : int
        Rounds run.

    See Also
    --------
    flops_penalized_scorer : The same score for ``GridSearchCV``.
    FullSignalSplit : Fit and score on the whole signal in ``GridSearchCV``.

    Notes
    -----
    The paper writes the score as ``20 log10(1 / L) - alpha log10(FLOPs)`` with ``L`` the
    fitting error; skinr uses the standard PSNR of the estimator's ``score`` (``L`` is the
    RMSE relative to the data range). The paper's start ``(256, 3)`` costs 6.48 GFLOPs on
    a 128 x 128 image, above the 1 GFLOP budget, so the first width step chooses among
    the feasible widths. When no width is feasible at the current depth the search moves
    to the smallest depth in ``depths`` at which one is.

    Examples
    --------
    >>> import numpy as np
    >>> from skinr import EnsembleINR
    >>> from skinr.model_selection import StructureSearchCV
    >>> from skinr.signals import to_coords
    >>> X, y = to_coords(np.random.RandomState(0).random_sample((16, 16)))
    >>> search = StructureSearchCV(EnsembleINR(grid=4, max_iter=20), widths=(8, 16),
    ...                            depths=(1, 2), n_repeats=1, max_flops=1e7).fit(X, y)
    >>> sorted(search.best_params_)
    ['depth', 'width']
    """

    _parameter_constraints = {
        "estimator": [BaseEstimator],
        "widths": ["array-like"],
        "depths": ["array-like"],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_flops": [Interval(Real, 0, None, closed="neither")],
        "max_rounds": [Interval(Integral, 1, None, closed="left")],
        "n_repeats": [Interval(Integral, 1, None, closed="left")],
        "start": [tuple, list],
        "random_state": [Interval(Integral, 0, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        *,
        widths=(16, 32, 64, 128, 256, 512),
        depths=(1, 2, 3, 4, 5),
        alpha=7.0,
        max_flops=1e9,
        max_rounds=5,
        n_repeats=5,
        start=(256, 3),
        random_state=0,
        n_jobs=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.widths = widths
        self.depths = depths
        self.alpha = alpha
        self.max_flops = max_flops
        self.max_rounds = max_rounds
        self.n_repeats = n_repeats
        self.start = start
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Run the search on the signal ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_dims)
            Coordinates of the signal.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Its values.

        Returns
        -------
        self : object
            The fitted search.
        """
        params = self.estimator.get_params()
        if "width" not in params or "depth" not in params:
            raise ValueError(
                f"StructureSearchCV needs an estimator with 'width' and 'depth' "
                f"parameters; {type(self.estimator).__name__} has neither or only one."
            )
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        widths, depths = [int(w) for w in self.widths], [int(d) for d in self.depths]
        flops = {
            (w, d): _candidate_flops(clone(self.estimator).set_params(width=w, depth=d), X, y)
            for w in widths
            for d in depths
        }
        feasible = {key for key, value in flops.items() if value <= self.max_flops}
        if not feasible:
            smallest = min(flops, key=flops.get)
            raise ValueError(
                f"No candidate meets max_flops={self.max_flops:.4g}: the cheapest, width="
                f"{smallest[0]}, depth={smallest[1]}, needs {flops[smallest]:,} FLOPs to "
                "render the signal; raise max_flops or offer smaller widths/depths."
            )
        self._records, self._fitted = {}, {}
        self._seed = self.random_state
        if self._seed is None:  # one draw per search, shared by every candidate
            self._seed = int(check_random_state(None).randint(0, 2**31 - self.n_repeats))
        width, depth = (int(v) for v in self.start)
        self._history = []
        for round_ in range(1, self.max_rounds + 1):
            if not any((w, depth) in feasible for w in widths):
                depth = min(d for d in depths if any((w, d) in feasible for w in widths))
            new_width = self._best_step(
                round_, "width", [(w, depth) for w in widths], feasible, X, y, flops
            )[0]
            new_depth = self._best_step(
                round_, "depth", [(new_width, d) for d in depths], feasible, X, y, flops
            )[1]
            self.n_rounds_ = round_
            if (new_width, new_depth) == (width, depth):
                break
            width, depth = new_width, new_depth
        self.history_ = self._history
        self.best_params_ = {"width": width, "depth": depth}
        self.best_score_ = self._records[(width, depth)]["score"]
        self.best_estimator_ = self._fitted[(width, depth)]
        self.cv_results_ = self._results_table(flops)
        del self._records, self._fitted, self._seed, self._history
        return self

    def _best_step(self, round_, step, candidates, feasible, X, y, flops):
        """Evaluate the feasible ``candidates`` and return the best (width, depth)."""
        candidates = [c for c in candidates if c in feasible]
        self._evaluate([c for c in candidates if c not in self._records], round_, X, y, flops)
        # A candidate whose score is not finite (a diverged fit) ranks last, not first:
        # max() keeps a leading NaN because nothing compares greater than it.
        best = max(candidates, key=lambda c: _finite_or_worst(self._records[c]["score"]))
        self._history.append(
            {
                "round": round_,
                "step": step,
                "width": best[0],
                "depth": best[1],
                "score": self._records[best]["score"],
                "compared": {c: self._records[c]["score"] for c in candidates},
            }
        )
        if self.verbose:
            print(
                f"round {round_} {step}: width={best[0]} depth={best[1]} "
                f"score={self._records[best]['score']:.2f}"
            )
        return best

    def _evaluate(self, candidates, round_, X, y, flops):
        """Fit every candidate ``n_repeats`` times in parallel and record the averages."""
        seed = self._seed
        jobs = [
            (c, r, clone(self.estimator).set_params(width=c[0], depth=c[1], random_state=seed + r))
            for c in candidates
            for r in range(self.n_repeats)
        ]
        outputs = parallel_map(_fit_and_score, [(est, X, y) for _, _, est in jobs], self.n_jobs)
        for (candidate, repeat, _), (fitted, psnr, mse, seconds) in zip(jobs, outputs, strict=True):
            record = self._records.setdefault(
                candidate, {"psnr": [], "mse": [], "time": [], "round": round_}
            )
            record["psnr"].append(psnr)
            record["mse"].append(mse)
            record["time"].append(seconds)
            if repeat == 0:
                self._fitted[candidate] = fitted
        for candidate in candidates:
            record = self._records[candidate]
            record["score"] = float(np.mean(record["psnr"])) - self.alpha * math.log10(
                flops[candidate]
            )

    def _results_table(self, flops):
        keys = list(self._records)
        scores = np.array([self._records[k]["score"] for k in keys])
        order = np.argsort(-scores, kind="stable")
        rank = np.empty(len(keys), dtype=int)
        rank[order] = np.arange(1, len(keys) + 1)
        return {
            "params": [{"width": w, "depth": d} for w, d in keys],
            "param_width": np.array([w for w, _ in keys]),
            "param_depth": np.array([d for _, d in keys]),
            "flops": np.array([flops[k] for k in keys]),
            "mean_psnr": np.array([np.mean(self._records[k]["psnr"]) for k in keys]),
            "std_psnr": np.array([np.std(self._records[k]["psnr"]) for k in keys]),
            "mean_mse": np.array([np.mean(self._records[k]["mse"]) for k in keys]),
            "score": scores,
            "rank_score": rank,
            "mean_fit_time": np.array([np.mean(self._records[k]["time"]) for k in keys]),
            "round": np.array([self._records[k]["round"] for k in keys]),
        }

    def predict(self, X):
        """Predict with the best estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_dims)
            Coordinates.

        Returns
        -------
        ndarray
            ``best_estimator_.predict(X)``.
        """
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    def score(self, X, y):
        """PSNR (dB) of the best estimator on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_dims)
            Coordinates.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True values.

        Returns
        -------
        float
            ``best_estimator_.score(X, y)``.
        """
        check_is_fitted(self)
        return self.best_estimator_.score(X, y)
