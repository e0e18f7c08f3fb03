"""Structure search (ENRP Algorithm 1), the full-signal splitter and the FLOP scorer."""

import math

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

import skinr
from skinr import EnsembleINR
from skinr.model_selection import FullSignalSplit, StructureSearchCV, flops_penalized_scorer
from skinr.signals import to_coords


@pytest.fixture(scope="module")
def signal():
    return to_coords(skinr.datasets.perlin_noise((16, 16), 4, random_state=0))


def _search(estimator, **params):
    defaults = dict(widths=(4, 8, 16), depths=(1, 2), n_repeats=1, max_flops=1e6)
    return StructureSearchCV(estimator, **{**defaults, **params})


def test_coordinate_ascent_path_and_results(signal):
    X, y = signal
    base = EnsembleINR(grid=2, max_iter=30, learning_rate=1e-3, device="cpu")
    search = _search(base, alpha=2.0).fit(X, y)
    results = search.cv_results_
    # Every recorded candidate's score is its mean PSNR minus alpha * log10(FLOPs).
    np.testing.assert_allclose(
        results["score"], results["mean_psnr"] - 2.0 * np.log10(results["flops"])
    )
    assert (results["flops"] <= 1e6).all()
    # Each step picked the best of what it compared; the ascent ends where it stopped.
    for step in search.history_:
        assert step["score"] == max(step["compared"].values())
    last = search.history_[-1]
    assert search.best_params_ == {"width": last["width"], "depth": last["depth"]}
    # It stops when a round changes nothing, or after max_rounds.
    if search.n_rounds_ < search.max_rounds:
        assert search.history_[-2]["width"] == last["width"]
    best = search.best_estimator_
    assert (best.width, best.depth) == (last["width"], last["depth"])
    assert search.score(X, y) == pytest.approx(best.score(X, y))
    assert search.best_score_ == pytest.approx(
        best.score(X, y) - 2.0 * math.log10(best.count_flops(X))
    )


def test_alpha_trades_psnr_for_flops(signal):
    X, y = signal
    base = EnsembleINR(grid=2, max_iter=30, learning_rate=1e-3, device="cpu")
    cheap = _search(base, alpha=1000.0).fit(X, y)
    assert cheap.best_params_ == {"width": 4, "depth": 1}  # FLOPs dominate the score


def test_budget_excludes_candidates_and_errors_when_none_fit(signal):
    X, y = signal
    base = EnsembleINR(grid=2, max_iter=5, blending="nearest", device="cpu")
    # The paper's hard cells. width 8, depth 2: 2 * 256 * (2*8 + 8*8*2 + 8*1) = 77,824
    # FLOPs; width 16 is above.
    search = _search(base, max_flops=80_000).fit(X, y)
    assert set(search.cv_results_["param_width"]) <= {4, 8}
    with pytest.raises(
        ValueError,
        match=r"No candidate meets max_flops=10: the cheapest, "
        r"width=4, depth=1, needs 14,336 FLOPs",
    ):
        _search(base, max_flops=10).fit(X, y)


def test_works_with_siren_and_in_parallel(signal):
    X, y = signal
    base = skinr.SIREN(max_iter=20, learning_rate=1e-3, device="cpu")
    serial = _search(base, n_repeats=2).fit(X, y)
    parallel = _search(base, n_repeats=2, n_jobs=2).fit(X, y)
    assert serial.best_params_ == parallel.best_params_
    # Worker processes may run torch with fewer threads, which reorders float32 sums.
    np.testing.assert_allclose(
        serial.cv_results_["mean_psnr"], parallel.cv_results_["mean_psnr"], rtol=1e-5
    )
    assert isinstance(serial.best_estimator_, skinr.SIREN)


def test_rejects_estimators_without_width_and_depth(signal):
    from sklearn.linear_model import Ridge

    with pytest.raises(ValueError, match="needs an estimator with 'width' and 'depth'"):
        StructureSearchCV(Ridge()).fit(*signal)


def test_gridsearch_with_full_signal_split_and_flop_scorer(signal):
    X, y = signal
    search = GridSearchCV(
        EnsembleINR(grid=2, max_iter=30, learning_rate=1e-3, device="cpu", random_state=0),
        {"width": [4, 16], "depth": [1, 2]},
        cv=FullSignalSplit(),
        scoring=flops_penalized_scorer(alpha=2.0),
    ).fit(X, y)
    for params, score in zip(
        search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
    ):
        model = EnsembleINR(
            grid=2, max_iter=30, learning_rate=1e-3, device="cpu", random_state=0, **params
        ).fit(X, y)
        expected = model.score(X, y) - 2.0 * math.log10(model.count_flops(X))
        assert score == pytest.approx(expected, rel=1e-6)
