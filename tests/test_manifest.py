"""A manifest tells a complete, unchanged folder from a truncated, altered, partial or half-written one."""

from __future__ import annotations

import json
import os

import pytest

from vlit.errors import VlitError
from vlit.manifest import CHUNK, MANIFEST_FILE, DamagedFolder, mark_unfinished, sha256, verify_manifest, write_manifest


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "weights.bin").write_bytes(bytes(range(256)) * (CHUNK // 128 + 3))  # several chunks
    (tmp_path / "sub" / "state.json").write_text('{"step": 3}')
    write_manifest(tmp_path, ["weights.bin", "sub/state.json"])
    return tmp_path


def test_a_written_folder_verifies_and_lists_sizes_and_hashes(folder):
    import hashlib

    assert verify_manifest(folder) is True
    files = json.loads((folder / MANIFEST_FILE).read_text())["files"]
    data = (folder / "weights.bin").read_bytes()
    assert files["weights.bin"] == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert sha256(folder / "weights.bin") == hashlib.sha256(data).hexdigest()  # streamed in chunks, same digest
    assert not list(folder.glob(".*.tmp"))


def test_a_folder_without_a_manifest_is_unverified_not_damaged(tmp_path):
    assert verify_manifest(tmp_path) is False


def _flip_a_bit(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, file, reason", [
    (lambda f: (f / "weights.bin").write_bytes((f / "weights.bin").read_bytes()[:1000]), "weights.bin",
     r"truncated: 1,000 bytes, manifest.json says"),
    (lambda f: _flip_a_bit(f / "weights.bin", CHUNK + 5), "weights.bin", "changed since it was written"),
    (lambda f: _flip_a_bit(f / "sub" / "state.json", 2), "sub/state.json", "changed since it was written"),
    (lambda f: (f / "sub" / "state.json").unlink(), "sub/state.json", r"missing \(listed in manifest.json\)"),
    (lambda f: (f / MANIFEST_FILE).write_text('{"files": '), MANIFEST_FILE, "unreadable"),
    (lambda f: (f / MANIFEST_FILE).write_text('{"files": [1]}'), MANIFEST_FILE, "not a vlit-manifest/1 manifest"),
], ids=["truncated", "bit flip", "edited", "missing", "manifest cut", "manifest wrong"])
def test_damage_names_the_file_and_what_is_wrong(folder, damage, file, reason):
    damage(folder)
    with pytest.raises(DamagedFolder, match=reason) as caught:
        verify_manifest(folder)
    assert caught.value.path == folder / file
    assert str(caught.value).startswith(f"{folder / file}: ")


def test_a_write_that_never_finished_reads_as_such(tmp_path):
    mark_unfinished(tmp_path / "model")
    (tmp_path / "model" / "weights.bin").write_bytes(b"half")
    with pytest.raises(DamagedFolder, match="written only in part"):
        verify_manifest(tmp_path / "model")
    write_manifest(tmp_path / "model", ["weights.bin"])
    assert verify_manifest(tmp_path / "model")


def test_a_file_it_may_not_read_is_not_called_damaged(folder):
    (folder / "weights.bin").chmod(0)
    try:
        if os.access(folder / "weights.bin", os.R_OK):  # root (CAP_DAC_OVERRIDE) reads it anyway
            pytest.skip("this user reads unreadable files (root)")
        denied = r"weights.bin: cannot read it \(Permission denied\); make it readable"
        with pytest.raises(VlitError, match=denied) as e:
            verify_manifest(folder)
        assert not isinstance(e.value, DamagedFolder)
    finally:
        (folder / "weights.bin").chmod(0o644)
