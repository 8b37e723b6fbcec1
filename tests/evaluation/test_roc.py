"""ROC-AUC: the Mann-Whitney statistic by hand, and equal to scikit-learn's roc_auc_score (ties included)."""

from __future__ import annotations

import random

import pytest

from vlit.errors import VlitError
from vlit.evaluation.roc import mann_whitney_auc, roc_auc


def test_by_hand_with_a_tie():
    # Positive-negative pairs: 0.9>0.4, 0.9>0.1, 0.4=0.4 (half), 0.4>0.1 -> 3.5 / 4.
    assert mann_whitney_auc([1, 1, 0, 0], [0.9, 0.4, 0.4, 0.1]) == 0.875
    assert roc_auc([1, 1, 0, 0], [0.9, 0.4, 0.4, 0.1]) == 0.875
    assert mann_whitney_auc([0, 1], [1.0, 0.0]) == 0.0


def test_equals_scikit_learn():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = random.Random(0)
    for _ in range(20):
        labels = [rng.randint(0, 1) for _ in range(40)] + [0, 1]
        scores = [rng.choice([0.0, 0.5, 1.0, rng.random()]) for _ in labels]
        assert mann_whitney_auc(labels, scores) == pytest.approx(sklearn.roc_auc_score(labels, scores))


def test_one_class_is_refused():
    with pytest.raises(VlitError, match="needs both labels"):
        roc_auc([1, 1], [0.2, 0.3])
