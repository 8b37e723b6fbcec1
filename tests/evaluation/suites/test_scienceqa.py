"""ScienceQA from LLaVA's eval kit layout (problems.json, pid_splits.json, llava_test_CQM-A.json, images/test):
LLaVA's CQM-A prompt per style, scored as `eval_science_qa.py` (its letter rule, FAILED is wrong, IMG subset),
with the arithmetic done by hand on a fixture written for the test."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vlit.cli import main as cli
from vlit.data.prompting.benchmarks import cqm_question
from vlit.data.prompting.styles import LETTER_ANSWER
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for
from vlit.evaluation.predictions import read_predictions
from vlit.evaluation.suites.scienceqa import llava_choice, load_scienceqa

SAMPLES = "/work/shared/eval-samples/scienceqa"


def _problem(question, choices, answer, hint="", image=None, split="test"):
    return {"question": question, "choices": choices, "answer": answer, "hint": hint, "image": image,
            "task": "closed choice", "grade": "grade2", "subject": "natural science", "topic": "physics",
            "category": "Materials", "skill": "Compare", "lecture": "", "solution": "", "split": split}


@pytest.fixture
def scienceqa(tmp_path):
    folder = tmp_path / "scienceqa"
    folder.mkdir()
    problems = {
        "1": _problem("Which is shiny?", ["wood", "stone", "foil"], 2, "Look at the objects.", "image.png"),
        "2": _problem("Which is a mammal?", ["frog", "cat"], 1, image="image.png"),
        "3": _problem("Which is cold?", ["ice", "fire"], 0, image="image.png"),
        "4": _problem("Which is a fruit?", ["apple", "chair"], 0),
        "5": _problem("Which word comes first?", ["dog", "cat"], 1),
        "6": _problem("Which is hot?", ["sun", "snow"], 0, image="image.png"),
        "9": _problem("Which is round?", ["ball", "box"], 0, split="val"),
    }
    (folder / "problems.json").write_text(json.dumps(problems))
    (folder / "pid_splits.json").write_text(json.dumps({"test": ["2", "1", "3", "6", "4", "5"], "val": ["9"]}))
    # The kit's own prompt file: what LLaVA asks, here differing from the built one to show it is what is used.
    kit = [{"id": "5", "conversations": [{"from": "human", "value": "Which word (kit's wording)?\nA. dog\nB. cat"},
                                         {"from": "gpt", "value": "B"}]}]
    (folder / "llava_test_CQM-A.json").write_text(json.dumps(kit))
    return folder


def test_llava_asks_the_cqm_a_prompt_and_the_letter_instruction(scienceqa):
    samples = load_samples(resolve_benchmarks([f"scienceqa={scienceqa}"])[0], "llava15")
    assert [s.id for s in samples] == ["2", "1", "3", "6", "4", "5"]  # pid_splits' test order, val left out
    by_id = {s.id: s for s in samples}
    assert by_id["1"].conversation.turns[0].content == (
        "<image>\nContext: Look at the objects.\nWhich is shiny?\nA. wood\nB. stone\nC. foil\n" + LETTER_ANSWER)
    assert by_id["1"].conversation.images == [f"{scienceqa}/images/test/1/image.png"]
    # No hint: no context line (LLaVA's file has none); no image: no marker.
    assert by_id["4"].conversation.turns[0].content == f"Which is a fruit?\nA. apple\nB. chair\n{LETTER_ANSWER}"
    assert by_id["5"].conversation.turns[0].content == f"Which word (kit's wording)?\nA. dog\nB. cat\n{LETTER_ANSWER}"
    assert by_id["1"].references == ["C"] and by_id["1"].meta["has_image"] and not by_id["4"].meta["has_image"]


def test_other_styles_ask_their_own_prompts(scienceqa):
    bench = resolve_benchmarks([f"scienceqa={scienceqa}"])[0]
    mini = {s.id: s for s in load_samples(bench, "minigptv2")}
    assert mini["1"].conversation.turns[0].content == "<image>\n[vqa] Question: Which is shiny? Answer:"
    blip = {s.id: s for s in load_samples(bench, "instructblip")}
    assert "Context: Look at the objects.\nWhich is shiny?" in blip["1"].conversation.turns[0].content
    assert "wood, stone, foil" in blip["1"].conversation.turns[0].content
    # InstructBLIP and MiniGPT-v2 rank the choices; LLaVA generates the letter.
    assert [bench.answer_mode(s) for s in ("llava15", "instructblip", "minigptv2")] == ["generate", "rank", "rank"]
    bench.mode = "generate"  # `vlit eval --mode generate` overrides the papers' choice
    assert bench.answer_mode("instructblip") == "generate"


def test_answers_are_read_as_eval_science_qa_reads_them():
    assert llava_choice("B", 3) == 1
    assert llava_choice("B. stone", 3) == 1
    assert llava_choice("The answer is C. Because", 3) == 2
    assert llava_choice("The answer is C", 3) is None  # its pattern wants a character after the letter
    assert llava_choice("The answer is A. The answer is B.", 3) is None  # two matches: FAILED
    assert llava_choice("b", 3) is None and llava_choice(" B", 3) is None and llava_choice("B.", 3) is None
    assert llava_choice("C", 2) is None  # a letter beyond the choices scores -1
    assert llava_choice("F", 6) is None  # only A-E are options


def test_img_accuracy_and_accuracy_by_hand(scienceqa):
    samples = load_samples(resolve_benchmarks([f"scienceqa={scienceqa}"])[0], "llava15")
    # pid:        2 (img, B)            1 (img, C)  3 (img, A)                                6 (img, A)
    predictions = ["The answer is B. It", "C", "The answer is A. The answer is A.", "C",
                   # 4 (text, A)  5 (text, B)
                   "A. apple", "B"]
    scores = metric_for("scienceqa")(predictions, samples)
    # IMG: 2 right, 1 right, 3 FAILED (two matches), 6 wrong (C beyond 2 choices) -> 2/4.
    assert scores["img_accuracy"] == 0.5
    # All: 2, 1, 4, 5 right -> 4/6; unparsed: 3 and 6 -> 2/6.
    assert scores["accuracy"] == pytest.approx(4 / 6) and scores["unparsed"] == pytest.approx(2 / 6)


def test_a_style_answering_with_the_option_text_is_matched_on_it(scienceqa):
    samples = load_samples(resolve_benchmarks([f"scienceqa={scienceqa}"])[0], "instructblip")
    predictions = ["Cat.", "foil", "fire", "B", "A", "dog"]
    scores = metric_for("scienceqa")(predictions, samples)
    # 2 "Cat." = cat (B) right, 1 foil right, 3 fire wrong, 6 B wrong; 4 A right, 5 dog wrong.
    assert scores["img_accuracy"] == 0.5 and scores["accuracy"] == 0.5
    # LLaVA's style is read by its letter rule alone.
    llava = load_samples(resolve_benchmarks([f"scienceqa={scienceqa}"])[0], "llava15")
    assert metric_for("scienceqa")(predictions, llava)["accuracy"] == pytest.approx(1 / 6)


def test_problems_json_alone_is_asked_by_its_split_field(scienceqa):
    samples = load_samples(resolve_benchmarks([f"scienceqa={scienceqa / 'problems.json'}"])[0], "llava15")
    assert [s.id for s in samples] == ["2", "1", "3", "6", "4", "5"]  # pid_splits.json still sits beside it
    (scienceqa / "pid_splits.json").unlink()
    samples = load_samples(resolve_benchmarks([f"scienceqa={scienceqa / 'problems.json'}"])[0], "llava15")
    assert [s.id for s in samples] == ["1", "2", "3", "4", "5", "6"]


def test_bad_rows_are_named(scienceqa):
    problems = json.loads((scienceqa / "problems.json").read_text())
    problems["3"]["answer"] = 5
    (scienceqa / "problems.json").write_text(json.dumps(problems))
    with pytest.raises(VlitError, match=r"problems\.json\[3\]\.answer: 5 is not an index of the 2 choices"):
        load_samples(resolve_benchmarks([f"scienceqa={scienceqa}"])[0], "llava15")
    (scienceqa / "pid_splits.json").write_text(json.dumps({"test": ["2", "77"]}))
    with pytest.raises(VlitError, match=r"pid_splits\.json\.test\[1\]: pid 77 is not in"):
        load_samples(resolve_benchmarks([f"scienceqa={scienceqa}"])[0], "llava15")


def test_llava_answers_are_scored_without_a_model(scienceqa, tmp_path, capsys):
    answers = tmp_path / "answers.jsonl"
    texts = {"1": "C", "2": "A", "3": "A", "6": "A", "4": "A", "5": "B"}
    answers.write_text("".join(json.dumps({"question_id": k, "text": v}) + "\n" for k, v in texts.items()))
    assert cli(["eval", "--benchmarks", f"scienceqa={scienceqa}", "--predictions", f"scienceqa={answers}",
                "--out", str(tmp_path / "out")]) == 0
    # IMG: 1, 3, 6 right, 2 wrong -> 75.0
    assert "| answers | 75.0 |" in capsys.readouterr().out


def test_the_real_kit_files_load_and_reproduce_llavas_prompts():
    bench = resolve_benchmarks([f"scienceqa={SAMPLES}"])[0]
    samples = load_samples(bench, "llava15")
    assert [s.id for s in samples] == ["4", "5", "11", "15", "22"]
    assert [s.meta["has_image"] for s in samples] == [False, True, True, False, False]
    assert samples[1].conversation.images == [f"{SAMPLES}/images/test/5/image.png"]
    # The CQM-A prompt built from problems.json is LLaVA's file's, for each sampled pid.
    problems = json.loads(Path(f"{SAMPLES}/problems.json").read_text())
    kit = {row["id"]: row["conversations"][0]["value"].replace("<image>", "").strip()
           for row in json.loads(Path(f"{SAMPLES}/llava_test_CQM-A.json").read_text())}
    for pid, text in kit.items():
        p = problems[pid]
        assert cqm_question(p["question"], p["hint"], p["choices"]) == text
    # LLaVA-1.5-13B's recorded prompt for pid 4 is the one vlit asks; its answer "B" is right (answer index 1).
    (answer,) = map(json.loads, Path(f"{SAMPLES}/answers/llava-v1.5-13b.jsonl").read_text().splitlines())
    assert samples[0].conversation.turns[0].content == answer["prompt"]
    scored = [s for s in samples if s.id == "4"]
    scores = metric_for("scienceqa")(read_predictions(f"{SAMPLES}/answers/llava-v1.5-13b.jsonl", scored), scored)
    assert scores["accuracy"] == 1.0 and math.isnan(scores["img_accuracy"])  # no image question among them


def test_load_scienceqa_reads_problems_json_by_split(scienceqa):
    problems = scienceqa / "problems.json"
    assert [s.id for s in load_scienceqa(problems)] == ["1", "2", "3", "4", "5", "6"]
    assert [s.id for s in load_scienceqa(problems, images_only=True)] == ["1", "2", "3", "6"]
    assert [s.id for s in load_scienceqa(problems, split=None)][-1] == "9"
    (sample,) = [s for s in load_scienceqa(problems, scienceqa / "img") if s.id == "1"]
    assert sample.conversation.images == [f"{scienceqa}/img/test/1/image.png"]
    assert sample.candidates == ["wood", "stone", "foil"] and sample.meta["subject"] == "natural science"
    problems.write_text(json.dumps({"3": {"question": "Q?", "split": "test"}}))
    with pytest.raises(VlitError, match=r"problems\.json\[3\]\.choices: missing"):
        load_scienceqa(problems)
