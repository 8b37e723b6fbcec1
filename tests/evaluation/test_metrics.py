from __future__ import annotations

import shutil

import pytest

from vlit.data.conversation import Conversation
from vlit.data.prompting.boxes import from_grid, iou
from vlit.errors import VlitError
from vlit.evaluation import captioning
from vlit.evaluation.extract import extract_box
from vlit.evaluation.metrics import (
    caption_metrics,
    classification_metrics,
    exact_match,
    metric_for,
    multiple_choice_metrics,
    refer_metrics,
    sample_scores,
    vqa_accuracy,
    vqa_metrics,
    yes_no_metrics,
    yes_no_scores,
)
from vlit.evaluation.samples import EvalSample

needs_java = pytest.mark.skipif(
    shutil.which("java") is None, reason="pycocoevalcap's PTB tokenizer needs java (default-jre-headless)")


def _sample(task: str, references: list, candidates: list[str] | None = None, **meta) -> EvalSample:
    return EvalSample("q", Conversation.single("?", image="x.jpg"), task, references, candidates or [], meta)


# ---- VQA accuracy -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("matches", "expected"), [
    (0, 0.0),
    (1, 0.3),   # 9 subsets hold the match (1/3), 1 does not
    (2, 0.6),   # 8 subsets hold both (2/3), 2 hold one (1/3): (8 * 2/3 + 2 * 1/3) / 10
    (3, 0.9),   # 7 subsets hold all three (1), 3 hold two (2/3)
    (4, 1.0),
    (10, 1.0),
])
def test_vqa_accuracy_leave_one_out(matches: int, expected: float) -> None:
    answers = ["cat"] * matches + ["dog"] * (10 - matches)
    assert vqa_accuracy("cat", answers) == pytest.approx(expected)


def test_vqa_accuracy_normalises_both_sides() -> None:
    assert vqa_accuracy("Two", ["2", "2", "two", "3"] + ["4"] * 6) == pytest.approx(0.9)
    assert vqa_accuracy("a dog", ["dog", "the dog"] + ["cat"] * 8) == pytest.approx(0.6)
    assert vqa_accuracy("dont", ["don't"] * 10) == 1.0
    assert vqa_accuracy("Yes.", ["yes"] * 10) == 1.0
    assert vqa_accuracy("yes", ["no"] * 10) == 0.0


def test_vqa_accuracy_with_one_reference_is_a_match() -> None:
    assert vqa_accuracy("The Cat.", ["cat"]) == 1.0
    assert vqa_accuracy("dog", ["cat"]) == 0.0


def test_vqa_metrics_by_answer_type() -> None:
    samples = [_sample("vqa", ["yes"] * 10, answer_type="yes/no"),
               _sample("vqa", ["2"] * 2 + ["3"] * 8, answer_type="number"),
               _sample("vqa", ["red"] * 10, answer_type="other")]
    out = vqa_metrics(["Yes", "two", "blue"], samples)
    assert out["vqa_accuracy"] == pytest.approx((1.0 + 0.6 + 0.0) / 3)
    assert out["exact_match"] == pytest.approx(2 / 3)
    assert out["vqa_accuracy:yes/no"] == 1.0
    assert out["vqa_accuracy:number"] == pytest.approx(0.6)
    assert out["vqa_accuracy:other"] == 0.0


def test_exact_match() -> None:
    assert exact_match("The red one.", ["red one", "scarlet"]) == 1.0
    assert exact_match("red", ["red one"]) == 0.0


# ---- choices ----------------------------------------------------------------------------------------------

OPTIONS = ["dog", "cat", "black cat", "bird"]


def test_multiple_choice_metrics() -> None:
    samples = [_sample("multiple_choice", ["B"], OPTIONS)] * 4
    out = multiple_choice_metrics(["B", "The answer is A", "cat", "no idea"], samples)
    assert out == {"accuracy": 0.5, "unparsed": 0.25}


