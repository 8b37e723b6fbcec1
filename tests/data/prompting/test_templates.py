from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from vlit.data.prompting.templates import (
    MAX_TEMPLATES,
    MIN_TEMPLATES,
    TASK_TYPES,
    TaskRecord,
    load_templates,
)
from vlit.errors import VlitError


def test_packaged_templates_cover_every_task_with_10_to_15_phrasings():
    templates = load_templates()
    assert set(templates) == set(TASK_TYPES)
    for task, phrasings in templates.items():
        assert MIN_TEMPLATES <= len(phrasings) <= MAX_TEMPLATES, task
        assert len({p.lower() for p in phrasings}) == len(phrasings), task


def test_instructblip_published_phrasings_are_used():
    templates = load_templates()
    for caption in ("A short image caption:", "A photo of", "Write a short description."):
        assert caption in templates["caption"]
    for vqa in ("{question}", "Q: {question} A:", "Question: {question} Short answer:",
                "Given the image, answer the following question with no more than three words. {question}"):
        assert vqa in templates["vqa"]
    assert ("Given the image, generate a question whose answer is: {answer}. Question:"
            in templates["question_generation"])


def test_some_templates_ask_for_short_answers():
    # InstructBLIP's guard against a model that answers everything in one word: short-answer wording in
    # only some of the VQA templates.
    short = [t for t in load_templates()["vqa"] if "short" in t.lower() or "three words" in t]
    assert 2 <= len(short) < len(load_templates()["vqa"])


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    src = resources.files("vlit.data.prompting") / "templates"
    for task in TASK_TYPES:
        (tmp_path / f"{task}.yaml").write_text((src / f"{task}.yaml").read_text(encoding="utf-8"))
    return tmp_path


def _edit(directory: Path, task: str, templates: list[str]) -> Path:
    path = directory / f"{task}.yaml"
    path.write_text(yaml.safe_dump({"task": task, "templates": templates}))
    return path


def test_a_copied_directory_loads_like_the_package(template_dir):
    assert load_templates(template_dir) == load_templates()


@pytest.mark.parametrize(("templates", "message"), [
    ([f"Q{i}: {{question}}" for i in range(5)], "5 templates, expected 10-15"),
    ([f"Q{i}: {{question}}" for i in range(16)], "16 templates"),
    ([f"Q{i}: {{question}}" for i in range(10)] + ["q0:  {question}"], r"templates\[10\]: duplicates templates\[0\]"),
    ([f"Q{i}: {{question}}" for i in range(10)] + ["no placeholder"], r"missing placeholder.*question"),
    ([f"Q{i}: {{question}}" for i in range(10)] + ["{question} {colour}"], r"unknown placeholder.*colour"),
    ([f"Q{i}: {{question}}" for i in range(10)] + ["{question} {}"], "positional"),
    ([f"Q{i}: {{question}}" for i in range(10)] + ["{question"], "malformed"),
    ([f"Q{i}: {{question}}" for i in range(10)] + ["<image> {question}"], "marker"),
])
def test_bad_template_files_are_rejected_naming_the_file(template_dir, templates, message):
    path = _edit(template_dir, "vqa", templates)
    with pytest.raises(VlitError, match=message) as err:
        load_templates(template_dir)
    assert str(path) in str(err.value)


def test_missing_file_and_wrong_task_key_are_rejected(template_dir):
    (template_dir / "detection.yaml").write_text("task: refer\ntemplates: []\n")
    with pytest.raises(VlitError, match=r"detection\.yaml.*task: detection"):
        load_templates(template_dir)
    (template_dir / "detection.yaml").unlink()
    with pytest.raises(VlitError, match=r"detection\.yaml: template file missing"):
        load_templates(template_dir)


# ---- the task record -------------------------------------------------------------------------------------

FULL = TaskRecord("grounded_caption", answers=("A red circle.",), category="grounding", phrases=("a red circle",),
                  boxes=((1.5, 2, 30, 40),), image_size=(64, 48))


def test_record_round_trips_through_plain_json_types():
    data = FULL.to_dict()
    assert data == {"type": "grounded_caption", "answers": ["A red circle."], "category": "grounding",
                    "phrases": ["a red circle"], "boxes": [[1.5, 2, 30, 40]], "image_size": [64, 48]}
    assert TaskRecord.from_dict(data) == FULL
    dialogue = TaskRecord("dialogue", dialogue=(("q1", "a1"), ("q2", "a2")))
    assert TaskRecord.from_dict(dialogue.to_dict()) == dialogue


def test_answer_is_the_right_option_for_choice_tasks():
    record = TaskRecord("multiple_choice", question="q", options=("a", "b"), answer_index=1, answers=("b",))
    assert record.answer == "b"


@pytest.mark.parametrize(("data", "message"), [
    ({"type": "vqa", "question": "q", "answers": ["a"], "colour": "red"}, r"task\.colour: unknown field"),
    ({"question": "q"}, r"task\.type: missing"),
    ({"type": "poem", "answers": ["a"]}, r"task\.type: 'poem'"),
    ({"type": "vqa", "answers": ["a"]}, "needs question"),
    ({"type": "multiple_choice", "question": "q", "options": ["a", "b"], "answer_index": 2}, "answer_index"),
    ({"type": "refer", "phrase": "p", "boxes": [[5, 0, 1, 1]], "image_size": [9, 9]}, "x1 <= x2"),
    ({"type": "refer", "phrase": "p", "boxes": [[0, 0, 1, 1]]}, "image_size"),
    ({"type": "detection", "phrase": "p", "boxes": [1, 2, 3, 4], "image_size": [9, 9]}, "list of lists"),
    ({"type": "vqa", "question": "q", "answers": "a"}, r"task\.answers: expected a list"),
    ({"type": "dialogue", "dialogue": [["q", "a"]]}, "two"),
    ({"type": "grounded_caption", "answers": ["c"], "phrases": ["a", "b"], "boxes": [[0, 0, 1, 1]],
      "image_size": [9, 9]}, "2 phrases for 1 boxes"),
])
def test_bad_records_name_the_field(data, message):
    with pytest.raises(VlitError, match=message):
        TaskRecord.from_dict(data)

