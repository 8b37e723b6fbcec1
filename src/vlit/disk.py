"""Reading and writing weight files with the disk's failures as one line: which path, what went wrong, what to do.

safetensors reports an I/O failure (a full disk, a denied write) as a `SafetensorError` whose text ends in Rust's
`(os error N)`; `save_safetensors` raises it as the `OSError` it is, so that one handler covers every write.
Light to import (torch only when a file is read or written): the CLI uses `disk_trouble` for every command.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

from vlit.errors import VlitError

if TYPE_CHECKING:
    import torch

NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """`safetensors.torch.save_file`, an I/O failure raised as `OSError` naming `path`."""
    import safetensors.torch

    try:
        safetensors.torch.save_file(tensors, path, metadata=metadata)
    except SafetensorError as e:
        found = _OS_ERROR.search(str(e))
        if found is None:
            raise
        code = int(found.group(1))
        raise OSError(code, os.strerror(code), str(path)) from None


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """`safetensors.torch.load_file`; a missing, cut short or unreadable file is one line naming it."""
    import safetensors.torch

    try:
        return safetensors.torch.load_file(path)
    except FileNotFoundError:
        raise VlitError(f"{path}: missing") from None
    except (SafetensorError, OSError) as e:
        raise VlitError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None


def disk_trouble(error: OSError) -> str | None:
    """What to do about a failed write, for the failures the disk causes (full, read-only, not allowed); None for
    others."""
    if error.errno in NO_SPACE:
        return "free space on that disk (or write elsewhere)"
    if error.errno in NOT_ALLOWED:
        return "make the folder writable (or write elsewhere)"
    return None


def write_failed(what: str, path: Path, error: OSError, then: str, scratch: Path | None = None) -> VlitError:
    """One line for a write that failed: `what` at `path`, the OS's reason, what to do, and `then` (how to carry
    on). The file the OS names is named instead when it lies outside `path` and outside the `scratch` folder the
    write went to before its rename, and the scratch folder's parent when the scratch folder could not be made
    (a denied parent folder is what the user must fix)."""
    where = Path(error.filename) if error.filename else path
    if scratch is not None and where == scratch:  # the scratch folder could not be made: its parent refused it
        where = scratch.parent
    elif where.is_relative_to(path) or (scratch is not None and where.is_relative_to(scratch)):
        where = path
    todo = disk_trouble(error) or "check the disk"
    return VlitError(f"{where}: cannot write {what} ({error.strerror or error}); {todo}, then {then}")
