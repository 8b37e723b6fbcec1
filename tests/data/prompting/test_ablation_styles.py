"""Golden strings of the papers' ablation styles (`vlit reproduce`): each is its paper's style with one thing
taken away, and renders everything else exactly as that style does."""

from __future__ import annotations

import random

import pytest

from vlit.data.conversation import Conversation, Turn
from vlit.data.prompting.styles import STYLES, render, restyle
from vlit.data.prompting.templates import TASK_TYPES
from vlit.errors import VlitError

from .test_styles import RECORDS

GOLDEN = [
    ("llava15_ambiguous", "vqa", ["<image>\nQ: What colour is the circle? A:", "red"]),
    ("llava15_ambiguous", "multiple_choice",
     ["<image>\nQ: Which item is shown?\nA. bag\nB. coat\nC. dress\nD. sandal A:", "B"]),
    ("llava15_ambiguous", "dialogue",
     ["<image>\nQ: How many shapes are there? A:", "2", "Q: What colour is the circle? A:", "red"]),
    ("minigptv2_untagged", "refer", ["<image>\ngive me the location of the red circle", "{<12><30><55><90>}"]),
    ("minigptv2_untagged", "identify", ["<image>\nwhat is this {<4><50><30><65>}", "a blue square"]),
    ("minigptv2_untagged", "detection", ["<image>\ncircles", "{<12><30><55><90>}<delim>{<75><10><95><40>}"]),
    ("multitask", "caption", ["<image>\n[d]", "A red circle on a plain background."]),
    ("multitask", "vqa", ["<image>\n[d] What colour is the circle?", "red"]),
    ("multitask", "multiple_choice", ["<image>\n[d] Which item is shown? bag, coat, dress, sandal", "coat"]),
    ("multitask", "dialogue", ["<image>\n[d] How many shapes are there? 2 What colour is the circle?", "red"]),
    ("multitask", "identify", ["<image>\n[d] {<4><50><30><65>}", "a blue square"]),
]


@pytest.mark.parametrize(("style", "task", "expected"), GOLDEN, ids=[f"{s}-{t}" for s, t, _ in GOLDEN])
def test_golden(style, task, expected):
    turns = render(RECORDS[task], style, random.Random(0), dataset="d")
    assert [t.content for t in turns] == expected


# The tasks whose prompt the ablation changes; every other task renders as in the full style.
CHANGED = {"llava15_ambiguous": ("llava15", {"vqa", "multiple_choice", "classification", "counting", "spatial",
                                             "yes_no", "dialogue"}),
           "minigptv2_untagged": ("minigptv2", set(TASK_TYPES) - {"question_generation"})}


@pytest.mark.parametrize("ablation", sorted(CHANGED))
def test_only_the_ablated_prompts_change(ablation):
    full, changed = CHANGED[ablation]
    for task, record in RECORDS.items():
        ours, theirs = (render(record, s, random.Random(0)) for s in (ablation, full))
        assert [t.content for t in ours][1::2] == [t.content for t in theirs][1::2]  # the same targets
        assert (ours != theirs) == (task in changed), task


def test_answers_are_read_back_as_the_full_style_reads_them():
    assert STYLES["llava15_ambiguous"].choice_answer == "letter"
    assert STYLES["minigptv2_untagged"].boxes == STYLES["multitask"].boxes == STYLES["minigptv2"].boxes


def test_multitask_names_the_rows_dataset_and_needs_one():
    row = Conversation([Turn("user", "<image>\nold"), Turn("assistant", "x")], ["a.png"], "row-1",
                       {"dataset": "scenes_vqa", "task": RECORDS["vqa"].to_dict()})
    assert restyle(row, "multitask", random.Random(0)).turns[0].content == (
        "<image>\n[scenes_vqa] What colour is the circle?")
    with pytest.raises(VlitError, match="dataset"):
        render(RECORDS["vqa"], "multitask", random.Random(0))
