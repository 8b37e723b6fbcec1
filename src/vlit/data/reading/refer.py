"""RefCOCO, RefCOCO+ and RefCOCOg as the refer toolkit (lichengunc/refer) releases them, and as MiniGPT-v2 and
LLaVA read them: one folder per dataset with

    refs(unc).p       refcoco, refcoco+ (refcocog: refs(umd).p and refs(google).p): a pickled list of
                      {"ref_id", "ann_id", "image_id", "file_name", "split", "category_id",
                       "sentences": [{"sent_id", "sent", "raw", "tokens"}], "sent_ids"}
    instances.json    COCO's {"images": [{"id", "file_name", "width", "height"}],
                               "annotations": [{"id", "image_id", "bbox": [x, y, w, h], ...}], "categories"}

A ref's box is its annotation's COCO `[x, y, w, h]`, returned as pixels `(x1, y1, x2, y2)`; its image is
COCO train2014's (`COCO_train2014_000000581857.jpg`, the image's `file_name` in instances.json).

Read here for both training-data conversion (`vlit.data.convert`) and the RefCOCO benchmarks
(`vlit.evaluation.suites.refer`).

The refs file is a pickle, and a pickle can run code when loaded. It is read with an unpickler that refuses
every global it names, so only plain data (lists, dicts, text, numbers: what refer's files hold) loads, and a
pickle naming any class or function raises before any of it runs.
"""

from __future__ import annotations

import pickle
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlit.data.reading.fields import BadRow, expect, field_of, guarded, read_json
from vlit.errors import VlitError

if TYPE_CHECKING:
    from vlit.data.loading.transforms import Box

SPLIT_BYS = ("unc", "umd", "google")
"""Whose split a refs file follows, in the order a folder's files are preferred: RefCOCO and RefCOCO+ ship
`refs(unc).p`; RefCOCOg ships `refs(umd).p` (the split MiniGPT-v2 and LLaVA use) and `refs(google).p`."""


@dataclass(frozen=True)
class Ref:
    """One referred object with every expression that refers to it."""

    where: str
    ref_id: int
    image_id: int
    image: str
    """The image's file name in instances.json."""
    size: tuple[int, int]
    """(width, height) of the image, from instances.json."""
    box: Box
    """Pixels (x1, y1, x2, y2)."""
    sentences: tuple[tuple[int, str], ...]
    """(sent_id, expression) pairs; the expression is refer's `sent` (lower-cased, as the benchmarks ask)."""
    split: str
    file_name: str | None = None
    """The ref's own `file_name` in the refs file (`COCO_train2014_000000581857_16.jpg`), when it has one:
    without `.jpg` it is MiniGPT-v2's `img_id` of the ref's expressions."""


