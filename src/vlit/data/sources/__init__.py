"""Real and rendered images with the task records that ask about them; `vlit.data.sources.build` writes them out.

Each source module turns its labels into `Example`s for the task types it supports (`TASKS`), drawing every
random choice from the `random.Random` it is given, so a build is reproducible from one seed.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from vlit.data.prompting.templates import TaskRecord


@dataclass(frozen=True)
class Example:
    """One image and one task about it (boxes in the task are pixels of this image)."""

    image: Image.Image
    task: TaskRecord


def with_article(noun: str) -> str:
    """`a sandal`, `an ankle boot`."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
