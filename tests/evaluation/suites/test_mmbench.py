"""MMBench / MMBench-CN from LLaVA's eval kit layout: the TSV with base64 images (decoded to files), LLaVA's
prompt, CircularEval over the TSV's shifted copies or over vlit's own shifts (LLaVA's --all-rounds), answers read
as VLMEvalKit's can_infer, and the submission xlsx of convert_mmbench_for_submission.py; checked by hand on a
TSV written here."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import sys
from pathlib import Path

import pytest
from PIL import Image

from vlit.cli import main as cli
from vlit.data.prompting.styles import LETTER_ANSWER
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for
from vlit.evaluation.predictions import read_predictions
from vlit.evaluation.suites.mmbench import can_infer, mmbench_submission

SAMPLES = "/work/shared/eval-samples/mmbench"
COLUMNS = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "source", "l2-category",
           "comment", "split", "image"]


def _png(colour: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _row(index, question, options, answer, category, l2, hint="", image=None):
    options = (list(options) + ["", "", "", ""])[:4]
    return [str(index), question, hint, *options, answer, category, "src", l2, "", "dev",
            image if image is not None else _png("red")]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


MAIN = [
    _row(1, "What colour is the square?", ["red", "green", "blue"], "A", "color", "attribute_reasoning",
         hint="A toy."),
    # "None" is a missing value to pandas: the options end there, "x" after it is not one.
    _row(2, "Is it day?", ["yes", "no", "None", "x"], "A", "time", "logic_reasoning"),
    # Its image is row 1's (VLMEvalKit's short reference).
    _row(3, "Which animal?", ["cat", "dog"], "B", "color", "attribute_reasoning", image="1"),
]
COPIES = [
    _row(1000001, "What colour is the square?", ["green", "blue", "red"], "C", "color", "attribute_reasoning",
         hint="A toy."),
    _row(2000001, "What colour is the square?", ["blue", "red", "green"], "B", "color", "attribute_reasoning",
         hint="A toy."),
    _row(1000002, "Is it day?", ["no", "yes"], "B", "time", "logic_reasoning"),
]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VLIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def with_copies(tmp_path):
    folder = tmp_path / "mmbench"
    folder.mkdir()
    return _write(folder / "mmbench_dev_20230712.tsv", MAIN + COPIES)


@pytest.fixture
def without_copies(tmp_path):
    folder = tmp_path / "mmbench_new"
    folder.mkdir()
    return _write(folder / "mmbench_dev_en_20231003.tsv", MAIN)


def _samples(path, style="llava15", name="mmbench"):
    return load_samples(resolve_benchmarks([f"{name}={path.parent}"])[0], style)


def test_llava_prompt_and_images_decoded_to_files(with_copies, cache):
    samples = _samples(with_copies)
    assert [s.id for s in samples] == ["1", "2", "3", "1000001", "2000001", "1000002"]
    assert samples[0].conversation.turns[0].content == (
        f"<image>\nA toy.\nWhat colour is the square?\nA. red\nB. green\nC. blue\n{LETTER_ANSWER}")
    assert samples[1].conversation.turns[0].content == f"<image>\nIs it day?\nA. yes\nB. no\n{LETTER_ANSWER}"
    (image,) = samples[0].conversation.images
    assert Path(image).parent.parent == cache / "mmbench" and Image.open(image).size == (4, 4)
    assert samples[2].conversation.images == [image]  # row 3 shares row 1's image
    assert [s.meta["group"] for s in samples] == [1, 2, 3, 1, 1, 2]
    cn = _samples(with_copies, name="mmbench_cn")
    assert cn[1].conversation.turns[0].content.endswith("\nA. yes\nB. no\n请直接回答选项字母。")


def test_circular_accuracy_over_the_tsvs_copies_by_hand(with_copies):
    samples = _samples(with_copies)
    # rows:         1 (A)  2 (A)               3 (B)  1000001 (C)  2000001 (B)  1000002 (B)
    predictions = ["A", "The answer is A", "dog", "C. red", "red", "A"]
    scores = metric_for("mmbench")(predictions, samples)
    # can_infer: A; A (the one letter standing alone); dog -> B by text; C; red -> B by text; A (wrong).
    # Groups: 1 = {1, 1000001, 2000001} all right; 2 = {2, 1000002} one wrong; 3 = {3} right -> 2/3.
    assert scores["circular_accuracy"] == pytest.approx(2 / 3)
    assert scores["shift_accuracy"] == pytest.approx(5 / 6)
    assert scores["color/circular_accuracy"] == 1.0 and scores["time/circular_accuracy"] == 0.0
    assert scores["attribute_reasoning/circular_accuracy"] == 1.0
    assert scores["logic_reasoning/circular_accuracy"] == 0.0


def test_without_copies_every_shift_is_asked(without_copies, tmp_path):
    samples = _samples(without_copies)
    assert [s.id for s in samples] == ["1#r0", "1#r1", "1#r2", "2#r0", "2#r1", "3#r0", "3#r1"]
    # Round r shows the options shifted by r (LLaVA's --all-rounds); the answer letter follows "red".
    assert [s.candidates for s in samples[:3]] == [["red", "green", "blue"], ["green", "blue", "red"],
                                                   ["blue", "red", "green"]]
    assert [s.references[0] for s in samples] == ["A", "C", "B", "A", "B", "B", "A"]
    assert "\nA. green\nB. blue\nC. red\n" in samples[1].conversation.turns[0].content
    # LLaVA's --all-rounds answers repeat the question id, round by round.
    answers = tmp_path / "answers.jsonl"
    texts = [(1, "A"), (1, "C"), (1, "B"), (2, "A"), (2, "A"), (3, "B"), (3, "A")]
    answers.write_text("".join(json.dumps({"question_id": q, "round_id": 0, "text": t}) + "\n" for q, t in texts))
    scores = metric_for("mmbench")(read_predictions(answers, samples), samples)
    # q1 all three right; q2 second round wrong (A, answer B); q3 both right -> 2/3; rows 6/7.
    assert scores["circular_accuracy"] == pytest.approx(2 / 3)
    assert scores["shift_accuracy"] == pytest.approx(6 / 7)


def test_can_infer_as_vlmevalkit():
    options = ["red", "green", "blue"]
    assert can_infer("B", options) == "B"
    assert can_infer("(C) blue", options) == "C"
    assert can_infer("A or B", options) is None  # two letters: nothing
    assert can_infer("It is green.", options) == "B"  # no letter: by the option's text
    assert can_infer("red and green", options) is None
    assert can_infer("D", options) is None  # not an option letter
    assert can_infer("Cannot determine the answer", options) == "Z"


def test_submission_is_llavas_xlsx(with_copies, tmp_path):
    samples = _samples(with_copies)
    path = mmbench_submission(samples, ["A", "B", "dog", "C", "B", "A"], tmp_path)
    from openpyxl import load_workbook

    rows = list(load_workbook(path).active.values)
    assert path.name == "mmbench_dev_20230712.xlsx"
    assert rows[0] == ("index", "question", "A", "B", "C", "D", "prediction", "answer", "split")
    assert rows[1] == (1, "What colour is the square?", "red", "green", "blue", None, "A", "A", "dev")
    assert rows[2][:7] == (2, "Is it day?", "yes", "no", None, "x", "B")  # cells kept as the TSV has them
    assert [r[6] for r in rows[1:]] == ["A", "B", "dog", "C", "B", "A"]


def test_submission_without_openpyxl_is_the_same_columns_as_tsv(with_copies, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # what an environment without it gives
    samples = _samples(with_copies)
    path = mmbench_submission(samples, ["A"] * len(samples), tmp_path)
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert path.suffix == ".tsv" and rows[0][6] == "prediction" and rows[1][:3] == ["1", "What colour is the square?",
                                                                                     "red"]


def test_a_test_split_is_asked_but_not_scored(tmp_path, capsys):
    folder = tmp_path / "test_split"
    folder.mkdir()
    rows = [[*r[:7], "", *r[8:]] for r in MAIN]  # no answers
    _write(folder / "mmbench_test_en_20231003.tsv", rows)
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"question_id": q, "text": "A"}) + "\n" for q in (1, 1, 1, 2, 2, 3, 3)))
    assert cli(["eval", "--benchmarks", f"mmbench={folder}", "--predictions", f"mmbench={answers}",
                "--out", str(tmp_path / "out")]) == 0
    metrics = json.loads((tmp_path / "out" / "answers" / "mmbench.metrics.json").read_text())
    assert math.isnan(metrics["mmbench"]["circular_accuracy"])
    assert (tmp_path / "out" / "answers" / "mmbench_test_en_20231003.xlsx").exists()


def test_bad_rows_are_named(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    path = _write(folder / "mmbench_dev.tsv", [MAIN[0], _row(2, "Q?", ["a", "b"], "C", "c", "l")])
    with pytest.raises(VlitError, match=r"mmbench_dev\.tsv:3\.answer: 'C' is not the letter of one of the 2"):
        load_samples(resolve_benchmarks([f"mmbench={path}"])[0], "llava15")
    _write(path, [MAIN[0], _row(2, "Q?", ["a", "b"], "A", "c", "l", image="@" * 100)])
    with pytest.raises(VlitError, match=r"mmbench_dev\.tsv:3\.image: not a PNG"):
        load_samples(resolve_benchmarks([f"mmbench={path}"])[0], "llava15")
    _write(path, [MAIN[0], MAIN[0]])
    with pytest.raises(VlitError, match=r"mmbench_dev\.tsv:3\.index: 1 repeats an earlier row"):
        load_samples(resolve_benchmarks([f"mmbench={path}"])[0], "llava15")


def test_llavas_recorded_answers_on_the_real_rows(tmp_path):
    """The real rows (upload file + LLaVA-1.5-13B's answers, no real image) rebuilt as a TSV with a stand-in
    image: vlit asks LLaVA's recorded prompt (the hint from it), and its answers are all right."""
    answers = [json.loads(line) for line in
               Path(f"{SAMPLES}/answers/mmbench_dev_20230712/llava-v1.5-13b.jsonl").read_text().splitlines()]
    with open(f"{SAMPLES}/answers_upload/mmbench_dev_20230712/llava-v1.5-13b.first-rows.tsv",
              newline="", encoding="utf-8") as f:
        upload = {int(r["index"]): r for r in csv.DictReader(f, delimiter="\t")}
    rows = []
    for answer in answers:
        row = upload[answer["question_id"]]
        hint = answer["prompt"][: answer["prompt"].index("\n" + row["question"])]
        rows.append(_row(row["index"], row["question"], [row[c] for c in "ABCD"], row["answer"], "c", "l", hint))
    folder = tmp_path / "real"
    folder.mkdir()
    _write(folder / "mmbench_dev_20230712.tsv", rows)
    samples = [s for s in _samples(folder / "x.tsv") if s.meta["shift"] == 0]
    for sample, answer in zip(samples, answers, strict=True):
        assert sample.conversation.turns[0].content == f"<image>\n{answer['prompt']}\n{LETTER_ANSWER}"
        assert can_infer(answer["text"], sample.candidates) == sample.references[0]  # B, B, A: all right


@pytest.mark.parametrize(("style", "letters"), [("llava15", False), ("instructblip", True)])
def test_a_run_on_the_debug_model_reads_the_decoded_images(checkpoint, with_copies, tmp_path, style, letters):
    from vlit.evaluation.runner import run_benchmark
    from vlit.inference.pipeline import Pipeline

    bench = resolve_benchmarks([f"mmbench={with_copies.parent}"])[0]
    bench.max_new_tokens = 4
    (result,) = run_benchmark(Pipeline.from_pretrained(checkpoint), "debug", bench, tmp_path, style=style)
    rows = [json.loads(line) for line in (tmp_path / "debug" / "mmbench.predictions.jsonl").open()]
    assert len(rows) == 6 and result.task == "mmbench"
    if letters:  # InstructBLIP ranks the shown options: the answer is one of their letters
        assert all(r["prediction"] in "ABC" and r["scores"] for r in rows)
    assert (tmp_path / "debug" / "mmbench_dev_20230712.xlsx").exists()