def test_classification_metrics() -> None:
    labels = ["t-shirt", "trouser", "sneaker"]
    samples = [_sample("classification", ["sneaker"], labels)] * 3 + [_sample("classification", ["trouser"])]
    out = classification_metrics(["A sneaker.", "It is a t-shirt", "shoe", "Trouser"], samples)
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["unparsed"] == pytest.approx(1 / 4)


# ---- yes / no ---------------------------------------------------------------------------------------------

def test_yes_no_scores_by_hand() -> None:
    out = yes_no_scores(["yes", "yes", "no", "no", "yes"], ["yes", "no", "no", "yes", "yes"])
    # TP 2, FP 1, TN 1, FN 1
    assert out == pytest.approx({"accuracy": 0.6, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3,
                                 "yes_ratio": 0.6})


def test_yes_no_metrics_reads_free_text() -> None:
    samples = [_sample("yes_no", ["yes"]), _sample("yes_no", ["No"])]
    out = yes_no_metrics(["Yes, there is.", "There is no cat."], samples)
    assert out["accuracy"] == 1.0 and out["f1"] == 1.0 and out["yes_ratio"] == 0.5
    with pytest.raises(VlitError, match="expected 'yes' or 'no'"):
        yes_no_metrics(["yes"], [_sample("yes_no", ["maybe"])])


# ---- referring expressions --------------------------------------------------------------------------------

def test_refer_metrics() -> None:
    target = (10.0, 20.0, 50.0, 100.0)
    samples = [_sample("refer", [target], image_size=(100, 200))] * 4
    predictions = ["{<10><10><50><50>}", "[0.10, 0.10, 0.50, 0.50]", "{<40><40><90><90>}", "somewhere left"]
    out = refer_metrics(predictions, samples)
    ious = [iou(from_grid((10, 10, 50, 50), 100, 200), target), 1.0,
            iou(from_grid((40, 40, 90, 90), 100, 200), target), 0.0]
    assert ious[0] > 0.9 and ious[2] < 0.5
    assert out["accuracy"] == 0.5
    assert out["mean_iou"] == pytest.approx(sum(ious) / 4)
    assert out["unparsed"] == 0.25


def test_refer_metrics_needs_the_image_size() -> None:
    with pytest.raises(VlitError, match="image_size"):
        refer_metrics(["{<1><1><2><2>}"], [_sample("refer", [(0.0, 0.0, 1.0, 1.0)])])


# ---- captions ---------------------------------------------------------------------------------------------

CAPTIONS = [["a man riding a red horse on the beach", "a rider on a horse near the sea"],
            ["two cats sleeping on a blue sofa", "cats asleep on a couch"],
            ["an airplane flying over snowy mountains today", "a plane above mountains"]]


@needs_java
def test_caption_metrics_identical_and_disjoint() -> None:
    samples = [_sample("caption", refs) for refs in CAPTIONS]
    firsts = [refs[0] for refs in CAPTIONS]
    same = caption_metrics(firsts, [_sample("caption", [first]) for first in firsts])
    assert same["bleu4"] == pytest.approx(1.0, abs=1e-6)
    # The three images share no word, so every n-gram has full weight: CIDEr-D of an exact copy is 10.
    assert same["cider"] == pytest.approx(10.0)
    disjoint = caption_metrics(["zebra giraffe okapi tapir"] * 3, samples)
    assert disjoint["bleu4"] < 1e-6 and disjoint["cider"] == 0.0
    partial = caption_metrics(firsts, samples)
    assert 0.0 < partial["cider"] < 10.0 and partial["bleu4"] == pytest.approx(1.0, abs=1e-6)


