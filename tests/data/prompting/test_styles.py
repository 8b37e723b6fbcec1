"""Golden strings: every task in every prompt style, rendered with a fixed seed, compared exactly."""

from __future__ import annotations

import random

import pytest

from vlit.data.conversation import Conversation, Turn
from vlit.data.prompting.boxes import read_boxes
from vlit.data.prompting.styles import STYLES, render, restyle
from vlit.data.prompting.templates import TASK_TYPES, TaskRecord, load_templates
from vlit.errors import VlitError

SIZE = (200, 100)
RECORDS = {
    "caption": TaskRecord("caption", answers=("A red circle on a plain background.",)),
    "vqa": TaskRecord("vqa", answers=("red",), question="What colour is the circle?"),
    "multiple_choice": TaskRecord("multiple_choice", answers=("coat",), question="Which item is shown?",
                                  options=("bag", "coat", "dress", "sandal"), answer_index=1),
    "classification": TaskRecord("classification", answers=("coat",), question="What type of fashion item is this?",
                                 subject="fashion item", options=("bag", "coat"), answer_index=1),
    "counting": TaskRecord("counting", answers=("2",), question="How many circles are there?", phrase="circles"),
    "spatial": TaskRecord("spatial", answers=("yes",), question="Is the red circle to the left of the blue square?"),
    "yes_no": TaskRecord("yes_no", answers=("no",), question="Is there a green triangle?"),
    "question_generation": TaskRecord("question_generation", answers=("red",), question="What colour is the circle?"),
    "dialogue": TaskRecord("dialogue", dialogue=(("How many shapes are there?", "2"),
                                                 ("What colour is the circle?", "red"))),
    "refer": TaskRecord("refer", phrase="the red circle", boxes=((24, 30, 110, 90),), image_size=SIZE),
    "identify": TaskRecord("identify", answers=("a blue square",), boxes=((8, 50, 60, 65),), image_size=SIZE),
    "detection": TaskRecord("detection", phrase="circles", boxes=((24, 30, 110, 90), (150, 10, 190, 40)),
                            image_size=SIZE),
    "grounded_caption": TaskRecord("grounded_caption", answers=("A red circle and a blue square.",),
                                   phrases=("a red circle", "a blue square"),
                                   boxes=((24, 30, 110, 90), (150, 10, 190, 40)), image_size=SIZE),
}

