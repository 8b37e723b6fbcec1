"""The report on synthetic per-sample scores whose verdicts are known: no model trains."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vlit.reproduce.claims import CLAIMS, HELD_IN
from vlit.reproduce.report import analyse, write_report

SEEDS = [0, 1, 2]


def _state(keys, value, rng, curve=None):
    """An arm-seed's scores.json: 30 samples per key around `value` (0/1 scores), and optionally curves."""
    scores = {k: {f"{k}-{i}": float(rng.random() < value) for i in range(30)} for k in keys}
    curves = {name: {str(step): v for step, v in curve[name].items()} for name in HELD_IN} if curve else {}
    return {"scores": scores, "curves": curves, "seconds": {}}


def test_a_clear_effect_is_reproduced_and_a_null_one_is_not(tmp_path):
    rng = np.random.default_rng(0)
    claim = CLAIMS["balanced-sampling"]
    # sqrt's splits peak at the end; proportional's at scattered steps.
    rising = {name: {40: 0.2, 60: 0.4, 80: 0.6} for name in HELD_IN}
    scattered = {name: {40: 0.5 if i % 3 == 0 else 0.1, 60: 0.5 if i % 3 == 1 else 0.1,
                        80: 0.5 if i % 3 == 2 else 0.1} for i, name in enumerate(HELD_IN)}
    scores = {"reproduce/instructblip": {s: _state(HELD_IN, 0.9, rng, rising) for s in SEEDS},
              "reproduce/instructblip-proportional": {s: _state(HELD_IN, 0.1, rng, scattered) for s in SEEDS},
              "reproduce/instructblip-uniform": {s: _state(HELD_IN, 0.9, rng, rising) for s in SEEDS}}
    result = analyse(claim, scores, SEEDS, resamples=500)
    first, second = result.compared
    assert first.verdict == "reproduced" and first.difference.low > 0.6
    assert second.verdict == "not reproduced"  # the same scores: the interval rules out 3 points
    assert result.verdict == "not reproduced"
    assert result.peaks["sqrt"] == dict.fromkeys(HELD_IN, 80)
    assert sorted(set(result.peaks["proportional"].values())) == [40, 60, 80]
    assert result.curves["sqrt"]["scenes_vqa"] == pytest.approx({40: 0.2, 60: 0.4, 80: 0.6})

    report = write_report([result], tmp_path, ["Run: synthetic."]).read_text()
    assert "| balanced-sampling | InstructBLIP | not reproduced |" in report
    assert "Verdict rule" in report and "| proportional | 40 | 60 | 80 | 40 | 60 | 40 |" in report
    assert (tmp_path / "balanced-sampling.png").read_bytes().startswith(b"\x89PNG")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved[0]["comparisons"][0]["verdict"] == "reproduced"


def test_lengths_are_compared_in_words(tmp_path):
    claim = CLAIMS["response-format"]
    def words(n):
        return {"scores": {"words:open": {f"o{i}": float(n + i % 3) for i in range(12)},
                           "words:short": {f"s{i}": 1.0 for i in range(12)}}, "curves": {}, "seconds": {}}
    scores = {"reproduce/llava15": {s: words(12) for s in SEEDS},
              "reproduce/llava15-ambiguous": {s: words(2) for s in SEEDS}}
    result = analyse(claim, scores, SEEDS, resamples=500)
    assert result.verdict == "reproduced"
    assert result.compared[0].difference.mean == 10.0
    assert result.compared[1].verdict == "reproduced"  # short answers equally short
    report = write_report([result], tmp_path, []).read_text()
    assert "+10.0 [+10.0, +10.0]" in report and "higher (m = 2 words)" in report
