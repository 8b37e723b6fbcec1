"""The task record every built row carries, and InstructBLIP-style instruction templates that phrase it.

A row of a vlit-built dataset is a LLaVA conversation row plus `"dataset"` and `"task"`; the loader copies
both into `Conversation.meta`, and `vlit.data.prompting.styles` re-renders the conversation from `meta["task"]` in any
prompt style (a row that merges several questions about its image carries `"tasks"`, their records in turn
order, instead). The task record (`TaskRecord.to_dict()`) is plain JSON:

    type           a task type of `vlit.data.prompting.tasks.TASKS` (its spec says which fields it needs)
    category       InstructBLIP-style task category of its dataset ("vqa", "visual reasoning", ...), or absent
    answers        acceptable answers, the first is the training target (caption, short answer, phrase...)
    question       the question (vqa, multiple_choice, classification, counting, spatial, yes_no); for
                   question_generation the question to be generated
    options        candidate answers (multiple_choice; classification's full label set); `answer_index` the
                   index of the right one
    subject        noun for what is classified ("fashion item")
    phrase         counting/detection: what to count or find, plural ("circles"); refer: the referring
                   expression ("the red circle"); identify: the region's name ("a red circle")
    phrases        grounded_caption: phrases of `answers[0]` that each `boxes[i]` grounds, in order
    boxes          [[x1, y1, x2, y2], ...] in pixels of the original image (see `vlit.data.prompting.boxes`)
    image_size     [width, height] of the original image (needed to put boxes on the grid)
    dialogue       [[question, answer], ...] rounds of a visual dialogue (two or more), in order

Templates live in `templates/<type>.yaml` (`task: <type>` and 10-15 `templates`), with `{name}` placeholders
named by the task's spec: the required ones must appear in every template, the optional ones may.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from vlit.data.prompting.tasks import TASK_TYPES, TASKS, task_spec
from vlit.errors import VlitError

TaskType = Literal["caption", "vqa", "multiple_choice", "classification", "counting", "spatial", "yes_no",
                   "question_generation", "dialogue", "refer", "identify", "detection", "grounded_caption"]
"""For type checkers; the task types themselves are the keys of `vlit.data.prompting.tasks.TASKS`."""
MIN_TEMPLATES, MAX_TEMPLATES = 10, 15


@dataclass(frozen=True)
class TaskRecord:
    """What a row asks and its ground truth, independent of how a prompt style phrases it (schema above)."""

    type: TaskType
    answers: tuple[str, ...] = ()
    category: str | None = None
    question: str | None = None
    options: tuple[str, ...] = ()
    answer_index: int | None = None
    subject: str | None = None
    phrase: str | None = None
    phrases: tuple[str, ...] = ()
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    image_size: tuple[int, int] | None = None
    dialogue: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        spec = task_spec(self.type)
        missing = [name for name in spec.fields if getattr(self, name) in (None, (), "")]
        if missing:
            raise VlitError(f"task: a {self.type} record needs {', '.join(missing)}")
        if self.answer_index is not None and not 0 <= self.answer_index < len(self.options):
            raise VlitError(f"task.answer_index: {self.answer_index} is outside the {len(self.options)} options")
        if any(len(b) != 4 or b[2] < b[0] or b[3] < b[1] for b in self.boxes):
            raise VlitError(f"task.boxes: each box must be [x1, y1, x2, y2] with x1 <= x2, y1 <= y2: {self.boxes}")
        if self.phrases and len(self.phrases) != len(self.boxes):
            raise VlitError(f"task.phrases: {len(self.phrases)} phrases for {len(self.boxes)} boxes")
        if spec.one_box and len(self.boxes) != 1:
            raise VlitError(f"task.boxes: a {self.type} record has exactly one box, got {len(self.boxes)}")
        if self.boxes and self.image_size is None:
            raise VlitError("task.image_size: needed to place the boxes on the grid")
        if any(len(r) != 2 for r in self.dialogue) or self.type == "dialogue" and len(self.dialogue) < 2:
            raise VlitError("task.dialogue: expected at least two [question, answer] rounds")

    @property
    def answer(self) -> str:
        """The target answer: the right option for choice tasks, else the first answer."""
        if self.answer_index is not None:
            return self.options[self.answer_index]
        return self.answers[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict without empty fields (rows stay short)."""
        out = {}
        for key, value in asdict(self).items():
            if value is None or value == ():
                continue
            out[key] = _listify(value)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> TaskRecord:
        """Strict inverse of `to_dict`: unknown keys or wrong shapes raise `VlitError` naming the field."""
        if not isinstance(data, dict):
            raise VlitError(f"task: expected a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise VlitError(f"task.{unknown[0]}: unknown field (known: {', '.join(sorted(known))})")
        if "type" not in data:
            raise VlitError("task.type: missing")
        try:
            kwargs = {key: _tuplify(key, value) for key, value in data.items()}
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise VlitError(f"task: {e}") from e


def row_tasks(meta: dict[str, Any]) -> list[TaskRecord] | None:
    """The task records of a row's meta: `task` (one), `tasks` (a merged row's, in turn order), or None."""
    if "task" in meta:
        return [TaskRecord.from_dict(meta["task"])]
    if "tasks" in meta:
        records = meta["tasks"]
        if not isinstance(records, list) or not records:
            raise VlitError("tasks: expected a non-empty list of task records")
        out = []
        for i, record in enumerate(records):
            try:
                out.append(TaskRecord.from_dict(record))
            except VlitError as e:
                raise VlitError(f"tasks[{i}]: {e}") from e
        return out
    return None


def _listify(value: Any) -> Any:
    return [_listify(v) for v in value] if isinstance(value, tuple | list) else value


def _tuplify(key: str, value: Any) -> Any:
    nested = key in ("boxes", "dialogue")
    if key in ("answers", "options", "phrases", "boxes", "dialogue", "image_size"):
        if not isinstance(value, list | tuple):
            raise VlitError(f"task.{key}: expected a list, got {type(value).__name__}")
        if nested and not all(isinstance(v, list | tuple) for v in value):
            raise VlitError(f"task.{key}: expected a list of lists")
        return tuple(tuple(v) for v in value) if nested else tuple(value)
    return value


# ---- templates --------------------------------------------------------------------------------------------

Templates = dict[str, tuple[str, ...]]


def template_fields(template: str, where: str) -> set[str]:
    """Placeholder names of a `{name}` template; positional or malformed fields raise naming `where`."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as e:
        raise VlitError(f"{where}: malformed template {template!r}: {e}") from e
    if "" in names or any(n.isdigit() for n in names):
        raise VlitError(f"{where}: template {template!r} has a positional {{}} field; name it")
    return names


def _check_file(path: Path | str, task: str, data: Any) -> tuple[str, ...]:
    if not isinstance(data, dict) or data.get("task") != task or not isinstance(data.get("templates"), list):
        raise VlitError(f"{path}: expected a mapping with `task: {task}` and a `templates` list")
    templates = data["templates"]
    if not MIN_TEMPLATES <= len(templates) <= MAX_TEMPLATES:
        raise VlitError(f"{path}: {len(templates)} templates, expected {MIN_TEMPLATES}-{MAX_TEMPLATES}")
    required, optional = TASKS[task].placeholders, TASKS[task].optional
    seen: dict[str, int] = {}
    for i, template in enumerate(templates):
        where = f"{path}: templates[{i}]"
        if not isinstance(template, str) or not template.strip():
            raise VlitError(f"{where}: expected non-empty text")
        if "<image>" in template:
            raise VlitError(f"{where}: the <image> marker is added by the renderer, not the template")
        names = template_fields(template, where)
        if required - names:
            raise VlitError(f"{where}: missing placeholder(s) {sorted(required - names)}")
        if names - required - optional:
            raise VlitError(f"{where}: unknown placeholder(s) {sorted(names - required - optional)}")
        key = " ".join(template.lower().split())
        if key in seen:
            raise VlitError(f"{where}: duplicates templates[{seen[key]}]")
        seen[key] = i
    return tuple(t.strip() for t in templates)


def load_templates(directory: Path | None = None) -> Templates:
    """All task types' templates from `directory` (default: the packaged `templates/`), validated."""
    if directory is None:
        return _packaged_templates()
    out = {}
    for task in TASK_TYPES:
        path = Path(directory) / f"{task}.yaml"
        if not path.is_file():
            raise VlitError(f"{path}: template file missing for task {task!r}")
        out[task] = _check_file(path, task, _read_yaml(path, path.read_text(encoding="utf-8")))
    return out


@lru_cache(maxsize=1)
def _packaged_templates() -> Templates:
    root = resources.files("vlit.data.prompting") / "templates"
    out = {}
    for task in TASK_TYPES:
        res = root / f"{task}.yaml"
        where = f"vlit/data/prompting/templates/{task}.yaml"
        if not res.is_file():
            raise VlitError(f"{where}: template file missing from the package")
        out[task] = _check_file(where, task, _read_yaml(where, res.read_text(encoding="utf-8")))
    return out


def _read_yaml(where: Path | str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise VlitError(f"{where}: invalid YAML: {str(e).splitlines()[0]}") from e
