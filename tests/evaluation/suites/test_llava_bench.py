"""LLaVA-Bench (In-the-Wild) from LLaVA's eval-kit layout, judged by a local fake judge: the prompt it receives
is eval_gpt_review_bench.py's, its replies are parsed as parse_score and summarised as summarize_gpt_review.py
(numbers computed by hand below); without a judge the answers are written and the table says unscored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vlit.cli import main as cli
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.suites.llava_bench import RULE, SYSTEM, parse_review, review_llava_bench, summarize

SAMPLES = "/work/shared/eval-samples/llava-bench-in-the-wild"


def _rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


QUESTIONS = [(0, "a.jpg", "What is this?", "conv"), (1, "a.jpg", "Describe the photo in detail.", "detail"),
             (2, "b.jpg", "Why is it funny?", "complex"), (3, "b.jpg", "What colour is the cat?", "conv")]
# The judge's first lines: parse_score reads "8 10" -> (8, 10); "9,6.5" -> commas as spaces -> (9, 6.5);
# "Scores: 7 7" -> three words -> (-1, -1); "6 3" -> (6, 3).
REVIEWS = {"What is this?": "8 10\nBoth are right.", "Describe the photo in detail.": "9,6.5\nAssistant 1 ...",
           "Why is it funny?": "Scores: 7 7\n...", "What colour is the cat?": "6 3"}


@pytest.fixture
def bench(tmp_path):
    folder = tmp_path / "llava-bench-in-the-wild"
    folder.mkdir()
    _jsonl(folder / "questions.jsonl", [{"image": i, "text": t, "category": c, "question_id": q}
                                        for q, i, t, c in QUESTIONS])
    # One caption as a string (as the released context.jsonl has them), one as a list of lines.
    _jsonl(folder / "context.jsonl", [{"id": "a", "image": "a.jpg", "caption": "A dog"},
                                      {"id": "b", "image": "b.jpg", "caption": ["A cat.", "On a mat."]}])
    _jsonl(folder / "answers_gpt4.jsonl", [{"question_id": q, "text": f"GPT-4 answer {q}", "answer_id": f"g{q}"}
                                           for q, *_ in QUESTIONS])
    _jsonl(folder / "model.jsonl", [{"question_id": q, "text": f"model answer {q}"} for q, *_ in QUESTIONS])
    return folder


def _review(body):
    question = re.search(r"\[Question\]\n(.*?)\n\n", body["messages"][1]["content"]).group(1)
    return REVIEWS[question]


def test_questions_are_asked_as_written_with_their_images(bench):
    samples = load_samples(resolve_benchmarks([f"llava_bench={bench}"])[0], "minigptv2")
    assert [s.conversation.turns[0].content for s in samples][:2] == [
        "<image>\nWhat is this?", "<image>\nDescribe the photo in detail."]
    assert samples[0].conversation.images == [f"{bench}/images/a.jpg"]
    assert samples[2].meta["caption"] == ["A cat.", "On a mat."] and samples[2].references == ["GPT-4 answer 2"]


def test_the_judge_gets_the_published_prompt_and_the_scores_summarise_as_the_reference(bench, tmp_path, fake_judge):
    fake_judge.reply = _review
    out = tmp_path / "out"
    assert fake_judge.judged_eval("llava_bench", bench, bench / "model.jsonl", out, "gpt-4-0314") == 0
    first = fake_judge.requests[0]
    assert (first["model"], first["temperature"], first["max_tokens"]) == ("gpt-4-0314", 0.2, 1024)
    assert first["messages"][0] == {"role": "system", "content": SYSTEM}
    # eval_gpt_review_bench.py's content; its context is '\n'.join(caption), so a string caption comes one
    # character per line, a list one caption per line.
    assert first["messages"][1]["content"] == (
        "[Context]\nA\n \nd\no\ng\n\n[Question]\nWhat is this?\n\n[Assistant 1]\nGPT-4 answer 0\n\n"
        "[End of Assistant 1]\n\n[Assistant 2]\nmodel answer 0\n\n[End of Assistant 2]\n\n[System]\n" + RULE + "\n\n")
    assert fake_judge.requests[2]["messages"][1]["content"].startswith("[Context]\nA cat.\nOn a mat.\n\n[Question]")
    assert RULE.startswith("We would like to request your feedback on the performance of two AI assistants")
    assert "describing the image. \nPlease rate the helpfulness" in RULE and RULE.endswith("affect your judgment.")
    metrics = json.loads((out / "model" / "llava_bench.metrics.json").read_text())["llava_bench"]
    # conv: GPT-4 mean (8 + 6) / 2 = 7, model (10 + 3) / 2 = 6.5 -> 6.5 / 7 = 92.9; detail 6.5 / 9 = 72.2;
    # complex: the unparsed review counts as (-1, -1) -> 100.0; all: 22 / 4 = 5.5 and 18.5 / 4 = 4.625 -> 84.1.
    assert metrics["conv/relative"] == pytest.approx(6.5 / 7)
    assert metrics["detail/relative"] == pytest.approx(6.5 / 9) and metrics["complex/relative"] == 1.0
    assert (metrics["relative"], metrics["reference_score"], metrics["model_score"]) == (4.625 / 5.5, 5.5, 4.625)
    assert metrics["unparsed"] == 0.25 and metrics["judge"] == "gpt-4-0314" and metrics["skipped_rows"] == 0
    assert "| model | 84.1 | **84.1** |" in (out / "results.md").read_text()
    # The answers in LLaVA's answers format, for eval_gpt_review_bench.py itself.
    rows = [json.loads(line) for line in (out / "model" / "llava_bench.llava-answers.jsonl").read_text().splitlines()]
    assert rows[1] == {"question_id": 1, "prompt": "Describe the photo in detail.", "text": "model answer 1",
                       "answer_id": "vlit-1", "model_id": "model", "metadata": {}}
    # Scoring again asks nothing: the replies are kept beside the predictions.
    asked = len(fake_judge.requests)
    assert fake_judge.judged_eval("llava_bench", bench, bench / "model.jsonl", out, "gpt-4-0314") == 0
    assert len(fake_judge.requests) == asked == 4


def test_without_a_judge_the_answers_are_written_and_unscored(bench, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(["eval", "--benchmarks", f"llava_bench={bench}", "--predictions", f"llava_bench={bench / 'model.jsonl'}",
                "--out", str(out)]) == 0
    assert "| model | unscored | – |" in capsys.readouterr().out
    metrics = json.loads((out / "model" / "llava_bench.metrics.json").read_text())["llava_bench"]
    assert metrics["unscored"].startswith("no judge model") and metrics["count"] == 4
    assert (out / "model" / "llava_bench.llava-answers.jsonl").exists()


def test_a_folder_without_the_gpt4_answers_is_unscored_even_with_a_judge(bench, tmp_path, fake_judge):
    (bench / "answers_gpt4.jsonl").unlink()
    bench_config = resolve_benchmarks([f"llava_bench={bench}"])[0]
    from vlit.evaluation.judge import Judge
    from vlit.evaluation.runner import score_predictions

    (result,) = score_predictions("m", bench_config, bench / "model.jsonl", tmp_path, Judge(fake_judge.url, "j"))
    assert "answers_gpt4.jsonl" in result.unscored and result.primary is None and not fake_judge.requests


def test_the_real_reviews_parse_and_summarise_as_the_reference():
    """LLaVA's own GPT-4 reviews of LLaVA-1.5-13B (first 3 lines): parse_score gives the stored tuples, and
    summarize_gpt_review.py prints conv 10/8 = 125.0, detail 6.5/9 = 72.2, complex 6/8 = 75.0, all 7.5/8.333 =
    90.0 (means rounded to 3 decimals before dividing: 25/3 -> 8.333)."""
    reviews = _rows(f"{SAMPLES}/reviews/llava-v1.5-13b-eval1.jsonl")
    assert [list(parse_review(r["content"])) for r in reviews] == [r["tuple"] for r in reviews]
    summary = summarize([(r["category"].removeprefix("llava_bench_"), parse_review(r["content"])) for r in reviews])
    assert [round(summary[k] * 100, 1) for k in ("conv/relative", "detail/relative", "complex/relative",
                                                 "relative")] == [125.0, 72.2, 75.0, 90.0]
    assert summary["reference_score"] == 8.333


def test_the_real_answers_judged_with_the_real_reviews_give_the_reference_numbers(tmp_path, fake_judge):
    """LLaVA-1.5-13B's real answers (scored through --predictions) and a judge replying with GPT-4's real reviews
    of them: the relative score is summarize_gpt_review.py's 90.0. The question file is rebuilt from the answers'
    prompts (LLaVA's questions.jsonl is not in the samples); captions and GPT-4 answers are the test's own."""
    answers = _rows(f"{SAMPLES}/answers/llava-v1.5-13b.jsonl")
    reviews = {r["question_id"]: r for r in _rows(f"{SAMPLES}/reviews/llava-v1.5-13b-eval1.jsonl")}
    folder = tmp_path / "bench"
    folder.mkdir()
    _jsonl(folder / "questions.jsonl", [
        {"image": "001.jpg", "text": a["prompt"], "question_id": a["question_id"],
         "category": reviews[a["question_id"]]["category"].removeprefix("llava_bench_")} for a in answers])
    _jsonl(folder / "context.jsonl", [{"id": "001", "image": "001.jpg", "caption": "A volcanic crater."}])
    _jsonl(folder / "answers_gpt4.jsonl", [{"question_id": a["question_id"], "text": "reference"} for a in answers])
    by_answer = {a["text"]: reviews[a["question_id"]]["content"] for a in answers}
    fake_judge.reply = lambda body: by_answer[re.search(r"\[Assistant 2\]\n(.*)\n\n\[End of Assistant 2\]",
                                                        body["messages"][1]["content"], re.S).group(1)]
    samples = load_samples(resolve_benchmarks([f"llava_bench={folder}"])[0], "llava15")
    from vlit.evaluation.judge import Judge, JudgeLog
    from vlit.evaluation.predictions import read_predictions

    predictions = read_predictions(f"{SAMPLES}/answers/llava-v1.5-13b.jsonl", samples)
    metrics = review_llava_bench(predictions, samples, JudgeLog(Judge(fake_judge.url, "j"), tmp_path / "j.jsonl").ask)
    assert round(metrics["relative"] * 100, 1) == 90.0 and round(metrics["conv/relative"] * 100, 1) == 125.0


def test_a_bad_question_row_is_named_and_the_rest_is_read(bench, caplog):
    lines = (bench / "questions.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('"detail"', '"poem"')
    (bench / "questions.jsonl").write_text("\n".join(lines) + "\n")
    samples = load_samples(resolve_benchmarks([f"llava_bench={bench}"])[0], "llava15")
    assert [s.id for s in samples] == ["0", "2", "3"] and samples.skipped == [
        f"{bench}/questions.jsonl:2.category: 'poem' is not one of conv, detail, complex (rule.json's "
        "llava_bench_<category>)"]
    assert "questions.jsonl:2.category" in caplog.text


def test_a_model_run_writes_predictions_then_a_judge_scores_them(bench, checkpoint, tmp_path, fake_judge):
    from PIL import Image

    from vlit.evaluation.judge import Judge
    from vlit.evaluation.runner import run_benchmark
    from vlit.inference.pipeline import Pipeline

    (bench / "images").mkdir()
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (32, 24), "white").save(bench / "images" / name)
    config = resolve_benchmarks([f"llava_bench={bench}"])[0]
    config.max_new_tokens = 3  # LLaVA's 1024 is too long for a test
    pipe = Pipeline.from_pretrained(checkpoint)
    (result,) = run_benchmark(pipe, "debug", config, tmp_path)
    assert result.unscored.startswith("no judge model") and result.count == 4
    predictions = (tmp_path / "debug" / "llava_bench.predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in predictions] == ["0", "1", "2", "3"]
    fake_judge.reply = lambda body: "5 4"
    (result,) = run_benchmark(pipe, "debug", config, tmp_path, judge=Judge(fake_judge.url, "j"))
    assert result.unscored is None and result.primary == 0.8 and len(fake_judge.requests) == 4
