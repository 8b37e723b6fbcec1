"""Evaluation: benchmark samples and their loaders, answer normalisation and extraction, metrics.

A benchmark is data: a loader turns its public files into `EvalSample`s (question, references, candidates,
task); `metric_for(sample.task)` scores the model's answers to them.
"""

from vlit.evaluation.coco import load_coco_captions, load_refexp, load_vqav2
from vlit.evaluation.loaders import load_llava_questions, load_vlit_dataset
from vlit.evaluation.metrics import METRICS, Metric, metric_for
from vlit.evaluation.normalize import normalize_answer
from vlit.evaluation.samples import EVAL_TASKS, EvalSample, EvalTask
from vlit.evaluation.suites.scienceqa import load_scienceqa

__all__ = [
    "EVAL_TASKS",
    "EvalSample",
    "EvalTask",
    "METRICS",
    "Metric",
    "load_coco_captions",
    "load_llava_questions",
    "load_refexp",
    "load_scienceqa",
    "load_vlit_dataset",
    "load_vqav2",
    "metric_for",
    "normalize_answer",
]
