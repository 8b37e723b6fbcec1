"""Check every row of a LLaVA file (structure, images, ids) and describe a dataset (turns, images, tokens).

Validation reports every bad row, not just the first: a user fixing a 600k-row file needs the whole list.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlit.data.conversation import IMAGE_TOKEN, Conversation
from vlit.data.prompting.templates import row_tasks
from vlit.data.reading.images import ImageError, check_image_file, open_image, resolve_image_path
from vlit.data.reading.llava import row_images, row_problems
from vlit.data.reading.rows import Problem, iter_raw_rows
from vlit.errors import VlitError


@dataclass(frozen=True)
class RowProblem:
    """A problem located in the file: `where` is `file:line` (JSONL) or `file[index]` (JSON)."""

    where: str
    problem: Problem

    def __str__(self) -> str:
        field_ = f" {self.problem.field}:" if self.problem.field else ""
        return f"{self.where}:{field_} {self.problem.reason}"


@dataclass
class ValidationReport:
    path: Path
    rows: int = 0
    bad_rows: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def good_rows(self) -> int:
        return self.rows - self.bad_rows

    @property
    def ok(self) -> bool:
        return self.rows > 0 and self.bad_rows == 0

    def by_kind(self) -> Counter[str]:
        return Counter(p.problem.kind for p in self.problems)

    def summary(self) -> str:
        lines = [f"{self.path}: {self.rows} rows, {self.good_rows} good, {self.bad_rows} bad"]
        if self.rows == 0:
            lines.append("  no rows")
        lines += [f"  {kind}: {count}" for kind, count in sorted(self.by_kind().items())]
        return "\n".join(lines)


class _ImageChecker:
    """Checks each distinct image file once: many rows share one image."""

    def __init__(self, root: Path, open_images: bool) -> None:
        self.root = root
        self.open_images = open_images
        self._seen: dict[Path, str | None] = {}

    def error(self, ref: str) -> str | None:
        path = resolve_image_path(ref, self.root)
        if path not in self._seen:
            self._seen[path] = self._check(path)
        return self._seen[path]

    def _check(self, path: Path) -> str | None:
        try:
            if self.open_images:
                open_image(path).close()
            else:
                check_image_file(path)
        except ImageError as e:
            return str(e)
        return None


def _row_id(value: Any) -> str | None:
    row_id = value.get("id") if isinstance(value, dict) else None
    return str(row_id) if isinstance(row_id, str | int) and not isinstance(row_id, bool) else None


def _task_problems(row: Any) -> list[Problem]:
    """A task record (`task`, or a merged row's `tasks`) that a prompt style could not render from."""
    if not isinstance(row, dict):
        return []
    try:
        row_tasks(row)
    except VlitError as e:
        return [Problem("", "task", str(e))]
    return []


def validate_file(path: str | Path, image_root: str | Path | None = None,
                  open_images: bool = True) -> ValidationReport:
    """Every problem of every row: JSON syntax, fields, roles, turn order, empty text, marker counts, task
    records (`task` / `tasks`, as a prompt style reads them), images (missing, or unreadable when
    `open_images`), duplicate ids. `image_root` defaults to the file's folder."""
    path = Path(path)
    images = _ImageChecker(Path(image_root) if image_root is not None else path.parent, open_images)
    report = ValidationReport(path)
    first_seen: dict[str, str] = {}
    for raw in iter_raw_rows(path):
        report.rows += 1
        if raw.error is not None:
            found = [raw.error.problem]
        else:
            found = row_problems(raw.value) + _task_problems(raw.value)
            refs = row_images(raw.value)
            for i, ref in enumerate(refs):
                error = images.error(ref)
                if error is not None:
                    found.append(Problem("image" if len(refs) == 1 else f"image[{i}]", "image", error))
            row_id = _row_id(raw.value)
            if row_id is not None:
                if row_id in first_seen:
                    reason = f"{row_id!r} already used at {first_seen[row_id]}"
                    found.append(Problem("id", "duplicate_id", reason))
                else:
                    first_seen[row_id] = raw.where
        if found:
            report.bad_rows += 1
            report.problems += [RowProblem(raw.where, p) for p in found]
    return report


@dataclass(frozen=True)
class DatasetStats:
    rows: int
    turns: int
    images: int
    text_only_rows: int
    tokens: int
    max_tokens: int

    @property
    def mean_turns(self) -> float:
        return self.turns / self.rows if self.rows else 0.0

    @property
    def mean_tokens(self) -> float:
        return self.tokens / self.rows if self.rows else 0.0

    def summary(self) -> str:
        return "\n".join([
            f"rows:           {self.rows}",
            f"turns:          {self.turns} (mean {self.mean_turns:.2f} per row)",
            f"images:         {self.images}",
            f"text-only rows: {self.text_only_rows}",
            f"text tokens:    {self.tokens} (mean {self.mean_tokens:.1f}, max {self.max_tokens} per row)",
        ])


def _row_token_counts(conversations: Sequence[Conversation], tokenizer: Any, chunk: int) -> list[int]:
    counts = []
    for start in range(0, len(conversations), chunk):
        part = conversations[start:start + chunk]
        # Markers are removed: how many tokens an image becomes depends on the connector, not the text.
        texts = [t.content.replace(IMAGE_TOKEN, "") for c in part for t in c.turns]
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        offset = 0
        for c in part:
            counts.append(sum(len(x) for x in ids[offset:offset + len(c.turns)]))
            offset += len(c.turns)
    return counts


def compute_stats(conversations: Iterable[Conversation], tokenizer: Any, chunk: int = 1024) -> DatasetStats:
    """Counts over a dataset; tokens are the turns' text tokens (no chat template, no image tokens)."""
    conversations = list(conversations)
    tokens = _row_token_counts(conversations, tokenizer, chunk)
    return DatasetStats(
        rows=len(conversations),
        turns=sum(len(c.turns) for c in conversations),
        images=sum(len(c.images) for c in conversations),
        text_only_rows=sum(1 for c in conversations if not c.images),
        tokens=sum(tokens),
        max_tokens=max(tokens, default=0),
    )
