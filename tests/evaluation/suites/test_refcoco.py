"""RefCOCO/+/g in MiniGPT-v2's evaluation files and in refer's layout, asked per style and scored as
MiniGPT-v2's `eval_scripts/eval_ref.py` (grid `v / 100 * W`, `computeIoU`'s +1, IoU > 0.5, answers scored
against the last row of their img_id), every expected number computed here by hand from that rule."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from vlit.cli import main as cli
from vlit.data.loading.transforms import ImageSpec
from vlit.data.prompting.boxes import from_grid, iou
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for
from vlit.evaluation.report import markdown_table
from vlit.evaluation.runner import Result
from vlit.evaluation.suites.refcoco import answer_box, compute_iou

SAMPLES = "/work/shared/eval-samples/refcoco"


def _row(img: int, ref: int, sent: str, bbox: list[float], size: int = 1000) -> dict:
    return {"img_id": f"COCO_train2014_{img:012d}_{ref}", "sents": sent, "bbox": bbox, "height": size,
            "width": size}


VAL = [_row(1, 1, "left dog", [0, 0, 20, 20]), _row(1, 1, "the dog on the left", [0, 0, 20, 20])]
TEST_A = [_row(2, 7, "man", [0, 0, 20, 20]), _row(2, 7, "person", [0, 0, 20, 20]),
          _row(3, 9, "red car", [500, 500, 20, 20]), _row(3, 9, "car", [500, 500, 20, 20])]
ANSWERS = ["{<0><0><2><2>}", "<unk> {<0> <0> <2> <2>}",  # val
           "{<0><0><2><2>} at 3", "[0.00, 0.00, 0.02, 0.02]", "It is {<50><50><52><52>}", "{<50><50><52><52>}"]


@pytest.fixture
def eval_data(tmp_path: Path) -> Path:
    """eval_ref.py's `eval_file_path`: `refcoco/refcoco_<split>.json`."""
    folder = tmp_path / "eval_data" / "refcoco"
    folder.mkdir(parents=True)
    (folder / "refcoco_val.json").write_text(json.dumps(VAL, indent=4))
    (folder / "refcoco_testA.json").write_text(json.dumps(TEST_A))
    return folder.parent


def test_the_splits_load_in_eval_ref_order_and_ask_per_style(eval_data):
    samples = load_samples(resolve_benchmarks([f"refcoco={eval_data}"])[0], "minigptv2")
    assert [s.id for s in samples] == ["val:0", "val:1", "testA:0", "testA:1", "testA:2", "testA:3"]
    assert samples[0].conversation.turns[0].content == "<image>\n[refer] give me the location of left dog"
    assert samples[0].conversation.images[0].endswith("COCO_train2014_000000000001.jpg")  # img_id[:27]
    assert samples[4].references == [(500.0, 500.0, 520.0, 520.0)] and samples[4].meta["image_size"] == (1000, 1000)
    assert samples[4].meta["question_id"] == "COCO_train2014_000000000003_9"
    llava = load_samples(resolve_benchmarks([f"refcoco={eval_data}"])[0], "llava15")
    assert llava[0].conversation.turns[0].content == ("<image>\nPlease provide the bounding box coordinate of the "
                                                      "region this sentence describes: left dog.")
    instructblip = load_samples(resolve_benchmarks([f"refcoco={eval_data}"])[0], "instructblip")
    assert "left dog" in instructblip[0].conversation.turns[0].content


def test_scored_as_eval_ref(eval_data):
    samples = load_samples(resolve_benchmarks([f"refcoco={eval_data}"])[0], "minigptv2")
    scores = metric_for("refcoco")(ANSWERS, samples)
    # val: {<0><0><2><2>} on 1000x1000 -> (0, 0, 20, 20) = the target, IoU 1, twice (spaces and <unk> removed):
    # 2/2. testA: 5 integers in the answer -> eval_ref.py raises, wrong; LLaVA's unit box (0, 0, 20, 20), right;
    # text before the box -> re.match fails, dropped, wrong; (500, 500, 520, 520), right: 2/4.
    assert scores["val/accuracy"] == 1.0 and scores["testA/accuracy"] == 0.5
    assert scores["accuracy"] == 0.75 and scores["unparsed"] == pytest.approx(1 / 6)


