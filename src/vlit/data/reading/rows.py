"""The one reader of row files: a JSON array or JSON Lines, told apart by the content, not the suffix (POPE's
label files, for one, are JSON Lines named `.json`).

- The text starts with `[`: a JSON array; a syntax error raises naming `file:line:column`, since no row of a
  broken array can be trusted. Rows are named `file[index]`.
- Else the whole text may be one JSON value: an object is one row of a `.jsonl` file, anything else is not a
  row file.
- Else JSON Lines: one row per non-blank line, named `file:line`; a line that is not JSON is yielded as that
  row's error (the other lines still count).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

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
    if not path.is_file():
        raise VlitError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise VlitError(f"{path}: not UTF-8 text (byte {e.start})") from None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise VlitError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
        for index, value in enumerate(data):
            yield RawRow(f"{path}[{index}]", value)
        return
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None  # several values (JSON Lines) or a bad line: read line by line
    else:
        if not (isinstance(whole, dict) and path.suffix.lower() == ".jsonl"):
            raise VlitError(f"{path}: expected a JSON array of rows or JSON Lines, got {type(whole).__name__}")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            yield RawRow(where, json.loads(line))
        except json.JSONDecodeError as e:
            yield RawRow(where, error=RowError(where, Problem("", "json", f"invalid JSON: {e.msg} "
                                                                 f"(column {e.colno})")))


def read_rows(path: str | Path) -> list[tuple[str, Any]]:
    """(where, row) of every row of a row file; the first line that is not JSON raises naming it."""
    rows = []
    for raw in iter_raw_rows(path):
        if raw.error is not None:
            raise raw.error
        rows.append((raw.where, raw.value))
    return rows
