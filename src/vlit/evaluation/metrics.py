"""Benchmark metrics: per-answer scores, the metric functions and `METRICS`, the one table of metric names and
the number each shows, which `metric_for` and the report read.

Every task metric is `(predictions, samples) -> dict[str, float]`, predictions being the model's text for each
sample, in order (generated, or the chosen candidate when ranking). Values are fractions as the reference
implementations return them (accuracy 0..1); papers print them times 100.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vlit.data.prompting.boxes import iou
from vlit.data.prompting.styles import LETTERS
from vlit.errors import VlitError
from vlit.evaluation.captioning import caption_scores
from vlit.evaluation.extract import extract_box, extract_choice, extract_option, pope_answer
from vlit.evaluation.normalize import clean_whitespace, normalize_answer
from vlit.evaluation.samples import EvalSample, EvalTask
from vlit.evaluation.suites.binary import hateful_memes_metrics, vsr_metrics
from vlit.evaluation.suites.captions import nocaps_metrics
from vlit.evaluation.suites.mmbench import mmbench_metrics
from vlit.evaluation.suites.refcoco import refcoco_metrics
from vlit.evaluation.suites.scienceqa import scienceqa_metrics
from vlit.evaluation.suites.seed import seed_metrics
from vlit.evaluation.vqa_scores import gqa_metrics, mme_metrics, textvqa_metrics, vizwiz_metrics, vqa_tool_metrics

Metric = Callable[[Sequence[str], Sequence[EvalSample]], dict[str, float]]
IOU_THRESHOLD = 0.5


# ---- per-answer scores ------------------------------------------------------------------------------------

def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """The VQA accuracy of one answer against the human answers: for each of the leave-one-out subsets of the
    answers (10 for VQAv2), min(#answers in the subset equal to the prediction / 3, 1); then the mean.

    Both sides are normalised (`normalize_answer`), so references written in any case or with number words
    still match. The official tool normalises the prediction only and processes just the punctuation of the
    human answers, when they differ (`vqa_scores.vqa_tool_accuracy`, what the VQAv2 and OK-VQA suites use).
    With a single reference there is nothing to leave out: the score is 1.0 on a match, else 0.0.
    """
    if not answers:
        raise VlitError("vqa accuracy: no reference answers")
    said = normalize_answer(prediction)
    matches = [normalize_answer(a) == said for a in answers]
    if len(matches) == 1:
        return float(matches[0])
    total = sum(matches)
    # Leaving out answer i keeps every match but its own; each subset has len - 1 answers.
    return sum(min(1.0, (total - m) / 3) for m in matches) / len(matches)


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the prediction equals one of the references after the VQA normalisation, else 0.0."""
    said = normalize_answer(prediction)
    return float(any(normalize_answer(r) == said for r in references))


def yes_no_scores(predicted: Sequence[str], truth: Sequence[str]) -> dict[str, float]:
    """POPE's scores with "yes" as the positive class: precision, recall, F1, accuracy and the ratio of "yes"
    answers (POPE reports it to expose models that say yes to everything). Empty denominators give 0.0."""
    pairs = list(zip(predicted, truth, strict=True))
    tp = sum(p == "yes" and t == "yes" for p, t in pairs)
    fp = sum(p == "yes" and t == "no" for p, t in pairs)
    fn = sum(p == "no" and t == "yes" for p, t in pairs)
    tn = sum(p == "no" and t == "no" for p, t in pairs)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / len(pairs), "precision": precision, "recall": recall, "f1": f1,
            "yes_ratio": (tp + fp) / len(pairs)}


# ---- task metrics -----------------------------------------------------------------------------------------

