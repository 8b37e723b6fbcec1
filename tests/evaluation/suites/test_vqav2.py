"""VQAv2 and OK-VQA: VQA-format questions + annotations scored by the VQA tool's rule (vqaEval.py), and LLaVA's
test-dev file, not scored here but uploaded as convert_vqav2_for_submission.py writes it; checked by hand on
fixtures written here (no real VQAv2 / OK-VQA rows are in the shared samples: LLaVA's test-dev file is over
4 MiB and the annotations are not in any stored repository)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlit.cli import main as cli
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for
from vlit.evaluation.suites.vqav2 import vqav2_upload
from vlit.evaluation.vqa_scores import vqa_tool_accuracy

SHORT = "Answer the question using a single word or phrase."


def _ann(qid: int, answers: list[str], answer_type: str) -> dict:
    return {"question_id": qid, "image_id": qid // 10, "answer_type": answer_type, "question_type": "what",
            "multiple_choice_answer": answers[0],
            "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(answers)]}


@pytest.fixture
def official(tmp_path: Path) -> Path:
    folder = tmp_path / "okvqa"
    folder.mkdir()
    questions = [{"image_id": 1, "question": "How many cats?", "question_id": 10},
                 {"image_id": 2, "question": "What color is it?", "question_id": 20},
                 {"image_id": 3, "question": "What pattern?", "question_id": 30}]
    (folder / "OpenEnded_mscoco_val2014_questions.json").write_text(json.dumps(
        {"data_subtype": "val2014", "questions": questions}))
    annotations = [_ann(10, ["2"] * 10, "number"), _ann(20, ["Red"] * 3 + ["blue"] * 7, "other"),
                   _ann(30, ["black/white"] * 4 + ["stripes"] * 6, "other")]
    (folder / "mscoco_val2014_annotations.json").write_text(json.dumps({"annotations": annotations}))
    return folder


@pytest.mark.parametrize("name", ["okvqa", "vqav2"])
def test_vqa_files_score_as_the_vqa_tool(official: Path, name: str):
    samples = load_samples(resolve_benchmarks([f"{name}={official}"])[0], "llava15")
    assert samples[0].conversation.turns[0].content == f"<image>\nHow many cats?\n{SHORT}"
    assert samples[0].conversation.images == ["COCO_val2014_000000000001.jpg"]
    score = metric_for("vqa_tool")
    # "Two." -> "2": ten identical answers, all match: 1.0. "Red": the prediction is lower-cased, the human
    # answers only lose punctuation ("Red" stays): 0 (normalising both sides would give 0.9). "black/white"
    # -> "black white" on both sides (the answers differ, so theirs is processed): 4 matches: 1.0.
    scores = score(["Two.", "Red", "Black/White"], samples)
    assert scores["vqa_accuracy"] == pytest.approx(2 / 3)
    assert scores["vqa_accuracy:number"] == 1.0 and scores["vqa_accuracy:other"] == 0.5
    assert metric_for("vqa")(["Two.", "Red", "Black/White"], samples)["vqa_accuracy"] == pytest.approx(2.9 / 3)
    # "blue": 7 matches -> 1.0; "stripes": 6 -> 1.0; "2": 1.0
    assert score(["2", "blue", "stripes"], samples)["vqa_accuracy"] == 1.0


def test_the_tool_processes_human_answers_only_when_they_differ():
    # Ten identical answers are compared as they are: "black/white" never equals the processed "black white".
    assert vqa_tool_accuracy("black/white", ["black/white"] * 10) == 0.0
    assert vqa_tool_accuracy("black/white", ["black/white"] * 9 + ["white"]) == 1.0


def test_vqa_styles(official: Path):
    bench = resolve_benchmarks([f"okvqa={official}"])[0]
    assert load_samples(bench, "minigptv2")[0].conversation.turns[0].content == (
        "<image>\n[vqa] Based on the image, respond to this question with a short answer: How many cats?")


@pytest.fixture
def llava(tmp_path: Path) -> Path:
    folder = tmp_path / "vqav2"
    folder.mkdir()
    rows = [{"question_id": q, "image": f"COCO_test2015_{q // 10:012d}.jpg", "text": f"{text}\n{SHORT}",
             "category": "default"} for q, text in ((10, "How many cats?"), (30, "Is it raining?"))]
    (folder / "llava_vqav2_mscoco_test-dev2015.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    whole = rows[:1] + [{"question_id": 20, "image": "x.jpg", "text": "?", "category": "default"}] + rows[1:]
    (folder / "llava_vqav2_mscoco_test2015.jsonl").write_text("".join(json.dumps(r) + "\n" for r in whole))
    (folder / "merge.jsonl").write_text("".join(json.dumps({"question_id": q, "text": t}) + "\n"
                                                for q, t in ((10, "Two"), (30, "Yes."))))
    return folder


def test_llava_test_dev_is_uploaded_over_the_whole_split(llava: Path, tmp_path: Path, capsys):
    bench = resolve_benchmarks([f"vqav2={llava}"])[0]
    samples = load_samples(bench, "llava15")
    assert [s.references for s in samples] == [[], []]
    assert load_samples(bench, "minigptv2")[1].conversation.turns[0].content == (
        "<image>\n[vqa] Based on the image, respond to this question with a short answer: Is it raining?")
    assert metric_for("vqa_tool")(["2", "yes"], samples) == {}
    # EvalAI's processor on each answer; test2015's other questions answered "" (the server wants them all).
    upload = json.loads(vqav2_upload(samples, ["Two", "Yes."], tmp_path).read_text())
    assert upload == [{"question_id": 10, "answer": "2"}, {"question_id": 20, "answer": ""},
                      {"question_id": 30, "answer": "yes"}]
    assert cli(["eval", "--benchmarks", f"vqav2={llava}", "--predictions", f"vqav2={llava / 'merge.jsonl'}",
                "--out", str(tmp_path / "out")]) == 0
    assert "| merge | unscored |" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "merge" / "vqav2.upload.json").read_text()) == upload


def test_missing_files_and_bad_rows_are_named(official: Path, tmp_path: Path):
    with pytest.raises(VlitError, match="no OK-VQA questions and annotations"):
        load_samples(resolve_benchmarks([f"okvqa={tmp_path}"])[0], "llava15")
    path = official / "mscoco_val2014_annotations.json"
    data = json.loads(path.read_text())
    del data["annotations"][1]["answers"][0]["answer"]
    path.write_text(json.dumps(data))
    with pytest.raises(VlitError, match=r"annotations\[1\]\.answers\[0\]\.answer: missing"):
        load_samples(resolve_benchmarks([f"okvqa={official}"])[0], "llava15")
