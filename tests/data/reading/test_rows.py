"""The one row reader: JSON arrays and JSON Lines told apart by content, rows named by file and line/index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlit.data.reading.rows import RowError, iter_raw_rows, read_rows
from vlit.errors import VlitError


def test_json_lines_named_json_read_by_line(tmp_path: Path):
    path = tmp_path / "labels.json"  # POPE's label files are JSON Lines with a .json suffix
    path.write_text('{"question_id": 1, "label": "yes"}\n\n{"question_id": 2, "label": "no"}\n')
    assert read_rows(path) == [(f"{path}:1", {"question_id": 1, "label": "yes"}),
                               (f"{path}:3", {"question_id": 2, "label": "no"})]


def test_json_array_read_by_index(tmp_path: Path):
    path = tmp_path / "rows.jsonl"  # the content decides, not the suffix
    path.write_text(json.dumps([{"a": 1}, {"a": 2}], indent=2))
    assert read_rows(path) == [(f"{path}[0]", {"a": 1}), (f"{path}[1]", {"a": 2})]


def test_a_bad_line_is_its_own_error(tmp_path: Path):
    path = tmp_path / "d.json"
    path.write_text('{"a": 1}\n{not json\n')
    raws = list(iter_raw_rows(path))
    assert raws[0].value == {"a": 1} and raws[1].error is not None and raws[1].where == f"{path}:2"
    with pytest.raises(RowError, match=rf"^{path}:2: invalid JSON"):
        read_rows(path)


def test_a_single_object_is_a_row_of_jsonl_only(tmp_path: Path):
    path = tmp_path / "one.jsonl"
    path.write_text('{"a": 1}\n')
    assert read_rows(path) == [(f"{path}:1", {"a": 1})]
    other = tmp_path / "one.json"
    other.write_text('{"a": 1}')
    with pytest.raises(VlitError, match="expected a JSON array"):
        read_rows(other)


def test_broken_array_names_line_and_column(tmp_path: Path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"id": 1,,}\n]')
    with pytest.raises(VlitError, match=rf"^{path}:2:\d+: invalid JSON"):
        read_rows(path)
