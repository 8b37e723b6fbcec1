"""The rows of RefCOCO, RefCOCO+ and RefCOCOg as the two layouts users have them, read into one shape.

- MiniGPT-v2's evaluation files (`eval_scripts/eval_data/<dataset>_<split>.json`, or `<dataset>/<dataset>_<split>
  .json` under `eval_ref.py`'s `eval_file_path`): a JSON array of `{"img_id", "sents", "bbox", "height",
  "width"}`, one row per expression; `bbox` is COCO's `[x, y, w, h]`; `img_id` is refer's file name without
  `.jpg` (`COCO_train2014_000000581282_10`), shared by the expressions of one referred object.
- refer's layout (lichengunc/refer, the downloads MiniGPT-v2's EVAL_README links): `instances.json` (COCO images
  and annotations) and `refs(<split_by>).p`, read by `vlit.data.reading.refer` (the training data's reader, with
  its plain-data unpickler: a pickle naming any class or function raises before any of it runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vlit.data.reading.fields import BadRow
from vlit.data.reading.refer import read_refer, xywh_box
from vlit.data.reading.rows import read_rows
from vlit.errors import VlitError
from vlit.evaluation.samples import field_of

if TYPE_CHECKING:
    from vlit.data.loading.transforms import Box


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


def _size(width: int, height: int, where: str) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        raise VlitError(f"{where}: width {width}, height {height}: an image has a positive size")
    return width, height


def eval_file_rows(path: Path) -> list[RefRow]:
    """A MiniGPT-v2 evaluation file; a bad row raises naming the file, the row and the field."""
    rows = []
    for where, row in read_rows(path):
        if not isinstance(row, dict):
            raise VlitError(f"{where}: expected a JSON object, got {type(row).__name__}")
        box = xywh_box(field_of(row, "bbox", list, where), f"{where}.bbox")
        size = _size(field_of(row, "width", int, where), field_of(row, "height", int, where), where)
        rows.append(RefRow(field_of(row, "img_id", str, where), field_of(row, "sents", str, where), box, size,
                           where))
    if not rows:
        raise VlitError(f"{path}: no referring expression")
    return rows


def refer_rows(refs_path: Path, splits: tuple[str, ...]) -> dict[str, list[RefRow]]:
    """Split -> rows, for `splits`, from refer's files (the refs file, `instances.json` beside it): one row per
    expression (its `sent`, the tokenized text MiniGPT-v2's files carry), keyed by the ref's file name without
    `.jpg` as MiniGPT-v2's `img_id`. A ref that cannot be read raises, naming it."""
    out: dict[str, list[RefRow]] = {split: [] for split in splits}
    for ref in read_refer(refs_path, split=splits):
        if isinstance(ref, BadRow):
            raise VlitError(ref.message)
        if ref.file_name is None:
            raise VlitError(f"{ref.where}.file_name: missing")
        img_id, size = ref.file_name.rsplit(".", 1)[0], _size(*ref.size, f"{ref.where}: image {ref.image_id}")
        for j, (_, sent) in enumerate(ref.sentences):
            out[ref.split].append(RefRow(img_id, sent, ref.box, size, f"{ref.where}.sentences[{j}]"))
    return {split: rows for split, rows in out.items() if rows}