def test_caption_metrics_without_java(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(captioning.shutil, "which", lambda name: None)
    with pytest.raises(VlitError, match="default-jre-headless"):
        caption_metrics(["a cat"], [_sample("caption", ["a cat"])])


# ---- dispatch and checks ----------------------------------------------------------------------------------

def test_metric_for() -> None:
    assert metric_for("vqa") is vqa_metrics
    assert metric_for("multiple_choice") is multiple_choice_metrics
    assert metric_for("refer") is refer_metrics
    with pytest.raises(VlitError, match="judged"):
        metric_for("open")
    with pytest.raises(VlitError, match="no metric"):
        metric_for("detection")  # type: ignore[arg-type]


def test_metrics_check_their_inputs() -> None:
    with pytest.raises(VlitError, match="2 predictions for 1 samples"):
        vqa_metrics(["a", "b"], [_sample("vqa", ["a"])])
    with pytest.raises(VlitError, match="no reference"):
        vqa_metrics(["a"], [_sample("vqa", [])])


def test_predicted_boxes_are_read_in_the_models_frame():
    from vlit.data.loading.transforms import ImageSpec

    # A 200x100 image padded to a square: the model names the box (24, 30, 110, 90) as {<12><40><55><70>}.
    pad = ImageSpec(100, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "pad")
    assert extract_box("{<12><40><55><70>}", (200, 100), pad) == pytest.approx((25, 31, 111, 91))
    assert extract_box("[0.12, 0.40, 0.55, 0.70]", (200, 100), pad) == pytest.approx((24, 30, 110, 90))
    sample = _sample("refer", [(24, 30, 110, 90)], image_size=(200, 100), frame=pad)
    assert refer_metrics(["{<12><40><55><70>}"], [sample])["accuracy"] == 1.0
    sample.meta.pop("frame")  # read on the original instead, the same text misses
    assert refer_metrics(["{<12><40><55><70>}"], [sample])["accuracy"] == 0.0


def test_metric_table_names_every_eval_task_and_every_benchmarks_metric():
    from vlit.evaluation.metrics import METRICS
    from vlit.evaluation.samples import EVAL_TASKS
    from vlit.evaluation.suites import SUITES

    assert tuple(METRICS)[: len(EVAL_TASKS)] == EVAL_TASKS
    assert {s.metric for s in SUITES.values()} | set(EVAL_TASKS) == set(METRICS)
    assert {name: METRICS[name].headline for name in EVAL_TASKS} == {
        "vqa": "vqa_accuracy", "multiple_choice": "accuracy", "classification": "accuracy", "yes_no": "accuracy",
        "caption": "cider", "refer": "accuracy", "open": None}


def test_alternatives_of_one_answer_score_any_match_in_full():
    """A vlit-built row's answers are alternatives ("1", "one"): under the VQA formula a match on both would be
    worth 1/3, as if two of ten people had said it."""
    from vlit.evaluation.metrics import vqa_metrics
    from vlit.evaluation.samples import EvalSample

    voted = EvalSample("v", None, "vqa", ["1", "one"])  # type: ignore[arg-type]
    built = EvalSample("b", None, "vqa", ["1", "one"], meta={"alternatives": True})  # type: ignore[arg-type]
    assert vqa_metrics(["1"], [voted])["vqa_accuracy"] == pytest.approx(1 / 3)
    assert vqa_metrics(["one"], [built])["vqa_accuracy"] == 1.0
    assert vqa_metrics(["2"], [built])["vqa_accuracy"] == 0.0


def test_sample_scores_are_each_answers_own_score():
    samples = [_sample("vqa", ["red"] * 10), _sample("classification", ["coat"], ["bag", "coat"]),
               _sample("yes_no", ["no"]), _sample("refer", [(10, 10, 50, 50)], image_size=(100, 100)),
               _sample("multiple_choice", ["B"], ["bag", "coat"])]
    answers = ["red", "a bag", "no", "{<10><10><50><50>}", "B"]
    assert sample_scores(answers, samples) == [1.0, 0.0, 1.0, 1.0, 1.0]
    # The mean of the per-sample scores is the metric's headline.
    assert sample_scores(["blue", "red"], [samples[0]] * 2) == [0.0, 1.0]
    with pytest.raises(VlitError, match="not a mean over samples"):
        sample_scores(["a cat"], [_sample("caption", ["a cat"])])
