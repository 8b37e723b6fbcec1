"""Data files opened safely: what a path names is checked by `os.stat` (symlinks resolved) before a byte of it is
read, so a dataset that points at `/dev/zero`, a named pipe, a folder or a 50 GB file is refused with one line
instead of reading forever or filling memory (a FIFO would block `open()` itself; `/dev/zero` never ends).

Only regular files are read, and files read whole have a size limit: an image file (64 MiB by default) and a
JSON file decoded whole (a JSON array of rows, a benchmark's annotation file: 2 GiB by default, enough for
LLaVA-1.5's 1 GB mix665k; decoding it takes several times its size in memory). JSON Lines files are streamed
and have no limit. Each limit is a setting read from the environment when a file is opened, so it reaches
every command and DataLoader worker alike, and every refusal names the setting that raises it.
"""

from __future__ import annotations

import codecs
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vlit.errors import VlitError

MIB = 1 << 20


class FileRefused(VlitError):
    """A path that is missing, is not a regular file, or is over its size limit."""


class FileTooLarge(FileRefused):
    """A regular file over its size limit."""


@dataclass(frozen=True)
class SizeLimit:
    """The most bytes of one kind of file that are read whole; `setting` (MiB, in the environment) changes it."""

    setting: str
    default_mib: float
    what: str

    def mib(self) -> float:
        raw = os.environ.get(self.setting, "").strip()
        if not raw:
            return self.default_mib
        try:
            mib = float(raw)
        except ValueError:
            mib = -1.0
        if not mib > 0:  # also refuses nan
            raise VlitError(f"{self.setting}: expected a size in MiB > 0, got {raw!r}")
        return mib

    def bytes(self) -> int:
        return int(self.mib() * MIB)

    def describe(self) -> str:
        return f"the limit of {self.mib():g} MiB for {self.what} (setting {self.setting})"


IMAGE_FILE_LIMIT = SizeLimit("VLIT_MAX_IMAGE_MB", 64, "an image file")
JSON_FILE_LIMIT = SizeLimit("VLIT_MAX_JSON_MB", 2048, "a JSON file read whole")

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _check(path: Path, status: os.stat_result, limit: SizeLimit | None) -> os.stat_result:
    if not stat.S_ISREG(status.st_mode):
        real = os.path.realpath(path)
        via = f", via a link to {real}" if real != os.path.abspath(path) else ""
        raise FileRefused(f"{path}: not a regular file ({_kind(status.st_mode)}{via})")
    if limit is not None:
        check_size(path, status.st_size, limit)
    return status


def check_size(path: str | Path, size: int, limit: SizeLimit) -> None:
    """FileTooLarge naming the path, the limit and its setting when `size` bytes are over `limit`."""
    if size > limit.bytes():
        raise FileTooLarge(f"{path}: {size / MIB:.1f} MiB is over {limit.describe()}")


def regular_file(path: str | Path, limit: SizeLimit | None = None) -> os.stat_result:
    """The stat of a regular file (after symlinks) no larger than `limit`; FileRefused naming the path else."""
    path = Path(path)
    try:
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise FileRefused(f"{path}: no such file") from None
    except OSError as e:
        raise FileRefused(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
    return _check(path, status, limit)


def open_regular(path: str | Path, limit: SizeLimit | None = None) -> BinaryIO:
    """`regular_file`, then the file opened for binary reading. The descriptor is checked again, so a path
    swapped for a pipe or device between the two checks is still refused (and O_NONBLOCK keeps the open of a
    swapped-in FIFO from waiting for a writer)."""
    path = Path(path)
    regular_file(path, limit)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        raise FileRefused(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        _check(path, os.fstat(fd), limit)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_text(path: str | Path, limit: SizeLimit = JSON_FILE_LIMIT) -> str:
    """A whole UTF-8 text file (a leading BOM dropped), refused as `regular_file` refuses it."""
    with open_regular(path, limit) as f:
        return utf8_text(f.read(), path)


def utf8_text(data: bytes, path: str | Path) -> str:
    """A file's bytes as text, a leading BOM dropped; VlitError naming the file and byte offset else."""
    text = data.removeprefix(codecs.BOM_UTF8)
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise VlitError(f"{path}: not UTF-8 text (byte {e.start + len(data) - len(text)})") from None
