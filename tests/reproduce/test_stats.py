"""The intervals and the verdict rule on synthetic scores whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from vlit.errors import VlitError
from vlit.reproduce.stats import Interval, bootstrap, combine, paired, verdict


def test_a_constant_difference_has_a_zero_width_interval():
    first = [np.full((3, 50), 0.7), np.full((3, 20), 0.4)]
    second = [np.full((3, 50), 0.5), np.full((3, 20), 0.4)]
    diff = paired(first, second)
    assert (diff.mean, diff.low, diff.high) == pytest.approx((0.1, 0.1, 0.1))  # mean over keys of key means


def test_the_interval_covers_the_mean_and_has_the_normal_width():
    rng = np.random.default_rng(1)
    scores = [rng.normal(0.5, 1.0, size=(1, 4000))]
    interval = bootstrap(scores, resamples=2000)
    assert interval.low < 0.5 < interval.high
    assert interval.high - interval.low == pytest.approx(2 * 1.96 / np.sqrt(4000), rel=0.15)


def test_seeds_are_redrawn_too():
    # Every sample agrees within a seed, but the seeds disagree: only redrawing seeds shows that uncertainty.
    block = np.repeat(np.array([[0.0], [0.2], [0.4]]), 100, axis=1)
    interval = bootstrap([block], resamples=2000)
    assert interval.mean == pytest.approx(0.2)
    assert interval.low < 0.1 and interval.high > 0.3


def test_pairing_removes_what_both_arms_share():
    rng = np.random.default_rng(2)
    hard = rng.uniform(0, 1, size=(3, 200))  # per-sample difficulty, the same for both arms
    paired_diff = paired([hard + 0.05], [hard])
    assert paired_diff.low == pytest.approx(0.05) and paired_diff.high == pytest.approx(0.05)


def test_mismatched_arms_are_refused():
    with pytest.raises(VlitError, match="same seeds and samples"):
        paired([np.zeros((3, 5))], [np.zeros((3, 4))])
    with pytest.raises(VlitError, match="same seeds"):
        bootstrap([np.zeros((3, 5)), np.zeros((2, 5))])


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0.01, 0.08, "reproduced"),              # wholly above 0
    (-0.06, -0.01, "not reproduced"),        # wholly below 0
    (-0.02, 0.02, "not reproduced"),         # rules out an effect of 3 points
    (-0.02, 0.06, "inconclusive at this budget"),
    (0.0, 0.06, "inconclusive at this budget"),  # touching 0 is not above it
])
def test_verdict_higher(low, high, expected):
    assert verdict(Interval((low + high) / 2, low, high), "higher", 0.03) == expected


@pytest.mark.parametrize(("low", "high", "expected"), [
    (-0.02, 0.02, "reproduced"),
    (0.04, 0.09, "not reproduced"),
    (-0.09, -0.04, "not reproduced"),
    (-0.01, 0.05, "inconclusive at this budget"),
])
def test_verdict_close(low, high, expected):
    assert verdict(Interval((low + high) / 2, low, high), "close", 0.03) == expected


def test_a_claim_needs_all_its_deciding_comparisons():
    assert combine(["reproduced", "reproduced"]) == "reproduced"
    assert combine(["reproduced", "inconclusive at this budget"]) == "inconclusive at this budget"
    assert combine(["inconclusive at this budget", "not reproduced"]) == "not reproduced"
    assert combine([]) == "inconclusive at this budget"
