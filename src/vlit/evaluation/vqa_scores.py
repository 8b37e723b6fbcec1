"""The VQA family's reference scores, each as its script computes it (the suites in `vlit.evaluation.suites` name
them through `METRICS`):

- `vqa_tool`: the VQA evaluation tool's `vqaEval.py` (VQAv2 val, OK-VQA; MiniGPT-v2 and LAVIS run the same code);
- `textvqa`: LLaVA's `eval_textvqa.py` (`m4c_evaluator.TextVQAAccuracyEvaluator`);
- `vizwiz`: VizWiz's evaluator (`VQAEval` of the VizWiz API) on the answers LLaVA's submission script uploads,
  plus MiniGPT-v2's own VizWiz rule (`eval_vqa.py`);
- `gqa`: LLaVA's `convert_gqa_for_eval.py` then GQA's `eval.py` (plus MiniGPT-v2's rule);
- `mme`: MME's `eval_tool/calculation.py`.

Values are fractions, as elsewhere (the tables print them x 100): MME's per-subtask score is acc + acc+ (0..2)
and perception / cognition their sums, so x 100 gives the numbers `calculation.py` prints (1510.7).

Questions without ground truth (VizWiz test, VQAv2 test-dev: the evaluation server has it) are not scored: a
metric over such samples only returns what it can, and the suite writes the file the server takes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from vlit.errors import VlitError
from vlit.evaluation.normalize import evalai_answer, normalize_answer, process_punctuation
from vlit.evaluation.samples import EvalSample

MME_PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork",
                  "OCR")
MME_COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


# ---- per-answer scores ------------------------------------------------------------------------------------

def _leave_one_out(said: str, answers: Sequence[str]) -> float:
    """Mean over the answers i of min(1, #other answers equal to `said` / 3): every tool here leaves out one
    answer at a time (by position: VQAv2 and OK-VQA answers carry unique ids, TextVQA's are enumerated)."""
    total = sum(a == said for a in answers)
    return sum(min(1.0, (total - (a == said)) / 3) for a in answers) / len(answers)


def vqa_tool_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """`vqaEval.py`: the prediction is normalised (`normalize_answer`); the human answers are left as they are
    when they all agree, else only their punctuation is processed (no lower-casing, no number words)."""
    gts = [process_punctuation(a) for a in answers] if len(set(answers)) > 1 else list(answers)
    return _leave_one_out(normalize_answer(prediction), gts)


def textvqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """`TextVQAAccuracyEvaluator`: both sides through EvalAI's processor, then the leave-one-out mean. The
    evaluator asserts 10 answers (TextVQA has 10); the same mean is taken over however many there are."""
    return _leave_one_out(evalai_answer(prediction), [evalai_answer(a) for a in answers])


def vizwiz_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """What VizWiz's server gives LLaVA's uploaded answer: LLaVA's `convert_vizwiz_for_submission.py` applies
    EvalAI's processor, VizWiz's `VQAEval` normalises it once more as VQA's tool does (a no-op on processed
    text) and compares it with the human answers as they are (never processed)."""
    return _leave_one_out(normalize_answer(evalai_answer(prediction)), list(answers))


def minigptv2_vizwiz_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """MiniGPT-v2's `eval_vqa.py`: min(#answers equal to the answer, both lower-cased / 3, 1), no leave-one-out,
    no normalisation; its answers travel `_`-joined, so an answer holding `_` counts as its parts."""
    said = prediction.replace("<unk>", "").strip().lower()
    return min(sum(a.lower() == said for a in "_".join(answers).split("_")) / 3, 1.0)


def gqa_prediction(text: str) -> str:
    """LLaVA's `convert_gqa_for_eval.py`: trailing periods stripped, lower-cased; GQA's `eval.py` then compares
    it with the answer exactly."""
    return text.rstrip(".").lower()


def mme_answer(text: str) -> str:
    """`calculation.py`'s reading: lower-cased, "yes" or "no" as is, else "yes" if its first four characters
    hold "yes", else "no" if they hold "no", else "other" (always wrong)."""
    text = text.lower()
    if text in ("yes", "no"):
        return text
    return "yes" if "yes" in text[:4] else "no" if "no" in text[:4] else "other"


# ---- metrics ----------------------------------------------------------------------------------------------

def _scored(predictions: Sequence[str], samples: Sequence[EvalSample], name: str) -> list[tuple[str, EvalSample]]:
    """(prediction, sample) of the samples with ground truth."""
    if len(predictions) != len(samples):
        raise VlitError(f"{name} metric: {len(predictions)} predictions for {len(samples)} samples")
    if not samples:
        raise VlitError(f"{name} metric: no samples to score")
    return [(p, s) for p, s in zip(predictions, samples, strict=True) if s.references]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _by(pairs: list[tuple[float, EvalSample]], key: str, name: str) -> dict[str, float]:
    """`name:<value>` -> mean score per value of `meta[key]`, for the samples that have it."""
    groups: dict[str, list[float]] = defaultdict(list)
    for score, sample in pairs:
        if key in sample.meta:
            groups[str(sample.meta[key])].append(score)
    return {f"{name}:{value}": _mean(scores) for value, scores in sorted(groups.items())}


def vqa_tool_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`vqa_accuracy` (`vqa_tool_accuracy`) and `vqa_accuracy:<answer type>` (yes/no, number, other), as the
    tool's overall and per-answer-type accuracy. Nothing for questions without answers (test-dev)."""
    scores = [(vqa_tool_accuracy(p, s.references), s) for p, s in _scored(predictions, samples, "vqa_tool")]
    if not scores:
        return {}
    return {"vqa_accuracy": _mean([v for v, _ in scores]), **_by(scores, "answer_type", "vqa_accuracy")}


def textvqa_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`accuracy`: `eval_textvqa.py`'s number."""
    scores = [textvqa_accuracy(p, s.references) for p, s in _scored(predictions, samples, "textvqa")]
    return {"accuracy": _mean(scores)} if scores else {}


def vizwiz_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`vqa_accuracy` and `vqa_accuracy:<answer type>` (yes/no, number, other, unanswerable) as VizWiz's
    evaluator reports them, and `minigptv2_accuracy` (MiniGPT-v2's rule). Test questions have no answers:
    nothing is scored here, their upload file is."""
    pairs = _scored(predictions, samples, "vizwiz")
    if not pairs:
        return {}
    scores = [(vizwiz_accuracy(p, s.references), s) for p, s in pairs]
    return {"vqa_accuracy": _mean([v for v, _ in scores]), **_by(scores, "answer_type", "vqa_accuracy"),
            "minigptv2_accuracy": _mean([minigptv2_vizwiz_accuracy(p, s.references) for p, s in pairs])}


def gqa_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`accuracy` (GQA's `eval.py` on LLaVA's converted predictions), `binary` and `open` where the questions
    carry their structural type (official file: open = `query`), and `minigptv2_accuracy` (MiniGPT-v2's
    `eval_vqa.py`: the lower-cased answer equals the label)."""
    pairs = _scored(predictions, samples, "gqa")
    if not pairs:
        return {}
    scores = [(float(gqa_prediction(p) == s.references[0]), s) for p, s in pairs]
    out = {"accuracy": _mean([v for v, _ in scores])}
    for kind in ("binary", "open"):
        typed = [v for v, s in scores if "structural" in s.meta
                 and (s.meta["structural"] == "query") == (kind == "open")]
        if typed:
            out[kind] = _mean(typed)
    out["minigptv2_accuracy"] = _mean([float(p.lower() == s.references[0]) for p, s in pairs])
    return out


def mme_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`calculation.py` per subtask (`meta["category"]`): `<subtask>/acc` over its questions, `<subtask>/acc_plus`
    over its images (consecutive question pairs, both right), `<subtask>/score` = acc + acc+; `perception` and
    `cognition` the sums over the subtasks present (MME's totals when all 14 are)."""
    by_task: dict[str, list[bool]] = defaultdict(list)
    for prediction, sample in _scored(predictions, samples, "mme"):
        by_task[str(sample.meta["category"])].append(mme_answer(prediction) == sample.references[0])
    out: dict[str, float] = {}
    for task, right in by_task.items():
        pairs = [right[i:i + 2] for i in range(0, len(right), 2)]
        out[f"{task}/acc"] = _mean(right)
        out[f"{task}/acc_plus"] = sum(len(p) == 2 and all(p) for p in pairs) / len(pairs)
        out[f"{task}/score"] = out[f"{task}/acc"] + out[f"{task}/acc_plus"]
    for total, tasks in (("perception", MME_PERCEPTION), ("cognition", MME_COGNITION)):
        present = [out[f"{t}/score"] for t in tasks if t in by_task]
        if present:
            out[total] = sum(present)
    return out
