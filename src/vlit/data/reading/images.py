"""Open any image file a dataset may hold as an upright 8-bit RGB image, or fail with one line naming it.

Real datasets hold rotated phone photos (EXIF orientation), transparent PNGs and palettes, CMYK JPEGs, 16-bit
scans, truncated downloads and files that are not images at all. Everything is decoded here, so a bad file
fails when it is opened (naming the file), never later inside a collate function or a worker. What is not a
regular file (a folder, a FIFO, a link to /dev/zero) or is over the image file size limit is refused before a
byte of it is read (`vlit.data.reading.files`).
"""

from __future__ import annotations

import io
import logging
import os
import struct
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vlit.data.conversation import ImageRef
from vlit.data.reading.files import IMAGE_FILE_LIMIT, FileRefused, FileTooLarge, open_regular, regular_file
from vlit.errors import VlitError

log = logging.getLogger(__name__)

PIL_MAX_PIXELS = 89_478_485
"""Pillow's own decompression-bomb limit (about 0.25 GB of RGBA), our default."""
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class ImageError(VlitError):
    """An image file that is missing, no regular file, empty, too large, truncated, corrupt or not an image."""


class ImageTooLarge(ImageError):
    """An image over the pixel or file size limit: a server answers it differently (413) from a broken one
    (400)."""


def check_image_file(path: str | Path) -> os.stat_result:
    """Refuse, before reading a byte, what cannot be an image file: missing, no regular file (a folder, a FIFO,
    a device such as a link to /dev/zero: reading one would block or never end), empty, or over the image file
    size limit (`IMAGE_FILE_LIMIT`, named in the error). Costs one `stat`, which it returns."""
    try:
        status = regular_file(path, IMAGE_FILE_LIMIT)
    except FileRefused as e:
        raise _image_error(e) from None
    if status.st_size == 0:
        raise ImageError(f"{path}: empty file")
    return status


def _image_error(error: FileRefused) -> ImageError:
    return (ImageTooLarge if isinstance(error, FileTooLarge) else ImageError)(str(error))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _upright(name: str, image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a malformed EXIF block must not lose a good image, so it is only logged."""
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error) as e:
        log.warning("%s: ignoring unreadable EXIF orientation (%s)", name, _first_line(e))
        return image.copy()


def open_image(path: str | Path, max_pixels: int = PIL_MAX_PIXELS) -> Image.Image:
    """Decode a whole image file into an upright RGB image.

    The file is checked first (`check_image_file`: a regular file within the size limit). The pixel count from
    the header is checked against `max_pixels` before any pixel is decoded. Pillow's own guard still refuses
    images above 2 * `PIL.Image.MAX_IMAGE_PIXELS`; raise that too for larger limits.
    """
    path = Path(path)
    check_image_file(path)
    try:
        file = open_regular(path, IMAGE_FILE_LIMIT)  # checks the opened file again: it may have been swapped
    except FileRefused as e:
        raise _image_error(e) from None
    with file:
        return _decode(file, str(path), max_pixels)


def decode_image(data: bytes, name: str, max_pixels: int = PIL_MAX_PIXELS) -> Image.Image:
    """`open_image` for encoded bytes already in memory (an upload); `name` starts every error message."""
    if not data:
        raise ImageError(f"{name}: empty image data")
    return _decode(io.BytesIO(data), name, max_pixels)


def _decode(source: BinaryIO, name: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Our limit replaces Pillow's warning; the warning would otherwise repeat for every large image.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                pixels = image.width * image.height
                if pixels > max_pixels:
                    raise ImageTooLarge(f"{name}: {image.width}x{image.height} = {pixels} pixels is over the "
                                        f"limit of {max_pixels} (decompression bomb guard)")
                image.load()
                upright = _upright(name, image)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"{name}: too many pixels ({_first_line(e)})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (format not recognised)") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError) as e:
        # Pillow's plugins signal broken data with any of these, depending on the format.
        raise ImageError(f"{name}: corrupt or truncated image ({_first_line(e)})") from None
    try:
        return to_rgb(upright)
    except ImageError as e:
        raise ImageError(f"{name}: {e}") from None


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    """I;16* and I (how Pillow opens 16-bit grey files) -> L, scaling 0..65535 to 0..255.

    Pillow's own `convert("L")` clips at 255 instead of scaling, which turns most 16-bit images white.
    """
    values = np.asarray(image).astype(np.float64)
    return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8))


def _over_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: transparency over white, 16-bit scaled, CMYK, grey and 1-bit converted."""
    mode = image.mode
    if mode == "I" or mode.startswith("I;16"):
        image = _sixteen_bit_to_l(image)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return _over_white(image)
    if image.mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except ValueError as e:
        raise ImageError(f"mode {mode} cannot be converted to RGB ({_first_line(e)})") from None


def resolve_image_path(ref: str | Path, root: Path | None) -> Path:
    """A relative path is relative to `root` (the dataset's image folder); absolute paths stay as they are."""
    path = Path(ref)
    return path if root is None or path.is_absolute() else Path(root) / path


def load_image(ref: ImageRef, root: Path | None = None, max_pixels: int = PIL_MAX_PIXELS) -> Image.Image:
    """A conversation's image reference -> RGB image; images already in memory are only converted."""
    if isinstance(ref, Image.Image):
        return to_rgb(ref)
    return open_image(resolve_image_path(ref, root), max_pixels=max_pixels)
