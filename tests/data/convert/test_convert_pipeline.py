"""Converted rows: each style's prompts, InstructBLIP's seeded templates, LLaVA-1.5's option orders and merge,
boxes in each style's units (computed by hand), held-out sets refused, and rows that re-render at load time
exactly as written."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from vlit.config.data import DatasetConfig
from vlit.data.convert.items import Item
from vlit.data.convert.pipeline import convert, convert_set, merge_groups, option_orders
from vlit.data.convert.sources import source_for
from vlit.data.loading.dataset import load_dataset
from vlit.data.loading.transforms import ImageSpec
from vlit.data.prompting.templates import TaskRecord, load_templates
from vlit.errors import VlitError

SHORT = "Answer the question using a single word or phrase."
LETTER = "Answer with the option's letter from the given choices directly."


def _pairs(row: dict) -> list[tuple[str, str]]:
    turns = [t["value"] for t in row["conversations"]]
    return list(zip(turns[::2], turns[1::2], strict=True))


@pytest.mark.parametrize(("style", "question", "caption"), [
    ("llava15", f"<image>\nWhat color is the bus?\n{SHORT}", "<image>\nDescribe the image concisely."),
    ("minigptv2", "<image>\n[vqa] What color is the bus?", "<image>\n[caption] Briefly describe this image."),
    # InstructBLIP: a template drawn per row with random.Random("vlit-convert:0:<set>:<row id>") (goldens).
    ("instructblip", "<image>\nQ: What color is the bus? A:",
     "<image>\nPlease provide a short depiction of the picture."),
])
def test_each_style_asks_with_its_own_prompts(releases, style, question, caption):
    vqa = convert_set("vqav2", releases["vqav2"], style).rows[0]
    assert vqa["id"] == "vqav2-1" and vqa["dataset"] == "vqav2"
    assert _pairs(vqa) == [(question, "white")]
    assert vqa["task"] == {"type": "vqa", "answers": ["white", "red", "red and white"], "category": "vqa",
                           "question": "What color is the bus?"}
    coco = convert_set("coco_caption", releases["coco_caption"], style).rows[0]
    assert _pairs(coco) == [(caption, "A dog on a bench.")]


def test_instructblip_templates_are_the_task_files_filled_in():
    question = "What color is the bus?"
    filled = {f"<image>\n{t.format(question=question)}" for t in load_templates()["vqa"]}
    assert "<image>\nQ: What color is the bus? A:" in filled


def _many_questions(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    questions = [{"question_id": i, "image_id": i, "question": f"What is object {i}?"} for i in range(n)]
    annotations = [{"question_id": i, "image_id": i, "answers": [{"answer": f"thing {i}"}]} for i in range(n)]
    (folder / "v2_OpenEnded_mscoco_train2014_questions.json").write_text(
        json.dumps({"data_subtype": "train2014", "questions": questions}))
    (folder / "v2_mscoco_train2014_annotations.json").write_text(json.dumps({"annotations": annotations}))
    return folder


def test_instructblip_draws_one_template_per_example_seeded_by_row(tmp_path):
    folder = _many_questions(tmp_path / "vqav2", 40)
    prompts = [r["conversations"][0]["value"] for r in convert_set("vqav2", folder, "instructblip").rows]
    templates = load_templates()["vqa"]
    used = {next(t for t in templates if f"<image>\n{t.format(question=f'What is object {i}?')}" == p)
            for i, p in enumerate(prompts)}
    assert len(used) >= 6  # 40 draws over the 10-15 templates of vqa.yaml
    assert prompts == [r["conversations"][0]["value"] for r in convert_set("vqav2", folder, "instructblip").rows]
    assert prompts != [r["conversations"][0]["value"] for r in convert_set("vqav2", folder, "instructblip",
                                                                           seed=1).rows]
    # A row's draw depends on the seed, the set and its id only, not on the rows before it.
    expected = random.Random("vlit-convert:0:vqav2:vqav2-7").choice(templates).format(question="What is object 7?")
    assert prompts[7] == f"<image>\n{expected}"


def test_option_orders_put_the_right_option_at_every_letter():
    task = TaskRecord("multiple_choice", question="q?", options=("bat", "ball", "glove", "hat"), answer_index=1)
    orders = option_orders(task)
    assert [o.options for o in orders] == [("bat", "ball", "glove", "hat"), ("ball", "glove", "hat", "bat"),
                                           ("glove", "hat", "bat", "ball"), ("hat", "bat", "ball", "glove")]
    assert [o.answer for o in orders] == ["ball"] * 4 and [o.answer_index for o in orders] == [1, 0, 3, 2]


def test_llava15_writes_aokvqa_once_per_option_order(releases):
    rows = convert_set("aokvqa", releases["aokvqa"], "llava15").rows
    assert [r["id"] for r in rows] == [f"aokvqa-22MexNkBPpdZGX6sxbxVBH#{k}" for k in range(4)]
    q = "<image>\nWhat is the man holding?"
    # Right option "ball": second of bat, ball, glove, hat -> B; rotated once -> A; twice -> D; three times -> C.
    assert [_pairs(r) for r in rows] == [
        [(f"{q}\nA. bat\nB. ball\nC. glove\nD. hat\n{LETTER}", "B")],
        [(f"{q}\nA. ball\nB. glove\nC. hat\nD. bat\n{LETTER}", "A")],
        [(f"{q}\nA. glove\nB. hat\nC. bat\nD. ball\n{LETTER}", "D")],
        [(f"{q}\nA. hat\nB. bat\nC. ball\nD. glove\n{LETTER}", "C")]]
    assert rows[1]["task"]["options"] == ["ball", "glove", "hat", "bat"] and rows[1]["task"]["answer_index"] == 0


@pytest.mark.parametrize(("style", "prompt", "answer"), [
    ("instructblip", "<image>\nCandidates: bat, ball, glove, hat. What is the man holding? Short answer:", "ball"),
    ("minigptv2", "<image>\n[vqa] What is the man holding? Choose from: bat, ball, glove, hat.", "ball"),
])
def test_other_styles_write_aokvqa_once(releases, style, prompt, answer):
    (row,) = convert_set("aokvqa", releases["aokvqa"], style).rows
    assert _pairs(row) == [(prompt, answer)]


# RefCOCO ref 5: COCO box [100, 50, 200, 150] on a 640 x 480 image -> pixels (100, 50, 300, 200).
# LLaVA-1.5, 0..1 to two decimals: 100/640 = 0.15625 -> 0.16, 50/480 = 0.104 -> 0.10, 300/640 = 0.46875 -> 0.47,
# 200/480 = 0.4167 -> 0.42. MiniGPT-v2, int(v / side * 100): 15.6 -> 15, 10.4 -> 10, 46.9 -> 46, 41.7 -> 41.
UNIT = "[0.16, 0.10, 0.47, 0.42]"
GRID = "{<15><10><46><41>}"


@pytest.mark.parametrize(("style", "rec", "reg"), [
    ("llava15", ("<image>\nPlease provide the bounding box coordinate of the region this sentence describes: "
                 "man on left.", UNIT),
     (f"<image>\nPlease provide a short description for this region: {UNIT}.", "man on left")),
    ("minigptv2", ("<image>\n[refer] give me the location of man on left", GRID),
     (f"<image>\n[identify] what is this {GRID}", "man on left")),
])
def test_refcoco_rec_and_reg_with_boxes_in_each_styles_units(releases, style, rec, reg):
    rows = convert_set("refcoco", releases["refcoco"], style).rows
    assert [r["id"] for r in rows] == ["refcoco-5_7_refer", "refcoco-5_7_identify", "refcoco-5_8_refer",
                                       "refcoco-5_8_identify"]
    assert _pairs(rows[0]) == [rec] and _pairs(rows[1]) == [reg]
    assert rows[0]["task"]["boxes"] == [[100.0, 50.0, 300.0, 200.0]] and rows[0]["task"]["image_size"] == [640, 480]


def test_merge_qa_joins_an_images_questions_into_one_multi_turn_row(releases):
    rows = convert_set("vqav2", releases["vqav2"], "llava15", merge_qa=True).rows
    assert [r["id"] for r in rows] == ["vqav2-1", "vqav2-3"]
    assert _pairs(rows[0]) == [(f"<image>\nWhat color is the bus?\n{SHORT}", "white"),
                               (f"Is it raining?\n{SHORT}", "no")]
    assert [t["question"] for t in rows[0]["tasks"]] == ["What color is the bus?", "Is it raining?"]
    assert "task" not in rows[0] and rows[1]["task"]["question"] == "How many dogs are there?"
    (refcoco,) = convert_set("refcoco", releases["refcoco"], "llava15", merge_qa=True).rows
    assert [t["type"] for t in refcoco["tasks"]] == ["refer", "identify", "refer", "identify"]
    assert sum(t["value"].count("<image>") for t in refcoco["conversations"]) == 1


def test_merge_keeps_first_appearance_order_and_its_limit():
    def item(i: int, image: str, kind: str = "vqa") -> Item:
        task = (TaskRecord("vqa", question=f"q{i}?", answers=("a",)) if kind == "vqa"
                else TaskRecord("caption", answers=(f"c{i}",)))
        return Item(str(i), image, task)

    items = [item(i, "a.jpg") for i in range(12)] + [item(12, "b.jpg"), item(13, "a.jpg", "caption"),
                                                     item(14, "b.jpg")]
    items.insert(3, item(99, "b.jpg"))
    groups = [[i.id for i in g] for g in merge_groups(items, limit=9)]
    # a.jpg: its first 9 questions, then a group (where the 10th stands) for the other 3; b.jpg's three
    # together; the caption alone.
    assert groups == [["0", "1", "2", "3", "4", "5", "6", "7", "8"], ["99", "12", "14"], ["9", "10", "11"], ["13"]]


def test_rows_restyle_at_load_time_as_written_and_boxes_follow_a_padded_frame(releases, tmp_path):
    out = tmp_path / "data"
    convert([("refcoco", releases["refcoco"]), ("vqav2", releases["vqav2"])], "llava15", out, merge_qa=True)
    for name in ("refcoco", "vqav2"):
        written = json.loads((out / f"{name}.json").read_text())
        loaded = load_dataset(DatasetConfig(name, str(out / f"{name}.json"), style="llava15"))
        assert [[t.content for t in c.turns] for c in loaded.conversations] == \
            [[t["value"] for t in r["conversations"]] for r in written]
    # LLaVA-1.5 pads 640 x 480 to a 640 square (80 px above), then 336 px: (100, 50, 300, 200) -> y + 80 and
    # x 0.525: (52.5, 68.25, 157.5, 147.0) / 336 = 0.156, 0.203, 0.469, 0.4375 -> [0.16, 0.20, 0.47, 0.44].
    frame = ImageSpec(336, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "pad")
    padded = load_dataset(DatasetConfig("refcoco", str(out / "refcoco.json"), style="llava15"), image_spec=frame)
    assert padded.conversations[0].turns[1].content == "[0.16, 0.20, 0.47, 0.44]"


def test_held_out_sets_are_refused_per_paper():
    with pytest.raises(VlitError, match=r"^gqa: held out in InstructBLIP's split \(evaluated zero-shot"):
        source_for("gqa", "instructblip")
    assert source_for("gqa", "llava15").title == "GQA"  # LLaVA-1.5 trains on GQA
    for name, style in (("vizwiz", "instructblip"), ("ScienceQA", "instructblip"), ("vizwiz", "llava15"),
                        ("textvqa", "llava15"), ("hateful_memes", "minigptv2"), ("nocaps", "instructblip")):
        with pytest.raises(VlitError, match="held out"):
            source_for(name, style)
    with pytest.raises(VlitError, match=r"^cifar: not a training set vlit converts \(known: coco_caption, "):
        source_for("cifar", "llava15")


def test_requests_refused_before_reading(releases, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(VlitError, match=r"--merge-qa: LLaVA-1.5's merge"):
        convert([("vqav2", releases["vqav2"])], "minigptv2", out, merge_qa=True)
    with pytest.raises(VlitError, match=r"--images: 'gqa' is not one of the sets given \(vqav2\)"):
        convert([("vqav2", releases["vqav2"])], "llava15", out, images={"gqa": "gqa/images"})
    with pytest.raises(VlitError, match="vqav2: given more than once"):
        convert([("vqav2", releases["vqav2"])] * 2, "llava15", out)
    with pytest.raises(VlitError, match="held out"):  # the held-out set last: nothing is read or written
        convert([("vqav2", releases["vqav2"]), ("gqa", releases["gqa"])], "instructblip", out)
    assert not out.exists()


def test_image_folders_samples_and_one_file_for_every_set(releases, tmp_path):
    out = tmp_path / "mix.jsonl"
    done = convert([("vqav2", releases["vqav2"]), ("ocrvqa", releases["ocrvqa"])], "llava15", out,
                   images={"vqav2": "coco/train2014/"}, sample={"vqav2": 2})
    assert [(c.name, len(c.rows), p) for c, p in done] == [("vqav2", 2, out), ("ocrvqa", 2, out)]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["dataset"] for r in rows] == ["vqav2", "vqav2", "ocrvqa", "ocrvqa"]
    assert rows[0]["image"].startswith("coco/train2014/COCO_train2014_0000000000")
    assert rows[2]["image"] == "111.jpg"
    again = convert([("vqav2", releases["vqav2"])], "llava15", tmp_path / "again.json", sample={"vqav2": 2})
    assert [r["id"] for r in again[0][0].rows] == [r["id"] for r in rows[:2]]  # the sample is seeded


def test_llava_rows_pass_through_with_repeated_ids_made_unique(releases):
    converted = convert_set("llava_instruct", releases["llava_instruct"], "instructblip", image_prefix="coco/train2017")
    first, second = converted.rows
    assert first["id"] == "000000033471" and "source_id" not in first
    assert (second["id"], second["source_id"]) == ("000000033471#1", "000000033471")
    assert first["conversations"][0]["value"] == "<image>\nWhat is the man doing?"
    assert first["image"] == "coco/train2017/000000033471.jpg" and first["dataset"] == "llava_instruct"
    assert "task" not in first and len(converted.bad) == 1 and converted.read == 2


def test_a_set_with_no_good_row_raises_naming_the_first_bad_one(tmp_path):
    file = tmp_path / "train_balanced_questions.json"
    file.write_text(json.dumps({"1": {"imageId": "7"}}))
    with pytest.raises(VlitError, match=r"no gqa example could be converted; first bad row: .*1\.question: missing"):
        convert_set("gqa", file, "llava15")
