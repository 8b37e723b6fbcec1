"""The one reader of row files: a JSON array or JSON Lines, told apart by the content, not the suffix (POPE's
label files, for one, are JSON Lines named `.json`).

- The text starts with `[`: a JSON array, decoded whole (so its size is limited: `JSON_FILE_LIMIT`); a syntax
  error raises naming `file:line:column`, since no row of a broken array can be trusted. Rows are named
  `file[index]`.
- Else the whole text may be one JSON value: an object is one row of a `.jsonl` file, anything else is not a
  row file.
- Else JSON Lines, streamed: one row per non-blank line, named `file:line`; a line that is not JSON (or not
  UTF-8) is yielded as that row's error (the other lines still count). A single line is limited as a JSON
  file is.

The file is checked before it is read (`vlit.data.reading.files`): a FIFO, a device or a folder is refused.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, count
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from vlit.data.reading.files import JSON_FILE_LIMIT, FileTooLarge, check_size, open_regular, utf8_text
from vlit.errors import VlitError


class Problem(NamedTuple):
    """One thing wrong with a row: the field (dotted, as in the file), a kind to count by, the reason."""

    field: str
    kind: str
    reason: str


class RowError(VlitError):
    """A bad row; `where` is `file:line` (JSONL) or `file[index]` (JSON)."""

    def __init__(self, where: str, problem: Problem) -> None:
        self.where = where
        self.problem = problem
        field = f" {problem.field}:" if problem.field else ""
        super().__init__(f"{where}:{field} {problem.reason}")


@dataclass(frozen=True)
class RawRow:
    """One decoded row of a file, or the JSON error that stopped it from decoding."""

    where: str
    value: Any = None
    error: RowError | None = None


def iter_raw_rows(path: str | Path) -> Iterator[RawRow]:
    """Decode a row file (module docstring) row by row."""
    path = Path(path)
    with open_regular(path) as f:
        if _first_byte(f) == b"[":
            yield from _array_rows(path, f)
            return
        lines = _lines(f, path)
        first = next(lines, None)
        if first is None:
            return
        second = next(lines, None)
        text = first[1]
        if isinstance(text, str):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                # Several lines, the first no JSON on its own: perhaps one value written over several lines.
                if second is not None and text.lstrip().startswith("{"):
                    _refuse_one_value(path, _whole_value(f))
            else:
                if second is None:  # the whole text is this one value
                    _refuse_one_value(path, value)
        yield from _line_rows(path, chain([first], [] if second is None else [second], lines))


def _first_byte(f: BinaryIO) -> bytes:
    """The first byte after a UTF-8 BOM and whitespace (b"" for none); the read position is put back at 0."""
    chunk = f.read(1 << 16).removeprefix(codecs.BOM_UTF8)
    while chunk:
        stripped = chunk.lstrip()
        if stripped:
            f.seek(0)
            return stripped[:1]
        chunk = f.read(1 << 16)
    f.seek(0)
    return b""


_NOT_ONE_VALUE = object()


def _refuse_one_value(path: Path, value: Any) -> None:
    """A file holding one JSON value is a row file only as a one-object `.jsonl` file."""
    if value is not _NOT_ONE_VALUE and not (isinstance(value, dict) and path.suffix.lower() == ".jsonl"):
        raise VlitError(f"{path}: expected a JSON array of rows or JSON Lines, got {type(value).__name__}")


def _lines(f: BinaryIO, path: Path) -> Iterator[tuple[int, str | UnicodeDecodeError]]:
    """(line number, text) of each non-blank line, read one at a time, each within the JSON file limit; a line
    that is not UTF-8 comes as its decode error."""
    limit = JSON_FILE_LIMIT.bytes()
    for number in count(1):
        raw = f.readline(limit + 1)
        if not raw:
            return
        if len(raw.rstrip(b"\r\n")) > limit:  # the read stopped inside the line
            raise FileTooLarge(f"{path}:{number}: a line over {JSON_FILE_LIMIT.describe()}")
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as e:
            yield number, e
            continue
        if text.strip():
            yield number, text


def _line_rows(path: Path, lines: Iterable[tuple[int, str | UnicodeDecodeError]]) -> Iterator[RawRow]:
    for number, line in lines:
        where = f"{path}:{number}"
        if isinstance(line, UnicodeDecodeError):
            problem = Problem("", "utf8", f"not UTF-8 text (byte {line.start} of the line)")
            yield RawRow(where, error=RowError(where, problem))
            continue
        try:
            yield RawRow(where, json.loads(line))
        except json.JSONDecodeError as e:
            yield RawRow(where, error=RowError(where, Problem("", "json", f"invalid JSON: {e.msg} "
                                                                 f"(column {e.colno})")))


def _whole_text(f: BinaryIO, path: Path) -> str:
    """The file's text from its start, within the JSON file limit (only JSON Lines are streamed)."""
    check_size(path, os.fstat(f.fileno()).st_size, JSON_FILE_LIMIT)
    f.seek(0)
    return utf8_text(f.read(), path)


def _array_rows(path: Path, f: BinaryIO) -> Iterator[RawRow]:
    try:
        data = json.loads(_whole_text(f, path))
    except json.JSONDecodeError as e:
        raise VlitError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    for index, value in enumerate(data):
        yield RawRow(f"{path}[{index}]", value)


def _whole_value(f: BinaryIO) -> Any:
    """The file's one JSON value, or _NOT_ONE_VALUE (several values, bad JSON, or too large to try); the read
    position is kept."""
    position = f.tell()
    try:
        size = os.fstat(f.fileno()).st_size
        if size > JSON_FILE_LIMIT.bytes():
            return _NOT_ONE_VALUE
        f.seek(0)
        try:
            return json.loads(f.read().decode("utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _NOT_ONE_VALUE
    finally:
        f.seek(position)


def read_rows(path: str | Path) -> list[tuple[str, Any]]:
    """(where, row) of every row of a row file; the first line that is not JSON raises naming it."""
    rows = []
    for raw in iter_raw_rows(path):
        if raw.error is not None:
            raise raw.error
        rows.append((raw.where, raw.value))
    return rows
