"""Data files are stat'ed before they are read: only regular files, and files read whole within a size limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlit.data.reading.files import (
    IMAGE_FILE_LIMIT,
    JSON_FILE_LIMIT,
    MIB,
    FileRefused,
    FileTooLarge,
    open_regular,
    read_text,
    regular_file,
)
from vlit.errors import VlitError


def test_special_files_are_refused_by_their_type(special_files):
    for path, reason in special_files.items():
        for check in (regular_file, open_regular, read_text):
            with pytest.raises(FileRefused) as caught:
                check(path)
            assert str(caught.value) == f"{path}: {reason}"


def test_missing_file(tmp_path: Path):
    with pytest.raises(FileRefused, match=r"gone\.json: no such file$"):
        read_text(tmp_path / "gone.json")
    with pytest.raises(FileRefused, match="no such file$"):
        regular_file(tmp_path / "a-file" / "below")  # a path through a file is missing too
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(FileRefused, match="no such file$"):
        regular_file(tmp_path / "a-file" / "below")


def test_a_link_to_a_regular_file_is_read(tmp_path: Path):
    (tmp_path / "real.json").write_text("[]")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    assert read_text(tmp_path / "link.json") == "[]"


def test_size_limits_default_and_come_from_the_environment(sparse_file, monkeypatch):
    assert IMAGE_FILE_LIMIT.bytes() == 64 * MIB and JSON_FILE_LIMIT.bytes() == 2048 * MIB
    big = sparse_file("big.png", 64 * MIB + 1)  # sparse: no disk used, and never read
    with pytest.raises(FileTooLarge) as caught:
        regular_file(big, IMAGE_FILE_LIMIT)
    assert str(caught.value) == (f"{big}: 64.0 MiB is over the limit of 64 MiB for an image file "
                                 "(setting VLIT_MAX_IMAGE_MB)")
    assert regular_file(big).st_size == 64 * MIB + 1  # no limit asked: only the type is checked
    monkeypatch.setenv("VLIT_MAX_IMAGE_MB", "65")
    assert regular_file(big, IMAGE_FILE_LIMIT).st_size == 64 * MIB + 1
    monkeypatch.setenv("VLIT_MAX_JSON_MB", "0.5")
    small = sparse_file("rows.json", MIB)
    with pytest.raises(FileTooLarge, match=r"1\.0 MiB is over the limit of 0\.5 MiB for a JSON file read whole "
                                           r"\(setting VLIT_MAX_JSON_MB\)"):
        read_text(small)


@pytest.mark.parametrize("value", ["0", "-3", "lots", "nan"])
def test_a_bad_limit_setting_is_named(value, tmp_path, monkeypatch):
    monkeypatch.setenv("VLIT_MAX_IMAGE_MB", value)
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(VlitError, match=rf"^VLIT_MAX_IMAGE_MB: expected a size in MiB > 0, got '{value}'$"):
        regular_file(tmp_path / "a.png", IMAGE_FILE_LIMIT)


def test_read_text_names_bad_utf8(tmp_path: Path):
    path = tmp_path / "d.json"
    path.write_bytes(b'\xef\xbb\xbf["ok", "\xff"]')
    with pytest.raises(VlitError, match=rf"^{path}: not UTF-8 text \(byte 11\)$"):
        read_text(path)
    path.write_bytes(b'\xef\xbb\xbf["ok"]')
    assert read_text(path) == '["ok"]'  # the BOM is dropped
