"""IconQA choose_txt from IconQA's release layout (problem folders), a single data.json, or MiniGPT-v2's list:
ranked among its choices in every style (MiniGPT-v2's eval_vqa.py ranks them), accuracy of the chosen one."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for

SAMPLES = "/work/shared/eval-samples/iconqa"
PROBLEMS = {"12": ("Which shape is next?", ["circle", "square"], 1),
            "5": ("How many dots?", ["2", "3", "4"], 2),
            "100": ("Which is longer?", ["the pen", "the pencil"], 0)}


@pytest.fixture
def iconqa(tmp_path):
    root = tmp_path / "iconqa_data"
    for qid, (question, choices, answer) in PROBLEMS.items():
        folder = root / "iconqa" / "test" / "choose_txt" / qid
        folder.mkdir(parents=True)
        (folder / "data.json").write_text(json.dumps({"question": question, "choices": choices, "answer": answer,
                                                      "ques_type": "choose_txt", "grade": "grade1", "label": "S1"}))
        Image.new("RGB", (8, 8)).save(folder / "image.png")
    return root


def test_problem_folders_are_ranked_in_every_style(iconqa):
    bench = resolve_benchmarks([f"iconqa={iconqa}"])[0]
    samples = load_samples(bench, "minigptv2")
    assert [s.id for s in samples] == ["5", "12", "100"]
    assert samples[0].conversation.turns[0].content == (
        "<image>\n[vqa] Based on the image, respond to this question with a short answer: How many dots?")
    assert samples[0].conversation.images == [f"{iconqa}/iconqa/test/choose_txt/5/image.png"]
    assert [s.references for s in samples] == [["C"], ["B"], ["A"]]
    assert {bench.answer_mode(s) for s in ("llava15", "instructblip", "minigptv2")} == {"rank"}
    # Ranked answers are the chosen option's letter: right when it is the answer's.
    assert metric_for("multiple_choice")(["C", "A", "A"], samples)["accuracy"] == pytest.approx(2 / 3)


def test_minigptv2s_list_names_the_answer_by_its_text(tmp_path):
    rows = [{"image_id": "7", "question": "Which?", "choices": ["x", "y"], "answer": "y"}]
    path = tmp_path / "choose_text_val.json"
    path.write_text(json.dumps(rows))
    (sample,) = load_samples(resolve_benchmarks([f"iconqa={path}"])[0], "llava15")
    assert sample.references == ["B"] and sample.conversation.images == [f"{tmp_path}/7/image.png"]
    rows[0]["answer"] = "z"
    path.write_text(json.dumps(rows))
    with pytest.raises(VlitError, match=r"choose_text_val\.json\[0\]\.answer: 'z' is neither an index nor"):
        load_samples(resolve_benchmarks([f"iconqa={path}"])[0], "llava15")


def test_the_documented_data_json_loads():
    (sample,) = load_samples(resolve_benchmarks([f"iconqa={SAMPLES}/choose_txt-data-documented.json"])[0],
                             "instructblip")
    assert sample.candidates == ["certain", "unlikely", "impossible", "probable"] and sample.references == ["C"]
    assert "How likely is it that you will pick a black one?" in sample.conversation.turns[0].content
    assert sample.conversation.images == [f"{SAMPLES}/image.png"]
