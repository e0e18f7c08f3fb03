"""The deterministic figures the docs quote (FLOP and parameter counts) still hold.

Timing figures are re-measured by ``python benchmarks/claims.py`` (never in tests);
these are exact, so the suite checks them every run against the number each page
prints today.
"""

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def claims():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("claims")
    finally:
        sys.path.remove(str(BENCHMARKS))


COUNTS = [
    "siren_gflops_128_rgb",
    "siren_flops_per_pixel",
    "ensemble_s4_params",
    "multihead_render_flops_ratio",
    "multihead_blended_render_flops_ratio",
]


@pytest.mark.parametrize("name", COUNTS)
def test_a_quoted_count_matches_the_code(claims, name):
    claim = next(c for c in claims.CLAIMS if c.name == name)
    assert claim.kind == "count"
    stated, measured = claim.stated(), claim.measure()
    _, holds = claims._drift(claim, stated, measured)
    assert holds, f"{claim.page} says {stated:g} for {name}; the code gives {measured:.6g}"


def test_every_count_claim_is_tested(claims):
    assert sorted(c.name for c in claims.CLAIMS if c.kind == "count") == sorted(COUNTS)


def test_a_page_that_stops_quoting_a_claim_is_named(claims, tmp_path, monkeypatch):
    claim = claims.CLAIMS[0]
    monkeypatch.setattr(claims, "ROOT", tmp_path)
    (tmp_path / claim.page).parent.mkdir(parents=True)
    (tmp_path / claim.page).write_text("no figures here")
    with pytest.raises(LookupError, match=claim.name):
        claim.stated()


def test_drift_is_relative_except_for_percentages_near_zero(claims):
    by_name = {c.name: c for c in claims.CLAIMS}
    assert claims._drift(by_name["ensemble_step_speedup_128"], 5.0, 4.5)[1]
    assert not claims._drift(by_name["ensemble_step_speedup_128"], 5.0, 2.5)[1]
    assert claims._drift(by_name["library_overhead_percent"], 1.1, -2.0)[1]
    assert not claims._drift(by_name["library_overhead_percent"], 1.1, 9.0)[1]
