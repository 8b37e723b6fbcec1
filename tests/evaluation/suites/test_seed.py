"""SEED-Bench from LLaVA's eval kit layout (SEED-Bench.json, llava-seed-bench.jsonl, SEED-Bench-image/): image
questions only, LLaVA's prompt, scored as convert_seed_for_submission.py (exact `text == answer`, per question
type and overall) and its upload JSONL; by hand on a fixture written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlit.cli import main as cli
from vlit.data.prompting.styles import LETTER_ANSWER
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for
from vlit.evaluation.predictions import read_predictions
from vlit.evaluation.suites.seed import seed_submission

SAMPLES = "/work/shared/eval-samples/seed-bench"
TYPES = {"Scene Understanding": 1, "Instances Counting": 5, "Action Recognition": 10}


def _question(qid, question, choices, answer, type_id, data_type="image"):
    return {"answer": answer, "choice_a": choices[0], "choice_b": choices[1], "choice_c": choices[2],
            "choice_d": choices[3], "data_id": f"{qid}.jpg" if data_type == "image" else f"{qid}.webm",
            "data_type": data_type, "question": question, "question_id": qid, "question_type_id": type_id}


@pytest.fixture
def seed(tmp_path):
    folder = tmp_path / "seed_bench"
    folder.mkdir()
    questions = [_question("11", "What is the scene?", ["a park", "a room", "a beach", "a road"], "A", 1),
                 _question("12", "Where is it?", ["inside", "outside", "space", "sea"], "B", 1),
                 _question("v1", "What happens?", ["run", "jump", "sit", "walk"], "C", 10, "video"),
                 _question("13", "How many cats?", ["1", "2", "3", "4"], "D", 5)]
    (folder / "SEED-Bench.json").write_text(json.dumps({"questions": questions, "question_type": TYPES}))
    llava = [{"image": "SEED-Bench-image/11.jpg", "text": "What is the scene? (LLaVA's file)\nA. a park\nB. a room\n"
              f"C. a beach\nD. a road\n{LETTER_ANSWER}", "category": "Scene Understanding", "question_id": "11"}]
    (folder / "llava-seed-bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in llava))
    return folder


def test_image_questions_are_asked_with_llavas_prompt(seed):
    samples = load_samples(resolve_benchmarks([f"seed={seed}"])[0], "llava15")
    assert [s.id for s in samples] == ["11", "12", "13"]  # the video question is left out (SEED-IMG)
    assert samples[0].conversation.turns[0].content.startswith("<image>\nWhat is the scene? (LLaVA's file)")
    assert samples[1].conversation.turns[0].content == (
        f"<image>\nWhere is it?\nA. inside\nB. outside\nC. space\nD. sea\n{LETTER_ANSWER}")
    assert samples[1].conversation.images == [f"{seed}/SEED-Bench-image/12.jpg"]
    blip = load_samples(resolve_benchmarks([f"seed={seed}"])[0], "instructblip")
    assert blip[0].conversation.turns[0].content == "<image>\nQuestion: What is the scene?\nAnswer:"


def test_accuracy_per_question_type_by_hand(seed, tmp_path):
    samples = load_samples(resolve_benchmarks([f"seed={seed}"])[0], "llava15")
    scores = metric_for("seed")(["A", "B.", "C"], samples)
    # 11 right; 12 "B." is not "B" (exact match); 13 wrong. Scene Understanding 1/2, Instances Counting 0/1.
    assert scores == {"accuracy": pytest.approx(1 / 3), "Scene Understanding/accuracy": 0.5,
                      "Instances Counting/accuracy": 0.0}
    path = seed_submission(samples, ["A", "B.", "C"], tmp_path)
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"question_id": "11", "prediction": "A"}, {"question_id": "12", "prediction": "B."},
        {"question_id": "13", "prediction": "C"}]


def test_llava_answers_are_scored_without_a_model(seed, tmp_path, capsys):
    answers = tmp_path / "merge.jsonl"
    answers.write_text("".join(json.dumps({"question_id": q, "text": t}) + "\n"
                               for q, t in (("11", "A"), ("12", "B"), ("13", "D"), ("v1", "C"))))
    assert cli(["eval", "--benchmarks", f"seed={seed}", "--predictions", f"seed={answers}",
                "--out", str(tmp_path / "out")]) == 0
    assert "| merge | 100.0 |" in capsys.readouterr().out
    assert (tmp_path / "out" / "merge" / "seed_bench.upload.jsonl").exists()


def test_a_bad_question_is_named(seed):
    data = json.loads((seed / "SEED-Bench.json").read_text())
    data["questions"][1]["answer"] = "E"
    (seed / "SEED-Bench.json").write_text(json.dumps(data))
    with pytest.raises(VlitError, match=r"SEED-Bench\.json\.questions\[1\]\.answer: 'E' is not one of A-D"):
        load_samples(resolve_benchmarks([f"seed={seed}"])[0], "llava15")


def test_the_documented_row_and_llavas_upload(tmp_path):
    """SEED-Bench's documented image row (answer A) and LLaVA-1.5-13B's upload line for it (B): wrong."""
    samples = load_samples(resolve_benchmarks([f"seed={SAMPLES}/SEED-Bench-schema-derived.json"])[0], "llava15")
    assert [s.id for s in samples] == ["101669"]  # the video row v1738 is not asked
    assert samples[0].conversation.turns[0].content == (
        f"<image>\nHow many towels are in the image?\nA. One\nB. Two\nC. Three\nD. Four\n{LETTER_ANSWER}")
    predictions = read_predictions(f"{SAMPLES}/answers_upload/llava-v1.5-13b.jsonl", samples)
    assert predictions == ["B"]
    assert metric_for("seed")(predictions, samples) == {"accuracy": 0.0, "Instances Counting/accuracy": 0.0}
    # vlit's upload line for it is LLaVA's, byte for byte.
    written = seed_submission(samples, predictions, tmp_path).read_text()
    assert written == Path(f"{SAMPLES}/answers_upload/llava-v1.5-13b.jsonl").read_text().splitlines(True)[0]
