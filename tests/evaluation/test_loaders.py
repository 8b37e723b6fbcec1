"""Each loader on a small file of its public format, written here the way the real benchmark files look."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image

from vlit.data.prompting.templates import TaskRecord
from vlit.data.sources.build import task_row
from vlit.errors import VlitError
from vlit.evaluation import (
    load_coco_captions,
    load_llava_questions,
    load_refexp,
    load_vlit_dataset,
    load_vqav2,
    metric_for,
)

SHORT = "Answer the question using a single word or phrase."
LETTER = "Answer with the option's letter from the given choices directly."


def _json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _user_text(sample) -> str:
    (turn,) = sample.conversation.turns
    assert turn.role == "user"
    return turn.content


# ---- LLaVA evaluation JSONL -------------------------------------------------------------------------------

def test_llava_questions_with_pope_label_file(tmp_path: Path) -> None:
    image = "COCO_val2014_000000016631.jpg"
    questions = _jsonl(tmp_path / "llava_pope_test.jsonl", [
        {"question_id": 1, "image": image, "text": "Is there a person in the image?", "category": "random"},
        {"question_id": 2, "image": image, "text": "Is there a dog in the image?", "category": "random"}])
    # POPE's label files are JSONL although named .json
    labels = _jsonl(tmp_path / "coco_pope_adversarial.json", [
        {"question_id": 1, "image": image, "text": "Is there a person in the image?", "label": "yes"},
        {"question_id": 2, "image": image, "text": "Is there a dog in the image?", "label": "no"}])
    samples = load_llava_questions(questions, tmp_path / "val2014", answers=labels, task="yes_no",
                                   prompt="Answer the question using a single word or phrase.")
    assert [s.id for s in samples] == ["1", "2"]
    assert [s.references for s in samples] == [["yes"], ["no"]]
    assert _user_text(samples[0]) == f"<image>\nIs there a person in the image?\n{SHORT}"
    assert samples[0].conversation.images == [f"{tmp_path}/val2014/COCO_val2014_000000016631.jpg"]
    assert samples[0].meta["category"] == "random"
    scores = metric_for("yes_no")(["Yes, there is.", "Yes"], samples)
    assert scores["accuracy"] == 0.5 and scores["precision"] == 0.5 and scores["recall"] == 1.0


def test_llava_questions_keep_a_prompt_already_there(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "textvqa.jsonl", [
        {"question_id": "a1", "image": "x.jpg", "answers": ["sony", {"answer": "Sony"}],
         "text": f"what brand is it?\nReference OCR token: Sony\n{SHORT}"}])
    (sample,) = load_llava_questions(path, prompt=SHORT)
    assert _user_text(sample).count(SHORT) == 1
    assert sample.references == ["sony", "Sony"] and "answers" not in sample.meta


def test_llava_questions_multiple_choice_options_from_text(tmp_path: Path) -> None:
    text = f"How many towels are there?\nA. One\nB. Two\nC. Three\n{LETTER}"
    path = _jsonl(tmp_path / "seed.jsonl", [{"question_id": 7, "image": "7.png", "text": text, "answer": "B"},
                                            {"question_id": 8, "image": "8.png", "text": text, "answer": 2}])
    samples = load_llava_questions(path, task="multiple_choice")
    assert samples[0].candidates == ["One", "Two", "Three"]
    assert [s.references for s in samples] == [["B"], ["C"]]
    assert metric_for("multiple_choice")(["B", "The answer is B"], samples)["accuracy"] == 0.5


def test_llava_questions_errors_name_file_and_row(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "q.jsonl", [{"question_id": 1, "image": "a.jpg", "text": "What?"},
                                         {"question_id": 2, "image": "b.jpg", "text": "Why?"}])
    answers = _jsonl(tmp_path / "a.jsonl", [{"question_id": 1, "answer": "yes"}])
    with pytest.raises(VlitError, match=r"a\.jsonl: no answer for question_id 2 \(.*q\.jsonl:2\)"):
        load_llava_questions(path, answers=answers)
    with pytest.raises(VlitError, match=r"q\.jsonl:1: no answer for a vqa question"):
        load_llava_questions(path)
    open_ended = load_llava_questions(path, task="open")
    assert [s.references for s in open_ended] == [[], []]
    with pytest.raises(VlitError, match=r"q\.jsonl:1: no options"):
        load_llava_questions(path, answers=answers, task="multiple_choice")


# ---- VQAv2 ------------------------------------------------------------------------------------------------

def _vqa_files(tmp_path: Path) -> tuple[Path, Path]:
    questions = _json(tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json", {
        "info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": "val2014",
        "questions": [{"image_id": 262148, "question": "How many dogs are there?", "question_id": 262148000},
                      {"image_id": 262148, "question": "Is it raining?", "question_id": 262148001},
                      {"image_id": 393225, "question": "What is on the sofa?", "question_id": 393225000}]})

    def ann(qid, image_id, answers, answer_type, question_type):
        return {"question_id": qid, "image_id": image_id, "answer_type": answer_type,
                "question_type": question_type, "multiple_choice_answer": answers[0],
                "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                            for i, a in enumerate(answers)]}

    annotations = _json(tmp_path / "v2_mscoco_val2014_annotations.json", {
        "info": {}, "data_type": "mscoco", "data_subtype": "val2014", "license": {},
        "annotations": [
            ann(262148000, 262148, ["2", "2", "two", "Two"] + ["3"] * 6, "number", "how many"),
            ann(262148001, 262148, ["no"] * 10, "yes/no", "is it"),
            ann(393225000, 393225, ["dog", "a dog", "dogs"] + ["cat"] * 7, "other", "what is")]})
    return questions, annotations


def test_vqav2(tmp_path: Path) -> None:
    questions, annotations = _vqa_files(tmp_path)
    samples = load_vqav2(questions, annotations, tmp_path / "val2014")
    assert [s.id for s in samples] == ["262148000", "262148001", "393225000"]
    assert _user_text(samples[0]) == f"<image>\nHow many dogs are there?\n{SHORT}"
    assert samples[0].conversation.images == [f"{tmp_path}/val2014/COCO_val2014_000000262148.jpg"]
    assert len(samples[0].references) == 10
    assert samples[0].meta == {"question_type": "how many", "answer_type": "number",
                               "multiple_choice_answer": "2", "image_id": 262148,
                               "question": "How many dogs are there?"}
    # "Two" matches "2", "two", "Two" (4 of 10 -> 1.0); "No." matches ten "no"; "A dog" matches 2 of 10 (0.6)
    scores = metric_for("vqa")(["Two", "No.", "A dog"], samples)
    assert scores["vqa_accuracy"] == pytest.approx((1.0 + 1.0 + 0.6) / 3)
    assert scores["vqa_accuracy:other"] == pytest.approx(0.6)


def test_vqav2_minigptv2_style_and_errors(tmp_path: Path) -> None:
    questions, annotations = _vqa_files(tmp_path)
    sample = load_vqav2(questions, annotations, style="minigptv2")[0]
    assert _user_text(sample) == "<image>\n[vqa] How many dogs are there?"
    data = json.loads(annotations.read_text())
    data["annotations"].pop()
    _json(annotations, data)
    with pytest.raises(VlitError, match=r"questions\[2\]\.question_id: 393225000 has no annotation"):
        load_vqav2(questions, annotations)
    data["annotations"][0]["answers"][3] = {"answer_id": 4}
    _json(annotations, data)
    with pytest.raises(VlitError, match=r"annotations\[0\]\.answers\[3\]\.answer: missing"):
        load_vqav2(questions, annotations)
    data["annotations"] = [data["annotations"][1], data["annotations"][1]]
    _json(annotations, data)
    with pytest.raises(VlitError, match=r"annotations\[1\]\.question_id: 262148001 repeats .*annotations\[0\]"):
        load_vqav2(questions, annotations)


# ---- RefCOCO ----------------------------------------------------------------------------------------------

def test_refcoco_refs_json(tmp_path: Path) -> None:
    Image.new("RGB", (200, 100)).save(tmp_path / "COCO_train2014_000000581857.jpg")
    refs = _json(tmp_path / "refcoco_val.json", [
        {"ref_id": 0, "ann_id": 1719310, "image_id": 581857, "split": "val", "category_id": 1,
         "file_name": "COCO_train2014_000000581857_1719310.jpg", "bbox": [10, 20, 30, 40],
         "sentences": [{"tokens": ["the", "lady"], "raw": "The lady", "sent_id": 0, "sent": "the lady"},
                       {"tokens": ["woman"], "raw": "woman", "sent_id": 1, "sent": "woman"}]},
        {"ref_id": 1, "image_id": 581857, "split": "testA", "bbox": [0, 0, 5, 5], "sent": "left guy",
         "width": 640, "height": 480}])
    samples = load_refexp(refs, tmp_path, split="val")
    assert [s.id for s in samples] == ["0:0", "0:1"]
    assert _user_text(samples[0]) == "<image>\n[refer] give me the location of the lady"
    assert samples[0].conversation.images == [f"{tmp_path}/COCO_train2014_000000581857.jpg"]
    assert samples[0].references == [(10.0, 20.0, 40.0, 60.0)]
    assert samples[0].meta["image_size"] == (200, 100)
    (other,) = load_refexp(refs, tmp_path, split="testA")
    assert other.meta["image_size"] == (640, 480) and other.references == [(0.0, 0.0, 5.0, 5.0)]
    # the target box on the grid: x by 200, y by 100
    scores = metric_for("refer")(["{<5><20><20><60>}", "{<60><60><90><90>}"], samples)
    assert scores["accuracy"] == 0.5


def test_refexp_simple_jsonl_and_errors(tmp_path: Path) -> None:
    rows = [{"image": "a.jpg", "expression": "red car", "bbox": [1, 2, 11, 22], "width": 50, "height": 60}]
    path = _jsonl(tmp_path / "refs.jsonl", rows)
    (sample,) = load_refexp(path, box_format="xyxy", style="llava15")
    assert sample.references == [(1.0, 2.0, 11.0, 22.0)]
    assert _user_text(sample).endswith("the region this sentence describes: red car.")
    _jsonl(path, [{"image": "a.jpg", "expression": "red car", "bbox": [1, 2, 3, 4]}])
    with pytest.raises(VlitError, match=r"refs\.jsonl:1: image a\.jpg: no such file"):
        load_refexp(path)
    _jsonl(path, [{"image": "a.jpg", "expression": "x", "bbox": [1, 2, 3], "width": 5, "height": 5}])
    with pytest.raises(VlitError, match=r"refs\.jsonl:1\.bbox: expected 4 numbers"):
        load_refexp(path)
    _jsonl(path, [{"image": "a.jpg", "expression": "x", "bbox": [5, 5, 1, 1], "width": 5, "height": 5}])
    with pytest.raises(VlitError, match=r"refs\.jsonl:1\.bbox: .* is not a xyxy box"):
        load_refexp(path, box_format="xyxy")


# ---- COCO captions ----------------------------------------------------------------------------------------

def test_coco_captions(tmp_path: Path) -> None:
    path = _json(tmp_path / "captions_val2014.json", {
        "info": {}, "licenses": [],
        "images": [{"id": 42, "file_name": "COCO_val2014_000000000042.jpg", "width": 640, "height": 480},
                   {"id": 73, "file_name": "COCO_val2014_000000000073.jpg", "width": 640, "height": 427}],
        "annotations": [{"image_id": 42, "id": 1, "caption": "A dog on a bed. "},
                        {"image_id": 73, "id": 2, "caption": "A motorbike parked."},
                        {"image_id": 42, "id": 3, "caption": "A puppy sleeping."}]})
    samples = load_coco_captions(path, tmp_path / "val2014")
    assert [s.id for s in samples] == ["42", "73"]
    assert samples[0].references == ["A dog on a bed.", "A puppy sleeping."]
    assert _user_text(samples[0]) == "<image>\nDescribe the image concisely."
    assert samples[1].conversation.images == [f"{tmp_path}/val2014/COCO_val2014_000000000073.jpg"]
    minigpt = load_coco_captions(path, style="minigptv2")[0]
    assert _user_text(minigpt) == "<image>\n[caption] Briefly describe this image."


def test_coco_captions_errors(tmp_path: Path) -> None:
    data = {"images": [{"id": 1, "file_name": "1.jpg"}], "annotations": [{"image_id": 2, "caption": "x"}]}
    path = _json(tmp_path / "captions.json", data)
    with pytest.raises(VlitError, match=r"captions\.json: images\[0\]: image 1 has no caption"):
        load_coco_captions(path)
    data["annotations"].append({"image_id": 1, "caption": "y"})
    _json(path, data)
    with pytest.raises(VlitError, match="image_id 2, which is not in images"):
        load_coco_captions(path)


# ---- vlit's own built datasets ----------------------------------------------------------------------------

def test_vlit_dataset(tmp_path: Path) -> None:
    rng = random.Random(0)
    records = [
        TaskRecord("multiple_choice", question="What is shown?", options=("bag", "shirt", "boot"),
                   answer_index=2),
        TaskRecord("classification", question="What fashion item is this?", answers=("boot",),
                   options=("bag", "shirt", "boot"), subject="fashion item"),
        TaskRecord("refer", phrase="the red circle", boxes=((10, 20, 30, 50),), image_size=(100, 100)),
        TaskRecord("counting", question="How many circles?", phrase="circles", answers=("3",)),
        TaskRecord("yes_no", question="Is there a square?", answers=("no",)),
        TaskRecord("caption", answers=("a red circle and a blue square",)),
        TaskRecord("dialogue", dialogue=(("What colour?", "red"), ("What shape?", "circle"))),
        TaskRecord("question_generation", question="What colour is it?", answers=("red",)),
    ]
    rows = [task_row(f"r{i}", f"images/test/{i:05d}.png", r, "scenes_mix", "instructblip", rng)
            for i, r in enumerate(records)]
    path = _json(tmp_path / "test.json", rows)
    with pytest.raises(VlitError, match=r"test\.json\[7\]\.task\.type: vlit has no metric for 'question_gen"):
        load_vlit_dataset(path)
    keep = {"multiple_choice", "classification", "refer", "counting", "yes_no", "caption", "dialogue"}
    samples = load_vlit_dataset(path, types=keep)
    assert [s.task for s in samples] == ["multiple_choice", "classification", "refer", "vqa", "yes_no",
                                         "caption", "vqa"]
    assert samples[0].references == ["C"] and samples[0].candidates == ["bag", "shirt", "boot"]
    assert samples[2].references == [(10, 20, 30, 50)] and samples[2].meta["image_size"] == (100, 100)
    assert samples[3].references == ["3"] and samples[6].references == ["circle"]
    assert samples[0].conversation.images == [f"{tmp_path}/images/test/00000.png"]
    # as_is keeps the row's own (instructblip) question; the answer is gone
    assert samples[0].conversation.turns == [t for t in samples[0].conversation.turns if t.role == "user"]
    assert samples[0].conversation.turns[0].content == rows[0]["conversations"][0]["value"]
    assert samples[0].meta == {"task_type": "multiple_choice", "alternatives": True, "dataset": "scenes_mix"}
    llava = load_vlit_dataset(path, style="llava15", types=keep)
    assert _user_text(llava[0]) == f"<image>\nWhat is shown?\nA. bag\nB. shirt\nC. boot\n{LETTER}"
    dialogue = llava[6].conversation.turns
    assert [t.role for t in dialogue] == ["user", "assistant", "user"]
    assert dialogue[-1].content == f"What shape?\n{SHORT}"
    assert metric_for("vqa")(["Three."], [samples[3]])["vqa_accuracy"] == 1.0


def test_an_image_size_is_not_read_from_a_special_file(special_files):
    from vlit.evaluation.samples import image_size

    for path, reason in special_files.items():
        with pytest.raises(VlitError) as caught:
            image_size(str(path), "refs.jsonl:1")
        assert str(caught.value).startswith(f"refs.jsonl:1: image {path}: {reason} (its size is needed")
