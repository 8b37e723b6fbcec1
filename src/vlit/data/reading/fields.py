"""The JSON files datasets and benchmarks ship, read with errors that name the file, the row and the field:
a whole-file reader, typed field access, and finding a release's file in the folder a user points at.

Shared by training-data conversion (`vlit.data.convert`) and the benchmark loaders (`vlit.evaluation`), which
read the same releases (VQAv2, RefCOCO, COCO captions, GQA ...) for different ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from vlit.data.reading.files import JSON_FILE_LIMIT, read_text
from vlit.errors import VlitError

T = TypeVar("T")


def read_json(path: str | Path) -> Any:
    """A whole JSON file; a missing file, one that is no regular file or is over the JSON size limit
    (`vlit.data.reading.files`), or bad JSON raises naming the file (and line)."""
    path = Path(path)
    try:
        return json.loads(read_text(path, JSON_FILE_LIMIT))
    except json.JSONDecodeError as e:
        raise VlitError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None


def expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    """`value` if it is a `kind` (bools are not numbers), else VlitError naming `where`."""
    if isinstance(value, kind) and not (isinstance(value, bool) and bool not in _types(kind)):
        return value
    names = " or ".join(t.__name__ for t in _types(kind))
    raise VlitError(f"{where}: expected {names}, got {json.dumps(value, ensure_ascii=False)[:60]}")


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def field_of(row: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """`row[key]` checked to be a `kind`; a missing key or a row that is no object raises naming both."""
    if not isinstance(row, dict):
        raise VlitError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if key not in row:
        raise VlitError(f"{where}.{key}: missing")
    return expect(row[key], kind, f"{where}.{key}")


def first_existing(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The first of `names` (globs, relative to `folder`) that exists, or None."""
    for name in names:
        found = sorted(folder.glob(name))
        if found:
            return found[0]
    return None


def find_file(folder: Path, names: tuple[str, ...], what: str) -> Path:
    """The first of `names` (globs) in `folder`, or PATH itself when it is a file; an error naming the folder
    and the file names looked for."""
    if folder.is_file():
        return folder
    if not folder.exists():
        raise VlitError(f"{folder}: no such file or folder")
    found = first_existing(folder, names)
    if found is None:
        raise VlitError(f"{folder}: no {what} ({' or '.join(names)})")
    return found


@dataclass(frozen=True)
class BadRow:
    """A row that could not be read, as one line naming the file, the row and the field. Readers of whole
    releases yield it in the row's place so that the caller decides: skip and count it (converting training
    data) or stop at it (scoring a benchmark)."""

    message: str


def guarded(where: str, make: Callable[[], T]) -> T | BadRow:
    """`make()`, or the `BadRow` of the VlitError it raised while reading the row at `where` (the message
    is prefixed with `where` unless it already names it)."""
    try:
        return make()
    except VlitError as e:
        text = str(e)
        return BadRow(text if text.startswith(where) else f"{where}: {text}")
