"""The VQA release format, which VQAv2 and OK-VQA share: a questions file and an annotations file.

    v2_OpenEnded_mscoco_train2014_questions.json   {"data_subtype": "train2014",
                                                    "questions": [{"question_id", "image_id", "question"}]}
    v2_mscoco_train2014_annotations.json           {"annotations": [{"question_id", "image_id", "answers":
                                                    [{"answer", "answer_confidence", "answer_id"}],
                                                    "multiple_choice_answer", "answer_type", "question_type"}]}

(OK-VQA names them `OpenEnded_mscoco_train2014_questions.json` and `mscoco_train2014_annotations.json`.) Each
question comes back with its annotators' answers in file order, duplicates kept: VQA accuracy counts them, and
a training target is the most frequent (`ranked_answers`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlit.data.reading.fields import BadRow, expect, field_of, guarded, read_json
from vlit.errors import VlitError

VQA_IMAGE_PATTERN = "COCO_{data_subtype}_{image_id:012d}.jpg"
"""VQAv2 and OK-VQA images: `COCO_train2014_000000393225.jpg` (COCO 2014 file names; COCO 2017 folders use
`{image_id:012d}.jpg`)."""
_SPLIT = re.compile(r"(train|val|test-dev|test)\d{4}")


@dataclass(frozen=True)
class VQAQuestion:
    where: str
    """`file: questions[i]`, for messages about this question."""
    question_id: int
    image_id: int
    image: str
    """The image's file name (`VQA_IMAGE_PATTERN`)."""
    question: str
    answers: tuple[str, ...]
    """The annotators' answers in file order, duplicates kept (10 in VQAv2)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """`question_type`, `answer_type`, `multiple_choice_answer` when the annotation has them."""


def find_vqa_files(path: Path, split: str = "train") -> tuple[Path, Path]:
    """(questions, annotations) of a VQA-format release. PATH is the folder holding both (the files of
    `split` are taken: names containing e.g. `train2014`), or the questions file, its annotations beside it."""
    path = Path(path)
    if path.is_file():
        m = _SPLIT.search(path.name)
        if m is None:
            raise VlitError(f"{path}: cannot tell the split (train2014, val2014, ...) from the file name")
        return path, _one(path.parent, f"*{m.group(0)}*annotations*.json", "annotations file")
    if not path.is_dir():
        raise VlitError(f"{path}: no such file or folder")
    return (_one(path, f"*{split}[0-9][0-9][0-9][0-9]*questions*.json", f"{split} questions file"),
            _one(path, f"*{split}[0-9][0-9][0-9][0-9]*annotations*.json", f"{split} annotations file"))


def _one(folder: Path, pattern: str, what: str) -> Path:
    found = sorted(folder.glob(pattern))
    # VQA v1 also shipped multiple-choice question files beside the open-ended ones.
    open_ended = [p for p in found if "MultipleChoice" not in p.name]
    if len(open_ended) != 1:
        listed = ", ".join(p.name for p in open_ended) or "none"
        raise VlitError(f"{folder}: expected one {what} ({pattern}), found {listed}")
    return open_ended[0]


def _annotation(ann: Any, where: str) -> tuple[int, tuple[str, ...], dict[str, Any]]:
    question_id = field_of(ann, "question_id", int, where)
    answers = [field_of(a, "answer", str, f"{where}.answers[{j}]")
               for j, a in enumerate(field_of(ann, "answers", list, where))]
    if not answers:
        raise VlitError(f"{where}.answers: empty")
    meta = {k: ann[k] for k in ("question_type", "answer_type", "multiple_choice_answer") if k in ann}
    return question_id, tuple(answers), meta


def read_vqa(questions: str | Path, annotations: str | Path,
             image_pattern: str = VQA_IMAGE_PATTERN) -> Iterator[VQAQuestion | BadRow]:
    """Every question with its answers, in the questions file's order; a question or annotation that cannot be
    read (or repeats an earlier annotation's question id) comes back as a `BadRow` in its place (a file that is
    not in the format raises). Read for both training-data conversion and the VQAv2 / OK-VQA benchmarks."""
    data = read_json(questions)
    items = field_of(data, "questions", list, str(questions))
    subtype = data.get("data_subtype")
    if "{data_subtype" in image_pattern and not isinstance(subtype, str):
        raise VlitError(f"{questions}: data_subtype: missing (image_pattern {image_pattern!r} needs it)")
    truth: dict[int, tuple[tuple[str, ...], dict[str, Any]]] = {}
    first: dict[int, str] = {}
    for i, ann in enumerate(field_of(read_json(annotations), "annotations", list, str(annotations))):
        where = f"{annotations}: annotations[{i}]"
        read = guarded(where, lambda ann=ann, where=where: _annotation(ann, where))
        if isinstance(read, BadRow):
            yield read
        elif read[0] in first:
            yield BadRow(f"{where}.question_id: {read[0]} repeats {first[read[0]]}")
        else:
            truth[read[0]], first[read[0]] = read[1:], where
    for i, item in enumerate(items):
        where = f"{questions}: questions[{i}]"
        yield guarded(where, lambda item=item, where=where: _question(item, where, truth, annotations,
                                                                      image_pattern, subtype))


def _question(item: Any, where: str, truth: dict[int, tuple[tuple[str, ...], dict[str, Any]]],
              annotations: str | Path, image_pattern: str, subtype: str | None) -> VQAQuestion:
    question_id = field_of(item, "question_id", int, where)
    image_id = field_of(item, "image_id", int, where)
    question = field_of(item, "question", str, where).strip()
    if not question:
        raise VlitError(f"{where}.question: empty")
    if question_id not in truth:
        raise VlitError(f"{where}.question_id: {question_id} has no annotation in {annotations}")
    answers, meta = truth[question_id]
    image = image_pattern.format(image_id=image_id, data_subtype=subtype)
    return VQAQuestion(where, question_id, image_id, image, question, answers, meta)


def ranked_answers(answers: Iterable[str]) -> tuple[str, ...]:
    """Distinct answers (stripped, empty ones dropped), the most frequent first, ties in order of first
    appearance: the first is the training target, as VQA training takes the majority answer."""
    given = [a.strip() for a in answers if a.strip()]
    counts = Counter(given)
    first = {a: i for i, a in reversed(list(enumerate(given)))}
    return tuple(sorted(counts, key=lambda a: (-counts[a], first[a])))


def answer_list(values: Any, where: str) -> list[str]:
    """A row's list of answer texts, each checked to be text."""
    return [expect(v, str, f"{where}[{j}]") for j, v in enumerate(expect(values, list, where))]
