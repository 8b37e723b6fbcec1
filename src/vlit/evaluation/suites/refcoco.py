"""RefCOCO, RefCOCO+ and RefCOCOg, read and scored as MiniGPT-v2's `eval_scripts/eval_ref.py` does.

Files (`refer.py`): MiniGPT-v2's evaluation files (`<dataset>_<split>.json` in PATH or in PATH/<dataset>/, or one
such file), else refer's layout (`instances.json` + `refs(unc).p`; RefCOCOg: `refs(umd).p`). The splits
eval_ref.py runs: val, testA, testB (RefCOCO, RefCOCO+), val, test (RefCOCOg).

Asked per style: MiniGPT-v2 `[refer] give me the location of {sents}` (RefCOCOEvalData's question), LLaVA-1.5
`Please provide the bounding box coordinate of the region this sentence describes: {sents}.` (its training
prompt), InstructBLIP one of vlit's refer templates.

Scored as eval_ref.py (without `--resample`, its documented command):
- an answer with `<unk>` and every space removed must start with `{<d><d><d><d>}` (1-3 digits each), else it
  scores wrong (eval_ref.py drops it; `--resample` re-asks it, greedily, up to 5 times, then scores whatever
  it got if it holds four integers: a generation loop vlit does not run);
- all the integers of that answer are the box: not exactly four raises in eval_ref.py and scores wrong;
- grid values map to pixels as `v / 100 * width` (x) and `v / 100 * height` (y): the cell's edge, not the cell
  centre `vlit.data.prompting.boxes.read_boxes` uses;
- IoU with the target `[x, y, x + w, y + h]` counts pixels inclusively (`computeIoU` adds 1 to every width
  and height, of the intersection too), no clipping; correct when IoU > 0.5; a zero union raises there and scores wrong;
- every answer is scored against the box and size of the *last* row sharing its `img_id`
  (`refcoco_dict[img_id] = item`); the rows of one referred object share them, so this is the row's own;
- accuracy per split = correct answers / rows of the split.

LLaVA-1.5 answers a box as `[x1, y1, x2, y2]` in 0..1, which eval_ref.py cannot read: an answer with no grid box
is read as lmms-eval's refcoco task reads it (the first `[a, b, c, d]`), in units of the image, and scored by the
same IoU rule. A model whose input is padded or cropped (`meta["frame"]`) names boxes on that square: they are
mapped back through its geometry, as `read_boxes` does. Answers get 32 new tokens where eval_ref.py's config
gives 20: a grid box is about 18 Llama tokens and ends at EOS, LLaVA-1.5's unit box needs about 24. The headline
is the mean of the split accuracies; MiniGPT-v2 7B's 84.29 is the mean over all 8 splits of the three benchmarks
(`REFCOCO_FAMILY`, its own column in the report).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from vlit.data.prompting.boxes import model_geometry
from vlit.data.prompting.styles import render
from vlit.data.prompting.templates import TaskRecord
from vlit.errors import VlitError
from vlit.evaluation.samples import EvalSample, image_path, question_conversation
from vlit.evaluation.suites.base import EVAL_STYLES, MINIGPTV2_7B, Pooled, Suite, drawn, shown
from vlit.evaluation.suites.refer import RefRow, eval_file_rows, refer_rows

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec

EVAL_SPLITS = {"refcoco": ("val", "testA", "testB"), "refcoco+": ("val", "testA", "testB"),
               "refcocog": ("val", "test")}
"""eval_ref.py's `eval_dict`: the splits it evaluates per dataset."""
SPLIT_BY = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}
"""refer's split of each dataset that those splits belong to (`refs(<split_by>).p`)."""

GRID_ANSWER = re.compile(r"\{<\d{1,3}><\d{1,3}><\d{1,3}><\d{1,3}>\}")
"""eval_ref.py's pattern, matched at the start of the answer (`re.match`)."""
UNIT_ANSWER = re.compile(r"\[\s*(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?)\s*\]")
"""lmms-eval's `parse_float_sequence_within`: LLaVA-1.5's `[0.12, 0.30, 0.55, 0.90]`."""
GRID_RES = 100.0
"""eval_ref.py's `--res`."""
IOU_THRESHOLD = 0.5


# ---- reading ----------------------------------------------------------------------------------------------

def _split_of(path: Path, dataset: str) -> str:
    for other in EVAL_SPLITS:
        if other != dataset and path.name.startswith(f"{other}_"):
            raise VlitError(f"{path}: a {other} file, not {dataset} (give it as {other}=PATH)")
    m = re.fullmatch(rf"{re.escape(dataset)}_(\w+)\.json", path.name)
    return m.group(1) if m else path.stem


def split_rows(path: Path, dataset: str) -> dict[str, list[RefRow]]:
    """Split -> rows of `dataset` at `path` (a file, or a folder in either layout, or their parent)."""
    splits = EVAL_SPLITS[dataset]
    if path.is_file():
        return {_split_of(path, dataset): eval_file_rows(path)}
    for folder in (path, path / dataset):
        found = {s: folder / f"{dataset}_{s}.json" for s in splits}
        if any(p.is_file() for p in found.values()):
            return {s: eval_file_rows(p) for s, p in found.items() if p.is_file()}
        refs, instances = folder / f"refs({SPLIT_BY[dataset]}).p", folder / "instances.json"
        if refs.is_file() and instances.is_file():
            rows = refer_rows(refs, splits)
            if not rows:
                raise VlitError(f"{refs}: no ref in split {' or '.join(splits)}")
            return rows
    raise VlitError(f"{path}: no {dataset} files: neither MiniGPT-v2's {dataset}_<{'|'.join(splits)}>.json nor "
                    f"refer's instances.json + refs({SPLIT_BY[dataset]}).p, here or in {dataset}/")


