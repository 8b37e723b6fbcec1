"""One spec per task type: everything vlit knows about a task lives here, and every other module looks it up.

A spec says which fields a task record needs, which `{placeholders}` its instruction templates
(`templates/<name>.yaml`) use, the MiniGPT-v2 identifier it is asked with, the metric that scores it, how
many tokens an evaluation lets the model answer with, and the prompt form the fixed-prompt styles render it
in. Adding a task type means one spec here, one template file and one test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vlit.errors import VlitError

PromptForm = Literal["short_answer", "choice", "caption", "question_generation", "dialogue", "refer", "identify",
                     "detection", "grounded_caption"]
"""How a fixed-prompt style (llava15, minigptv2) asks a task and what the answer is: several tasks share a form
(counting, spatial, yes_no, classification and vqa are all a question with a short answer)."""

MetricName = Literal["vqa", "multiple_choice", "classification", "yes_no", "caption", "refer", "open"]
"""The metrics of `vlit.evaluation.metrics.METRICS` (open: answers judged by a person or a model)."""


@dataclass(frozen=True)
class TaskSpec:
    """One task type."""

    name: str
    fields: tuple[str, ...]
    """Task-record fields a record of this type must fill (see `vlit.data.prompting.templates`)."""
    prompt: PromptForm
    placeholders: frozenset[str] = frozenset()
    """Placeholders every template of the task's file must use."""
    optional: frozenset[str] = frozenset()
    """Placeholders some templates may use (a template is drawn only when the record fills them)."""
    identifier: str | None = None
    """MiniGPT-v2's task identifier (`[vqa]`, `[refer]`, ...); None: asked untagged."""
    metric: MetricName | None = None
    """The metric that scores it; None: vlit cannot score it automatically."""
    answer_tokens: int = 16
    """Generation budget when evaluating it (16 for short answers, as lmms-eval gives VQAv2)."""
    one_box: bool = False
    """The record holds exactly one box (the task asks about or for a single region)."""


def _specs(*specs: TaskSpec) -> dict[str, TaskSpec]:
    return {s.name: s for s in specs}


_QUESTION = frozenset({"question"})

TASKS: dict[str, TaskSpec] = _specs(
    TaskSpec("caption", ("answers",), "caption", identifier="caption", metric="caption", answer_tokens=64),
    TaskSpec("vqa", ("question", "answers"), "short_answer", _QUESTION, identifier="vqa", metric="vqa"),
    TaskSpec("multiple_choice", ("question", "options", "answer_index"), "choice",
             frozenset({"question", "options"}), identifier="vqa", metric="multiple_choice"),
    TaskSpec("classification", ("question", "answers"), "short_answer", optional=frozenset({"subject", "options"}),
             identifier="vqa", metric="classification"),
    TaskSpec("counting", ("question", "phrase", "answers"), "short_answer", frozenset({"phrase"}),
             identifier="vqa", metric="vqa"),
    TaskSpec("spatial", ("question", "answers"), "short_answer", _QUESTION, identifier="vqa", metric="vqa"),
    TaskSpec("yes_no", ("question", "answers"), "short_answer", _QUESTION, identifier="vqa", metric="yes_no"),
    TaskSpec("question_generation", ("question", "answers"), "question_generation", frozenset({"answer"})),
    # Dialogue is scored on its last round's answer.
    TaskSpec("dialogue", ("dialogue",), "dialogue", frozenset({"history", "question"}), identifier="vqa",
             metric="vqa"),
    TaskSpec("refer", ("phrase", "boxes", "image_size"), "refer", frozenset({"phrase"}), identifier="refer",
             metric="refer", answer_tokens=32, one_box=True),
    TaskSpec("identify", ("answers", "boxes", "image_size"), "identify", frozenset({"box"}), identifier="identify",
             metric="vqa", one_box=True),
    TaskSpec("detection", ("phrase", "boxes", "image_size"), "detection", frozenset({"phrase"}),
             identifier="detection"),
    TaskSpec("grounded_caption", ("answers", "phrases", "boxes", "image_size"), "grounded_caption",
             identifier="grounding"),
)
"""Every task type, in the order listings show them."""

TASK_TYPES: tuple[str, ...] = tuple(TASKS)
SCORABLE_TYPES: tuple[str, ...] = tuple(name for name, spec in TASKS.items() if spec.metric is not None)
"""Task types a metric scores (question generation, detection and grounded captions have none)."""


def task_spec(name: str) -> TaskSpec:
    """The spec of task type `name`; an unknown name raises a VlitError listing the known ones."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise VlitError(f"task.type: {name!r} is not one of {', '.join(TASKS)}") from None
