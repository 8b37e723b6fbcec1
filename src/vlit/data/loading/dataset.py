"""A DatasetConfig loaded into conversations: bad-row policy, row limit, LLaVA's QA merge, lazy restyling.

Rows are kept as read. A dataset with a prompt style other than `as_is` re-renders each row on access from
its structured task record, with a random generator seeded by (seed, dataset, row, epoch): every epoch may
draw a different InstructBLIP template, and two runs with one seed see the same prompts. Boxes are named in
the model's image frame (`image_spec`: the padded or cropped square it sees, else the original image).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from vlit.config.data import DatasetConfig, MixtureConfig
from vlit.data.conversation import IMAGE_TOKEN, Conversation, ImageRef, Turn
from vlit.data.loading.skipped import SkippedRows
from vlit.data.loading.transforms import ImageSpec
from vlit.data.reading.images import ImageError, check_image_file, load_image, resolve_image_path
from vlit.data.reading.llava import parse_row
from vlit.data.reading.rows import Problem, RowError, iter_raw_rows
from vlit.errors import VlitError

log = logging.getLogger(__name__)

Restyle = Callable[[Conversation, str, random.Random, ImageSpec | None], Conversation]


def _restyler(style: str) -> Restyle | None:
    if style == "as_is":
        return None
    from vlit.data.prompting.styles import restyle  # imported here: styles loads the template files

    return restyle


@dataclass
class LoadedDataset:
    """Rows of one dataset file; `groups[i]` lists the rows that make item i (several after a QA merge)."""

    name: str
    rows: list[Conversation]
    image_root: Path
    style: str = "as_is"
    seed: int = 0
    groups: list[list[int]] = field(default_factory=list)
    skipped: list[RowError] = field(default_factory=list)
    restyle: Restyle | None = None
    frame: ImageSpec | None = None
    """The model's image input: restyled rows name their boxes in it (None: the original image)."""

    def __post_init__(self) -> None:
        if not self.groups:
            self.groups = [[i] for i in range(len(self.rows))]

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def conversations(self) -> list[Conversation]:
        """Every item at epoch 0."""
        return [self.get(i) for i in range(len(self))]

    def _row(self, index: int, epoch: int) -> Conversation:
        row = self.rows[index]
        if self.restyle is None:
            return row
        # A string seed is hashed with SHA-512 by `random`, so it is stable across processes and platforms.
        rng = random.Random(f"{self.seed}:{self.name}:{index}:{epoch}")
        return self.restyle(row, self.style, rng, self.frame)

    def get(self, index: int, epoch: int = 0) -> Conversation:
        """Item `index` as rendered in dataset epoch `epoch`."""
        members = [self._row(i, epoch) for i in self.groups[index]]
        return members[0] if len(members) == 1 else merge_conversations(members)

    def image(self, ref: ImageRef) -> Image.Image:
        """One of this dataset's image references, opened as RGB."""
        return load_image(ref, self.image_root)

    def skipped_report(self) -> str:
        lines = [f"{self.name}: skipped {len(self.skipped)} bad row(s)"]
        return "\n".join(lines + [f"  {e}" for e in self.skipped])


