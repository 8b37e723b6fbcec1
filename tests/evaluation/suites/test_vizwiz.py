"""VizWiz: LLaVA's test file (no ground truth: the upload file convert_vizwiz_for_submission.py writes) and
VizWiz's own val.json, scored as VizWiz's evaluator scores LLaVA's upload, plus MiniGPT-v2's rule; checked by hand
on fixtures written here and on the real rows of /work/shared/eval-samples/vizwiz."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlit.cli import main as cli
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for
from vlit.evaluation.predictions import read_predictions
from vlit.evaluation.suites.vizwiz import vizwiz_upload
from vlit.evaluation.vqa_scores import minigptv2_vizwiz_accuracy

SAMPLES = Path("/work/shared/eval-samples/vizwiz")
UNANSWERABLE = "When the provided information is insufficient, respond with 'Unanswerable'."
SHORT = "Answer the question using a single word or phrase."


def _row(image: str, question: str, answers: list[str], answer_type: str) -> dict:
    return {"image": image, "question": question, "answer_type": answer_type, "answerable": 1,
            "answers": [{"answer": a, "answer_confidence": "yes"} for a in answers]}


@pytest.fixture
def val(tmp_path: Path) -> Path:
    rows = [_row("VizWiz_val_00000000.jpg", "What is this?", ["unanswerable"] * 5 + ["no"] * 2 + ["night time"] * 3,
                 "unanswerable"),
            _row("VizWiz_val_00000001.jpg", "Is it on?", ["Yes"] * 10, "yes/no")]
    path = tmp_path / "Annotations" / "val.json"
    path.parent.mkdir()
    path.write_text(json.dumps(rows))
    (tmp_path / "val").mkdir()
    return path


def test_vizwiz_val_scores_as_the_server_scores_llavas_upload(val: Path):
    samples = load_samples(resolve_benchmarks([f"vizwiz={val.parent.parent / 'Annotations'}"])[0], "llava15")
    assert samples[0].conversation.turns[0].content == f"<image>\nWhat is this?\n{UNANSWERABLE}\n{SHORT}"
    assert samples[0].conversation.images == [f"{val.parent.parent}/val/VizWiz_val_00000000.jpg"]
    score = metric_for("vizwiz")
    # "Unanswerable." -> "unanswerable": 5 matches, every subset keeps >= 3: 1.0. The human answers are never
    # processed: ten "Yes" never equal the processed "yes": 0.
    assert score(["Unanswerable.", "yes"], samples)["vqa_accuracy"] == 0.5
    # "Night-time" -> "night time": 3 matches -> (3 x 2/3 + 7 x 1) / 10 = 0.9; "no": 2 matches -> (2 x 1/3 + 8 x
    # 2/3) / 10 = 0.6. MiniGPT-v2 compares lower-cased text, no leave-one-out: 0 and min(2/3, 1).
    scores = score(["Night-time", "no"], [samples[0], samples[0]])
    assert scores["vqa_accuracy"] == pytest.approx(0.75)
    assert scores["minigptv2_accuracy"] == pytest.approx(1 / 3)
    assert score(["x", "YES"], samples)["vqa_accuracy:yes/no"] == 0.0
    assert score(["x", "YES"], samples)["minigptv2_accuracy"] == 0.5  # ten "Yes" lower-cased: min(10/3, 1)


def test_minigptv2_rule_reads_answers_joined_by_underscores():
    # eval_vqa.py joins the answers with "_" and splits them back: "night_time" counts as "night" and "time".
    assert minigptv2_vizwiz_accuracy("Night<unk> ", ["night_time"] * 3 + ["day"] * 7) == 1.0
    assert minigptv2_vizwiz_accuracy("night_time", ["night_time"] * 10) == 0.0


def test_vizwiz_styles(val: Path):
    bench = resolve_benchmarks([f"vizwiz={val}"])[0]
    assert load_samples(bench, "minigptv2")[0].conversation.turns[0].content == (
        "<image>\n[vqa] The question is 'What is this?' Based on the image, answer the question with a single word "
        "or phrase. and reply 'unanswerable' when the provided information is insufficient")


def test_llava_test_split_is_not_scored_but_uploaded(tmp_path: Path, capsys):
    """The real LLaVA rows and LLaVA-1.5-13B's answers: nothing to score; the upload equals the first five
    entries of LLaVA's own `answers_upload/llava-v1.5-13b.json`."""
    bench = resolve_benchmarks([f"vizwiz={SAMPLES}"])[0]
    samples = load_samples(bench, "llava15")
    rows = [json.loads(line) for line in (SAMPLES / "llava_test.jsonl").read_text().splitlines()]
    assert [s.conversation.turns[0].content for s in samples] == [f"<image>\n{r['text']}" for r in rows]
    assert load_samples(bench, "minigptv2")[1].conversation.turns[0].content.startswith(
        "<image>\n[vqa] The question is 'What is this?' Based")
    predictions = read_predictions(SAMPLES / "answers" / "llava-v1.5-13b.jsonl", samples)
    assert metric_for("vizwiz")(predictions, samples) == {}
    path = vizwiz_upload(samples, predictions, tmp_path)
    assert path.read_text() == (
        '[{"image": "VizWiz_test_00000000.jpg", "answer": "black"}, {"image": "VizWiz_test_00000001.jpg", "answer": '
        '"unanswerable"}, {"image": "VizWiz_test_00000002.jpg", "answer": "no"}, {"image": '
        '"VizWiz_test_00000003.jpg", "answer": "laptop"}, {"image": "VizWiz_test_00000004.jpg", "answer": '
        '"half and half"}]')
    assert cli(["eval", "--benchmarks", f"vizwiz={SAMPLES}", "--predictions",
                f"vizwiz={SAMPLES / 'answers' / 'llava-v1.5-13b.jsonl'}", "--out", str(tmp_path / "out")]) == 0
    assert "| llava-v1.5-13b | unscored |" in capsys.readouterr().out
    assert (tmp_path / "out" / "llava-v1.5-13b" / "vizwiz.upload.json").read_text() == path.read_text()


def test_the_real_val_row_and_a_bad_row(tmp_path: Path):
    """VizWiz_val_00000001 (mmpretrain's documented row): "night time" x 5 among its 10 answers -> 1.0;
    "night time medicine" once -> (1 x 0 + 9 x 1/3) / 10 = 0.3."""
    samples = load_samples(resolve_benchmarks([f"vizwiz={SAMPLES / 'val-documented.json'}"])[0], "llava15")
    assert metric_for("vizwiz")(["Night time"], samples)["vqa_accuracy"] == 1.0
    assert metric_for("vizwiz")(["night time medicine"], samples)["vqa_accuracy"] == pytest.approx(0.3)
    bad = tmp_path / "val.json"
    bad.write_text(json.dumps([_row("a.jpg", "q?", ["x"] * 10, "other") | {"answers": [{"answer_confidence": "no"}]}]))
    with pytest.raises(VlitError, match=r"val.json\[0\]\.answers\[0\]\.answer: missing"):
        load_samples(resolve_benchmarks([f"vizwiz={bad}"])[0], "llava15")
