"""MM-Vet from LLaVA's eval-kit layout plus MM-Vet's mm-vet.json, graded by a local fake judge: the prompt it
receives is mm-vet_evaluator.py's, a reply that is no score is re-asked as the evaluator re-asks, and the
per-capability and total averages are the hand-computed ones; without a judge or without mm-vet.json the answers
are written (also as MM-Vet's results file) and the table says unscored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.suites.mmvet import PROMPT, RETRY_SUFFIX

SAMPLES = "/work/shared/eval-samples/mm-vet"
ANSWERS = f"{SAMPLES}/answers/llava-v1.5-13b.jsonl"

TRUTH = {
    "v1_0": {"imagename": "v1_0.png", "capability": ["ocr", "math"], "question": "What is x in the equation?",
             "answer": "-1<AND>-5"},
    "v1_1": {"imagename": "v1_1.png", "capability": ["rec"], "question": "What animal is it?",
             "answer": "cat<OR>kitten"},
    "v1_2": {"imagename": "v1_2.png", "capability": ["math", "ocr"], "question": "What is 7 + 7?", "answer": "14"},
    "v1_3": {"imagename": "v1_3.png", "capability": ["rec", "know", "gen"], "question": "Who painted it?",
             "answer": "Leonardo da Vinci"},
}
PREDICTIONS = ["x = -1", "A kitten.", "It is 15.", "Da Vinci painted it."]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def mmvet(tmp_path):
    folder = tmp_path / "mm-vet"
    folder.mkdir()
    _jsonl(folder / "llava-mm-vet.jsonl", [{"image": e["imagename"], "text": e["question"], "category": "conv",
                                            "question_id": int(k[3:])} for k, e in TRUTH.items()])
    (folder / "mm-vet.json").write_text(json.dumps(TRUTH, indent=4))
    _jsonl(folder / "model.jsonl", [{"question_id": i, "text": p} for i, p in enumerate(PREDICTIONS)])
    return folder


def _grader(body):
    """q0: "0.5"; q1: "Correct" (no number), then "1.0" when re-asked; q2: "1.5" (out of 0..1) every time;
    q3: "0.8 because ..." (the first word counts)."""
    content = body["messages"][0]["content"]
    retry = content.endswith(RETRY_SUFFIX)
    prediction = content.removeprefix(PROMPT).split(" | ")[2]  # the row after the few-shot table
    if prediction == "A kitten.":
        return "1.0" if retry else "Correct"
    return {"x = -1": "0.5", "It is 15.": "1.5", "Da Vinci painted it.": "0.8 because"}[prediction]


def test_the_grader_gets_the_published_prompt_and_scores_average_per_capability(mmvet, tmp_path, fake_judge):
    fake_judge.reply = _grader
    out = tmp_path / "out"
    assert fake_judge.judged_eval("mmvet", mmvet, mmvet / "model.jsonl", out, "gpt-4-0613") == 0
    first = fake_judge.requests[0]
    assert first["messages"] == [{"role": "user", "content": PROMPT + "\nWhat is x in the equation? | -1 <AND> -5 "
                                                                      "| x = -1 | "}]
    assert (first["model"], first["temperature"], first["max_tokens"]) == ("gpt-4-0613", 0.0, 3)
    assert PROMPT.startswith("Compare the ground truth and prediction from AI models, to give a correctness score")
    assert "\nQuestion | Ground truth | Prediction | Correctness\n--- | --- | --- | ---\n" in PROMPT
    assert PROMPT.endswith("between the names of the countries and their actual physical characteristics. | 1.0\n")
    # q1 re-asked once (temperature 0.0, the digit suffix); q2 asked 5 times (0, then 0, 0.5, 1.0, 1.5) and given 0.0.
    kitten = [r for r in fake_judge.requests if "A kitten." in r["messages"][0]["content"]]
    assert [r["temperature"] for r in kitten] == [0.0, 0.0]
    assert kitten[1]["messages"][0]["content"] == kitten[0]["messages"][0]["content"] + RETRY_SUFFIX
    fifteen = [r["temperature"] for r in fake_judge.requests if "It is 15." in r["messages"][0]["content"]]
    assert fifteen == [0.0, 0.0, 0.5, 1.0, 1.5] and len(fake_judge.requests) == 1 + 2 + 5 + 1
    metrics = json.loads((out / "model" / "mmvet.metrics.json").read_text())["mmvet"]
    # Scores 0.5, 1.0, 0.0, 0.8: total 2.3 / 4 = 57.5; ocr and math (q0, q2) 0.25; rec (q1, q3) 0.9; know, gen 0.8.
    assert metrics["total"] == pytest.approx(0.575)
    assert (metrics["cap/ocr"], metrics["cap/math"], metrics["cap/know"], metrics["cap/gen"]) == (0.25, 0.25, 0.8, 0.8)
    assert metrics["cap/rec"] == pytest.approx(0.9)
    assert (metrics["integration/math_ocr"], metrics["integration/rec"], metrics["integration/gen_know_rec"]) == (
        0.25, 1.0, 0.8)
    assert "| model | 57.5 | **57.5** |" in (out / "results.md").read_text()


def test_mm_vet_json_alone_is_a_benchmark(mmvet):
    (mmvet / "llava-mm-vet.jsonl").unlink()
    samples = load_samples(resolve_benchmarks([f"mmvet={mmvet / 'mm-vet.json'}"])[0], "instructblip")
    assert [s.id for s in samples] == ["0", "1", "2", "3"]
    assert samples[0].conversation.turns[0].content == "<image>\nWhat is x in the equation?"
    assert samples[0].conversation.images == [f"{mmvet}/images/v1_0.png"]
    assert samples[0].references == ["-1<AND>-5"] and samples[0].meta["capability"] == ["ocr", "math"]


def test_without_ground_truth_the_answers_are_written_as_mm_vet_results_and_unscored(tmp_path, fake_judge, capsys):
    """LLaVA's real question rows and LLaVA-1.5-13B's real answers: no mm-vet.json, so even a judge cannot
    grade; the results file is what convert_mmvet_for_eval.py writes from the same answers."""
    out = tmp_path / "out"
    assert fake_judge.judged_eval("mmvet", SAMPLES, ANSWERS, out) == 0
    assert "| llava-v1.5-13b | unscored | – |" in capsys.readouterr().out and not fake_judge.requests
    metrics = json.loads((out / "llava-v1.5-13b" / "mmvet.metrics.json").read_text())["mmvet"]
    assert "mm-vet.json" in metrics["unscored"] and metrics["count"] == 4
    answers = [json.loads(line) for line in Path(f"{SAMPLES}/answers/llava-v1.5-13b.jsonl").read_text().splitlines()]
    results = json.loads((out / "llava-v1.5-13b" / "mmvet_results.json").read_text())
    assert results == {f"v1_{a['question_id']}": a["text"] for a in answers}


def test_real_question_rows_with_ground_truth_are_graded(tmp_path, fake_judge):
    """The real llava-mm-vet.jsonl rows (question_id N is MM-Vet's v1_N) beside a ground-truth file of the test's
    own, graded 1.0 each: total 100."""
    folder = tmp_path / "mm-vet"
    folder.mkdir()
    shutil.copy(f"{SAMPLES}/llava-mm-vet.jsonl", folder)
    rows = [json.loads(line) for line in Path(folder / "llava-mm-vet.jsonl").read_text().splitlines()]
    (folder / "mm-vet.json").write_text(json.dumps({f"v1_{r['question_id']}": {
        "imagename": r["image"], "capability": ["ocr", "math"], "question": r["text"], "answer": "42"} for r in rows}))
    fake_judge.reply = lambda body: "1.0"
    out = tmp_path / "out"
    assert fake_judge.judged_eval("mmvet", folder, ANSWERS, out) == 0
    assert json.loads((out / "llava-v1.5-13b" / "mmvet.metrics.json").read_text())["mmvet"]["total"] == 1.0
    assert fake_judge.requests[3]["messages"][0]["content"].endswith(
        "\nWhat is the answer to the bottom left equation? | 42 | The answer to the bottom left equation is 27. | ")


def test_a_bad_ground_truth_entry_is_named_and_its_question_skipped(mmvet, caplog):
    truth = dict(TRUTH) | {"v1_2": {k: v for k, v in TRUTH["v1_2"].items() if k != "answer"}}
    (mmvet / "mm-vet.json").write_text(json.dumps(truth))
    samples = load_samples(resolve_benchmarks([f"mmvet={mmvet}"])[0], "llava15")
    assert [s.id for s in samples] == ["0", "1", "3"]
    assert samples.skipped == [f"{mmvet}/mm-vet.json[v1_2].answer: missing",
                               f"{mmvet}/llava-mm-vet.jsonl:3.question_id: 2: no v1_2 in {mmvet}/mm-vet.json"]
