"""95% intervals: the Wilson interval against published values, the bootstrap on known inputs, and the report
showing each interval beside its score."""

from __future__ import annotations

import pytest

from vlit.evaluation.intervals import bootstrap_mean, format_interval, mean_interval, wilson
from vlit.evaluation.metrics import metric_spec
from vlit.evaluation.report import markdown_table
from vlit.evaluation.runner import Result
from vlit.evaluation.samples import EvalSample


def test_wilson_matches_the_textbook_values():
    # statsmodels' proportion_confint(70, 100, method="wilson") and Newcombe (1998), table I: 81/263.
    assert wilson(70, 100) == pytest.approx((0.604151, 0.781051), abs=1e-6)
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    low, high = wilson(0, 100)  # never below 0 or above 1, unlike the normal interval
    assert low == pytest.approx(0.0) and high == pytest.approx(0.036993, abs=1e-6)
    assert wilson(100, 100)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        wilson(0, 0)


def test_bootstrap_brackets_the_mean_and_is_seeded():
    values = [0.0, 1 / 3, 2 / 3, 1.0] * 25
    low, high = bootstrap_mean(values)
    assert low < 0.5 < high and high - low < 0.25
    assert bootstrap_mean(values) == (low, high)
    assert bootstrap_mean([0.5] * 10) == (0.5, 0.5)


def test_mean_interval_is_wilson_for_zero_one_scores():
    assert mean_interval([1.0] * 70 + [0.0] * 30) == wilson(70, 100)
    assert mean_interval([1 / 3] * 50 + [1.0] * 50) == bootstrap_mean([1 / 3] * 50 + [1.0] * 50)


def test_sample_scores_of_a_mean_metric_average_to_its_headline():
    samples = [EvalSample(str(i), None, "vqa", ["red"]) for i in range(3)]  # type: ignore[arg-type]
    spec = metric_spec("vqa")
    scores = spec.sample_scores(["red", "blue", "Red"], samples)
    assert scores == [1.0, 0.0, 1.0]
    assert sum(scores) / 3 == pytest.approx(spec.score(["red", "blue", "Red"], samples)["vqa_accuracy"])
    assert metric_spec("pope").sample_scores(["yes"], samples) is None  # F1 is no mean over samples


def test_report_shows_the_interval_beside_the_score():
    results = [Result("m", "fmnist", "held_in", "classification", {"accuracy": 0.7}, 100,
                      interval=wilson(70, 100)),
               Result("m", "pope", "held_out", "pope", {"f1": 0.8}, 18)]
    table = markdown_table(results)
    assert "| m | 70.0 (60.4-78.1) | **70.0** | 80.0 | **80.0** |" in table
    assert format_interval((0.25, 0.5)) == "(25.0-50.0)"
