"""Each release layout read into items (image, task record) with its bad rows named by file, row and field."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from vlit.data.convert.items import Item, LLaVARow
from vlit.data.convert.sources import SOURCES
from vlit.data.reading.fields import BadRow
from vlit.data.reading.refer import read_refer
from vlit.data.reading.vqa import find_vqa_files, ranked_answers
from vlit.errors import VlitError


def _read(name: str, path: Path) -> tuple[list[Item | LLaVARow], list[str]]:
    got = list(SOURCES[name].read(path))
    return [g for g in got if not isinstance(g, BadRow)], [g.message for g in got if isinstance(g, BadRow)]


def test_coco_caption_annotations_one_item_per_caption(releases):
    items, bad = _read("coco_caption", releases["coco_caption"])  # the folder: captions_train2017.json found
    assert [(i.id, i.image, i.task.answers) for i in items] == [
        ("10", "000000000001.jpg", ("A dog on a bench.",)), ("11", "000000000001.jpg", ("A brown dog sits.",)),
        ("12", "000000000002.jpg", ("A cat on a mat.",))]
    file = releases["coco_caption"] / "captions_train2017.json"
    assert bad == [f"{file}: annotations[3].caption: expected str, got null",
                   f"{file}: annotations[4].image_id: 7 is not in images"]


def test_coco_caption_karpathy_trains_on_train_and_restval(tmp_path):
    file = tmp_path / "dataset_coco.json"
    file.write_text(json.dumps({"dataset": "coco", "images": [
        {"filepath": "val2014", "filename": "COCO_val2014_000000000042.jpg", "imgid": 0, "cocoid": 42,
         "split": "restval", "sentences": [{"raw": "Two birds.", "tokens": []}, {"raw": "Birds on a wire."}]},
        {"filepath": "val2014", "filename": "COCO_val2014_000000000043.jpg", "imgid": 1, "cocoid": 43,
         "split": "test", "sentences": [{"raw": "A test image."}]},
        {"filepath": "train2014", "filename": "COCO_train2014_000000000009.jpg", "imgid": 2, "cocoid": 9,
         "split": "train", "sentences": [{"raw": "A bus."}]}]}))
    items, bad = _read("coco_caption", file)
    assert [(i.id, i.image, i.task.answers[0]) for i in items] == [
        ("42_0", "val2014/COCO_val2014_000000000042.jpg", "Two birds."),
        ("42_1", "val2014/COCO_val2014_000000000042.jpg", "Birds on a wire."),
        ("9_0", "train2014/COCO_train2014_000000000009.jpg", "A bus.")]
    assert bad == []


def test_coco_caption_lavis_karpathy_list(tmp_path):
    file = tmp_path / "coco_karpathy_train.json"
    file.write_text(json.dumps([
        {"caption": "A bus.", "image": "train2014/COCO_train2014_000000000009.jpg", "image_id": "coco_9"},
        {"caption": "A red bus.", "image": "train2014/COCO_train2014_000000000009.jpg", "image_id": "coco_9"},
        {"image": "train2014/COCO_train2014_000000000010.jpg"}]))
    items, bad = _read("coco_caption", tmp_path)
    assert [(i.id, i.task.answers[0]) for i in items] == [("COCO_train2014_000000000009_0", "A bus."),
                                                          ("COCO_train2014_000000000009_1", "A red bus.")]
    assert bad == [f"{file}[2].caption: missing"]


def test_textcaps(releases):
    items, bad = _read("textcaps", releases["textcaps"])
    assert [(i.id, i.image, i.task.answers) for i in items] == [
        ("0a1b_0", "0a1b.jpg", ("A STOP sign on a pole.",)), ("0a1b_1", "0a1b.jpg", ("Red sign reading STOP.",))]
    assert bad == [f"{releases['textcaps']}: data[2].caption_str: missing"]


@pytest.mark.parametrize("name", ["vqav2", "okvqa"])
def test_vqa_format_answers_ranked_by_annotators(releases, name):
    items, bad = _read(name, releases[name])
    # Question 1: white x4, red x3, "red and white" x3: the majority first, ties in the order first given.
    assert [(i.id, i.image, i.task.type, i.task.question, i.task.answers) for i in items] == [
        ("1", "COCO_train2014_000000000009.jpg", "vqa", "What color is the bus?", ("white", "red", "red and white")),
        ("2", "COCO_train2014_000000000009.jpg", "vqa", "Is it raining?", ("no",)),
        ("3", "COCO_train2014_000000000010.jpg", "vqa", "How many dogs are there?", ("2", "two"))]
    questions, _ = find_vqa_files(releases[name])
    assert bad == [f"{questions}: questions[3].question: missing"]


def test_vqa_files_found_from_the_questions_file_and_errors_name_the_folder(releases, tmp_path):
    questions, annotations = find_vqa_files(releases["vqav2"])
    assert find_vqa_files(questions) == (questions, annotations)
    with pytest.raises(VlitError, match=r"expected one train questions file .* found none"):
        find_vqa_files(tmp_path)


def test_ranked_answers_counts_then_first_appearance():
    assert ranked_answers(["b", "a", " a", "c", "b", ""]) == ("b", "a", "c")


def test_question_generation_sets_give_the_answer_and_ask_for_the_question(releases):
    items, _ = _read("vqav2_qg", releases["vqav2"])
    assert (items[0].task.type, items[0].task.question, items[0].task.answers) == (
        "question_generation", "What color is the bus?", ("white",))
    (item,), _ = _read("aokvqa_qg", releases["aokvqa"])
    assert (item.task.type, item.task.question, item.task.answers) == (
        "question_generation", "What is the man holding?", ("ball",))


def test_vg_qa_folders_from_image_data_and_full_stops_dropped(releases):
    items, bad = _read("vg_qa", releases["vg_qa"])
    assert [(i.id, i.image, i.task.question, i.task.answers) for i in items] == [
        ("100", "VG_100K_2/1.jpg", "What color is the clock?", ("Green",)),
        ("102", "VG_100K/2.jpg", "Who is there?", ("A man",))]
    assert bad == [f"{releases['vg_qa']}[0].qas[1].answer: missing"]


def test_gqa_official_dict(releases):
    items, bad = _read("gqa", releases["gqa"])
    assert [(i.id, i.image, i.task.question, i.task.answers) for i in items] == [
        ("02930152", "2354786.jpg", "Is the sky dark?", ("yes",)),
        ("02930160", "2354786.jpg", "What is on the table?", ("plate",))]
    assert bad == [f"{releases['gqa']}: 02930199.question: missing"]


def test_ocrvqa_train_split_images_named_as_its_downloader_saves_them(releases):
    items, bad = _read("ocrvqa", releases["ocrvqa"])
    assert [(i.id, i.image, i.task.question, i.task.answers) for i in items] == [
        ("111_0", "111.jpg", "Who wrote this book?", ("Jane Doe",)),
        ("111_1", "111.jpg", "Is this a comedy book?", ("Yes",))]
    assert bad == [f"{releases['ocrvqa']}: 333.answers: 0 answers for 1 questions"]


def test_aokvqa_multiple_choice_with_direct_answers(releases):
    items, bad = _read("aokvqa", releases["aokvqa"])
    (item,) = items
    assert (item.id, item.image) == ("22MexNkBPpdZGX6sxbxVBH", "000000299207.jpg")
    task = item.task
    assert (task.type, task.options, task.answer_index, task.answer) == (
        "multiple_choice", ("bat", "ball", "glove", "hat"), 1, "ball")
    assert task.answers == ("ball", "baseball")
    assert bad == [f"{releases['aokvqa']}[1]: task.answer_index: 7 is outside the 2 options"]


def test_refcoco_train_refs_both_directions_with_boxes_in_pixels(releases):
    items, bad = _read("refcoco", releases["refcoco"])
    assert [(i.id, i.image, i.task.type) for i in items] == [
        ("5_7_refer", "COCO_train2014_000000000009.jpg", "refer"),
        ("5_7_identify", "COCO_train2014_000000000009.jpg", "identify"),
        ("5_8_refer", "COCO_train2014_000000000009.jpg", "refer"),
        ("5_8_identify", "COCO_train2014_000000000009.jpg", "identify")]
    refer, identify = items[0].task, items[1].task
    # COCO's [x, y, w, h] = [100, 50, 200, 150] is the pixel box (100, 50, 100 + 200, 50 + 150).
    assert refer.boxes == identify.boxes == ((100.0, 50.0, 300.0, 200.0),)
    assert refer.image_size == (640, 480) and refer.phrase == "man on left" and identify.answers == ("man on left",)
    refs = releases["refcoco"] / "refs(unc).p"
    assert bad == [f"{refs}[2].ann_id: 99 is not an annotation of {releases['refcoco'] / 'instances.json'}"]


def test_refer_reads_every_split_when_asked(releases):
    refs = [r for r in read_refer(releases["refcoco"], split=None) if not isinstance(r, BadRow)]
    assert [(r.ref_id, r.split) for r in refs] == [(5, "train"), (6, "testA")]


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_refs_pickle_that_would_build_objects_is_refused(tmp_path, capsys):
    (tmp_path / "refs(unc).p").write_bytes(pickle.dumps([_Evil()], protocol=2))
    (tmp_path / "instances.json").write_text(json.dumps({"images": [], "annotations": []}))
    # Protocol 2 names Python 3's builtins by their Python 2 module, __builtin__.
    with pytest.raises(VlitError, match=r"refs\(unc\)\.p: not a refer refs pickle \(refuses to build \w+\.print"):
        list(read_refer(tmp_path))
    assert "pwned" not in capsys.readouterr().out


def test_refer_folder_without_instances_is_named(tmp_path):
    (tmp_path / "refs(umd).p").write_bytes(pickle.dumps([], protocol=2))
    with pytest.raises(VlitError, match=r"no instances\.json beside refs\(umd\)\.p"):
        list(read_refer(tmp_path))


def test_llava_rows_pass_through_and_a_bad_row_is_named(releases):
    items, bad = _read("llava_instruct", releases["llava_instruct"])
    assert [i.row["conversations"][1]["value"] for i in items] == ["Skating.", "A man skates."]
    assert bad == [f"{releases['llava_instruct']}[2]: conversations[0].from: expected human, got gpt"]


def test_a_file_in_another_shape_raises_naming_it(tmp_path):
    file = tmp_path / "train_balanced_questions.json"
    file.write_text('"just text"')
    with pytest.raises(VlitError, match="expected GQA's questions keyed by id"):
        list(SOURCES["gqa"].read(file))
    with pytest.raises(VlitError, match=r"no COCO caption file"):
        list(SOURCES["coco_caption"].read(tmp_path))


SHARED = Path("/work/shared/eval-samples")


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared real sample files are not on this machine")
@pytest.mark.parametrize("file", ["testdev_balanced_questions-schema-derived.json",
                                  "testdev_balanced_questions-lavis-schema-derived.json"])
def test_gqa_reader_takes_both_real_shapes(file):
    # GQA's test-dev questions come in the shape of its train questions: the official dict and LAVIS's list.
    items, bad = _read("gqa", SHARED / "gqa" / file)
    assert [(i.id, i.image, i.task.question, i.task.answers) for i in items] == [
        ("201307251", "n161313.jpg", "Is it overcast?", ("no",))]
    assert bad == []
