"""Files already in LLaVA's conversation format (LLaVA-Instruct-150K): rows kept as they are, checked as
`vlit data validate` checks them; a bad row is skipped with its reason."""

from __future__ import annotations

from pathlib import Path

from vlit.data.convert.items import LLaVARow, Read
from vlit.data.reading.fields import BadRow, find_file
from vlit.data.reading.llava import row_problems
from vlit.data.reading.rows import RowError, iter_raw_rows

LLAVA_INSTRUCT_FILES = ("llava_instruct_150k.json", "llava_instruct_*.json", "*.json", "*.jsonl")


def read_llava_rows(path: Path) -> Read:
    """Every row of a LLaVA conversation file (JSON array or JSON Lines; PATH the file or its folder)."""
    for raw in iter_raw_rows(find_file(path, LLAVA_INSTRUCT_FILES, "LLaVA conversation file")):
        problems = [] if raw.error is not None else row_problems(raw.value)
        if raw.error is not None:
            yield BadRow(str(raw.error))
        elif problems:
            yield BadRow(str(RowError(raw.where, problems[0])))
        else:
            yield LLaVARow(raw.where, raw.value)
