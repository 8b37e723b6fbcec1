"""A benchmark file with bad rows: each row is named in a warning (file, line, field), counted in the metrics
JSON as skipped_rows, and the rest is scored; a file with no readable row, a file that is not there and a
loader called outside a benchmark run still raise. Shown for POPE (whose questions and labels pair by order,
so a bad row drops its partner) and for a generic LLaVA question file."""

from __future__ import annotations

import json

import pytest

from vlit.cli import main as cli
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.loaders import load_llava_questions
from vlit.evaluation.suites import SUITES

SHORT = "Answer the question using a single word or phrase."


def _question(q: int, category: str) -> str:
    return json.dumps({"question_id": q, "image": f"{q}.jpg", "text": f"Is there a thing {q}?\n{SHORT}",
                       "category": category})


@pytest.fixture
def pope(tmp_path):
    folder = tmp_path / "pope"
    (folder / "coco").mkdir(parents=True)
    lines = [_question(1, "adversarial"),
             _question(2, "adversarial")[:30],  # cut short: its category cannot be read
             _question(3, "adversarial"),
             json.dumps({"question_id": 4, "image": "4.jpg", "category": "adversarial"}),  # no text
             _question(10, "random"), _question(11, "random"), _question(12, "random")]
    (folder / "llava_pope_test.jsonl").write_text("\n".join(lines) + "\n")
    labels = {"adversarial": ["yes", "no", "yes", "no"], "random": ["no", "maybe", "yes"]}
    for category, values in labels.items():
        (folder / "coco" / f"coco_pope_{category}.json").write_text(
            "".join(json.dumps({"question_id": i + 1, "label": v}) + "\n" for i, v in enumerate(values)))
    answers = [{"question_id": q, "text": t} for q, t in
               [(1, "Yes"), (2, "No"), (3, "No"), (4, "No"), (10, "No"), (11, "No"), (12, "Yes")]]
    (folder / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in answers))
    return folder


def test_pope_bad_rows_are_named_and_dropped_with_their_partners(pope, tmp_path, caplog):
    q, adversarial, random = (pope / "llava_pope_test.jsonl", pope / "coco" / "coco_pope_adversarial.json",
                              pope / "coco" / "coco_pope_random.json")
    samples = load_samples(resolve_benchmarks([f"pope={pope}"])[0], "llava15")
    assert [(s.id, s.references) for s in samples] == [("1", ["yes"]), ("3", ["yes"]), ("10", ["no"]),
                                                       ("12", ["yes"])]
    # The cut line's category is the one left with a label too many (adversarial: 4 labels, 3 readable rows), so
    # it is the 2nd adversarial question and drops the 2nd adversarial label.
    assert samples.skipped[0].startswith(f"{q}:2: invalid JSON: ")
    assert samples.skipped[0].endswith(f"(skipped with {adversarial}:2, paired with it in order)")
    assert samples.skipped[1:] == [
        f"{q}:4: text: expected a question (skipped with {adversarial}:4, paired with it in order)",
        f"{random}:2.label: 'maybe' is not yes/no (skipped with {q}:6, paired with it in order)"]
    assert all(f"{line} (row skipped)" in caplog.text for line in samples.skipped)
    out = tmp_path / "out"
    assert cli(["eval", "--benchmarks", f"pope={pope}", "--predictions", f"pope={pope / 'answers.jsonl'}",
                "--out", str(out)]) == 0
    metrics = json.loads((out / "answers" / "pope.metrics.json").read_text())["pope"]
    # adversarial: said yes, no to yes, yes -> TP 1, FN 1: F1 2/3; random: no, yes to no, yes -> F1 1; mean 5/6.
    assert metrics["skipped_rows"] == 3 and metrics["count"] == 4
    assert metrics["adversarial/f1"] == pytest.approx(2 / 3) and metrics["f1"] == pytest.approx(5 / 6)
    assert json.loads((out / "results.json").read_text())[0]["skipped_rows"] == 3


def test_pope_refuses_a_bad_row_it_cannot_place(pope):
    lines = (pope / "llava_pope_test.jsonl").read_text().splitlines()
    lines[5] = lines[5][:20]  # a random row cut short too: two categories now have a label too many
    (pope / "llava_pope_test.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(VlitError, match=r"llava_pope_test\.jsonl:2: invalid JSON: .*; its category is unknown, so "
                                        r"the questions of .* can no longer be paired in order"):
        load_samples(resolve_benchmarks([f"pope={pope}"])[0], "llava15")


def test_pope_outside_a_benchmark_run_raises_the_first_bad_row(pope):
    bench = resolve_benchmarks([f"pope={pope}"])[0]
    with pytest.raises(VlitError, match=r"llava_pope_test\.jsonl:2: invalid JSON"):
        SUITES["pope"].read(bench, "llava15", "llava15", 0, None)


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join([
        json.dumps({"question_id": 1, "image": "a.jpg", "text": "Colour?", "answer": "yes"}),
        json.dumps({"question_id": 2, "image": "b.jpg", "text": "Shape?"}),
        json.dumps({"image": "c.jpg", "text": "Size?", "answer": "no"}),
        '{"question_id": 4, "text": ',
        json.dumps({"question_id": 5, "image": "e.jpg", "text": "Count?", "answer": "red"})]) + "\n")
    return path


def test_a_llava_question_file_skips_its_bad_rows_and_scores_the_rest(questions, tmp_path, caplog):
    samples = load_samples(resolve_benchmarks([str(questions)])[0], "llava15")
    assert [s.id for s in samples] == ["1", "5"]
    assert samples.skipped[:2] == [
        f"{questions}:2: no answer for a vqa question (give an answers file, or `answer`, `answers` or `label` in "
        "the row)", f"{questions}:3: question_id: missing"]
    assert samples.skipped[2].startswith(f"{questions}:4: invalid JSON: ") and len(samples.skipped) == 3
    assert caplog.text.count("(row skipped)") == 3
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"question_id": 1, "text": "Yes"}\n{"question_id": 5, "text": "blue"}\n')
    out = tmp_path / "out"
    assert cli(["eval", "--benchmarks", str(questions), "--predictions", f"q={answers}", "--out", str(out)]) == 0
    metrics = json.loads((out / "answers" / "q.metrics.json").read_text())["vqa"]
    # "Yes" matches "yes" after normalisation, "blue" is not "red": 1 of 2.
    assert (metrics["skipped_rows"], metrics["count"], metrics["vqa_accuracy"]) == (3, 2, 0.5)


def test_strict_outside_a_benchmark_run_and_for_unreadable_files(questions, tmp_path):
    with pytest.raises(VlitError, match=r"q\.jsonl:2: no answer for a vqa question"):
        load_llava_questions(questions)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": 1, "text": "x"}\n{"text": "y"}\n')
    with pytest.raises(VlitError, match=r"bad\.jsonl: no readable row \(2 bad; the first: .*bad\.jsonl:1: no answer "
                                        r"for a vqa question"):
        load_samples(resolve_benchmarks([str(bad)])[0], "llava15")
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "coco_pope_random.json").write_text('{"question_id": 1, "label": "yes"}\n' * 2)
    array = tmp_path / "llava_pope_test.jsonl"
    array.write_text('[{"question_id": 1, "text": "x", "category": "random"},')  # a JSON array cut short
    with pytest.raises(VlitError, match=r"llava_pope_test\.jsonl:1:\d+: invalid JSON"):
        load_samples(resolve_benchmarks([f"pope={array}"])[0], "llava15")
