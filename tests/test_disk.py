"""The disk's failures as one line: safetensors' I/O errors become the OSError they are, and a failed write says
where, why and what to do."""

from __future__ import annotations

import errno

import pytest
import safetensors.torch
import torch
from safetensors import SafetensorError

from vlit.disk import read_safetensors, save_safetensors, write_failed
from vlit.errors import VlitError


def test_a_full_disk_under_safetensors_is_an_oserror_naming_the_file(tmp_path, monkeypatch):
    def full(tensors, filename, metadata=None):
        # What safetensors 0.8 raises when the disk fills (seen on a 1 MiB tmpfs).
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(OSError) as caught:
        save_safetensors({"a": torch.zeros(2)}, tmp_path / "x.safetensors")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "x.safetensors")


def test_a_real_io_error_of_safetensors_comes_out_as_oserror(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        save_safetensors({"a": torch.zeros(2)}, tmp_path / "no-such-folder" / "x.safetensors")
    assert caught.value.filename == str(tmp_path / "no-such-folder" / "x.safetensors")


def test_a_damaged_weights_file_is_one_line(tmp_path):
    save_safetensors({"a": torch.zeros(100)}, tmp_path / "x.safetensors")
    assert torch.equal(read_safetensors(tmp_path / "x.safetensors")["a"], torch.zeros(100))
    (tmp_path / "x.safetensors").write_bytes((tmp_path / "x.safetensors").read_bytes()[:50])
    with pytest.raises(VlitError, match=r"x.safetensors: not a readable safetensors file"):
        read_safetensors(tmp_path / "x.safetensors")
    with pytest.raises(VlitError, match=r"y.safetensors: missing"):
        read_safetensors(tmp_path / "y.safetensors")


@pytest.mark.parametrize("code, todo", [
    (errno.ENOSPC, "free space on that disk"), (errno.EDQUOT, "free space on that disk"),
    (errno.EACCES, "make the folder writable"), (errno.EROFS, "make the folder writable"),
    (errno.EIO, "check the disk"),
])
def test_a_failed_write_says_where_why_and_what_to_do(tmp_path, code, todo):
    scratch = tmp_path / ".step-6.tmp"
    inside = OSError(code, "reason", str(scratch / "model" / "model.safetensors"))
    message = str(write_failed("the checkpoint", tmp_path / "step-6", inside, "rerun", scratch=scratch))
    assert message == f"{tmp_path / 'step-6'}: cannot write the checkpoint (reason); {todo}" + (
        " (or write elsewhere)" if code != errno.EIO else "") + ", then rerun"
    assert "\n" not in message
    # A folder above the one written (the run folder, not writable) is the one to name.
    above = OSError(code, "reason", str(tmp_path))
    assert str(write_failed("the checkpoint", tmp_path / "step-6", above, "rerun")).startswith(f"{tmp_path}: ")
