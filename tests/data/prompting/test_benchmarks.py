"""Golden strings: each choice/classification benchmark's prompt in each style. The papers' own texts (LLaVA's
model_vqa_* scripts, MiniGPT-v2's vqa_datasets.py, SEED-Bench's InstructBLIP interface) are compared exactly;
the others are what the style renders for any record of that kind."""

from __future__ import annotations

import random

import pytest

from vlit.data.prompting import benchmarks as b

LETTER = "Answer with the option's letter from the given choices directly."
SHORT = "Answer the question using a single word or phrase."
PICK = "Select the option that best answers the question. Question: {} Options: {}."
"""The InstructBLIP multiple-choice template seed 0 draws (templates/multiple_choice.yaml)."""


def _rng() -> random.Random:
    return random.Random(0)


GOLDEN = {
    "llava15": [
        f"Context: Look.\nWhich is shiny?\nA. wood\nB. foil\n{LETTER}",
        f"A hint.\nWhat is shown?\nA. cat\nB. dog\n{LETTER}",
        "图中是什么?\nA. 猫\nB. 狗\n请直接回答选项字母。",
        f"How many?\nA. 1\nB. 2\nC. 3\nD. 4\n{LETTER}",
        f"How likely?\nA. certain\nB. impossible\n{LETTER}",
        f"Based on the image, is this statement true or false? The cat is on the mat.\n{SHORT}",
        f'This is an image with: "some text" written on it. Is it hateful?\n{SHORT}',
    ],
    "instructblip": [
        PICK.format("Context: Look.\nWhich is shiny?", "wood, foil"),
        PICK.format("A hint.\nWhat is shown?", "cat, dog"),
        PICK.format("图中是什么?", "猫, 狗"),
        "Question: How many?\nAnswer:",
        PICK.format("How likely?", "certain, impossible"),
        "Based on the image, is this statement true or false? The cat is on the mat.",
        'This is an image with: "some text" written on it. Is it hateful? Answer:',
    ],
    "minigptv2": [
        "[vqa] Question: Which is shiny? Answer:",
        "[vqa] A hint.\nWhat is shown? Choose from: cat, dog.",
        "[vqa] 图中是什么? Choose from: 猫, 狗.",
        "[vqa] How many? Choose from: 1, 2, 3, 4.",
        "[vqa] Based on the image, respond to this question with a short answer: How likely?",
        "[vqa] Based on the image, is this statement true or false? The cat is on the mat.",
        '[vqa] This is an image with: "some text" written on it. Is it hateful? Answer:',
    ],
}


@pytest.mark.parametrize("style", list(GOLDEN))
def test_each_benchmark_prompt_in_each_style(style):
    rendered = [
        b.scienceqa_prompt(style, "Which is shiny?", "Look.", ["wood", "foil"], 1, _rng()),
        b.mmbench_prompt(style, "What is shown?", "A hint.", ["cat", "dog"], 0, _rng()),
        b.mmbench_prompt(style, "图中是什么?", None, ["猫", "狗"], 0, _rng(), chinese=True),
        b.seed_prompt(style, "How many?", ["1", "2", "3", "4"], 0, _rng()),
        b.iconqa_prompt(style, "How likely?", ["certain", "impossible"], 1, _rng()),
        b.vsr_prompt(style, "The cat is on the mat.", "true", _rng()),
        b.hateful_memes_prompt(style, "some text", "no", _rng()),
    ]
    assert rendered == GOLDEN[style]


def test_scienceqa_llava_prompt_is_the_kits_question_when_given():
    kit = "Which word (kit)?\nA. dog\nB. cat"
    assert b.scienceqa_prompt("llava15", "ignored", "", ["x"], 0, _rng(), cqm=kit) == f"{kit}\n{LETTER}"
    # Without a hint there is no context line at all (not "Context: N/A").
    assert b.cqm_question("Which?", "", ["a", "b"]) == "Which?\nA. a\nB. b"


def test_a_vqa_family_prompt_reads_its_question_back_from_llavas_text():
    text = b.VIZWIZ.ask("llava15", _rng(), question="What is this?")
    assert text == f"What is this?\n{b.UNANSWERABLE}\n{SHORT}"
    assert b.VIZWIZ.read_back(text) == "What is this?" == b.VQA.read_back(f"{SHORT}\nWhat is this?")
