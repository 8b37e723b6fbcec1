"""Loaders for the COCO-family benchmark files: VQAv2 questions + annotations, RefCOCO/+/g referring
expressions, COCO-style caption annotations. Each returns `EvalSample`s; bad rows raise naming file and field.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from vlit.config.model import StyleName
from vlit.data.loading.transforms import Box
from vlit.data.prompting.templates import TaskRecord
from vlit.data.reading.fields import BadRow
from vlit.data.reading.rows import read_rows
from vlit.data.reading.vqa import VQA_IMAGE_PATTERN, read_vqa
from vlit.errors import VlitError
from vlit.evaluation.samples import (
    EvalSample,
    expect,
    field_of,
    image_path,
    image_size,
    question_conversation,
    read_json,
)

REFCOCO_IMAGE_PATTERN = "COCO_train2014_{image_id:012d}.jpg"
"""RefCOCO, RefCOCO+ and RefCOCOg all take their images from COCO train2014."""
_REFER_ANN_SUFFIX = re.compile(r"^(COCO_[A-Za-z]+\d*_\d{12})_\d+(\.\w+)$")


def _list_field(data: Any, key: str, path: str | Path) -> list[Any]:
    if not isinstance(data, dict):
        raise VlitError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return field_of(data, key, list, str(path))


# ---- VQAv2 ------------------------------------------------------------------------------------------------

def load_vqav2(questions: str | Path, annotations: str | Path, image_root: str | Path | None = None,
               style: StyleName = "llava15", image_pattern: str = VQA_IMAGE_PATTERN) -> list[EvalSample]:
    """VQAv2-format files (`v2_OpenEnded_mscoco_val2014_questions.json` and
    `v2_mscoco_val2014_annotations.json`; OK-VQA uses the same), read by `vlit.data.reading.vqa.read_vqa`: one
    `vqa` sample per question, references the human answers (10 in VQAv2), meta `question_type`,
    `answer_type`, `multiple_choice_answer`, `image_id`, `question`. Image file names follow `image_pattern`
    (fields `image_id` and the questions file's `data_subtype`). The first bad row raises. The default style
    asks as LLaVA-1.5 does: `<question>\\nAnswer the question using a single word or phrase.`"""
    samples = []
    for question in read_vqa(questions, annotations, image_pattern):
        if isinstance(question, BadRow):
            raise VlitError(question.message)
        answers = list(question.answers)
        meta = {**question.meta, "image_id": question.image_id, "question": question.question}
        record = TaskRecord("vqa", question=question.question, answers=question.answers)
        sample_id = str(question.question_id)
        conversation = question_conversation(record, style, image_path(image_root, question.image), sample_id)
        samples.append(EvalSample(sample_id, conversation, "vqa", answers, [], meta))
    return samples


# ---- RefCOCO-style referring expressions ------------------------------------------------------------------

def _expressions(row: dict[str, Any], where: str) -> list[str]:
    """`sent`/`expression` (one text) or `sentences`/`expressions` (texts, or refer's `{"sent": ..}`)."""
    for key in ("sent", "expression"):
        if key in row:
            return [field_of(row, key, str, where)]
    for key in ("sentences", "expressions"):
        if key in row:
            items = field_of(row, key, list, where)
            texts = [field_of(s, "sent", str, f"{where}.{key}[{j}]") if isinstance(s, dict)
                     else expect(s, str, f"{where}.{key}[{j}]") for j, s in enumerate(items)]
            if not texts:
                raise VlitError(f"{where}.{key}: empty")
            return texts
    raise VlitError(f"{where}: no expression (expected sent, sentences, expression or expressions)")


def _ref_image(row: dict[str, Any], where: str, pattern: str) -> str:
    for key in ("file_name", "image"):
        if key in row:
            name = field_of(row, key, str, where)
            # refer's refs(unc).p names files "COCO_train2014_<image id>_<annotation id>.jpg"; the image on
            # disk has no annotation id.
            m = _REFER_ANN_SUFFIX.match(name)
            return m.group(1) + m.group(2) if m else name
    if "image_id" in row:
        return pattern.format(image_id=field_of(row, "image_id", int, where))
    raise VlitError(f"{where}: no image (expected file_name, image or image_id)")


def _ref_box(row: dict[str, Any], where: str, box_format: str) -> Box:
    values = field_of(row, "bbox", list, where)
    if len(values) != 4:
        raise VlitError(f"{where}.bbox: expected 4 numbers, got {len(values)}")
    a, b, c, d = (float(expect(v, (int, float), f"{where}.bbox[{k}]")) for k, v in enumerate(values))
    box = (a, b, a + c, b + d) if box_format == "xywh" else (a, b, c, d)
    if box[2] < box[0] or box[3] < box[1]:
        raise VlitError(f"{where}.bbox: {values} is not a {box_format} box")
    return box


def _ref_size(row: dict[str, Any], where: str, path: str) -> tuple[int, int]:
    if "width" in row or "height" in row:
        return field_of(row, "width", int, where), field_of(row, "height", int, where)
    return image_size(path, where)


def load_refexp(path: str | Path, image_root: str | Path | None = None,
                box_format: Literal["xywh", "xyxy"] = "xywh", split: str | None = None,
                style: StyleName = "minigptv2",
                image_pattern: str = REFCOCO_IMAGE_PATTERN) -> list[EvalSample]:
    """Referring expressions, one `refer` sample per expression (the benchmarks count expressions).

    Rows (JSON array or JSONL) in the shape people convert refer's `refs(unc).p` to —
    `{"ref_id", "image_id" | "file_name", "sent" | "sentences", "bbox", "split"}` — or the simpler
    `{"image", "expression", "bbox"}`. `bbox` is COCO's `[x, y, w, h]` unless `box_format="xyxy"`. `split`
    keeps rows of that split (`val`, `testA`, ...). The image size comes from the row's `width`/`height`, else
    from the image file's header. The default style asks as MiniGPT-v2 does: `[refer] give me the location of
    <expression>`.
    """
    if box_format not in ("xywh", "xyxy"):
        raise VlitError(f"box_format: {box_format!r} is not 'xywh' or 'xyxy'")
    samples = []
    for index, (where, row) in enumerate(read_rows(path)):
        if not isinstance(row, dict):
            raise VlitError(f"{where}: expected a JSON object, got {type(row).__name__}")
        if split is not None and field_of(row, "split", str, where) != split:
            continue
        image = image_path(image_root, _ref_image(row, where, image_pattern))
        box, size = _ref_box(row, where, box_format), _ref_size(row, where, image)
        key = next((k for k in ("ref_id", "id") if k in row), None)
        row_id = str(index) if key is None else str(expect(row[key], (str, int), f"{where}.{key}"))
        texts = _expressions(row, where)
        for k, text in enumerate(texts):
            sample_id = row_id if len(texts) == 1 else f"{row_id}:{k}"
            record = TaskRecord("refer", phrase=text, boxes=(box,), image_size=size)
            meta = {"image_size": size, "expression": text}
            if "split" in row:
                meta["split"] = row["split"]
            conversation = question_conversation(record, style, image, sample_id)
            samples.append(EvalSample(sample_id, conversation, "refer", [box], [], meta))
    if not samples:
        raise VlitError(f"{path}: no referring expression" + (f" in split {split!r}" if split else ""))
    return samples


# ---- COCO captions ----------------------------------------------------------------------------------------

def load_coco_captions(path: str | Path, image_root: str | Path | None = None,
                       style: StyleName = "llava15") -> list[EvalSample]:
    """COCO caption annotations (`captions_val2014.json`; NoCaps and Flickr30k ship the same shape):
    `{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}`. One `caption` sample per
    image, its references all its captions; an image without a caption or a caption of an unknown image
    raises."""
    data = read_json(path)
    images = _list_field(data, "images", path)
    captions: dict[int, list[str]] = defaultdict(list)
    for i, ann in enumerate(_list_field(data, "annotations", path)):
        where = f"{path}: annotations[{i}]"
        captions[field_of(ann, "image_id", int, where)].append(field_of(ann, "caption", str, where).strip())
    samples, known = [], set()
    for i, image in enumerate(images):
        where = f"{path}: images[{i}]"
        image_id = field_of(image, "id", int, where)
        known.add(image_id)
        refs = captions.get(image_id)
        if not refs:
            raise VlitError(f"{where}: image {image_id} has no caption in annotations")
        record = TaskRecord("caption", answers=tuple(refs))
        sample_id = str(image_id)
        file = image_path(image_root, field_of(image, "file_name", str, where))
        samples.append(EvalSample(sample_id, question_conversation(record, style, file, sample_id), "caption",
                                  refs, [], {"image_id": image_id}))
    unknown = sorted(set(captions) - known)
    if unknown:
        raise VlitError(f"{path}: annotations: caption(s) of image_id {unknown[0]}, which is not in images")
    return samples
