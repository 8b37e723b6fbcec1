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


# ---- files that are no row file: refused before they are read, never a hang


def test_special_files_are_refused_before_reading(special_files):
    for path, reason in special_files.items():
        with pytest.raises(VlitError) as caught:
            read_rows(path)
        assert str(caught.value) == f"{path}: {reason}"


def test_an_empty_file_has_no_rows(tmp_path: Path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert read_rows(path) == []
    path.write_text("\n  \n")
    assert read_rows(path) == []


def test_a_json_array_over_the_limit_is_refused_unread(sparse_file, monkeypatch):
    monkeypatch.setenv("VLIT_MAX_JSON_MB", "1")
    path = sparse_file("rows.json", 3 << 20)
    with open(path, "r+b") as f:
        f.write(b"[")  # an array: it would be decoded whole
    with pytest.raises(VlitError) as caught:
        read_rows(path)
    assert str(caught.value) == (f"{path}: 3.0 MiB is over the limit of 1 MiB for a JSON file read whole "
                                 "(setting VLIT_MAX_JSON_MB)")


def test_json_lines_stream_past_the_limit_but_not_one_line(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VLIT_MAX_JSON_MB", "0.001")  # 1048 bytes
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"n": i, "pad": "x" * 100}) + "\n" for i in range(50)))
    assert path.stat().st_size > 4096
    assert [row["n"] for _, row in read_rows(path)] == list(range(50))
    with path.open("a") as f:
        f.write(json.dumps({"n": 50, "pad": "x" * 2000}) + "\n")
    raws = iter_raw_rows(path)
    assert [next(raws).value["n"] for _ in range(50)] == list(range(50))  # rows before it are read
    with pytest.raises(VlitError, match=rf"^{path}:51: a line over the limit of 0.001 MiB .*VLIT_MAX_JSON_MB"):
        next(raws)


def test_a_line_that_is_not_utf8_is_its_own_error(tmp_path: Path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"b": "\xff"}\n{"c": 3}\n')
    raws = list(iter_raw_rows(path))
    assert raws[0].value == {"a": 1} and raws[2].value == {"c": 3}
    assert str(raws[1].error) == f"{path}:2: not UTF-8 text (byte 7 of the line)"


def test_one_object_over_several_lines_is_no_row_file(tmp_path: Path):
    path = tmp_path / "one.json"
    path.write_text('{\n  "a": 1\n}\n')
    with pytest.raises(VlitError, match="expected a JSON array of rows or JSON Lines, got dict"):
        read_rows(path)
