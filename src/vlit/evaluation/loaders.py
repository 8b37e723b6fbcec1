"""Benchmark loaders for LLaVA evaluation question files and vlit's own built datasets; the COCO-family formats
(VQAv2, RefCOCO, COCO captions) are in `vlit.evaluation.coco`, ScienceQA in `vlit.evaluation.suites.scienceqa`.

Each returns `EvalSample`s in file order; a bad row raises naming the file and the row or field (LLaVA question
files: or is named and skipped while a benchmark is read, `vlit.evaluation.badrows`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from vlit.config.data import PromptStyle
from vlit.data.conversation import Conversation, Turn
from vlit.data.loading.transforms import ImageSpec
from vlit.data.prompting.styles import LETTERS
from vlit.data.prompting.tasks import task_spec
from vlit.data.prompting.templates import TaskRecord
from vlit.data.reading.llava import parse_question, read_conversations
from vlit.data.reading.rows import iter_raw_rows
from vlit.errors import VlitError
from vlit.evaluation.badrows import Row, keep_good, parse_rows, read_each
from vlit.evaluation.samples import (
    EVAL_TASKS,
    EvalSample,
    EvalTask,
    expect,
    field_of,
    image_path,
    question_conversation,
)

_OPTION_LINE = re.compile(r"^([A-Z])\. (.+)$", re.MULTILINE)
_ANSWER_KEYS = ("answers", "answer", "label")


# ---- LLaVA evaluation question files ----------------------------------------------------------------------

def _row_references(row: dict[str, Any], where: str) -> list[Any] | None:
    """The ground truth a row carries under `answers` (a list of texts or of `{"answer": ..}` objects, as
    VQA files have), `answer` or `label` (POPE's label files); None when it has none."""
    key = next((k for k in _ANSWER_KEYS if k in row), None)
    if key is None:
        return None
    value = row[key]
    if key != "answers":
        return [expect(value, (str, int), f"{where}.{key}")]
    items = expect(value, list, f"{where}.answers")
    return [field_of(a, "answer", str, f"{where}.answers[{i}]") if isinstance(a, dict)
            else expect(a, str, f"{where}.answers[{i}]") for i, a in enumerate(items)]


def _read_answers(path: str | Path) -> dict[str, tuple[list[Any], str]]:
    """question_id -> (references, where) from a JSON array or JSONL answers file; bad rows are named
    (`vlit.evaluation.badrows`)."""
    out: dict[str, tuple[list[Any], str]] = {}

    def parse(row: Any, where: str) -> None:
        question_id = str(field_of(row, "question_id", (str, int), where))
        references = _row_references(row, where)
        if references is None:
            raise VlitError(f"{where}: no answer (expected one of {', '.join(_ANSWER_KEYS)})")
        if question_id in out:
            raise VlitError(f"{where}.question_id: {question_id} repeats {out[question_id][1]}")
        out[question_id] = (references, where)

    read_each(path, parse)
    return out


def _as_letter(value: Any, options: list[str], where: str) -> str:
    """A multiple-choice reference as a letter: "B", "(B)", or an index (1 -> "B")."""
    if isinstance(value, int):
        letter = LETTERS[value] if 0 <= value < len(LETTERS) else str(value)
    else:
        letter = value.strip("() .")
    if letter not in LETTERS[:len(options)]:
        raise VlitError(f"{where}: {value!r} is not the letter or index of one of the {len(options)} options")
    return letter


def _task_references(task: EvalTask, references: list[Any], options: list[str], where: str) -> list[Any]:
    if task == "multiple_choice":
        return [_as_letter(references[0], options, where)]
    if task == "yes_no":
        labels = [str(r).strip().lower() for r in references]
        if labels[0] not in ("yes", "no"):
            raise VlitError(f"{where}: expected 'yes' or 'no', got {references[0]!r}")
        return labels[:1]
    return [str(r) for r in references]


def _options(row: dict[str, Any], text: str, where: str) -> list[str]:
    """Options from the row (`options` or `choices`), else the `A. ...` lines of the question (SEED-Bench and
    MMBench files put them there)."""
    for key in ("options", "choices"):
        if key in row:
            values = expect(row[key], list, f"{where}.{key}")
            return [expect(v, str, f"{where}.{key}[{i}]") for i, v in enumerate(values)]
    lines = _OPTION_LINE.findall(text)
    letters = "".join(letter for letter, _ in lines)
    return [option for _, option in lines] if lines and LETTERS.startswith(letters) else []


def load_llava_questions(path: str | Path, image_root: str | Path | None = None,
                         answers: str | Path | None = None, task: EvalTask = "vqa",
                         prompt: str | None = None) -> list[EvalSample]:
    """A LLaVA evaluation question file (`{"question_id", "image", "text", "category"}` per line).

    LLaVA's files already hold the full prompt (TextVQA's text ends with the short-answer instruction), so the
    text is kept; `prompt` (e.g. `vlit.data.prompting.styles.SHORT_ANSWER`) is appended on its own line when the
    text does not contain it yet. The ground truth comes from `answers` (rows keyed by `question_id` with
    `answers`, `answer` or `label`, like POPE's label files), else from the question rows' own such keys;
    every question needs one unless `task` is "open". For `multiple_choice` the answer is a letter or an index
    and the options come from the row's `options`/`choices` or its `A. ...` lines. A bad row raises, or is
    named and skipped while a benchmark is read (`vlit.evaluation.badrows`).
    """
    return keep_good(llava_question_rows(path, image_root, answers, task, prompt), path)


def llava_question_rows(path: str | Path, image_root: str | Path | None = None,
                        answers: str | Path | None = None, task: EvalTask = "vqa",
                        prompt: str | None = None) -> list[Row[EvalSample]]:
    """Each row of a LLaVA question file as a sample or the error that stops it (`load_llava_questions`), for
    readers that pair rows with another file and must know which rows were bad (POPE's labels)."""
    if task not in EVAL_TASKS:
        raise VlitError(f"task: {task!r} is not one of {', '.join(EVAL_TASKS)}")
    truth = _read_answers(answers) if answers is not None else {}
    seen: dict[str, str] = {}

    def parse(row: Any, where: str) -> EvalSample:
        question = parse_question(row, where)
        if question.id in seen:
            raise VlitError(f"{where}.question_id: {question.id} repeats {seen[question.id]}")
        seen[question.id] = where
        if answers is None:
            references = _row_references(row, where)
        elif question.id in truth:
            references = truth[question.id][0]
        else:
            raise VlitError(f"{answers}: no answer for question_id {question.id} ({where})")
        if references is None and task != "open":
            raise VlitError(f"{where}: no answer for a {task} question (give an answers file, or `answer`, "
                            "`answers` or `label` in the row)")
        text = question.turns[0].content
        if prompt is not None and prompt not in text:
            text = f"{text}\n{prompt}"
        options = _options(row, text, where)
        if task == "multiple_choice" and not options:
            raise VlitError(f"{where}: no options (expected `options`, `choices` or `A. ...` lines in text)")
        images = [image_path(image_root, str(i)) for i in question.images]
        meta = {k: v for k, v in question.meta.items() if k not in _ANSWER_KEYS}
        return EvalSample(question.id, Conversation([Turn("user", text)], images, question.id), task,
                          _task_references(task, references or [], options, where), options, meta)

    return parse_rows(iter_raw_rows(path), parse)


# ---- vlit's own built datasets ----------------------------------------------------------------------------

def _built_sample(row: Conversation, record: TaskRecord, task: EvalTask, style: PromptStyle,
                  seed: int, frame: ImageSpec | None) -> EvalSample:
    image = row.images[0] if row.images else None
    if style == "as_is":
        last = max(i for i, t in enumerate(row.turns) if t.role == "user")
        conversation = Conversation(row.turns[:last + 1], list(row.images), row.id)
    else:
        conversation = question_conversation(record, style, image, row.id, seed, frame, row.meta.get("dataset"))
    # A task record's answers are alternatives of one answer (its first is the training target), not votes.
    meta: dict[str, Any] = {"task_type": record.type, "alternatives": True}
    if "dataset" in row.meta:
        meta["dataset"] = row.meta["dataset"]
    references: list[Any] = list(record.answers)
    if record.dialogue:  # scored on its last round
        references = [record.dialogue[-1][1]]
    elif task == "multiple_choice":
        references = [LETTERS[record.answer_index]]
    elif task == "refer":
        references = [tuple(b) for b in record.boxes]
        meta["image_size"] = tuple(record.image_size)
        if record.phrase:
            meta["phrase"] = record.phrase  # what is referred to, for a drawing of the boxes
    return EvalSample(row.id, conversation, task, references, list(record.options), meta)


def load_vlit_dataset(path: str | Path, image_root: str | Path | None = None, style: PromptStyle = "as_is",
                      types: Collection[str] | None = None, seed: int = 0,
                      frame: ImageSpec | None = None) -> list[EvalSample]:
    """A vlit-built LLaVA JSON (rows with `meta["task"]`, see `vlit.data.prompting.templates`); the record's type
    decides the metric. Images are relative to `image_root` (default: the file's folder, as the build writes
    them).

    `as_is` asks the question the row holds (its turns before the last answer); another style re-renders the
    record, naming a box in the question in `frame`, the model's image input. `types` keeps only rows of those
    task types; without it, a row of a type no metric scores (question_generation, detection,
    grounded_caption) raises.
    """
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    samples = []
    for index, row in enumerate(read_conversations(path)):
        where = f"{path}[{index}]"
        if "task" not in row.meta:
            raise VlitError(f"{where}.task: missing (a vlit-built row carries its task record)")
        try:
            record = TaskRecord.from_dict(row.meta["task"])
        except VlitError as e:
            raise VlitError(f"{where}: {e}") from None
        if types is not None and record.type not in types:
            continue
        metric = task_spec(record.type).metric
        if metric is None:
            raise VlitError(f"{where}.task.type: vlit has no metric for {record.type!r} rows; pass `types` "
                            "to select the others")
        row_id = row.id if row.id is not None else str(index)
        row = Conversation(row.turns, [image_path(root, str(i)) for i in row.images], row_id, row.meta)
        samples.append(_built_sample(row, record, metric, style, seed, frame))
    return samples
