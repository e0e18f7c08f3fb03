"""scikit-learn's common estimator checks, run on every skinr estimator."""

import json
import subprocess
import sys

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinr import HashGrid
from skinr.codec import LatentCodec

from .conftest import ALL_ESTIMATORS, make_fast

# Checks that cannot hold for an INR, with the reason.
FLOAT32_TAILS = (
    "float32 sin/cos run vectorised on whole SIMD lanes and scalar on the tail, and GEMM "
    "blocking follows the batch length, so the last bit of a prediction depends on how many "
    "points are predicted together (relative 1e-7, float32 precision); whether a given "
    "point lands on a tail depends on the weights. skinr's own test_chunked_predict_matches "
    "checks subset invariance at float32 tolerance."
)
EXPECTED_FAILED_CHECKS: dict[type, dict[str, str]] = {
    Estimator: {"check_methods_subset_invariance": FLOAT32_TAILS} for Estimator in ALL_ESTIMATORS
}
# The same last-bit effect with rows reordered: HashGrid's 20 x 6 features go through a
# GEMM whose row blocking puts a point on a tail or not depending on its position.
EXPECTED_FAILED_CHECKS[HashGrid]["check_methods_sample_order_invariance"] = FLOAT32_TAILS
# scikit-learn's data has 4-10 columns; LatentCodec refuses signals of more than 3
# coordinate dimensions before any allocation (its entropy model reads 3**d / 2
# neighbours per latent). Each of these checks fails on that refusal alone.
CODEC_DIMS = "LatentCodec compresses signals of at most 3 coordinate dimensions."
EXPECTED_FAILED_CHECKS.get(LatentCodec, {}).update(
    dict.fromkeys(
        (
            "check_dtype_object",
            "check_estimators_dtypes",
            "check_fit2d_1sample",
            "check_n_features_in_after_fitting",
            "check_non_transformer_estimators_n_iter",
            "check_positive_only_tag_during_fit",
            "check_regressor_data_not_an_array",
            "check_regressor_multioutput",
            "check_regressors_int",
            "check_regressors_no_decision_function",
            "check_regressors_train",
        ),
        CODEC_DIMS,
    )
)


def _expected_failures(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator), {})


@parametrize_with_checks(
    [make_fast(Estimator) for Estimator in ALL_ESTIMATORS],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# What the defaults cannot do on scikit-learn's test data (up to 10 coordinate
# dimensions, 20-200 samples), each refused with a one-line error before allocation.
DEFAULT_SIZE_REFUSALS = (
    "cells along dimension",  # EnsembleINR's grid=8: more cells than distinct coordinates
    "lower its structure",  # 8**d cells: too much memory, or per sample
    "every level would collide",  # HashGrid: 17**d coarsest vertices > 2**19 entries
)

_CHECK_DEFAULTS = """
import json, resource, sys, warnings
warnings.simplefilter("ignore")
import skinr
from sklearn.utils.estimator_checks import check_estimator
results = check_estimator(skinr.ESTIMATORS[sys.argv[1]](max_iter=20), on_fail=None)
def message(error):  # a check may wrap skinr's error in its own: keep both
    cause = error.__cause__ or error.__context__
    return f"{error} <- {cause}" if cause is not None else str(error)
failed = {r["check_name"]: message(r["exception"]) for r in results if r["status"] == "failed"}
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"failed": failed, "max_rss": rss}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("Estimator", ALL_ESTIMATORS, ids=lambda cls: cls.__name__)
def test_default_sizes_get_through_check_estimator_in_a_few_gb(Estimator):
    """scikit-learn's own check_estimator at the defaults: no memory blow-up, and every
    failure is float32's last bit or a size refused in one line."""
    result = subprocess.run(
        [sys.executable, "-c", _CHECK_DEFAULTS, Estimator.__name__],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["max_rss"] < 3 * 2**30, report["max_rss"]
    for check, message in report["failed"].items():
        allowed = check in _expected_failures(Estimator()) or any(
            reason in message for reason in DEFAULT_SIZE_REFUSALS
        )
        assert allowed, f"{check}: {message[:300]}"
