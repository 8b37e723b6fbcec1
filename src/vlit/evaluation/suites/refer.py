"""The rows of RefCOCO, RefCOCO+ and RefCOCOg as the two layouts users have them, read into one shape.

- MiniGPT-v2's evaluation files (`eval_scripts/eval_data/<dataset>_<split>.json`, or `<dataset>/<dataset>_<split>
  .json` under `eval_ref.py`'s `eval_file_path`): a JSON array of `{"img_id", "sents", "bbox", "height",
  "width"}`, one row per expression; `bbox` is COCO's `[x, y, w, h]`; `img_id` is refer's file name without
  `.jpg` (`COCO_train2014_000000581282_10`), shared by the expressions of one referred object.
- refer's layout (lichengunc/refer, the downloads MiniGPT-v2's EVAL_README links): `instances.json` (COCO images
  and annotations) and `refs(<split_by>).p`, a Python pickle of the referring expressions. A pickle can run
  code when loaded; it is read with an unpickler that refuses every global it names, so only plain data
  (dicts, lists, text, numbers: what refer's files hold) loads, and a pickle naming any class or function
  raises before any of it runs.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlit.data.loading.transforms import Box
from vlit.data.reading.rows import read_rows
from vlit.errors import VlitError
from vlit.evaluation.samples import expect, field_of, read_json


@dataclass(frozen=True)
class RefRow:
    """One referring expression, as MiniGPT-v2's evaluation files hold it."""

    img_id: str
    """eval_ref.py's key: its image file is `img_id[:27] + ".jpg"` (COCO train2014), and its answers are
    scored against the box of the last row with this key."""
    sent: str
    box: Box
    """The target, `(x1, y1, x2, y2)` in pixels: `bbox` `[x, y, w, h]` as eval_ref.py adds it up."""
    size: tuple[int, int]
    """(width, height) of the image, from the row: eval_ref.py maps grid answers with these."""
    where: str


def _xywh(values: list[Any], where: str) -> Box:
    if len(values) != 4:
        raise VlitError(f"{where}: expected [x, y, w, h], got {len(values)} numbers")
    x, y, w, h = (float(expect(v, (int, float), f"{where}[{k}]")) for k, v in enumerate(values))
    if w < 0 or h < 0:
        raise VlitError(f"{where}: {values} has a negative width or height (COCO boxes are [x, y, w, h])")
    return (x, y, x + w, y + h)


def _size(row: dict[str, Any], where: str) -> tuple[int, int]:
    width, height = field_of(row, "width", int, where), field_of(row, "height", int, where)
    if width <= 0 or height <= 0:
        raise VlitError(f"{where}: width {width}, height {height}: an image has a positive size")
    return width, height


def eval_file_rows(path: Path) -> list[RefRow]:
    """A MiniGPT-v2 evaluation file; a bad row raises naming the file, the row and the field."""
    rows = []
    for where, row in read_rows(path):
        if not isinstance(row, dict):
            raise VlitError(f"{where}: expected a JSON object, got {type(row).__name__}")
        box = _xywh(field_of(row, "bbox", list, where), f"{where}.bbox")
        rows.append(RefRow(field_of(row, "img_id", str, where), field_of(row, "sents", str, where), box,
                           _size(row, where), where))
    if not rows:
        raise VlitError(f"{path}: no referring expression")
    return rows


# ---- refer's layout ---------------------------------------------------------------------------------------

class _PlainData(pickle.Unpickler):
    """An unpickler for plain data only: every class or function a pickle names (the only way one runs code)
    is looked up through `find_class`, which refuses them all."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"it names {module}.{name}, and only plain data is loaded")


def read_plain_pickle(path: Path) -> Any:
    """A pickle of plain data (dicts, lists, tuples, text, numbers); anything else raises naming the file.
    Python 2's byte strings (refer's pickles were written by Python 2) are read as UTF-8 text."""
    try:
        with path.open("rb") as f:
            return _PlainData(f, encoding="utf-8").load()
    except FileNotFoundError:
        raise VlitError(f"{path}: no such file") from None
    except (pickle.UnpicklingError, EOFError, UnicodeDecodeError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OverflowError) as e:
        raise VlitError(f"{path}: not a plain-data pickle ({e})") from None


def _instances(path: Path) -> tuple[dict[int, tuple[int, int]], dict[int, Box]]:
    """image id -> (width, height) and annotation id -> box, from refer's `instances.json`."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise VlitError(f"{path}: expected a JSON object with images and annotations")
    sizes = {}
    for i, image in enumerate(field_of(data, "images", list, str(path))):
        where = f"{path}: images[{i}]"
        sizes[field_of(image, "id", int, where)] = _size(image, where)
    boxes = {}
    for i, ann in enumerate(field_of(data, "annotations", list, str(path))):
        where = f"{path}: annotations[{i}]"
        boxes[field_of(ann, "id", int, where)] = _xywh(field_of(ann, "bbox", list, where), f"{where}.bbox")
    return sizes, boxes


def refer_rows(refs_path: Path, instances_path: Path, splits: tuple[str, ...]) -> dict[str, list[RefRow]]:
    """Split -> rows, for `splits`, from refer's files: one row per sentence (its `sent`, the tokenized text
    MiniGPT-v2's files carry), keyed by the ref's file name without `.jpg` as MiniGPT-v2's `img_id`."""
    refs = read_plain_pickle(refs_path)
    if not isinstance(refs, list):
        raise VlitError(f"{refs_path}: expected a list of refs, got {type(refs).__name__}")
    sizes, boxes = _instances(instances_path)
    out: dict[str, list[RefRow]] = {split: [] for split in splits}
    for i, ref in enumerate(refs):
        where = f"{refs_path}: refs[{i}]"
        split = field_of(ref, "split", str, where)
        if split not in out:
            continue
        ann_id, image_id = field_of(ref, "ann_id", int, where), field_of(ref, "image_id", int, where)
        if ann_id not in boxes:
            raise VlitError(f"{where}.ann_id: {ann_id} is not an annotation of {instances_path}")
        if image_id not in sizes:
            raise VlitError(f"{where}.image_id: {image_id} is not an image of {instances_path}")
        img_id = field_of(ref, "file_name", str, where).rsplit(".", 1)[0]
        for j, sentence in enumerate(field_of(ref, "sentences", list, where)):
            sent = field_of(sentence, "sent", str, f"{where}.sentences[{j}]")
            out[split].append(RefRow(img_id, sent, boxes[ann_id], sizes[image_id], f"{where}.sentences[{j}]"))
    return {split: rows for split, rows in out.items() if rows}