class _ImageFiles:
    """Skip mode's check of a row's images when the file is read: each distinct path `stat`ed once (regular,
    non-empty, within the size limit), not decoded; a corrupt image is found when its batch is encoded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._seen: dict[str, str | None] = {}  # path -> its error; dropped once the file is read

    def problem(self, row: Conversation) -> Problem | None:
        refs = [ref for ref in row.images if not isinstance(ref, Image.Image)]
        for i, ref in enumerate(refs):
            path = str(resolve_image_path(ref, self.root))
            if path not in self._seen:
                try:
                    check_image_file(path)
                    self._seen[path] = None
                except ImageError as e:
                    self._seen[path] = str(e)
            error = self._seen[path]
            if error is not None:
                return Problem("image" if len(refs) == 1 else f"image[{i}]", "image", error)
        return None


def _read_rows(path: Path, max_rows: int | None, on_bad_row: str,
               images: _ImageFiles) -> tuple[list[Conversation], list[RowError]]:
    rows: list[Conversation] = []
    skipped: list[RowError] = []
    for raw in iter_raw_rows(path):
        if max_rows is not None and len(rows) >= max_rows:
            break
        try:
            if raw.error is not None:
                raise raw.error
            row = parse_row(raw.value, raw.where)
            problem = images.problem(row) if on_bad_row == "skip" else None
            if problem is not None:
                raise RowError(raw.where, problem)
            rows.append(row)
        except RowError as e:
            if on_bad_row == "fail":
                raise
            skipped.append(e)
    return rows, skipped


def _inside_frame(rows: list[Conversation], name: str, frame: ImageSpec | None) -> list[Conversation]:
    """The rows whose task boxes the model can see: a box a crop cuts away entirely cannot be named, so its
    row is dropped with a warning (a box the crop only cuts is clipped when the row renders)."""
    if frame is None or frame.resize != "crop":
        return rows
    from vlit.data.prompting.boxes import outside_frame
    from vlit.data.prompting.templates import row_tasks

    kept = []
    for row in rows:
        try:
            tasks = row_tasks(row.meta) or []
        except VlitError:
            tasks = []  # rendering the row reports the bad record
        lost = [(t, b) for t in tasks for b in t.boxes if outside_frame(b, t.image_size, frame)]
        if lost:
            task, box = lost[0]
            log.warning("%s: dropped row %s: its %s box %s falls outside the model's %dx%d centre crop of the "
                        "%dx%d image", name, row.id, task.type, list(box), frame.size, frame.size,
                        *task.image_size)
        else:
            kept.append(row)
    return kept


def load_dataset(cfg: DatasetConfig, root: Path | None = None, on_bad_row: str = "fail", rng_seed: int = 0,
                 merge_qa: bool = False, image_spec: ImageSpec | None = None) -> LoadedDataset:
    """Read `cfg.path` (relative to `root`, the config's data root; so is a relative `image_root`).

    `on_bad_row="fail"` raises on the first bad row; `"skip"` keeps every valid row and records the rest in
    `skipped` (and logs them, `vlit.data.loading.skipped`); it also refuses a row whose image file is missing,
    no regular file, empty or over the size limit (one `stat` per distinct image). `max_rows` counts valid
    rows, before any merge. `image_spec` is the model's image input: restyled rows name their boxes on its
    padded or cropped square (None: on the original image), and a row whose box a crop cuts away is dropped
    with a warning naming it.
    """
    if on_bad_row not in ("fail", "skip"):
        raise VlitError(f"on_bad_row: {on_bad_row!r} is not one of 'fail', 'skip'")
    restyle = _restyler(cfg.style)
    # A data file resolves against the data root as an image does against its image root.
    path = resolve_image_path(cfg.path, root)
    image_root = resolve_image_path(cfg.image_root, root) if cfg.image_root is not None else path.parent
    rows, skipped = _read_rows(path, cfg.max_rows, on_bad_row, _ImageFiles(image_root))
    if skipped:
        report = SkippedRows(cfg.name)
        for error in skipped:
            report.add(str(error), error.problem.kind)
        log.warning("%s of %s, %d kept", report.summary(), path, len(rows))
    if restyle is not None:
        rows = _inside_frame(rows, cfg.name, image_spec)
    if not rows:
        raise VlitError(f"{path}: dataset {cfg.name!r} has no valid rows")
    groups = qa_groups(rows) if merge_qa else []
    return LoadedDataset(cfg.name, rows, image_root, cfg.style, rng_seed, groups, skipped, restyle, image_spec)


def load_mixture(cfg: MixtureConfig, root: Path | None = None,
                 image_spec: ImageSpec | None = None) -> dict[str, LoadedDataset]:
    """Every dataset of a mixture, in config order, with the mixture's bad-row policy, seed and merge; boxes
    named in `image_spec`'s frame (see `load_dataset`)."""
    return {d.name: load_dataset(d, root, cfg.on_bad_row, cfg.seed, cfg.merge_qa, image_spec)
            for d in cfg.datasets}


def _merge_key(conversation: Conversation) -> tuple[str, str | None, object] | None:
    """Rows that may merge share this key: one image file, the same system prompt and source dataset."""
    roles = [t.role for t in conversation.messages]
    if roles != ["user", "assistant"] or len(conversation.images) != 1:
        return None
    image = conversation.images[0]
    if not isinstance(image, str | Path):
        return None
    return Path(image).as_posix(), conversation.system, repr(conversation.meta.get("dataset"))


def qa_groups(rows: list[Conversation]) -> list[list[int]]:
    """LLaVA's merge: single-QA rows with one shared image form one group, in order of first appearance, the
    rows in file order; every other row is a group of its own."""
    groups: list[list[int]] = []
    by_key: dict[tuple, int] = {}
    for i, row in enumerate(rows):
        key = _merge_key(row)
        if key is None:
            groups.append([i])
        elif key in by_key:
            groups[by_key[key]].append(i)
        else:
            by_key[key] = len(groups)
            groups.append([i])
    return groups


def _without_marker(text: str) -> str:
    return text.replace(f"{IMAGE_TOKEN}\n", "").replace(IMAGE_TOKEN, "").strip()


def merge_conversations(members: list[Conversation]) -> Conversation:
    """Single-QA conversations about one image -> one multi-turn conversation; only the first question keeps
    the `<image>` marker. Meta is the first member's, plus `merged_ids`."""
    first = members[0]
    turns = list(first.turns)
    for member in members[1:]:
        if [t.role for t in member.messages] != ["user", "assistant"]:
            raise VlitError(f"merge_qa: row {member.id!r} is not one question and one answer after restyling")
        question, answer = member.messages
        turns += [Turn("user", _without_marker(question.content)), answer]
    meta = {**first.meta, "merged_ids": [m.id for m in members]}
    return Conversation(turns, list(first.images), first.id, meta)
