"""Tiny releases in each training set's own layout, written by the tests (never copied from the real files):
a few good rows each, and in most a bad row whose one-line reason the tests check."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

REFCOCO_BOX = [100, 50, 200, 150]
"""COCO [x, y, w, h] of ref 5 on its 640 x 480 image: pixels (100, 50, 300, 200)."""


def _json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def _vqa_files(folder: Path, questions_name: str, annotations_name: str) -> Path:
    answers = ["red"] * 3 + ["white"] * 4 + ["red and white"] * 3
    _json(folder / questions_name, {"data_subtype": "train2014", "questions": [
        {"question_id": 1, "image_id": 9, "question": "What color is the bus?"},
        {"question_id": 2, "image_id": 9, "question": "Is it raining?"},
        {"question_id": 3, "image_id": 10, "question": "How many dogs are there?"},
        {"question_id": 4, "image_id": 10}]})
    _json(folder / annotations_name, {"annotations": [
        {"question_id": 1, "image_id": 9, "answers": [{"answer": a} for a in answers],
         "multiple_choice_answer": "white"},
        {"question_id": 2, "image_id": 9, "answers": [{"answer": "no"}] * 10},
        {"question_id": 3, "image_id": 10, "answers": [{"answer": "2"}] * 9 + [{"answer": "two"}]},
        {"question_id": 4, "image_id": 10, "answers": [{"answer": "3"}] * 10}]})
    return folder


def _refcoco(folder: Path) -> Path:
    folder.mkdir(parents=True)
    refs = [
        {"ref_id": 5, "ann_id": 50, "image_id": 9, "split": "train", "category_id": 1,
         "sentences": [{"sent_id": 7, "sent": "man on left", "raw": "Man on left"},
                       {"sent_id": 8, "sent": "guy in red", "raw": "guy in red!"}]},
        {"ref_id": 6, "ann_id": 51, "image_id": 9, "split": "testA", "category_id": 1,
         "sentences": [{"sent_id": 9, "sent": "a test ref"}]},
        {"ref_id": 7, "ann_id": 99, "image_id": 9, "split": "train", "category_id": 1,
         "sentences": [{"sent_id": 10, "sent": "no such annotation"}]},
    ]
    # refer's own files are Python 2 pickles (protocol 2).
    (folder / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    _json(folder / "instances.json", {
        "images": [{"id": 9, "file_name": "COCO_train2014_000000000009.jpg", "width": 640, "height": 480}],
        "annotations": [{"id": 50, "image_id": 9, "bbox": REFCOCO_BOX, "category_id": 1},
                        {"id": 51, "image_id": 9, "bbox": [0, 0, 10, 10], "category_id": 1}],
        "categories": [{"id": 1, "name": "person"}]})
    return folder


def write_releases(root: Path) -> dict[str, Path]:
    """Every layout under `root`; name -> the PATH a user would give."""
    human = {"from": "human", "value": "<image>\nWhat is the man doing?"}
    paths = {
        "coco_caption": _json(root / "coco" / "annotations" / "captions_train2017.json", {
            "images": [{"id": 1, "file_name": "000000000001.jpg", "width": 640, "height": 480},
                       {"id": 2, "file_name": "000000000002.jpg", "width": 640, "height": 480}],
            "annotations": [{"id": 10, "image_id": 1, "caption": "A dog on a bench."},
                            {"id": 11, "image_id": 1, "caption": " A brown dog sits. "},
                            {"id": 12, "image_id": 2, "caption": "A cat on a mat."},
                            {"id": 13, "image_id": 2},
                            {"id": 14, "image_id": 7, "caption": "A ghost."}]}).parent,
        "textcaps": _json(root / "textcaps" / "TextCaps_0.1_train.json", {"dataset_name": "textcaps", "data": [
            {"image_id": "0a1b", "caption_id": 1, "caption_str": "A STOP sign on a pole."},
            {"image_id": "0a1b", "caption_id": 2, "caption_str": "Red sign reading STOP."},
            {"image_id": "0c2d", "caption_id": 3}]}),
        "vqav2": _vqa_files(root / "vqav2", "v2_OpenEnded_mscoco_train2014_questions.json",
                            "v2_mscoco_train2014_annotations.json"),
        "okvqa": _vqa_files(root / "okvqa", "OpenEnded_mscoco_train2014_questions.json",
                            "mscoco_train2014_annotations.json"),
        "vg_qa": _json(root / "vg" / "question_answers.json", [
            {"id": 1, "qas": [{"qa_id": 100, "image_id": 1, "question": "What color is the clock?", "answer": "Green."},
                              {"qa_id": 101, "image_id": 1, "question": "Where is it?"}]},
            {"id": 2, "qas": [{"qa_id": 102, "image_id": 2, "question": "Who is there?", "answer": "A man."}]}]),
        "aokvqa": _json(root / "aokvqa" / "aokvqa_v1p0_train.json", [
            {"split": "train", "image_id": 299207, "question_id": "22MexNkBPpdZGX6sxbxVBH",
             "question": "What is the man holding?", "choices": ["bat", "ball", "glove", "hat"],
             "correct_choice_idx": 1, "direct_answers": ["ball"] * 6 + ["baseball"] * 4, "rationales": []},
            {"split": "train", "image_id": 57, "question_id": "bad", "question": "Which?",
             "choices": ["a", "b"], "correct_choice_idx": 7, "direct_answers": ["a"]}]),
        "ocrvqa": _json(root / "ocr_vqa" / "dataset.json", {
            "111": {"imageURL": "http://ecx.images-amazon.com/images/I/51x.jpg", "title": "T", "genre": "Humor",
                    "questions": ["Who wrote this book?", "Is this a comedy book?"], "answers": ["Jane Doe", "Yes"],
                    "split": 1},
            "222": {"imageURL": "http://ecx.images-amazon.com/images/I/52y.jpg", "questions": ["Who?"],
                    "answers": ["Bob"], "split": 3},
            "333": {"imageURL": "http://ecx.images-amazon.com/images/I/53z.gif", "questions": ["Who?"],
                    "answers": [], "split": 1}}),
        "gqa": _json(root / "gqa" / "train_balanced_questions.json", {
            "02930152": {"imageId": "2354786", "question": "Is the sky dark?", "answer": "yes",
                         "fullAnswer": "Yes, the sky is dark."},
            "02930160": {"imageId": "2354786", "question": "What is on the table?", "answer": "plate"},
            "02930199": {"imageId": "2354786"}}),
        "refcoco": _refcoco(root / "refcoco"),
        "llava_instruct": _json(root / "llava" / "llava_instruct_150k.json", [
            {"id": "000000033471", "image": "000000033471.jpg",
             "conversations": [human, {"from": "gpt", "value": "Skating."}]},
            {"id": "000000033471", "image": "000000033471.jpg",
             "conversations": [{"from": "human", "value": "Describe the image.\n<image>"},
                               {"from": "gpt", "value": "A man skates."}]},
            {"id": "x", "image": "x.jpg", "conversations": [{"from": "gpt", "value": "no question"}]}]),
    }
    _json(root / "vg" / "image_data.json", [
        {"image_id": 1, "url": "https://cs.stanford.edu/people/rak248/VG_100K_2/1.jpg", "width": 800, "height": 600},
        {"image_id": 2, "url": "https://cs.stanford.edu/people/rak248/VG_100K/2.jpg", "width": 800, "height": 600}])
    return paths


@pytest.fixture
def releases(tmp_path: Path) -> dict[str, Path]:
    return write_releases(tmp_path / "releases")


def _write_images(rows_file: Path, root: Path) -> None:
    """An image file for every image a converted file's rows name, under `root` (its task's size, else 64 x 48),
    so that `vlit data validate --images root` opens real files."""
    text = rows_file.read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines()] if rows_file.suffix == ".jsonl" else json.loads(text)
    for row in rows:
        records = [row["task"]] if "task" in row else row.get("tasks", [{}])
        size = tuple(records[0].get("image_size", (64, 48)))
        path = root / row["image"]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", size, (120, 90, 60)).save(path, format="PNG")


@pytest.fixture
def write_images():
    """`write_images(rows_file, root)`: an image for every row of a converted file (see `_write_images`)."""
    return _write_images