GOLDEN = [
    ('instructblip', 'caption', [
      '<image>\nUse a few words to illustrate what is happening in the picture.',
      'A red circle on a plain background.',
    ]),
    ('instructblip', 'vqa', [
      '<image>\nBased on the image, respond to this question with a short answer: What colour is'
      ' the circle? Answer:',
      'red',
    ]),
    ('instructblip', 'multiple_choice', [
      '<image>\nSelect the option that best answers the question. Question: Which item is shown?'
      ' Options: bag, coat, dress, sandal.',
      'coat',
    ]),
    ('instructblip', 'classification', [
      '<image>\nIdentify the fashion item shown. Choose from: bag, coat.',
      'coat',
    ]),
    ('instructblip', 'counting', [
      '<image>\nCount the number of circles. Answer with a number.',
      '2',
    ]),
    ('instructblip', 'spatial', [
      '<image>\nUse the spatial arrangement of the image to answer the question: Is the red circle'
      ' to the left of the blue square? Answer in a few words:',
      'yes',
    ]),
    ('instructblip', 'yes_no', [
      '<image>\nIs there a green triangle? Please answer with a single word, yes or no.',
      'no',
    ]),
    ('instructblip', 'question_generation', [
      '<image>\nWrite a question about the image whose answer is "red".',
      'What colour is the circle?',
    ]),
    ('instructblip', 'dialogue', [
      '<image>\nDialogue:\nQ: How many shapes are there? A: 2\nQuestion: What colour is the'
      ' circle?\nAnswer:',
      'red',
    ]),
    ('instructblip', 'refer', [
      '<image>\nCould you tell me the location of the red circle?',
      '{<12><30><55><90>}',
    ]),
    ('instructblip', 'identify', [
      '<image>\nThe object in {<4><50><30><65>} is',
      'a blue square',
    ]),
    ('instructblip', 'detection', [
      '<image>\nMark all circles with bounding boxes.',
      '{<12><30><55><90>}<delim>{<75><10><95><40>}',
    ]),
    ('instructblip', 'grounded_caption', [
      '<image>\nDescribe what you see, and for each object, say where it is with a box.',
      '<p>A red circle</p> {<12><30><55><90>} and <p>a blue square</p> {<75><10><95><40>}.',
    ]),
    ('llava15', 'caption', [
      '<image>\nDescribe the image concisely.',
      'A red circle on a plain background.',
    ]),
    ('llava15', 'vqa', [
      '<image>\nWhat colour is the circle?\nAnswer the question using a single word or phrase.',
      'red',
    ]),
    ('llava15', 'multiple_choice', [
      '<image>\nWhich item is shown?\nA. bag\nB. coat\nC. dress\nD. sandal\nAnswer with the'
      " option's letter from the given choices directly.",
      'B',
    ]),
    ('llava15', 'classification', [
      '<image>\nWhat type of fashion item is this?\nAnswer the question using a single word or phrase.',
      'coat',
    ]),
    ('llava15', 'counting', [
      '<image>\nHow many circles are there?\nAnswer the question using a single word or phrase.',
      '2',
    ]),
    ('llava15', 'spatial', [
      '<image>\nIs the red circle to the left of the blue square?\nAnswer the question using a'
      ' single word or phrase.',
      'yes',
    ]),
    ('llava15', 'yes_no', [
      '<image>\nIs there a green triangle?\nAnswer the question using a single word or phrase.',
      'no',
    ]),
    ('llava15', 'question_generation', [
      '<image>\nWrite a question about the image whose answer is "red".',
      'What colour is the circle?',
    ]),
    ('llava15', 'dialogue', [
      '<image>\nHow many shapes are there?\nAnswer the question using a single word or phrase.',
      '2',
      'What colour is the circle?\nAnswer the question using a single word or phrase.',
      'red',
    ]),
    ('llava15', 'refer', [
      '<image>\nPlease provide the bounding box coordinate of the region this sentence describes:'
      ' the red circle.',
      '[0.12, 0.30, 0.55, 0.90]',
    ]),
    ('llava15', 'identify', [
      '<image>\nPlease provide a short description for this region: [0.04, 0.50, 0.30, 0.65].',
      'a blue square',
    ]),
    ('llava15', 'detection', [
      '<image>\nPlease provide the bounding box coordinates of all circles in the image.',
      '[0.12, 0.30, 0.55, 0.90], [0.75, 0.10, 0.95, 0.40]',
    ]),
    ('llava15', 'grounded_caption', [
      '<image>\nDescribe the image concisely. Give the bounding box coordinate of each object you'
      ' mention.',
      'A red circle [0.12, 0.30, 0.55, 0.90] and a blue square [0.75, 0.10, 0.95, 0.40].',
    ]),
    ('minigptv2', 'caption', [
      '<image>\n[caption] Briefly describe this image.',
      'A red circle on a plain background.',
    ]),
    ('minigptv2', 'vqa', [
      '<image>\n[vqa] What colour is the circle?',
      'red',
    ]),
    ('minigptv2', 'multiple_choice', [
      '<image>\n[vqa] Which item is shown? Choose from: bag, coat, dress, sandal.',
      'coat',
    ]),
    ('minigptv2', 'classification', [
      '<image>\n[vqa] What type of fashion item is this?',
      'coat',
    ]),
    ('minigptv2', 'counting', [
      '<image>\n[vqa] How many circles are there?',
      '2',
    ]),
    ('minigptv2', 'spatial', [
      '<image>\n[vqa] Is the red circle to the left of the blue square?',
      'yes',
    ]),
    ('minigptv2', 'yes_no', [
      '<image>\n[vqa] Is there a green triangle?',
      'no',
    ]),
    ('minigptv2', 'question_generation', [
      '<image>\nGiven the image, generate a question whose answer is: red. Question:',
      'What colour is the circle?',
    ]),
    ('minigptv2', 'dialogue', [
      '<image>\n[vqa] How many shapes are there?',
      '2',
      '[vqa] What colour is the circle?',
      'red',
    ]),
    ('minigptv2', 'refer', [
      '<image>\n[refer] give me the location of the red circle',
      '{<12><30><55><90>}',
    ]),
    ('minigptv2', 'identify', [
      '<image>\n[identify] what is this {<4><50><30><65>}',
      'a blue square',
    ]),
    ('minigptv2', 'detection', [
      '<image>\n[detection] circles',
      '{<12><30><55><90>}<delim>{<75><10><95><40>}',
    ]),
    ('minigptv2', 'grounded_caption', [
      '<image>\n[grounding] briefly describe this image',
      '<p>A red circle</p> {<12><30><55><90>} and <p>a blue square</p> {<75><10><95><40>}.',
    ]),
]


def test_golden_covers_every_style_and_task():
    assert {(s, t) for s, t, _ in GOLDEN} == {(s, t) for s in ("instructblip", "llava15", "minigptv2")
                                               for t in TASK_TYPES}


