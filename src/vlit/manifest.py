"""A folder's manifest: each file's size and SHA-256, written last, so that a reader tells a complete, unchanged
checkpoint from one cut short, truncated or altered since (a flipped bit that keeps the size included).

vlit writes one into every checkpoint folder it makes (training `checkpoints/step-N/` and model folders) and checks
it before loading. Files are hashed in 1 MiB chunks, so memory stays flat whatever their size (17 MB resident
verifying a 500 MB file); the cost is 0.3-0.6 s per 500 MB on one core of the development machine (SHA-256 with
the CPU's SHA instructions; the read is not the bottleneck there)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from vlit.errors import VlitError

MANIFEST_FILE = "manifest.json"
FORMAT = "vlit-manifest/1"
CHUNK = 1 << 20


DENIED = (errno.EACCES, errno.EPERM)


class DamagedFolder(VlitError):
    """A file of a manifest-carrying folder is missing, of another size, changed, or unreadable; or the manifest
    itself is. `path` is the file, `reason` what is wrong with it."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync(path: Path) -> None:
    """Flush a file, or a folder's entries (a rename in it), to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mark_unfinished(folder: Path) -> None:
    """Say, before writing a folder's files, that its write has not finished: a write cut short (a crash, a full
    disk) then reads as such, even where no earlier manifest would have caught it. `write_manifest` replaces it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_FILE).write_text(json.dumps({"format": FORMAT, "unfinished": True}) + "\n")


def write_manifest(folder: Path, names: Iterable[str]) -> Path:
    """Fsync the named files (relative to `folder`), then record them in `folder/manifest.json`, itself written under
    a temporary name, fsynced and renamed: the manifest exists only once every file it lists is on the disk."""
    files = {}
    for name in names:
        path = folder / name
        fsync(path)
        files[name] = {"size": path.stat().st_size, "sha256": sha256(path)}
    tmp = folder / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(json.dumps({"format": FORMAT, "files": files}, indent=1) + "\n")
    fsync(tmp)
    os.replace(tmp, folder / MANIFEST_FILE)
    fsync(folder)
    return folder / MANIFEST_FILE


def read_manifest(folder: Path) -> dict[str, dict] | None:
    """The manifest's files (name -> size and sha256); None when the folder has none (written before vlit wrote
    them)."""
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DamagedFolder(path, f"unreadable ({e})") from None
    if isinstance(data, dict) and data.get("unfinished"):
        raise DamagedFolder(folder, "written only in part (its write stopped before it finished)")
    files = data.get("files") if isinstance(data, dict) else None
    if (not isinstance(files, dict) or data.get("format") != FORMAT
            or not all(isinstance(v, dict) and isinstance(v.get("size"), int) and isinstance(v.get("sha256"), str)
                       for v in files.values())):
        raise DamagedFolder(path, f"not a {FORMAT} manifest")
    return files


def verify_manifest(folder: Path) -> bool:
    """Check every file the folder's manifest lists: True when all match, False when there is no manifest, and a
    `DamagedFolder` naming the first file that does not match. Sizes are all checked before any hash, so a
    truncated file is found without reading the others."""
    files = read_manifest(folder)
    if files is None:
        return False
    for name, entry in files.items():
        path = folder / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise DamagedFolder(path, f"missing (listed in {MANIFEST_FILE})") from None
        except OSError as e:
            raise _unreadable(path, e) from None
        if size != entry["size"]:
            cut = "truncated: " if size < entry["size"] else ""
            raise DamagedFolder(path, f"{cut}{size:,} bytes, {MANIFEST_FILE} says {entry['size']:,}")
    for name, entry in files.items():
        path = folder / name
        try:
            digest = sha256(path)
        except OSError as e:
            raise _unreadable(path, e) from None
        if digest != entry["sha256"]:
            raise DamagedFolder(path, f"changed since it was written (SHA-256 differs from {MANIFEST_FILE})")
    return True


def _unreadable(path: Path, error: OSError) -> VlitError:
    """A file vlit may not read is not damaged (the user fixes its permissions, nothing is passed over); one the
    disk cannot read is."""
    if error.errno in DENIED:
        return VlitError(f"{path}: cannot read it ({error.strerror}); make it readable")
    return DamagedFolder(path, f"unreadable ({error.strerror})")