class _PlainUnpickler(pickle.Unpickler):
    """An unpickler for plain data only: every class or function a pickle names (the only way one runs code)
    is looked up through `find_class`, which refuses them all."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refuses to build {module}.{name}: a refs file holds only lists, dicts, "
                                     "text and numbers")


def load_refs(path: Path) -> list[Any]:
    """The refs list of a `refs(*).p` file (Python 2 or 3 pickle), built from plain values only; Python 2's
    byte strings (refer's pickles were written by Python 2) are read as UTF-8 text."""
    try:
        with open(path, "rb") as f:
            refs = _PlainUnpickler(f, encoding="utf-8").load()
    except FileNotFoundError:
        raise VlitError(f"{path}: no such file") from None
    except (pickle.UnpicklingError, EOFError, UnicodeDecodeError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OverflowError) as e:
        raise VlitError(f"{path}: not a refer refs pickle ({e})") from None
    if not isinstance(refs, list):
        raise VlitError(f"{path}: expected a pickled list of refs, got {type(refs).__name__}")
    return refs


def find_refer_files(path: Path) -> tuple[Path, Path]:
    """(refs file, instances.json) of a refer folder, or of the refs file given itself."""
    path = Path(path)
    if path.is_file():
        refs, folder = path, path.parent
    elif path.is_dir():
        found = [path / f"refs({s}).p" for s in SPLIT_BYS if (path / f"refs({s}).p").is_file()]
        if not found:
            raise VlitError(f"{path}: no refs file ({', '.join(f'refs({s}).p' for s in SPLIT_BYS)})")
        refs, folder = found[0], path
    else:
        raise VlitError(f"{path}: no such file or folder")
    instances = folder / "instances.json"
    if not instances.is_file():
        raise VlitError(f"{folder}: no instances.json beside {refs.name} (refer's release holds both)")
    return refs, instances


def _instances(path: Path) -> tuple[dict[int, tuple[str, tuple[int, int]]], dict[int, Any]]:
    """image id -> (file name, size); annotation id -> bbox (checked when a ref uses it)."""
    data = read_json(path)
    images = {}
    for i, image in enumerate(field_of(data, "images", list, str(path))):
        where = f"{path}: images[{i}]"
        size = (field_of(image, "width", int, where), field_of(image, "height", int, where))
        images[field_of(image, "id", int, where)] = (field_of(image, "file_name", str, where), size)
    boxes = {}
    for i, ann in enumerate(field_of(data, "annotations", list, str(path))):
        boxes[field_of(ann, "id", int, f"{path}: annotations[{i}]")] = ann.get("bbox")
    return images, boxes


def xywh_box(values: Any, where: str) -> Box:
    """COCO's `[x, y, w, h]` as pixels `(x1, y1, x2, y2)`; anything else raises naming `where`."""
    values = expect(values, list, where)
    if len(values) != 4:
        raise VlitError(f"{where}: expected [x, y, w, h], got {len(values)} numbers")
    x, y, w, h = (float(expect(v, (int, float), f"{where}[{k}]")) for k, v in enumerate(values))
    if w < 0 or h < 0:
        raise VlitError(f"{where}: negative width or height in {values}")
    return (x, y, x + w, y + h)


def read_refer(path: str | Path, split: str | Collection[str] | None = "train") -> Iterator[Ref | BadRow]:
    """Every ref of `split` (several splits: of any of them; None: all) of a refer folder (or refs file), in the
    refs file's order; a ref that cannot be read (a missing field, an annotation or image instances.json lacks)
    is a `BadRow` in its place."""
    refs_path, instances_path = find_refer_files(Path(path))
    images, boxes = _instances(instances_path)
    splits = None if split is None else (split,) if isinstance(split, str) else tuple(split)
    for i, ref in enumerate(load_refs(refs_path)):
        where = f"{refs_path}[{i}]"
        if splits is not None and isinstance(ref, dict) and ref.get("split") not in splits:
            continue
        yield guarded(where, lambda ref=ref, where=where: _ref(ref, where, images, boxes, instances_path))


def _ref(ref: Any, where: str, images: dict[int, tuple[str, tuple[int, int]]], boxes: dict[int, Any],
         instances: Path) -> Ref:
    ref_id = field_of(ref, "ref_id", int, where)
    image_id = field_of(ref, "image_id", int, where)
    ann_id = field_of(ref, "ann_id", int, where)
    if image_id not in images:
        raise VlitError(f"{where}.image_id: {image_id} is not an image of {instances}")
    if ann_id not in boxes:
        raise VlitError(f"{where}.ann_id: {ann_id} is not an annotation of {instances}")
    sentences = []
    for j, sent in enumerate(field_of(ref, "sentences", list, where)):
        text = field_of(sent, "sent", str, f"{where}.sentences[{j}]").strip()
        if text:
            sentences.append((field_of(sent, "sent_id", int, f"{where}.sentences[{j}]"), text))
    if not sentences:
        raise VlitError(f"{where}.sentences: no expression")
    image, size = images[image_id]
    box = xywh_box(boxes[ann_id], f"{instances}: annotation {ann_id}.bbox")
    file_name = field_of(ref, "file_name", str, where) if "file_name" in ref else None
    return Ref(where, ref_id, image_id, image, size, box, tuple(sentences), str(ref.get("split", "")), file_name)
