"""MMBench's TSV as LLaVA reads it (`pandas.read_table`): a header row, then one question per row with its image
as base64 in the `image` column. Rows are streamed; each image is decoded to a file once (in the benchmark's
image root, else vlit's cache) and never held in memory with the others.

Cells are read with pandas' default missing-value rule, which LLaVA's `is_none` sees through: an empty cell, or
one spelled `nan`, `None`, `NA`, `N/A`, `NULL`, ... is no value (an option so spelled ends the options). A row
whose image is a short text names the row (by `index`) whose image it shares, as VLMEvalKit's TSVs save
space."""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vlit.assets import cache_root
from vlit.errors import VlitError

PANDAS_NA = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                       "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
"""`pandas.read_table`'s default missing values (`keep_default_na`)."""
IMAGE_REFERENCE_CHARS = 64
"""An `image` cell this short is another row's index, not an image (VLMEvalKit's rule)."""
_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"), (b"BM", ".bmp"), (b"RIFF", ".webp"))


def cell(value: str | None) -> str | None:
    """A cell as LLaVA's code sees it: None where pandas reads a missing value or `is_none` says none."""
    if value is None or value in PANDAS_NA or value.lower() in ("nan", "none"):
        return None
    return value


@dataclass
class TsvRow:
    """One row without its image: `where` is `file:line`, `values` the cells by column (image dropped)."""

    where: str
    index: int
    values: dict[str, str | None]
    image: str
    """The decoded image's path."""


def iter_tsv(path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """(`file:line`, raw cells by column) per row; a row with more or fewer cells than the header is an error."""
    # Base64 images exceed the csv module's default field limit (128 KiB).
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if not header:
            raise VlitError(f"{path}: empty (expected a header row: index, question, A, B, ..., image)")
        for cells in reader:
            where = f"{path}:{reader.line_num}"
            if not cells:
                continue
            if len(cells) != len(header):
                raise VlitError(f"{where}: {len(cells)} cells for the header's {len(header)} columns")
            yield where, dict(zip(header, cells, strict=True))


def image_folder(path: Path, image_root: str | None) -> Path:
    """Where a TSV's images are decoded: the benchmark's image root, else a cache folder keyed by the file's
    path, size and modification time (a changed TSV decodes again)."""
    if image_root:
        return Path(image_root)
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_root() / "mmbench" / f"{path.stem}-{key}"


def _write_image(data: str, folder: Path, index: int, where: str) -> Path:
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError) as e:
        raise VlitError(f"{where}.image: not base64 ({e})") from None
    suffix = next((s for magic, s in _MAGIC if raw.startswith(magic)), None)
    if suffix is None:
        raise VlitError(f"{where}.image: not a PNG, JPEG, GIF, BMP or WebP image")
    target = folder / f"{index}{suffix}"
    if not target.exists():
        partial = target.with_suffix(target.suffix + ".partial")
        partial.write_bytes(raw)
        partial.replace(target)  # a file under its final name is always whole
    return target


def read_tsv(path: Path, image_root: str | None) -> list[TsvRow]:
    """Every row of an MMBench TSV with its image decoded to a file; `index` must be an integer, unique."""
    folder = image_folder(path, image_root)
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[TsvRow] = []
    images: dict[int, Path] = {}
    shared: list[tuple[TsvRow, str]] = []
    seen: set[int] = set()
    for where, raw in iter_tsv(path):
        for column in ("index", "question", "image"):
            if column not in raw:
                raise VlitError(f"{where}.{column}: missing (no such column in the header)")
        try:
            index = int(raw["index"])
        except ValueError:
            raise VlitError(f"{where}.index: {raw['index']!r} is not an integer") from None
        if index in seen:
            raise VlitError(f"{where}.index: {index} repeats an earlier row")
        seen.add(index)
        row = TsvRow(where, index, {k: cell(v) for k, v in raw.items() if k != "image"}, "")
        if len(raw["image"]) <= IMAGE_REFERENCE_CHARS:
            shared.append((row, raw["image"]))
        else:
            images[index] = _write_image(raw["image"], folder, index, where)
            row.image = str(images[index])
        rows.append(row)
    for row, reference in shared:
        try:
            row.image = str(images[int(reference)])
        except (ValueError, KeyError):
            raise VlitError(f"{row.where}.image: {reference!r} is neither an image nor the index of a row "
                            "with one") from None
    if not rows:
        raise VlitError(f"{path}: no rows")
    return rows
