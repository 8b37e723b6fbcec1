"""Question releases: VQAv2 and OK-VQA (the VQA format), Visual Genome QA, GQA, OCR-VQA and A-OKVQA, each as
short-answer records (A-OKVQA as multiple choice), and the question-generation sets InstructBLIP makes of VQAv2,
OK-VQA and A-OKVQA (given the image and the answer, write the question)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from vlit.data.convert.items import Item, Read, each, indexed, keyed
from vlit.data.prompting.templates import TaskRecord
from vlit.data.reading.fields import BadRow, expect, field_of, find_file, read_json
from vlit.data.reading.vqa import VQAQuestion, answer_list, find_vqa_files, ranked_answers, read_vqa
from vlit.errors import VlitError

Kind = Callable[[str, tuple[str, ...]], TaskRecord]
"""(question, answers ranked) -> the record of one question: asked, or to be generated."""


def ask(question: str, answers: tuple[str, ...]) -> TaskRecord:
    return TaskRecord("vqa", question=question, answers=answers)


def generate(question: str, answers: tuple[str, ...]) -> TaskRecord:
    """InstructBLIP's question generation: the answer is given, the question is the target."""
    return TaskRecord("question_generation", question=question, answers=answers[:1])


def _text(row: Any, key: str, where: str) -> str:
    text = field_of(row, key, str, where).strip()
    if not text:
        raise VlitError(f"{where}.{key}: empty")
    return text


# ---- VQAv2, OK-VQA ----------------------------------------------------------------------------------------

def vqa_reader(kind: Kind) -> Callable[[Path], Read]:
    """A reader of a VQA-format release (the train questions and annotations, or their folder); each question's
    answers ranked by how many annotators gave them (`ranked_answers`: the majority answer is the target)."""
    def read(path: Path) -> Read:
        for q in read_vqa(*find_vqa_files(path)):
            yield q if isinstance(q, BadRow) else _vqa_item(q, kind)
    return read


def _vqa_item(q: VQAQuestion, kind: Kind) -> Item | BadRow:
    answers = ranked_answers(q.answers)
    if not answers:
        return BadRow(f"{q.where}: every answer is empty")
    return Item(str(q.question_id), q.image, kind(q.question, answers))


# ---- Visual Genome QA -------------------------------------------------------------------------------------

def _vg_images(folder: Path) -> dict[int, str]:
    """image id -> `VG_100K/<id>.jpg` or `VG_100K_2/<id>.jpg` from `image_data.json` beside the QA file (VG's
    images come in two folders, and only its url says which); {} when the file is not there."""
    path = folder / "image_data.json"
    if not path.is_file():
        return {}
    out = {}
    for i, image in enumerate(expect(read_json(path), list, str(path))):
        where = f"{path}[{i}]"
        key = "image_id" if isinstance(image, dict) and "image_id" in image else "id"  # "id" before VG 1.2
        image_id = field_of(image, key, int, where)
        url = PurePosixPath(urlparse(field_of(image, "url", str, where)).path)
        out[image_id] = f"{url.parent.name}/{url.name}"
    return out


def read_vg_qa(path: Path) -> Read:
    """Visual Genome's `question_answers.json` (`[{"id": image id, "qas": [{"qa_id", "question", "answer"}]}]`).
    VG's answers are sentences ending in a full stop ("Green."), which is dropped. Images: the folder and file
    from `image_data.json` when it is beside the QA file, else `<image id>.jpg`."""
    file = find_file(path, ("question_answers.json",), "Visual Genome QA file")
    images = _vg_images(file.parent)

    def qa(where: str, row: Any, image: str) -> Iterator[Item]:
        answer = _text(row, "answer", where).removesuffix(".").strip()
        yield Item(str(field_of(row, "qa_id", int, where)), image, ask(_text(row, "question", where), (answer,)))

    def make(where: str, entry: Any) -> Iterator[Item | BadRow]:
        image_id = field_of(entry, "id", int, where)
        image = images.get(image_id, f"{image_id}.jpg")
        # One bad QA costs only itself: an image holds up to hundreds of them.
        yield from each(indexed(field_of(entry, "qas", list, where), f"{where}.qas"),
                        lambda w, row: qa(w, row, image))

    return each(indexed(expect(read_json(file), list, str(file)), str(file)), make)


# ---- GQA --------------------------------------------------------------------------------------------------