def test_grid_values_are_cell_edges_not_centres():
    box, read = answer_box("{<0><0><2><2>}", (1000, 1000))
    assert read and box == [0.0, 0.0, 20.0, 20.0]
    # vlit's own reader puts <2> at the cell centre, 25 px: against (0, 0, 20, 20) with +1 that is
    # 16 * 16 / (21 * 21 + 21 * 21 - 16 * 16) = 256 / 626 = 0.409, wrong, where eval_ref.py's edge is right.
    centre = from_grid((0, 0, 2, 2), 1000, 1000)
    assert centre == (5.0, 5.0, 25.0, 25.0) and compute_iou(centre, (0, 0, 20, 20)) == pytest.approx(256 / 626)


def test_iou_counts_pixels_inclusively():
    # computeIoU: (5 - 0 + 1) * (8 - 0 + 1) = 54 over (9 + 1)^2 = 100 -> 0.54 > 0.5, right; the plain IoU is
    # 5 * 8 / (9 * 9) = 40 / 81 = 0.494, wrong.
    assert compute_iou((0, 0, 5, 8), (0, 0, 9, 9)) == pytest.approx(0.54)
    assert iou((0, 0, 5, 8), (0, 0, 9, 9)) == pytest.approx(40 / 81)
    assert compute_iou((3, 3, 2, 2), (3, 3, 2, 2)) is None  # a zero union raises in eval_ref.py: wrong


def test_a_padded_model_names_boxes_on_its_square():
    # 200 x 100 pasted on a 200 square at y offset (200 - 100) // 2 = 50, scaled by 0.5 to 100 px: the image
    # spans y 25..75 there. {<0><25><100><75>} is (0, 25, 100, 75) on the square, (0, 0, 200, 100) on the image.
    box, _ = answer_box("{<0><25><100><75>}", (200, 100), ImageSpec(100, (0, 0, 0), (1, 1, 1), "pad"))
    assert box == pytest.approx([0.0, 0.0, 200.0, 100.0])


def test_answers_score_against_the_last_row_of_their_img_id(tmp_path):
    rows = [_row(4, 2, "the cat", [0, 0, 20, 20]), _row(4, 2, "a cat", [500, 500, 20, 20])]
    path = tmp_path / "refcoco_val.json"
    path.write_text(json.dumps(rows))
    samples = load_samples(resolve_benchmarks([f"refcoco={path}"])[0], "minigptv2")
    assert [s.references for s in samples] == [[(500.0, 500.0, 520.0, 520.0)]] * 2
    # refcoco_dict[img_id] keeps the last row: the first answer, right for its own row, is scored wrong.
    assert metric_for("refcoco")(["{<0><0><2><2>}", "{<50><50><52><52>}"], samples)["accuracy"] == 0.5


def test_predictions_without_a_model_and_the_table(eval_data, tmp_path, capsys):
    answers = tmp_path / "answers.jsonl"
    ids = [r["img_id"] for r in VAL + TEST_A]
    rows = [{"question_id": q, "text": a} for q, a in zip(ids, ANSWERS, strict=True)]
    answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli(["eval", "--benchmarks", f"refcoco={eval_data}", "--predictions", f"refcoco={answers}",
                "--out", str(tmp_path / "out")]) == 0
    table = capsys.readouterr().out
    # 75.0 headline; 2 of the 8 splits of MiniGPT-v2's average: no pooled number, but the published one shows.
    assert "| answers | 75.0 | **75.0** | – |" in table
    assert "| *MiniGPT-v2-7B (published)* | – | – | 84.29 |" in table


