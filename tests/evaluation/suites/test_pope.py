"""POPE from LLaVA's eval kit layout: questions + POPE's per-category label files (JSON Lines under `.json`),
scored as `eval_pope.py` (its yes/no reading rule, per-category F1 / accuracy / precision / recall / yes-ratio),
computed here by hand on a fixture written for the test."""

from __future__ import annotations

import json

import pytest

from vlit.cli import main as cli
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for

SAMPLES = "/work/shared/eval-samples/pope"


@pytest.fixture
def pope(tmp_path):
    folder = tmp_path / "pope"
    (folder / "coco").mkdir(parents=True)
    rows = [(1, "adversarial", "yes"), (2, "adversarial", "no"), (3, "adversarial", "yes"),
            (10, "random", "no"), (11, "random", "yes")]
    questions = [{"question_id": q, "image": f"img{q}.jpg", "text": f"Is there a thing {q}?\nAnswer the question "
                  "using a single word or phrase.", "category": c} for q, c, _ in rows]
    (folder / "llava_pope_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in questions))
    for category in ("adversarial", "random"):
        labels = [{"question_id": q, "label": label} for q, c, label in rows if c == category]
        (folder / "coco" / f"coco_pope_{category}.json").write_text("".join(json.dumps(r) + "\n" for r in labels))
    answers = [{"question_id": 1, "text": "Yes, there is."}, {"question_id": 2, "text": "There is not one."},
               {"question_id": 3, "text": "No"}, {"question_id": 10, "text": "Yes. No doubt."},
               {"question_id": 11, "text": "yes"}]
    (folder / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in answers))
    return folder


def test_pope_reads_labels_by_category_and_scores_as_eval_pope(pope):
    bench = resolve_benchmarks([f"pope={pope}"])[0]
    samples = load_samples(bench, "llava15")
    assert [s.references for s in samples] == [["yes"], ["no"], ["yes"], ["no"], ["yes"]]
    # eval_pope's rule: first sentence, commas dropped, "No"/"no"/"not" -> no, else yes.
    predictions = ["Yes, there is.", "There is not one.", "No", "Yes. No doubt.", "yes"]
    scores = metric_for("pope")(predictions, samples)
    # adversarial: pred yes,no,no vs yes,no,yes -> TP 1, FP 0, TN 1, FN 1: P 1, R 0.5, F1 2/3, acc 2/3, yes 1/3
    assert scores["adversarial/f1"] == pytest.approx(2 / 3)
    assert scores["adversarial/yes_ratio"] == pytest.approx(1 / 3)
    # random: pred yes,yes vs no,yes -> TP 1, FP 1: P 0.5, R 1, F1 2/3, acc 0.5, yes 1
    assert (scores["random/precision"], scores["random/accuracy"], scores["random/yes_ratio"]) == (0.5, 0.5, 1.0)
    assert scores["f1"] == pytest.approx(2 / 3) and scores["accuracy"] == pytest.approx((2 / 3 + 0.5) / 2)


def test_pope_predictions_are_scored_without_a_model(pope, tmp_path, capsys):
    assert cli(["eval", "--benchmarks", f"pope={pope}", "--predictions", f"pope={pope / 'answers.jsonl'}",
                "--out", str(tmp_path / "out")]) == 0
    assert "| answers | 66.7 |" in capsys.readouterr().out


def test_a_label_file_that_does_not_pair_is_named(pope):
    (pope / "coco" / "coco_pope_random.json").write_text('{"question_id": 10, "label": "no"}\n' * 3)
    with pytest.raises(VlitError, match="coco_pope_random.json: 3 labels for 2 random questions"):
        load_samples(resolve_benchmarks([f"pope={pope}"])[0], "llava15")


def test_the_real_llava_files_score_as_eval_pope():
    """LLaVA-1.5-13B's answers to the sampled rows: 6 per category, F1 0.8 in each (computed by eval_pope's
    rule: TP 2, FP 0, FN 1 per category on these rows)."""
    bench = resolve_benchmarks([f"pope={SAMPLES}"])[0]
    samples = load_samples(bench, "llava15")
    from vlit.evaluation.predictions import read_predictions

    scores = metric_for("pope")(read_predictions(f"{SAMPLES}/answers/llava-v1.5-13b.jsonl", samples), samples)
    assert len(samples) == 18 and scores["f1"] == pytest.approx(0.8)
