"""ROC-AUC for binary labels (HatefulMemes, as InstructBLIP reports it): scikit-learn's `roc_auc_score` when it
is installed (`pip install vlit[eval]`), else the Mann-Whitney statistic, which is the same number."""

from __future__ import annotations

from collections.abc import Sequence

from vlit.errors import VlitError


def mann_whitney_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """P(score of a random positive > score of a random negative), a tie counting one half: the Mann-Whitney U
    of the positives over n_pos * n_neg, from mid-ranks (tied scores share the mean of their ranks)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1  # 1-based mean rank of the tied run
        start = end + 1
    positives = sum(1 for y in labels if y == 1)
    negatives = len(labels) - positives
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y == 1)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve of `scores` for `labels` (1 positive, 0 negative); both classes must occur."""
    if len(labels) != len(scores):
        raise VlitError(f"roc_auc: {len(labels)} labels for {len(scores)} scores")
    if set(labels) != {0, 1}:
        raise VlitError(f"roc_auc: needs both labels 0 and 1 among the samples, got {sorted(set(labels))}")
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        return mann_whitney_auc(labels, scores)
    return float(roc_auc_score(list(labels), list(scores)))