@pytest.mark.parametrize(("style", "task", "expected"), GOLDEN, ids=[f"{s}-{t}" for s, t, _ in GOLDEN])
def test_golden(style, task, expected):
    turns = render(RECORDS[task], style, random.Random(0))
    assert [t.content for t in turns] == expected
    assert [t.role for t in turns] == ["user", "assistant"] * (len(expected) // 2)


def test_instructblip_draws_templates_from_the_task_file():
    record = RECORDS["vqa"]
    allowed = {t.format(question=record.question) for t in load_templates()["vqa"]}
    rng = random.Random(1)
    prompts = [render(record, "instructblip", rng)[0].content.removeprefix("<image>\n") for _ in range(200)]
    assert set(prompts) <= allowed
    assert len(set(prompts)) == len(allowed)  # 200 draws hit all 12 templates


def test_instructblip_skips_templates_the_record_cannot_fill():
    # Without options, no classification template that lists {options} may be drawn.
    record = TaskRecord("classification", answers=("coat",), question="What is it?", subject="fashion item")
    rng = random.Random(0)
    prompts = {render(record, "instructblip", rng)[0].content for _ in range(200)}
    assert not any("{" in p or "Choose from" in p or "Options" in p for p in prompts)


def test_image_marker_only_once_and_only_when_asked():
    turns = render(RECORDS["dialogue"], "llava15", random.Random(0))
    assert sum(t.content.count("<image>") for t in turns) == 1
    assert turns[0].content.startswith("<image>\n")
    assert all("<image>" not in t.content for t in render(RECORDS["vqa"], "llava15", random.Random(0), image=False))


def _row(task: dict | None, system: bool = False) -> Conversation:
    turns = ([Turn("system", "Be brief.")] if system else []) + [Turn("user", "<image>\nold"), Turn("assistant", "x")]
    meta = {"dataset": "d"} | ({"task": task} if task is not None else {})
    return Conversation(turns, ["a.png"], "row-7", meta)


def test_restyle_renders_from_the_task_record():
    row = _row(RECORDS["refer"].to_dict(), system=True)
    out = restyle(row, "minigptv2", random.Random(0))
    out.check()
    assert out.system == "Be brief."
    assert [t.content for t in out.messages] == ["<image>\n[refer] give me the location of the red circle",
                                                 "{<12><30><55><90>}"]
    assert out.images == ["a.png"] and out.id == "row-7" and out.meta == row.meta
    assert row.turns[-1].content == "x"  # the input is not modified


def test_restyle_as_is_returns_the_row_unchanged():
    row = _row(None)
    assert restyle(row, "as_is", random.Random(0)) is row


def test_restyle_without_task_names_the_row():
    with pytest.raises(VlitError, match="row-7"):
        restyle(_row(None), "llava15", random.Random(0))


def test_restyle_with_a_broken_task_names_the_row_and_field():
    with pytest.raises(VlitError, match=r"row-7.*answer_index"):
        restyle(_row({"type": "multiple_choice", "question": "q", "options": ["a"], "answer_index": 3}),
                "llava15", random.Random(0))


def test_grounded_phrase_missing_from_caption_is_an_error():
    record = TaskRecord("grounded_caption", answers=("A red circle.",), phrases=("a blue square",),
                        boxes=((0, 0, 10, 10),), image_size=(20, 20))
    with pytest.raises(VlitError, match="a blue square"):
        render(record, "minigptv2", random.Random(0))


# ---- boxes in the model's frame ---------------------------------------------------------------------------

def _spec(resize: str, size: int = 100):
    from vlit.data.loading.transforms import ImageSpec

    return ImageSpec(size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), resize)


@pytest.mark.parametrize(("style", "task", "expected"), GOLDEN, ids=[f"{s}-{t}" for s, t, _ in GOLDEN])
def test_a_stretched_frame_keeps_the_golden_strings(style, task, expected):
    turns = render(RECORDS[task], style, random.Random(0), frame=_spec("stretch", 224))
    assert [t.content for t in turns] == expected


def test_padded_input_names_boxes_on_the_square():
    # 200x100 padded to 200x200 (24 rows above), then 100x100: the refer box (24, 30, 110, 90) is at
    # (12, 40, 55, 70) of the model's input.
    refer, identify = RECORDS["refer"], RECORDS["identify"]
    pad = _spec("pad")
    assert render(refer, "minigptv2", random.Random(0), frame=pad)[1].content == "{<12><40><55><70>}"
    assert render(refer, "llava15", random.Random(0), frame=pad)[1].content == "[0.12, 0.40, 0.55, 0.70]"
    assert render(identify, "minigptv2", random.Random(0), frame=pad)[0].content == (
        "<image>\n[identify] what is this {<4><50><30><57>}")


def test_cropped_input_clips_the_box_it_cuts():
    # 200x100 to 100x100 by the centre crop (x 50..150): the refer box (24, 30, 110, 90) is cut to (0, 30, 60, 90).
    crop = _spec("crop")
    assert render(RECORDS["refer"], "minigptv2", random.Random(0), frame=crop)[1].content == "{<0><30><60><90>}"
    detection = render(RECORDS["detection"], "llava15", random.Random(0), frame=crop)[1].content
    assert detection == "[0.00, 0.30, 0.60, 0.90], [1.00, 0.10, 1.00, 0.40]"  # the second box is cut away


def test_answers_are_read_back_by_the_style():
    assert STYLES["llava15"].choice_answer == "letter"
    assert STYLES["instructblip"].choice_answer == STYLES["minigptv2"].choice_answer == "option"
    for name in STYLES:  # the one box reader reads every style's boxes back, through the frame
        target = render(RECORDS["refer"], name, random.Random(0), frame=_spec("pad"), dataset="d")[1].content
        ((phrase, box),) = read_boxes(target, *SIZE, frame=_spec("pad"))
        assert phrase is None and box == pytest.approx((24, 30, 110, 90), abs=2)  # within a grid cell
