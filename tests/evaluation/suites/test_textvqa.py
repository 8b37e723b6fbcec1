"""TextVQA from LLaVA's eval kit (its question file, whose question_id is the image id, + TextVQA's val json),
paired as eval_textvqa.py pairs them and scored by m4c_evaluator's TextVQAAccuracyEvaluator (EvalAI's answer
processor, leave-one-out accuracy), checked by hand on fixtures written here and on the real rows of
/work/shared/eval-samples/textvqa."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlit.cli import main as cli
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for
from vlit.evaluation.normalize import evalai_answer, normalize_answer
from vlit.evaluation.predictions import read_predictions

SAMPLES = Path("/work/shared/eval-samples/textvqa")
SHORT = "Answer the question using a single word or phrase."
ANSWERS = ["dakota"] * 4 + ["dakota digital"] * 3 + ["Camera"] * 3


@pytest.fixture
def textvqa(tmp_path: Path) -> Path:
    folder = tmp_path / "textvqa"
    folder.mkdir()
    rows = [{"question_id": "img1", "image": "img1.jpg", "category": "default",
             "text": f"What brand is this?\nReference OCR token: DAKOTA, DIGITAL\n{SHORT}"},
            {"question_id": "img1", "image": "img1.jpg", "category": "default",
             "text": f"What is the price?\nReference OCR token: DAKOTA, DIGITAL\n{SHORT}"},
            {"question_id": "img2", "image": "img2.jpg", "category": "default", "text": f"What does it say?\n{SHORT}"}]
    (folder / "llava_textvqa_val_v051_ocr.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = [{"question": "what brand is this?", "image_id": "img1", "answers": ANSWERS, "question_id": 10},
            {"question": "what is the price?", "image_id": "img1", "answers": ["$5"] * 10, "question_id": 11},
            {"question": "what does it say?", "image_id": "img2", "answers": ["stop"] * 9 + ["STOP!"],
             "question_id": 12}]
    (folder / "TextVQA_0.5.1_val.json").write_text(json.dumps({"dataset_name": "textvqa", "data": data}))
    return folder


def test_evalai_processor_is_the_vqa_normalisation_after_its_tokenizer():
    # Its own first step: lower case, commas and question marks deleted, "'s" split off.
    assert evalai_answer("Player's jersey") == "player 's jersey"
    assert (evalai_answer("x,y"), normalize_answer("x,y")) == ("xy", "x y")
    assert evalai_answer("What?") == "what" and evalai_answer("1,000") == "1000"
    # Then the VQA tool's rules: punctuation, periods, number words, articles, contractions.
    assert evalai_answer("The Two dogs.") == "2 dogs" and evalai_answer("dont") == "don't"
    assert evalai_answer("black/white") == "black white" and evalai_answer("2.5") == "2.5"


def test_textvqa_pairs_repeated_image_ids_and_scores_as_m4c(textvqa: Path):
    samples = load_samples(resolve_benchmarks([f"textvqa={textvqa}"])[0], "llava15")
    assert [s.id for s in samples] == ["10", "11", "12"]  # TextVQA's question ids; LLaVA's repeat
    assert [s.meta["question_id"] for s in samples] == ["img1", "img1", "img2"]
    assert samples[0].references == ANSWERS
    # "Dakota." -> "dakota": 4 of 10 match, every leave-one-out subset keeps >= 3: 1.0.
    # "dakota digital": 3 match; leaving one of them out leaves 2 (2/3), the other 7 subsets 1: 0.9.
    # "camera's" -> "camera 's", not "camera": 0.
    m4c = metric_for("textvqa")
    assert m4c(["Dakota.", "$5", "STOP"], samples)["accuracy"] == pytest.approx((1.0 + 1.0 + 1.0) / 3)
    assert m4c(["dakota digital", "5", "camera's"], samples)["accuracy"] == pytest.approx((0.9 + 0 + 0) / 3)
    # Both sides through the processor: "STOP!" is "stop", ten matches.
    assert m4c(["x", "x", "stop"], samples)["accuracy"] == pytest.approx(1 / 3)


def test_textvqa_styles(textvqa: Path):
    bench = resolve_benchmarks([f"textvqa={textvqa}"])[0]
    first = {s: load_samples(bench, s)[0].conversation.turns[0].content for s in ("instructblip", "minigptv2")}
    assert first["instructblip"] == "<image>\nOCR tokens: DAKOTA, DIGITAL. Question: What brand is this? Short answer:"
    assert first["minigptv2"] == (
        "<image>\nOCR tokens: DAKOTA, DIGITAL. [vqa] Question: What brand is this? Short answer:")
    assert load_samples(bench, "minigptv2")[2].conversation.turns[0].content == (
        "<image>\n[vqa] Question: What does it say? Short answer:")


def test_textvqa_llava_answers_pair_by_occurrence(textvqa: Path, tmp_path: Path, capsys):
    answers = tmp_path / "llava-answers.jsonl"
    texts = [("img1", "Dakota"), ("img1", "$5"), ("img2", "go")]
    answers.write_text("".join(json.dumps({"question_id": q, "text": t}) + "\n" for q, t in texts))
    assert cli(["eval", "--benchmarks", f"textvqa={textvqa}", "--predictions", f"textvqa={answers}",
                "--out", str(tmp_path / "out")]) == 0
    assert "| llava-answers | 66.7 |" in capsys.readouterr().out  # 1 + 1 + 0 over 3


def test_textvqa_from_textvqa_alone_and_bad_rows(textvqa: Path):
    (textvqa / "llava_textvqa_val_v051_ocr.jsonl").unlink()
    samples = load_samples(resolve_benchmarks([f"textvqa={textvqa}"])[0], "llava15")
    assert samples[0].conversation.turns[0].content == f"<image>\nwhat brand is this?\n{SHORT}"
    (textvqa / "llava.jsonl").write_text(json.dumps({"question_id": "img1", "image": "a.jpg", "text": "a\nb\nc\nd"}))
    with pytest.raises(VlitError, match=r"llava.jsonl:1\.text: not a TextVQA prompt"):
        load_samples(resolve_benchmarks([f"textvqa={textvqa / 'llava.jsonl'}"])[0], "llava15")
    data = json.loads((textvqa / "TextVQA_0.5.1_val.json").read_text())
    data["data"][1]["answers"][2] = 5
    (textvqa / "TextVQA_0.5.1_val.json").write_text(json.dumps(data))
    with pytest.raises(VlitError, match=r"TextVQA_0.5.1_val.json: data\[1\]\.answers\[2\]: expected str"):
        load_samples(resolve_benchmarks([f"textvqa={textvqa}"])[0], "llava15")


def test_the_real_llava_files_score_as_eval_textvqa():
    """Only the first LLaVA row has an annotation in the sample (4 of its answers: "nous les gosses", "dakota",
    "clos culombu", "dakota digital"); LLaVA-1.5-13B said "Dakota digital" -> "dakota digital", one match:
    leaving out one of the three others keeps it (1/3 each), leaving it out leaves none: (3 x 1/3 + 0) / 4 =
    0.25. The other five rows are asked but not scored."""
    samples = load_samples(resolve_benchmarks([f"textvqa={SAMPLES}"])[0], "llava15")
    rows = [json.loads(line) for line in (SAMPLES / "llava_textvqa_val_v051_ocr.jsonl").read_text().splitlines()]
    assert [s.conversation.turns[0].content for s in samples] == [f"<image>\n{r['text']}" for r in rows]
    assert [bool(s.references) for s in samples] == [True] + [False] * 5
    predictions = read_predictions(SAMPLES / "answers" / "llava-v1.5-13b.jsonl", samples)
    assert predictions[3:5] == ["Longmorn", "10 years"]  # the repeated image id, answered in order
    assert metric_for("textvqa")(predictions, samples) == {"accuracy": 0.25}