def read_refexp(dataset: str, bench, style, render: StyleName, seed: int,
                frame: ImageSpec | None) -> list[EvalSample]:
    """One `refer` sample per row, in split then file order; id `<split>:<row>`, `meta["question_id"]` the
    row's `img_id` (answers files keyed by it pair in order). Images: COCO train2014's `img_id[:27].jpg`."""
    samples = []
    for split, rows in split_rows(Path(bench.path), dataset).items():
        last = {row.img_id: row for row in rows}
        for k, row in enumerate(rows):
            target, sample_id = last[row.img_id], f"{split}:{k}"
            record = TaskRecord("refer", phrase=row.sent, boxes=(target.box,), image_size=target.size)
            image = image_path(bench.image_root, f"{row.img_id[:27]}.jpg")
            meta = {"split": split, "question_id": row.img_id, "image_size": target.size, "expression": row.sent}
            samples.append(EvalSample(sample_id, question_conversation(record, render, image, sample_id, seed, frame),
                                      "refer", [target.box], [], meta))
    return samples


# ---- scoring ----------------------------------------------------------------------------------------------

def compute_iou(pred: Sequence[float], gt: Sequence[float]) -> float | None:
    """MiniGPT-v2's `computeIoU`: inclusive pixel counts (+1), no clipping; None where it divides by zero."""
    x1, y1, x2, y2 = pred
    x3, y3, x4, y4 = gt
    inter = max(0, min(x2, x4) - max(x1, x3) + 1) * max(0, min(y2, y4) - max(y1, y3) + 1)
    union = (x2 - x1 + 1) * (y2 - y1 + 1) + (x4 - x3 + 1) * (y4 - y3 + 1) - inter
    return None if union == 0 else inter / union


def answer_box(answer: str, size: Sequence[int], frame: ImageSpec | None = None) -> tuple[list[float] | None, bool]:
    """(the predicted box in pixels of the original image or None, whether the answer held a box at all).

    eval_ref.py's reading first (module docstring); an answer it takes whose integers are not exactly four is a
    box it cannot score: (None, True). Else LLaVA-1.5's unit box."""
    width, height = size
    geometry = model_geometry(size, frame)
    side_w, side_h = (width, height) if geometry is None else (geometry.out_w, geometry.out_h)
    text = answer.replace("<unk>", "").replace(" ", "").strip()
    if GRID_ANSWER.match(text):
        values = [int(n) for n in re.findall(r"\d+", text)]
        if len(values) != 4:
            return None, True
        box = [values[0] / GRID_RES * side_w, values[1] / GRID_RES * side_h,
               values[2] / GRID_RES * side_w, values[3] / GRID_RES * side_h]
    elif m := UNIT_ANSWER.search(answer):
        x1, y1, x2, y2 = (float(v) for v in m.groups())
        box = [x1 * side_w, y1 * side_h, x2 * side_w, y2 * side_h]
    else:
        return None, False
    return (box if geometry is None else list(geometry.inverse(tuple(box)))), True


def refcoco_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`<split>/accuracy` (eval_ref.py's number per split, a fraction), `accuracy` (their mean) and `unparsed`
    (the fraction of answers holding no box; they count as wrong)."""
    if len(predictions) != len(samples):
        raise VlitError(f"refcoco metric: {len(predictions)} predictions for {len(samples)} samples")
    if not samples:
        raise VlitError("refcoco metric: no samples to score")
    correct: dict[str, list[bool]] = {}
    unparsed = 0
    for prediction, sample in zip(predictions, samples, strict=True):
        if "image_size" not in sample.meta or len(sample.references) != 1:
            raise VlitError(f"sample {sample.id}: a refcoco sample has meta.image_size and one target box")
        box, read = answer_box(prediction, sample.meta["image_size"], sample.meta.get("frame"))
        unparsed += not read
        iou = None if box is None else compute_iou(box, sample.references[0])
        correct.setdefault(str(sample.meta.get("split", "all")), []).append(iou is not None and iou > IOU_THRESHOLD)
    out = {f"{split}/accuracy": sum(hits) / len(hits) for split, hits in correct.items()}
    out["accuracy"] = sum(out[f"{split}/accuracy"] for split in correct) / len(correct)
    out["unparsed"] = unparsed / len(samples)
    return out


REFCOCO_FAMILY = Pooled("RefCOCO/+/g avg", ("refcoco", "refcoco+", "refcocog"), parts=8, key="/accuracy",
                        published={MINIGPTV2_7B: 84.29})
"""MiniGPT-v2's average: the mean of the 8 split accuracies of the three benchmarks (FORMATS.md)."""


def _prompts() -> dict[str, str]:
    """How each style asks for an expression's box (`Suite.prompts`), as `read_refexp` renders a refer record."""
    record = TaskRecord("refer", phrase="{expression}", boxes=((0, 0, 1, 1),), image_size=(1, 1))
    return {style: drawn("refer") if style == "instructblip"
            else shown(render(record, style, random.Random(0), image=False)[0].content) for style in EVAL_STYLES}


def _suite(dataset: str) -> Suite:
    splits = ",".join(EVAL_SPLITS[dataset])
    return Suite(read=partial(read_refexp, dataset), metric="refcoco", max_new_tokens=32, pooled=REFCOCO_FAMILY,
                 prompts=_prompts(), reference="MiniGPT-v2 `eval_scripts/eval_ref.py`",
                 files=f"MiniGPT-v2's eval_data ({dataset}_{{{splits}}}.json) or refer's {dataset}/ "
                       f"(instances.json, refs({SPLIT_BY[dataset]}).p)")


REFCOCO, REFCOCO_PLUS, REFCOCOG = _suite("refcoco"), _suite("refcoco+"), _suite("refcocog")