def _check(predictions: Sequence[str], samples: Sequence[EvalSample], task: str) -> None:
    if len(predictions) != len(samples):
        raise VlitError(f"{task} metric: {len(predictions)} predictions for {len(samples)} samples")
    if not samples:
        raise VlitError(f"{task} metric: no samples to score")
    for sample in samples:
        if not sample.references:
            raise VlitError(f"sample {sample.id}: no reference to score {task} against")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def vqa_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`vqa_accuracy` and `exact_match`, plus `vqa_accuracy:<answer type>` when samples carry
    `meta["answer_type"]` (VQAv2's yes/no, number, other), as the official tool reports them. A sample whose
    references are alternatives of one answer (`meta["alternatives"]`, vlit's own datasets) scores 1 on a match
    with any of them."""
    _check(predictions, samples, "vqa")
    pairs = list(zip(predictions, samples, strict=True))
    # A vlit-built row lists alternative phrasings of its one answer ("1", "one"), not ten people's answers:
    # any of them is right, where the VQA formula would give a match on two of them 1/3.
    scores = [exact_match(p, s.references) if s.meta.get("alternatives") else vqa_accuracy(p, s.references)
              for p, s in pairs]
    matched = [exact_match(p, s.references) for p, s in pairs]
    out = {"vqa_accuracy": _mean(scores), "exact_match": _mean(matched)}
    by_type: dict[str, list[float]] = defaultdict(list)
    for score, sample in zip(scores, samples, strict=True):
        if "answer_type" in sample.meta:
            by_type[str(sample.meta["answer_type"])].append(score)
    out.update({f"vqa_accuracy:{kind}": _mean(values) for kind, values in sorted(by_type.items())})
    return out


def multiple_choice_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`accuracy` of the extracted choice against the reference letter, and `unparsed`: the fraction of
    answers from which no choice could be read (they count as wrong)."""
    _check(predictions, samples, "multiple_choice")
    correct, unparsed = [], []
    for prediction, sample in zip(predictions, samples, strict=True):
        if not sample.candidates:
            raise VlitError(f"sample {sample.id}: a multiple-choice sample needs its options (candidates)")
        index = extract_choice(prediction, sample.candidates)
        unparsed.append(index is None)
        correct.append(index is not None and LETTERS[index] == sample.references[0])
    return {"accuracy": _mean(correct), "unparsed": _mean(unparsed)}


def classification_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`accuracy`: the label the answer names (one of `candidates`, read from free text) is a reference label
    after the VQA normalisation; without candidates the whole answer must be one. `unparsed`: the fraction of
    answers naming no candidate (or several) where there are candidates."""
    _check(predictions, samples, "classification")
    correct, unparsed = [], []
    for prediction, sample in zip(predictions, samples, strict=True):
        index = extract_option(prediction, sample.candidates) if sample.candidates else None
        label = prediction if not sample.candidates else "" if index is None else sample.candidates[index]
        unparsed.append(bool(sample.candidates) and index is None)
        correct.append(bool(label) and exact_match(label, sample.references) == 1.0)
    return {"accuracy": _mean(correct), "unparsed": _mean(unparsed)}


def yes_no_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """POPE: answers read with `pope_answer`, references "yes"/"no"; see `yes_no_scores`."""
    _check(predictions, samples, "yes_no")
    truth = []
    for sample in samples:
        label = clean_whitespace(str(sample.references[0])).lower()
        if label not in ("yes", "no"):
            raise VlitError(f"sample {sample.id}: references: expected 'yes' or 'no', got {label!r}")
        truth.append(label)
    return yes_no_scores([pope_answer(p) for p in predictions], truth)


def pope_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """LLaVA's `eval_pope.py` per category (`meta["category"]`: adversarial, popular, random): precision,
    recall, F1, accuracy, yes-ratio as `<category>/<name>`; `f1` and `accuracy` are their means over the
    categories (LLaVA-1.5 reports the F1)."""
    _check(predictions, samples, "yes_no")
    out: dict[str, float] = {}
    categories = list(dict.fromkeys(str(s.meta.get("category", "all")) for s in samples))
    for category in categories:
        pairs = [(p, s) for p, s in zip(predictions, samples, strict=True)
                 if str(s.meta.get("category", "all")) == category]
        scores = yes_no_metrics([p for p, _ in pairs], [s for _, s in pairs])
        out |= {f"{category}/{k}": v for k, v in scores.items()}
    for name in ("f1", "accuracy", "precision", "recall", "yes_ratio"):
        out[name] = _mean([out[f"{c}/{name}"] for c in categories])
    return out


def refer_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """Referring expressions: `accuracy` (IoU > 0.5 with the target box, MiniGPT-v2's rule), `mean_iou`, and
    `unparsed` (answers holding no box; IoU 0). Boxes are compared in pixels of the original image: a
    predicted box is read in the model's frame (`meta["frame"]`, its `ImageSpec`, set by the runner) and
    mapped back."""
    _check(predictions, samples, "refer")
    ious, unparsed = [], []
    for prediction, sample in zip(predictions, samples, strict=True):
        size = sample.meta.get("image_size")
        if size is None:
            raise VlitError(f"sample {sample.id}: meta.image_size: needed to read a predicted box")
        box = extract_box(prediction, size, sample.meta.get("frame"))
        unparsed.append(box is None)
        ious.append(0.0 if box is None else max(iou(box, ref) for ref in sample.references))
    return {"accuracy": _mean([v > IOU_THRESHOLD for v in ious]), "mean_iou": _mean(ious),
            "unparsed": _mean(unparsed)}


def caption_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """BLEU-1..4 and CIDEr-D with coco-caption's tokenizer (`caption_scores`)."""
    _check(predictions, samples, "caption")
    return caption_scores(predictions, [[str(r) for r in s.references] for s in samples])


@dataclass(frozen=True)
class MetricSpec:
    """A metric: the function that scores a task's samples and the number a table shows for it."""

    score: Metric | None
    """None: the answers are generated but judged by a person or a model, not here."""
    headline: str | None
    """The key of `score`'s result a table shows (as the papers report them)."""
    scale: float = 100.0
    """The headline times this is the number the papers print: 100 for fractions (accuracy, CIDEr, a relative
    score); 1 for a number already in the paper's units (MME's summed score)."""
    per_sample: bool = False
    """The headline is the mean over samples of the metric applied to each sample alone (accuracy, VQA
    accuracy): it then gets a 95% interval from those per-sample scores (`vlit.evaluation.intervals`). F1,
    CIDEr, ROC-AUC and circular accuracy are not such means."""

    def sample_scores(self, predictions: Sequence[str], samples: Sequence[EvalSample]) -> list[float] | None:
        """Each sample's own headline score, for a `per_sample` metric; else None."""
        if not self.per_sample or self.score is None or self.headline is None:
            return None
        return [float(self.score([p], [s])[self.headline]) for p, s in zip(predictions, samples, strict=True)]


METRICS: dict[str, MetricSpec] = {
    "vqa": MetricSpec(vqa_metrics, "vqa_accuracy", per_sample=True),
    "multiple_choice": MetricSpec(multiple_choice_metrics, "accuracy", per_sample=True),
    "classification": MetricSpec(classification_metrics, "accuracy", per_sample=True),
    "yes_no": MetricSpec(yes_no_metrics, "accuracy", per_sample=True),
    "caption": MetricSpec(caption_metrics, "cider"),
    "refer": MetricSpec(refer_metrics, "accuracy", per_sample=True),
    "open": MetricSpec(None, None),
    "pope": MetricSpec(pope_metrics, "f1"),
    "refcoco": MetricSpec(refcoco_metrics, "accuracy"),
    "nocaps": MetricSpec(nocaps_metrics, "cider"),
    # Judged by a model (`Suite.judged`, `vlit eval --judge-url`): no function here, only the headline.
    "llava_bench": MetricSpec(None, "relative"),
    "mmvet": MetricSpec(None, "total"),
    "vqa_tool": MetricSpec(vqa_tool_metrics, "vqa_accuracy"),
    "textvqa": MetricSpec(textvqa_metrics, "accuracy"),
    "vizwiz": MetricSpec(vizwiz_metrics, "vqa_accuracy"),
    "gqa": MetricSpec(gqa_metrics, "accuracy"),
    "mme": MetricSpec(mme_metrics, "perception"),
    "scienceqa": MetricSpec(scienceqa_metrics, "img_accuracy"),
    "mmbench": MetricSpec(mmbench_metrics, "circular_accuracy"),
    "seed": MetricSpec(seed_metrics, "accuracy"),
    "vsr": MetricSpec(vsr_metrics, "accuracy"),
    "hateful_memes": MetricSpec(hateful_memes_metrics, "roc_auc"),
}
"""Every metric by name (`EvalTask`, and `TaskSpec.metric` of the task types it scores)."""


def metric_spec(task: EvalTask) -> MetricSpec:
    """The metric called `task`; an unknown name raises."""
    spec = METRICS.get(task)
    if spec is None:
        known = ", ".join(name for name, m in METRICS.items() if m.score is not None)
        raise VlitError(f"task {task!r}: no metric (known: {known})")
    return spec


def sample_scores(predictions: Sequence[str], samples: Sequence[EvalSample]) -> list[float]:
    """Each answer's own score by its task's headline metric (1.0 / 0.0 for accuracies, VQA accuracy, IoU > 0.5
    for refer): what paired comparisons of two models on the same samples need. A corpus-level metric (CIDEr,
    F1, ROC-AUC) has no per-sample value and raises."""
    out = []
    for prediction, sample in zip(predictions, samples, strict=True):
        spec = metric_spec(sample.task)
        scores = spec.sample_scores([prediction], [sample])
        if scores is None:
            raise VlitError(f"task {sample.task!r}: its metric ({spec.headline}) is not a mean over samples")
        out += scores
    return out


def metric_for(task: EvalTask) -> Metric:
    """The metric that scores samples of `task`."""
    spec = metric_spec(task)
    if spec.score is None:
        raise VlitError(f"task {task!r}: free answers are judged by a person or a model (LLaVA-Bench and MM-Vet "
                        "by a judge model: vlit eval --judge-url), not by a metric")
    return spec.score
