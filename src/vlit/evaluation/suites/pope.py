"""POPE (LLaVA's `eval/pope`): `llava_pope_test.jsonl` (question_id, image, text, category) and POPE's label
files `coco/coco_pope_{adversarial,popular,random}.json` (JSON Lines despite the name; question_id, label).

Scored as LLaVA's `eval_pope.py`: answers read by its yes/no rule (`pope_answer`), then per category the labels of
its file in file order against the answers of that category in order; precision, recall, F1, accuracy and the
yes-ratio per category. The headline is the mean F1 over the categories (LLaVA-1.5's 85.9).

Because questions and labels pair by order, a bad row drops its partner too: a bad label row skips the question
in its place, a bad question row the label in its place. A question row too broken to tell its category is
placed by the one category left with a label too many; when that is ambiguous the pairing cannot be kept and
the file is refused, naming the row."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlit.data.prompting.styles import SHORT_ANSWER
from vlit.data.reading.fields import find_file
from vlit.data.reading.rows import iter_raw_rows
from vlit.errors import VlitError
from vlit.evaluation.badrows import Row, check_readable, parse_rows, skip_or_raise
from vlit.evaluation.samples import field_of
from vlit.evaluation.suites.base import LLAVA15_7B, Suite

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec
    from vlit.evaluation.samples import EvalSample

CATEGORIES = ("adversarial", "popular", "random")


def _label(row: Any, where: str) -> str:
    label = field_of(row, "label", str, where).strip().lower()
    if label not in ("yes", "no"):
        raise VlitError(f"{where}.label: {label!r} is not yes/no")
    return label


def _categories(rows: list[Row[EvalSample]], labels: dict[str, list[Row[str]]], source: Path) -> list[str]:
    """Each question row's category; a bad row's from its raw value, else the category it must belong to."""
    cats: list[str | None] = []
    for row in rows:
        if row.value is not None:
            cats.append(str(row.value.meta.get("category")))
        else:
            raw = row.raw.get("category") if isinstance(row.raw, dict) else None
            cats.append(raw if raw in labels else None)
    unknown = [i for i, c in enumerate(cats) if c is None]
    if unknown:
        surplus = {c: len(labels[c]) - cats.count(c) for c in labels if len(labels[c]) > cats.count(c)}
        if len(surplus) != 1 or sum(surplus.values()) != len(unknown):
            row = rows[unknown[0]]
            raise VlitError(f"{row.error}; its category is unknown, so the questions of {source} can no longer be "
                            "paired in order with POPE's label files")
        (only,) = surplus
        cats = [only if c is None else c for c in cats]
    return [str(c) for c in cats]


def read_pope(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    from vlit.evaluation.loaders import llava_question_rows

    folder = Path(bench.path)
    questions = find_file(folder, ("llava_pope_test.jsonl", "*.jsonl"), "POPE question file")
    labels_root = Path(bench.annotations) if bench.annotations else (questions.parent / "coco")
    labels: dict[str, list[Row[str]]] = {}
    for category in CATEGORIES:
        path = labels_root / f"coco_pope_{category}.json"
        if path.exists():
            labels[category] = parse_rows(iter_raw_rows(path), _label)
            check_readable(labels[category], path)
    if not labels:
        raise VlitError(f"{labels_root}: no POPE label files (coco_pope_<category>.json)")
    rows = llava_question_rows(questions, bench.image_root, task="open")
    check_readable(rows, questions)
    by_category: dict[str, list[Row[EvalSample]]] = {}
    for row, category in zip(rows, _categories(rows, labels, questions), strict=True):
        by_category.setdefault(category, []).append(row)
    out = []
    for category, members in by_category.items():
        if category not in labels:
            raise VlitError(f"{questions}: category {category!r} has no label file in {labels_root}")
        truth = labels[category]
        if len(truth) != len(members):
            raise VlitError(f"{labels_root / f'coco_pope_{category}.json'}: {len(truth)} labels for "
                            f"{len(members)} {category} questions (they are paired in order)")
        for row, label in zip(members, truth, strict=True):
            if row.error is not None and label.error is not None:
                skip_or_raise(VlitError(f"{row.error}; its label too: {label.error}"))
                continue
            if row.error is not None or label.error is not None:
                bad, partner = (row, label) if row.error is not None else (label, row)
                skip_or_raise(VlitError(f"{bad.error} (skipped with {partner.where}, paired with it in order)"))
                continue
            sample = row.value
            sample.task = "yes_no"
            sample.references = [label.value]
            out.append(sample)
    return out


POPE = Suite(read=read_pope, metric="pope", files="LLaVA's eval/pope folder (llava_pope_test.jsonl, coco/)",
             max_new_tokens=16, published={LLAVA15_7B: 85.9},
             prompts={"all": f"the file's text as written: `{{question}}\\n{SHORT_ANSWER}`"},
             reference="LLaVA `eval_pope.py`")
