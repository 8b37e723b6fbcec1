"""Caption releases: COCO Caption (Karpathy's split, LAVIS's copy of it, or COCO's own annotations) and
TextCaps. One item per caption: each caption is a training target once, as LAVIS's caption datasets do."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vlit.data.convert.items import Item, Read, each, indexed
from vlit.data.prompting.templates import TaskRecord
from vlit.data.reading.fields import expect, field_of, find_file, read_json
from vlit.errors import VlitError

COCO_CAPTION_FILES = ("coco_karpathy_train.json", "dataset_coco.json", "captions_train2017.json",
                      "captions_train2014.json")
KARPATHY_TRAIN = ("train", "restval")
"""Karpathy's splits that train: `restval` (the 30k val2014 images outside his val and test) trains too, as
in BLIP/LAVIS's `coco_karpathy_train.json` (113k images)."""


def _caption(text: Any, where: str) -> TaskRecord:
    text = expect(text, str, where).strip()
    if not text:
        raise VlitError(f"{where}: empty caption")
    return TaskRecord("caption", answers=(text,))


def read_coco_caption(path: Path) -> Read:
    """COCO captions from Karpathy's `dataset_coco.json` (train + restval images; `filepath/filename`),
    LAVIS's `coco_karpathy_train.json` (`[{"image", "caption"}]`) or COCO's `captions_train2017.json`
    (`images` + `annotations`); PATH is the file or its folder."""
    file = find_file(path, COCO_CAPTION_FILES, "COCO caption file")
    data = read_json(file)
    if isinstance(data, list):
        return each(indexed(data, str(file)), _lavis())
    if isinstance(data, dict) and "annotations" in data:
        return _coco(data, file)
    if isinstance(data, dict) and "images" in data:
        return each(indexed(field_of(data, "images", list, str(file)), f"{file}: images"), _karpathy)
    raise VlitError(f"{file}: expected Karpathy's {{\"images\": [...]}}, COCO's {{\"images\", \"annotations\"}} "
                    "or LAVIS's list of {\"image\", \"caption\"}")


def _lavis() -> Callable[[str, Any], Iterator[Item]]:
    seen: Counter[str] = Counter()

    def make(where: str, row: Any) -> Iterator[Item]:
        image = field_of(row, "image", str, where)
        captions = field_of(row, "caption", (str, list), where)
        # Karpathy train rows hold one caption each; LAVIS's val/test files hold a list.
        for text in [captions] if isinstance(captions, str) else captions:
            record = _caption(text, f"{where}.caption")
            seen[image] += 1
            yield Item(f"{Path(image).stem}_{seen[image] - 1}", image, record)

    return make


def _karpathy(where: str, image: Any) -> Iterator[Item]:
    split = field_of(image, "split", str, where)
    if split not in KARPATHY_TRAIN:
        return
    name = field_of(image, "filename", str, where)
    folder = image.get("filepath")
    path = f"{expect(folder, str, f'{where}.filepath')}/{name}" if folder else name
    image_id = field_of(image, "cocoid" if "cocoid" in image else "imgid", int, where)
    for k, sentence in enumerate(field_of(image, "sentences", list, where)):
        text = field_of(sentence, "raw", str, f"{where}.sentences[{k}]")
        yield Item(f"{image_id}_{k}", path, _caption(text, f"{where}.sentences[{k}].raw"))


def _coco(data: dict[str, Any], file: Path) -> Read:
    names = {}
    for i, image in enumerate(field_of(data, "images", list, str(file))):
        where = f"{file}: images[{i}]"
        names[field_of(image, "id", int, where)] = field_of(image, "file_name", str, where)

    def make(where: str, ann: Any) -> Iterator[Item]:
        image_id = field_of(ann, "image_id", int, where)
        if image_id not in names:
            raise VlitError(f"{where}.image_id: {image_id} is not in images")
        ann_id = field_of(ann, "id", int, where)
        yield Item(str(ann_id), names[image_id], _caption(ann.get("caption"), f"{where}.caption"))

    return each(indexed(field_of(data, "annotations", list, str(file)), f"{file}: annotations"), make)


def read_textcaps(path: Path) -> Read:
    """TextCaps' `TextCaps_0.1_train.json` (`{"data": [{"image_id", "caption_str", ...}]}`, one row per
    caption); images are TextVQA's train images, `<image_id>.jpg`. PATH is the file or its folder."""
    file = find_file(path, ("TextCaps_0.1_train.json", "TextCaps_*train*.json"), "TextCaps train file")
    seen: Counter[str] = Counter()

    def make(where: str, row: Any) -> Iterator[Item]:
        image_id = field_of(row, "image_id", str, where)
        record = _caption(field_of(row, "caption_str", str, where), f"{where}.caption_str")
        seen[image_id] += 1
        yield Item(f"{image_id}_{seen[image_id] - 1}", f"{image_id}.jpg", record)

    return each(indexed(field_of(read_json(file), "data", list, str(file)), f"{file}: data"), make)
