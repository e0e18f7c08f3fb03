"""scikit-learn's common estimator checks, run on every skinr estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skinr import HashGrid

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


def _expected_failures(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator), {})


@parametrize_with_checks(
    [make_fast(Estimator) for Estimator in ALL_ESTIMATORS],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
