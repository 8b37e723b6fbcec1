"""GQA test-dev balanced from LLaVA's eval kit layout (GQA's questions in eval/gqa/data/) or the LAVIS /
MiniGPT-v2 list, scored as convert_gqa_for_eval.py + GQA's eval.py (exact match, balanced questions only),
checked by hand on fixtures written here and on the real rows of /work/shared/eval-samples/gqa."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlit.cli import main as cli
from vlit.data.prompting.templates import load_templates
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for
from vlit.evaluation.predictions import read_predictions
from vlit.evaluation.vqa_scores import gqa_prediction

SAMPLES = Path("/work/shared/eval-samples/gqa")
SHORT = "Answer the question using a single word or phrase."

# question id -> (question, imageId, answer, structural type); "3" is not balanced: eval.py skips it.
QUESTIONS = {"1": ("Is it sunny?", "n1", "yes", "verify"), "2": ("Is the cup red?", "n1", "no", "verify"),
             "3": ("Is it dark?", "n2", "no", "verify"), "4": ("What is on the desk?", "n2", "table", "query"),
             "5": ("What is it made of?", "n3", "wood", "query")}


@pytest.fixture
def gqa(tmp_path: Path) -> Path:
    folder = tmp_path / "gqa"
    (folder / "data" / "images").mkdir(parents=True)
    official = {qid: {"question": q, "imageId": image, "answer": answer, "isBalanced": qid != "3",
                      "types": {"structural": kind, "semantic": "attr", "detailed": "x"}}
                for qid, (q, image, answer, kind) in QUESTIONS.items()}
    (folder / "data" / "testdev_balanced_questions.json").write_text(json.dumps(official))
    llava = [{"question_id": qid, "image": f"{image}.jpg", "text": f"{q}\n{SHORT}", "category": "default"}
             for qid, (q, image, _, _) in QUESTIONS.items() if qid != "3"]
    (folder / "llava_gqa_testdev_balanced.jsonl").write_text("".join(json.dumps(r) + "\n" for r in llava))
    return folder


def test_gqa_reads_the_balanced_questions_and_scores_as_eval_py(gqa: Path):
    samples = load_samples(resolve_benchmarks([f"gqa={gqa}"])[0], "llava15")
    assert [s.id for s in samples] == ["1", "2", "4", "5"]
    # The llava15 prompt is LLaVA's question file's text, row for row.
    llava = [json.loads(line) for line in (gqa / "llava_gqa_testdev_balanced.jsonl").read_text().splitlines()]
    assert [s.conversation.turns[0].content for s in samples] == [f"<image>\n{r['text']}" for r in llava]
    assert samples[0].conversation.images == [f"{gqa}/data/images/n1.jpg"]  # LLaVA's image folder
    # rstrip('.').lower() then exact match: "Yes." right, "No" right, "the table" wrong (no normalisation),
    # "Wood.." right (every trailing period goes).
    scores = metric_for("gqa")(["Yes.", "No", "the table", "Wood.."], samples)
    assert scores["accuracy"] == 0.75
    assert scores["binary"] == 1.0 and scores["open"] == 0.5  # open = structural "query"
    # MiniGPT-v2's eval_vqa.py: answer.lower() == label, periods kept: only "No" -> 1/4
    assert scores["minigptv2_accuracy"] == 0.25
    # Nothing but trailing periods and case changes: a leading space stays (and is wrong).
    assert (gqa_prediction("Table..."), gqa_prediction(" No"), gqa_prediction("no.\n")) == ("table", " no", "no.\n")


def test_gqa_styles(gqa: Path):
    bench = resolve_benchmarks([f"gqa={gqa}"])[0]
    assert load_samples(bench, "minigptv2")[0].conversation.turns[0].content == (
        "<image>\n[vqa] Based on the image, respond to this question with a short answer: Is it sunny?")
    first = load_samples(bench, "instructblip")
    again = load_samples(bench, "instructblip")
    assert [s.conversation.turns[0].content for s in first] == [s.conversation.turns[0].content for s in again]
    templates = {f"<image>\n{t.format(question='Is it sunny?')}" for t in load_templates()["vqa"]}
    assert first[0].conversation.turns[0].content in templates


def test_gqa_lavis_list_and_predictions_without_a_model(tmp_path: Path, capsys):
    listed = [{"image": f"{image}.jpg", "question": q, "question_id": qid, "answer": answer}
              for qid, (q, image, answer, _) in QUESTIONS.items()]
    path = tmp_path / "testdev_balanced_questions.json"
    path.write_text(json.dumps(listed))
    answers = tmp_path / "merge.jsonl"
    texts = ["yes", "Yes", "No.", "table", "metal"]
    answers.write_text("".join(json.dumps({"question_id": qid, "text": t}) + "\n"
                               for qid, t in zip(QUESTIONS, texts, strict=True)))
    assert cli(["eval", "--benchmarks", f"gqa={path}", "--predictions", f"gqa={answers}",
                "--out", str(tmp_path / "out")]) == 0
    # The list has no balanced flag: all five count. yes, "Yes"->yes (gt no: wrong), no, table: 3 of 5.
    assert "| merge | 60.0 |" in capsys.readouterr().out


def test_gqa_bad_entry_is_named(gqa: Path):
    path = gqa / "data" / "testdev_balanced_questions.json"
    data = json.loads(path.read_text())
    del data["4"]["answer"]
    path.write_text(json.dumps(data))
    with pytest.raises(VlitError, match=r"testdev_balanced_questions.json\[4\]\.answer: missing"):
        load_samples(resolve_benchmarks([f"gqa={gqa}"])[0], "llava15")


def test_the_real_files_score_as_eval_py():
    """The official-shape entry ("Is it overcast?", answer "no") asks exactly LLaVA's row and LLaVA-1.5-13B's
    "No" -> "no" is right: accuracy 1.0 on it. The LAVIS-shape copy gives the same."""
    llava_row = json.loads((SAMPLES / "llava_gqa_testdev_balanced.jsonl").read_text().splitlines()[0])
    answers = SAMPLES / "answers" / "llava_gqa_testdev_balanced" / "llava-v1.5-13b.jsonl"
    for name in ("testdev_balanced_questions-schema-derived.json",
                 "testdev_balanced_questions-lavis-schema-derived.json"):
        samples = load_samples(resolve_benchmarks([f"gqa={SAMPLES / name}"])[0], "llava15")
        assert [s.conversation.turns[0].content for s in samples] == [f"<image>\n{llava_row['text']}"]
        assert metric_for("gqa")(read_predictions(answers, samples), samples)["accuracy"] == 1.0
    assert len(load_samples(resolve_benchmarks([f"gqa={SAMPLES}"])[0], "llava15")) == 1
