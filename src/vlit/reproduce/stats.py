"""Paired bootstrap intervals over seeds and test samples, and the rule that turns an interval into a verdict.

Every arm is trained with the same seeds and scored on the same test samples, so a comparison looks at paired
differences `d[seed, sample] = first - second` per score key. The bootstrap redraws the seeds (with
replacement) and, independently, each key's samples (the same draw for every seed: a sample is one test item,
whichever seed's model answers it), and recomputes the measure: the mean over keys of the mean over the drawn
seeds and samples. The 2.5th and 97.5th percentiles of the redrawn measures are the 95% interval. Seeds and
samples are both sources of variation; redrawing only one of them would call a lucky seed or a lucky test set
an effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from vlit.errors import VlitError

Verdict = Literal["reproduced", "not reproduced", "inconclusive at this budget"]

RULE = (
    "Verdict rule (fixed before any run, the same for every claim): for each comparison, the 95% interval of the "
    "paired difference (first arm minus second; bootstrap over seeds and test samples). A claim "
    "that one arm beats the other by at least a margin m (3 points for accuracies, 2 words for answer "
    "lengths) is **reproduced** when the whole interval lies above 0; otherwise **not reproduced** when it lies "
    "wholly below m (the data rule out an effect as large as m in the claimed direction; this includes an "
    "interval wholly below 0); "
    "**inconclusive at this budget** otherwise. A claim that two arms are close is reproduced when the interval "
    "lies within [-m, m], not reproduced when it lies wholly outside, inconclusive otherwise. A claim's verdict "
    "is reproduced when all its deciding comparisons are, not reproduced when any one is not, inconclusive "
    "otherwise."
)


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    def scaled(self, factor: float) -> Interval:
        return Interval(self.mean * factor, self.low * factor, self.high * factor)


Blocks = list[np.ndarray]
"""One float array [seeds, samples] per score key (the seeds in the same order in every array)."""


def bootstrap(blocks: Blocks, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> Interval:
    """The mean over blocks of each block's mean, and its `level` interval by redrawing seeds and samples."""
    if not blocks or any(b.ndim != 2 or b.size == 0 for b in blocks):
        raise VlitError("bootstrap: every score key needs a [seeds, samples] array with at least one value")
    seeds = blocks[0].shape[0]
    if any(b.shape[0] != seeds for b in blocks):
        raise VlitError("bootstrap: every score key needs the same seeds")
    rng = np.random.default_rng(seed)
    seed_draw = rng.integers(0, seeds, size=(resamples, seeds))
    total = np.zeros(resamples)
    for block in blocks:
        sample_draw = rng.integers(0, block.shape[1], size=(resamples, block.shape[1]))
        # [resamples, seeds, samples]: the drawn seeds' rows, then the drawn samples of each row.
        rows = block[seed_draw]
        total += np.take_along_axis(rows, sample_draw[:, None, :], axis=2).mean(axis=(1, 2))
    redrawn = total / len(blocks)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(redrawn, [tail, 100 - tail])
    return Interval(float(np.mean([b.mean() for b in blocks])), float(low), float(high))


def paired(first: Blocks, second: Blocks, resamples: int = 2000, seed: int = 0) -> Interval:
    """The interval of the mean paired difference `first - second` (arrays aligned seed by seed, sample by
    sample)."""
    if len(first) != len(second) or any(a.shape != b.shape for a, b in zip(first, second, strict=True)):
        raise VlitError("paired: the two arms must be scored on the same seeds and samples")
    return bootstrap([a - b for a, b in zip(first, second, strict=True)], resamples, seed)


def verdict(diff: Interval, expect: Literal["higher", "close"], margin: float) -> Verdict:
    """The rule of `RULE` for one comparison (`diff`: first minus second, `margin` in the same units)."""
    if expect == "higher":
        if diff.low > 0:
            return "reproduced"
        if diff.high < margin:
            return "not reproduced"
        return "inconclusive at this budget"
    if -margin <= diff.low and diff.high <= margin:
        return "reproduced"
    if diff.low > margin or diff.high < -margin:
        return "not reproduced"
    return "inconclusive at this budget"


def combine(verdicts: list[Verdict]) -> Verdict:
    """A claim's verdict from those of its deciding comparisons."""
    if verdicts and all(v == "reproduced" for v in verdicts):
        return "reproduced"
    if "not reproduced" in verdicts:
        return "not reproduced"
    return "inconclusive at this budget"
