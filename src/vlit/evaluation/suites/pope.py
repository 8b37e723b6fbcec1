"""POPE (LLaVA's `eval/pope`): `llava_pope_test.jsonl` (question_id, image, text, category) and POPE's label
files `coco/coco_pope_{adversarial,popular,random}.json` (JSON Lines despite the name; question_id, label).

Scored as LLaVA's `eval_pope.py`: answers read by its yes/no rule (`pope_answer`), then per category the labels of
its file in file order against the answers of that category in order; precision, recall, F1, accuracy and the
yes-ratio per category. The headline is the mean F1 over the categories (LLaVA-1.5's 85.9)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vlit.data.reading.rows import read_rows
from vlit.errors import VlitError
from vlit.evaluation.suites.base import Suite, find_file

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec
    from vlit.evaluation.samples import EvalSample

CATEGORIES = ("adversarial", "popular", "random")


def read_pope(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    from vlit.evaluation.loaders import load_llava_questions

    folder = Path(bench.path)
    questions = find_file(folder, ("llava_pope_test.jsonl", "*.jsonl"), "POPE question file")
    labels_root = Path(bench.annotations) if bench.annotations else (questions.parent / "coco")
    labels: dict[str, list[str]] = {}
    for category in CATEGORIES:
        path = labels_root / f"coco_pope_{category}.json"
        if path.exists():
            labels[category] = [str(row.get("label", "")).strip().lower() for _, row in read_rows(path)]
    if not labels:
        raise VlitError(f"{labels_root}: no POPE label files (coco_pope_<category>.json)")
    samples = load_llava_questions(questions, bench.image_root, task="open")
    by_category: dict[str, list[EvalSample]] = {}
    for sample in samples:
        category = sample.meta.get("category")
        by_category.setdefault(str(category), []).append(sample)
    out = []
    for category, members in by_category.items():
        if category not in labels:
            raise VlitError(f"{questions}: category {category!r} has no label file in {labels_root}")
        truth = labels[category]
        if len(truth) != len(members):
            raise VlitError(f"{labels_root / f'coco_pope_{category}.json'}: {len(truth)} labels for "
                            f"{len(members)} {category} questions (they are paired in order)")
        for sample, label in zip(members, truth, strict=True):
            if label not in ("yes", "no"):
                raise VlitError(f"{labels_root / f'coco_pope_{category}.json'}: label {label!r} is not yes/no")
            sample.task = "yes_no"
            sample.references = [label]
            out.append(sample)
    return out


POPE = Suite(read=read_pope, metric="pope", files="LLaVA's eval/pope folder (llava_pope_test.jsonl, coco/)",
             max_new_tokens=16, published={"LLaVA-1.5-7B": 85.9})
