"""What a converter's reader yields for each example of a release: an `Item` (an image and the task record
that asks about it), a `LLaVARow` (a row already in LLaVA's format, passed through), or a `BadRow` (the
one-line reason a row was skipped)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vlit.data.prompting.templates import TaskRecord
from vlit.data.reading.fields import BadRow, guarded


@dataclass(frozen=True)
class Item:
    id: str
    """Unique within its release (a question id, `<image id>_<k>` for the k-th caption of an image ...)."""
    image: str
    """The image's path as the release names it (relative; the converter may put a folder in front)."""
    task: TaskRecord


@dataclass(frozen=True)
class LLaVARow:
    """A row of a file already in LLaVA's conversation format (LLaVA-Instruct-150K), kept as it is."""

    where: str
    row: dict[str, Any]


Read = Iterator[Item | LLaVARow | BadRow]


def each(rows: Iterable[tuple[str, Any]], make: Callable[[str, Any], Iterable[Item | BadRow]]) -> Read:
    """`make(where, row)`'s items for every row; a row whose reading raises yields one `BadRow` instead, and
    none of its items (a row is converted whole or not at all; a row of rows, such as a Visual Genome image
    and its QAs, can yield its bad parts' `BadRow`s itself)."""
    for where, row in rows:
        made = guarded(where, lambda where=where, row=row: list(make(where, row)))
        if isinstance(made, BadRow):
            yield made
        else:
            yield from made


def indexed(items: Iterable[Any], where: str) -> Iterator[tuple[str, Any]]:
    """(`where[i]`, item) for a list read from a file."""
    for i, item in enumerate(items):
        yield f"{where}[{i}]", item


def keyed(items: dict[str, Any], where: str) -> Iterator[tuple[str, tuple[str, Any]]]:
    """(`where: key`, (key, value)) for a file that is a dict keyed by id (GQA, OCR-VQA)."""
    for key, value in items.items():
        yield f"{where}: {key}", (key, value)
