"""Bad rows of a benchmark's files: named, skipped, counted; the rest is scored.

A benchmark file of thousands of rows with one truncated line or one row missing a field should not stop a run
that took hours to predict: while `load_samples` reads a benchmark (`collecting_bad_rows`), each bad row is
one warning naming its file, line (or index) and field, and the count lands in the metrics JSON as
`skipped_rows`. Outside it (a loader called directly, the model config, answers files) the first bad row
raises as before. A file that cannot be read at all (missing, not UTF-8, a broken JSON array) or that has no
good row raises either way: there is nothing left to score.

Readers parse a file row by row with `parse_rows` (or `read_each`), a row's parser raising `VlitError` for
whatever is wrong with that row; the error becomes the row's, not the file's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from vlit.data.reading.rows import RawRow, iter_raw_rows
from vlit.errors import VlitError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class BadRows:
    """The bad rows named while reading one benchmark, one line each."""

    found: list[str] = field(default_factory=list)

    def skip(self, error: VlitError) -> None:
        message = str(error)
        log.warning("%s (row skipped)", message)
        self.found.append(message)


_COLLECTING: ContextVar[BadRows | None] = ContextVar("vlit_bad_rows", default=None)


@contextmanager
def collecting_bad_rows() -> Iterator[BadRows]:
    """Within the block, `skip_or_raise` names and skips bad rows instead of raising."""
    bad = BadRows()
    token = _COLLECTING.set(bad)
    try:
        yield bad
    finally:
        _COLLECTING.reset(token)


def skip_or_raise(error: VlitError) -> None:
    """A bad row: skipped and named while a benchmark is being read (`collecting_bad_rows`), else raised."""
    bad = _COLLECTING.get()
    if bad is None:
        raise error
    bad.skip(error)


@dataclass(frozen=True)
class Row(Generic[T]):
    """One row of a file: its parsed value, or the error that stopped it."""

    where: str
    """`file:line` (JSON Lines), `file[index]` (JSON array) or `file[key]` (JSON object of entries)."""
    raw: Any
    """The decoded JSON value; None when the line is not JSON."""
    value: T | None = None
    error: VlitError | None = None


def parse_rows(rows: Iterable[RawRow], parse: Callable[[Any, str], T]) -> list[Row[T]]:
    """`parse(row, where)` on each decoded row; a row that is not JSON, or whose `parse` raises `VlitError`,
    keeps the error instead of a value. Errors of the file as a whole (from `iter_raw_rows`) propagate."""
    out: list[Row[T]] = []
    for raw in rows:
        if raw.error is not None:
            out.append(Row(raw.where, None, error=raw.error))
            continue
        try:
            out.append(Row(raw.where, raw.value, parse(raw.value, raw.where)))
        except VlitError as e:
            out.append(Row(raw.where, raw.value, error=e))
    return out


def entries(data: dict[str, Any], path: str | Path) -> Iterator[RawRow]:
    """The entries of a JSON object keyed by id (ScienceQA's problems.json, MM-Vet's mm-vet.json) as rows
    named `file[key]`."""
    for key, value in data.items():
        yield RawRow(f"{path}[{key}]", value)


def check_readable(rows: list[Row[Any]], source: str | Path) -> None:
    """A file whose rows are all bad is unreadable: it raises (in strict mode, with its first bad row)."""
    if rows and all(r.error is not None for r in rows):
        first = rows[0].error
        if _COLLECTING.get() is None:
            raise first
        raise VlitError(f"{source}: no readable row ({len(rows)} bad; the first: {first})")


def keep_good(rows: list[Row[T]], source: str | Path) -> list[T]:
    """The good rows' values in order; each bad row `skip_or_raise`d."""
    check_readable(rows, source)
    out = []
    for row in rows:
        if row.error is not None:
            skip_or_raise(row.error)
        else:
            out.append(row.value)
    return out


def read_each(path: str | Path, parse: Callable[[Any, str], T]) -> list[T]:
    """Every good row of a row file (JSON array or JSON Lines) through `parse`; see `keep_good`."""
    return keep_good(parse_rows(iter_raw_rows(path), parse), path)
