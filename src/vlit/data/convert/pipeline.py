"""One release into training rows: read it, apply what its paper does to it in the chosen style, render each
example in that style, write LLaVA JSON.

- Rows are vlit's built rows: the rendered conversation plus `"dataset"` and the task record (`"task"`; a
  merged row's records as `"tasks"`), so `vlit train` can re-render them in any style and name their boxes in
  the model's padded or cropped frame.
- InstructBLIP: one template drawn per example from a random generator seeded by (seed, set, row id), so a
  conversion is reproducible and a row's prompt does not depend on the rows around it.
- LLaVA-1.5 (its appendix): each A-OKVQA question once per option order (k = its number of options; the orders
  are the k rotations, so the right option stands once at every letter); with `merge_qa`, the QA pairs of one
  image in one multi-turn row (its VQA sets and RefCOCO, the latter in pieces of fewer than 10 turns).
- A set the style's paper holds out is refused before anything is read (`sources.source_for`).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vlit.config.model import StyleName
from vlit.data.convert.items import Item, LLaVARow
from vlit.data.convert.sources import Source, source_for
from vlit.data.prompting.styles import render_tasks
from vlit.data.prompting.tasks import task_spec
from vlit.data.prompting.templates import TaskRecord
from vlit.data.reading.fields import BadRow
from vlit.data.sources.build import task_row
from vlit.errors import VlitError

MERGED_FORMS = frozenset({"short_answer", "refer", "identify"})
"""Prompt forms whose rows LLaVA-1.5's merge joins per image: its VQA sets' short answers and RefCOCO's regions.
Captions (five answers to one prompt) and A-OKVQA's option orders (66K rows in its table: not merged) stay
single rows."""
_ROLES = {"user": "human", "assistant": "gpt"}


@dataclass
class Converted:
    """One set converted: its rows, and the one-line reason of every row that was skipped."""

    name: str
    rows: list[dict[str, Any]]
    bad: list[str] = field(default_factory=list)
    read: int = 0
    """Examples read from the release (before option orders, merging and sampling)."""


def option_orders(task: TaskRecord) -> list[TaskRecord]:
    """LLaVA-1.5's multiple-choice augmentation: the record once per rotation of its options, so that with k
    options the right one is asked at each of the k letters once (options [a, b, c, d], answer b: B, A, D, C)."""
    k = len(task.options)
    return [replace(task, options=task.options[r:] + task.options[:r], answer_index=(task.answer_index - r) % k)
            for r in range(k)]


def merge_groups(items: Sequence[Item], limit: int | None) -> list[list[Item]]:
    """LLaVA-1.5's merge: items of `MERGED_FORMS` about one image in one group, in order of first appearance,
    at most `limit` per group (a full group is closed and the next item opens another where it stands); every
    other item a group of its own."""
    groups: list[list[Item]] = []
    open_at: dict[str, int] = {}
    for item in items:
        if task_spec(item.task.type).prompt not in MERGED_FORMS:
            groups.append([item])
            continue
        at = open_at.get(item.image)
        if at is None or limit is not None and len(groups[at]) >= limit:
            open_at[item.image] = len(groups)
            groups.append([item])
        else:
            groups[at].append(item)
    return groups


def _image(prefix: str | None, image: str) -> str:
    return image if not prefix else f"{prefix.rstrip('/')}/{image}"


def _rng(seed: int, name: str, row_id: str) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`: the same template on every machine and Python.
    return random.Random(f"vlit-convert:{seed}:{name}:{row_id}")


def _task_row(name: str, group: list[Item], style: StyleName, seed: int, prefix: str | None) -> dict[str, Any]:
    row_id = f"{name}-{group[0].id}"
    image = _image(prefix, group[0].image)
    if len(group) == 1:
        return task_row(row_id, image, group[0].task, name, style, _rng(seed, name, row_id))
    turns = render_tasks([i.task for i in group], style, _rng(seed, name, row_id))
    return {"id": row_id, "image": image,
            "conversations": [{"from": _ROLES[t.role], "value": t.content} for t in turns],
            "dataset": name, "tasks": [i.task.to_dict() for i in group]}


def _passed_rows(name: str, rows: list[LLaVARow], prefix: str | None) -> list[dict[str, Any]]:
    """LLaVA rows as they are, plus `dataset`; a repeated id (LLaVA-Instruct-150K's ids are image ids, and an
    image has up to three rows) becomes `<id>#<k>` with the original kept in `source_id`."""
    seen: Counter[str] = Counter()
    out = []
    for passed in rows:
        row = dict(passed.row)
        if "id" in row:
            original = str(row["id"])
            seen[original] += 1
            if seen[original] > 1:
                row["id"], row["source_id"] = f"{original}#{seen[original] - 1}", row["id"]
        image = row.get("image")
        if prefix and isinstance(image, str):
            row["image"] = _image(prefix, image)
        elif prefix and isinstance(image, list):
            row["image"] = [_image(prefix, i) for i in image]
        row["dataset"] = name
        out.append(row)
    return out


def convert_set(name: str, path: Path, style: StyleName, seed: int = 0, merge_qa: bool = False,
                image_prefix: str | None = None, sample: int | None = None, progress: bool = False) -> Converted:
    """The training rows of set `name` read from `path` (see the module docstring); bad rows are skipped and
    listed in `Converted.bad`. A set with no good row raises."""
    source = source_for(name, style)
    items: list[Item] = []
    passed: list[LLaVARow] = []
    bad: list[str] = []
    # tqdm's `disable=None` shows the bar only on a terminal.
    for got in tqdm(source.read(Path(path)), desc=name, unit=" rows", disable=None if progress else True):
        if isinstance(got, BadRow):
            bad.append(got.message)
        elif isinstance(got, LLaVARow):
            passed.append(got)
        else:
            items.append(replace(got, task=replace(got.task, category=source.category)))
    if source.category is None:
        rows = _passed_rows(name, passed, image_prefix)
    else:
        rows = _rows(name, source, items, style, seed, merge_qa, image_prefix)
    if not rows:
        first = f"; first bad row: {bad[0]}" if bad else ""
        raise VlitError(f"{path}: no {name} example could be converted{first}")
    if sample is not None and sample < len(rows):
        keep = sorted(_rng(seed, name, "sample").sample(range(len(rows)), sample))
        rows = [rows[i] for i in keep]
    return Converted(name, rows, bad, len(items) + len(passed))


def each_option_order(items: list[Item]) -> list[Item]:
    """Multiple-choice items once per `option_orders` rotation (ids `<id>#<r>`), the others as they are."""
    out = []
    for item in items:
        if item.task.type != "multiple_choice":
            out.append(item)
        else:
            out += [Item(f"{item.id}#{r}", item.image, task) for r, task in enumerate(option_orders(item.task))]
    return out


def _rows(name: str, source: Source, items: list[Item], style: StyleName, seed: int, merge_qa: bool,
          prefix: str | None) -> list[dict[str, Any]]:
    if style == "llava15":
        items = each_option_order(items)
    groups = merge_groups(items, source.merge_limit) if merge_qa else [[item] for item in items]
    return [_task_row(name, group, style, seed, prefix) for group in groups]


def check_request(names: Sequence[str], style: StyleName, merge_qa: bool, images: dict[str, str],
                  sample: dict[str, int]) -> None:
    """Everything about a conversion that can be refused before reading a file: held-out and unknown sets, a
    set given twice, options naming a set not given, a merge in a style whose paper does not merge."""
    for name in names:
        source_for(name, style)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise VlitError(f"{repeated[0]}: given more than once")
    for option, values in (("--images", images), ("--sample", sample)):
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise VlitError(f"{option}: {unknown[0]!r} is not one of the sets given ({', '.join(names)})")
    if any(n < 1 for n in sample.values()):
        raise VlitError("--sample: expected a positive number of rows")
    if merge_qa and style != "llava15":
        raise VlitError(f"--merge-qa: LLaVA-1.5's merge of an image's QA pairs; {style} asks one question per row")


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """A `.jsonl` file (one compact row per line) or a JSON array (indent 2)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
    else:
        text = json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def convert(sets: Sequence[tuple[str, Path]], style: StyleName, out: Path, seed: int = 0, merge_qa: bool = False,
            images: dict[str, str] | None = None, sample: dict[str, int] | None = None,
            progress: bool = False) -> list[tuple[Converted, Path]]:
    """Convert every (name, path) and write it: all rows into `out` when it names a `.json`/`.jsonl` file, else
    one `<name>.json` per set in the folder `out` (what a mixture with per-set weights needs)."""
    images, sample = dict(images or {}), dict(sample or {})
    check_request([n for n, _ in sets], style, merge_qa, images, sample)
    done = [convert_set(name, path, style, seed, merge_qa, images.get(name), sample.get(name), progress)
            for name, path in sets]
    out = Path(out)
    if out.suffix.lower() in (".json", ".jsonl"):
        write_rows(out, [row for c in done for row in c.rows])
        return [(c, out) for c in done]
    written = []
    for c in done:
        write_rows(out / f"{c.name}.json", c.rows)
        written.append((c, out / f"{c.name}.json"))
    return written