def read_gqa(path: Path) -> Read:
    """GQA's `train_balanced_questions.json` (`{question id: {"imageId", "question", "answer", ...}}`, images
    `<imageId>.jpg`), or the LAVIS / MiniGPT-v2 list `[{"question_id", "image", "question", "answer"}]`."""
    file = find_file(path, ("train_balanced_questions.json", "*train*questions*.json"), "GQA train questions file")
    data = read_json(file)

    def official(where: str, entry: tuple[str, Any]) -> Iterator[Item]:
        qid, row = entry
        image = f"{field_of(row, 'imageId', str, where)}.jpg"
        yield Item(qid, image, ask(_text(row, "question", where), (_text(row, "answer", where),)))

    def lavis(where: str, row: Any) -> Iterator[Item]:
        qid = field_of(row, "question_id", (str, int), where)
        yield Item(str(qid), field_of(row, "image", str, where),
                   ask(_text(row, "question", where), (_text(row, "answer", where),)))

    if isinstance(data, dict):
        return each(keyed(data, str(file)), official)
    if isinstance(data, list):
        return each(indexed(data, str(file)), lavis)
    raise VlitError(f"{file}: expected GQA's questions keyed by id, or a list of questions")


# ---- OCR-VQA ----------------------------------------------------------------------------------------------

OCRVQA_TRAIN = 1
"""OCR-VQA's `split` field: 1 train, 2 val, 3 test."""


def read_ocrvqa(path: Path) -> Read:
    """OCR-VQA's `dataset.json` (`{book id: {"imageURL", "questions", "answers", "split", ...}}`), the train
    split (`split: 1`). Images as its downloader saves them: `<book id><extension of imageURL>`."""
    file = find_file(path, ("dataset.json",), "OCR-VQA dataset.json")

    def make(where: str, entry: tuple[str, Any]) -> Iterator[Item]:
        book, row = entry
        if field_of(row, "split", int, where) != OCRVQA_TRAIN:
            return
        suffix = PurePosixPath(urlparse(field_of(row, "imageURL", str, where)).path).suffix or ".jpg"
        questions = answer_list(field_of(row, "questions", list, where), f"{where}.questions")
        answers = answer_list(field_of(row, "answers", list, where), f"{where}.answers")
        if len(questions) != len(answers):
            raise VlitError(f"{where}.answers: {len(answers)} answers for {len(questions)} questions")
        for k, (question, answer) in enumerate(zip(questions, answers, strict=True)):
            if not question.strip() or not answer.strip():
                raise VlitError(f"{where}.questions[{k}]: empty question or answer")
            yield Item(f"{book}_{k}", f"{book}{suffix}", ask(question.strip(), (answer.strip(),)))

    data = read_json(file)
    if not isinstance(data, dict):
        raise VlitError(f"{file}: expected OCR-VQA's books keyed by id, got {type(data).__name__}")
    return each(keyed(data, str(file)), make)


# ---- A-OKVQA ----------------------------------------------------------------------------------------------

AOKVQA_IMAGE = "{image_id:012d}.jpg"
"""A-OKVQA's images are COCO 2017's (`train2017/000000299207.jpg`)."""


def aokvqa_reader(question_generation: bool = False) -> Callable[[Path], Read]:
    """A reader of A-OKVQA's `aokvqa_v1p0_train.json`: a multiple-choice record per question (choices,
    `correct_choice_idx`; the ten direct answers ranked as its `answers`), or, for question generation, the
    right choice given and the question to write."""
    def read(path: Path) -> Read:
        file = find_file(path, ("aokvqa_v1p0_train.json", "aokvqa_*train*.json"), "A-OKVQA train file")
        data = read_json(file)
        if not isinstance(data, list):
            raise VlitError(f"{file}: expected a list of questions, got {type(data).__name__}")
        return each(indexed(data, str(file)), _generated if question_generation else _choice)
    return read


def _aokvqa(where: str, row: Any) -> tuple[str, str, TaskRecord]:
    qid = field_of(row, "question_id", str, where)
    image = AOKVQA_IMAGE.format(image_id=field_of(row, "image_id", int, where))
    choices = tuple(c.strip() for c in answer_list(field_of(row, "choices", list, where), f"{where}.choices"))
    if len(choices) < 2 or not all(choices) or len(set(choices)) != len(choices):
        raise VlitError(f"{where}.choices: expected two or more distinct options, got {json.dumps(choices)}")
    right = field_of(row, "correct_choice_idx", int, where)
    direct = ranked_answers(answer_list(row.get("direct_answers", []), f"{where}.direct_answers"))
    record = TaskRecord("multiple_choice", question=_text(row, "question", where), options=choices,
                        answer_index=right, answers=direct)
    return qid, image, record


def _choice(where: str, row: Any) -> Iterator[Item]:
    qid, image, record = _aokvqa(where, row)
    yield Item(qid, image, record)


def _generated(where: str, row: Any) -> Iterator[Item]:
    qid, image, record = _aokvqa(where, row)
    yield Item(qid, image, generate(record.question, (record.answer,)))