def test_the_pooled_average_needs_all_eight_splits():
    splits = {"refcoco": ("val", "testA", "testB"), "refcoco+": ("val", "testA", "testB"), "refcocog": ("val", "test")}
    accuracy = iter([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    results = [Result("m", name, "held_out", "refcoco", {f"{s}/accuracy": next(accuracy) for s in parts} |
                      {"accuracy": 0.0}, 10) for name, parts in splits.items()]
    # (0.9 + 0.8 + ... + 0.2) / 8 = 4.4 / 8 = 0.55; the headlines ("accuracy") are not parts.
    assert "| 55.00 |" in markdown_table(results).splitlines()[2]
    assert markdown_table(results[:2]).splitlines()[2].endswith("| – |")


def test_refer_layout_reads_a_plain_data_pickle(tmp_path):
    folder = tmp_path / "refcoco"
    folder.mkdir()
    instances = {"images": [{"id": 5, "width": 1000, "height": 1000, "file_name": "x.jpg"}],
                 "annotations": [{"id": 77, "image_id": 5, "bbox": [0, 0, 20, 20]}]}
    (folder / "instances.json").write_text(json.dumps(instances))
    name = "COCO_train2014_000000000005_{}.jpg"
    refs = [{"ref_id": 0, "ann_id": 77, "image_id": 5, "split": "testB", "file_name": name.format(3),
             "sentences": [{"sent_id": 0, "sent": "left one", "raw": "Left one."},
                           {"sent_id": 1, "sent": "the left", "raw": "the left"}]},
            {"ref_id": 1, "ann_id": 77, "image_id": 5, "split": "train", "file_name": name.format(4),
             "sentences": [{"sent_id": 2, "sent": "not asked", "raw": "not asked"}]}]
    (folder / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    samples = load_samples(resolve_benchmarks([f"refcoco={tmp_path}"])[0], "minigptv2")
    assert [(s.id, s.meta["expression"]) for s in samples] == [("testB:0", "left one"), ("testB:1", "the left")]
    assert samples[0].meta["question_id"] == "COCO_train2014_000000000005_3"
    assert samples[0].references == [(0.0, 0.0, 20.0, 20.0)]


class _Runs:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_that_names_a_function_is_refused_before_it_runs(tmp_path):
    folder = tmp_path / "refcoco"
    folder.mkdir()
    (folder / "instances.json").write_text(json.dumps({"images": [], "annotations": []}))
    marker = tmp_path / "ran"
    (folder / "refs(unc).p").write_bytes(pickle.dumps([_Runs(marker)]))
    with pytest.raises(VlitError, match=r"refs\(unc\)\.p: not a refer refs pickle .*mkdir"):
        load_samples(resolve_benchmarks([f"refcoco={folder}"])[0], "minigptv2")
    assert not marker.exists()


def test_a_bad_row_is_named(eval_data):
    rows = [VAL[0], {k: v for k, v in VAL[1].items() if k != "sents"}]
    (eval_data / "refcoco" / "refcoco_val.json").write_text(json.dumps(rows))
    with pytest.raises(VlitError, match=r"refcoco_val\.json\[1\]\.sents: missing"):
        load_samples(resolve_benchmarks([f"refcoco={eval_data}"])[0], "minigptv2")
    (eval_data / "refcoco" / "refcoco_val.json").write_text(json.dumps([VAL[0] | {"bbox": [1, 2, 3]}]))
    with pytest.raises(VlitError, match=r"refcoco_val\.json\[0\]\.bbox: expected \[x, y, w, h\]"):
        load_samples(resolve_benchmarks([f"refcoco={eval_data}"])[0], "minigptv2")


def test_an_other_datasets_file_is_named(tmp_path):
    path = tmp_path / "refcoco+_testA.json"
    path.write_text(json.dumps(VAL))
    with pytest.raises(VlitError, match=r"a refcoco\+ file, not refcoco"):
        load_samples(resolve_benchmarks([f"refcoco={path}"])[0], "minigptv2")


@pytest.mark.parametrize(("name", "split", "first"), [
    ("refcoco", "testA", "person bottom left"),
    ("refcoco+", "testA", "guy holding purp umbrella in corner near us"),
    ("refcocog", "val", "a bush of plant behind middle woman")])
def test_the_real_minigptv2_files_load(name, split, first):
    """MiniGPT-v2's eval_data rows (one flat folder holding the three datasets' files): each dataset reads only
    its own file. Answering every row with the grid box of its target (int(coord / side * 100), the way
    MiniGPT-v2 writes them) scores 1.0 under eval_ref.py's rule; the box of the image's other half scores 0."""
    samples = load_samples(resolve_benchmarks([f"{name}={SAMPLES}"])[0], "minigptv2")
    assert len(samples) == 4 and {s.meta["split"] for s in samples} == {split}
    assert samples[0].meta["expression"] == first
    grid = []
    for s in samples:
        (x1, y1, x2, y2), (w, h) = s.references[0], s.meta["image_size"]
        grid.append(f"{{<{int(x1 / w * 100)}><{int(y1 / h * 100)}><{int(x2 / w * 100)}><{int(y2 / h * 100)}>}}")
    assert metric_for("refcoco")(grid, samples)["accuracy"] == 1.0
    assert metric_for("refcoco")(["{<0><0><1><1>}"] * 4, samples)["accuracy"] == 0.0
