"""`EvalSample`: one benchmark question with its ground truth, what every loader returns and every metric
reads; plus the helpers loaders share (JSON reading with file/row errors, image paths, prompt rendering)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from PIL import Image, UnidentifiedImageError

from vlit.config.model import StyleName
from vlit.data.conversation import Conversation
from vlit.data.loading.transforms import Box, ImageSpec
from vlit.data.prompting.styles import render
from vlit.data.prompting.tasks import MetricName
from vlit.data.prompting.templates import TaskRecord
from vlit.data.reading.fields import expect as expect  # re-exported: the loaders import them from here
from vlit.data.reading.fields import field_of as field_of
from vlit.data.reading.fields import read_json as read_json
from vlit.data.reading.images import ImageError, check_image_file, resolve_image_path
from vlit.errors import VlitError

EvalTask = MetricName
"""Which metric of `vlit.evaluation.metrics.METRICS` scores a sample: `vqa` (VQA accuracy and normalised
exact match), `multiple_choice` (letter or option extraction), `classification` (label accuracy), `yes_no`
(POPE precision/recall/F1), `caption` (CIDEr-D, BLEU), `refer` (accuracy at IoU > 0.5, mean IoU), `open`
(free answers judged by a person or a model, e.g. LLaVA-Bench: generated, not scored here)."""
EVAL_TASKS: tuple[str, ...] = get_args(EvalTask)


@dataclass
class EvalSample:
    """One question of a benchmark.

    `conversation` is the question alone: one user turn (with `<image>` when there is an image; image paths
    already joined with the benchmark's image root), no answer. `references` by task:

    - vqa: the acceptable answers (VQAv2: the 10 human answers, duplicates kept: they count);
    - multiple_choice: one letter, the right option's ("B"); `candidates` are the option texts in order;
    - classification: the right label(s); `candidates` the label set (empty: free-form labels);
    - yes_no: "yes" or "no";
    - caption: the reference captions;
    - refer: the target box(es) `(x1, y1, x2, y2)` in pixels of the image; `meta["image_size"]` is
      `(width, height)`, needed to read a predicted box on MiniGPT-v2's 0..100 grid or in 0..1 units;
      the runner adds `meta["frame"]`, the model's `ImageSpec`, when its input is padded or cropped (the
      model names boxes on that square);
    - open: whatever reference answers the file gives (may be empty).
    """

    id: str
    conversation: Conversation
    task: EvalTask
    references: list[str] | list[Box]
    candidates: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in EVAL_TASKS:
            raise VlitError(f"sample {self.id}: task {self.task!r} is not one of {', '.join(EVAL_TASKS)}")


class Samples(list[EvalSample]):
    """A benchmark's samples (`load_samples`), with the bad rows of its files that were named and skipped
    while reading them (`vlit.evaluation.badrows`)."""

    def __init__(self, samples: Iterable[EvalSample] = (), skipped: Iterable[str] = ()) -> None:
        super().__init__(samples)
        self.skipped = list(skipped)


# ---- helpers shared by the loaders ------------------------------------------------------------------------

def image_path(root: str | Path | None, ref: str) -> str:
    """The image reference as the conversation carries it: joined with the benchmark's image root."""
    return resolve_image_path(ref, None if root is None else Path(root)).as_posix()


def image_size(path: str, where: str) -> tuple[int, int]:
    """(width, height) from the image file's header (no pixels decoded); a FIFO or device is refused before
    it is opened (`check_image_file`)."""
    try:
        check_image_file(path)
        with Image.open(path) as image:
            return image.size
    except ImageError as e:
        raise VlitError(f"{where}: image {e} (its size is needed to read predicted boxes; give width and height "
                        "in the row or fix the image root)") from None
    except (UnidentifiedImageError, OSError) as e:
        raise VlitError(f"{where}: image {path}: cannot read its size ({e})") from None


def question_conversation(record: TaskRecord, style: StyleName, image: str | None, sample_id: str,
                          seed: int = 0, frame: ImageSpec | None = None, dataset: str | None = None) -> Conversation:
    """The record asked in `style` (via `vlit.data.prompting.styles`, the same prompts training uses), answer
    dropped: the user turns up to the last one. InstructBLIP templates are drawn with an rng seeded by (seed,
    id), so a benchmark's prompts do not change between runs. A box in the question (identify) is named in
    `frame`, the model's image input. `dataset`: the record's dataset (the multitask style asks with its name)."""
    turns = render(record, style, random.Random(f"{seed}:{sample_id}"), image=image is not None, frame=frame,
                   dataset=dataset)
    return Conversation(turns[:-1], [] if image is None else [image], sample_id)
