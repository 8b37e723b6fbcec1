"""Real and rendered images with the task records that ask about them; `vlit.data.sources.build` writes them out.

Each source module turns its labels into `Example`s for the task types it supports: a dict of task type ->
maker function (`MAKERS`, its keys checked against the task specs by `supported`), drawing every random
choice from the `random.Random` it is given, so a build is reproducible from one seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image

from vlit.data.prompting.tasks import TASKS as TASK_SPECS
from vlit.data.prompting.templates import TaskRecord
from vlit.errors import VlitError


@dataclass(frozen=True)
class Example:
    """One image and one task about it (boxes in the task are pixels of this image)."""

    image: Image.Image
    task: TaskRecord


def with_article(noun: str) -> str:
    """`a sandal`, `an ankle boot`."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def supported(makers: Mapping[str, object], source: str) -> tuple[str, ...]:
    """The task types a source's makers make, in order; a key that is no task type raises at import."""
    unknown = [kind for kind in makers if kind not in TASK_SPECS]
    if unknown:
        raise VlitError(f"{source}: makers for unknown task type(s) {', '.join(unknown)}")
    return tuple(makers)
