from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlit.data.reading.images import ImageError, load_image, open_image
from vlit.errors import VlitError


def _png(tmp_path: Path, image: Image.Image, name: str = "x.png", **kw: object) -> Path:
    path = tmp_path / name
    image.save(path, **kw)
    return path


def _noise(w: int = 32, h: int = 24) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _pixel(image: Image.Image, xy: tuple[int, int] = (0, 0)) -> tuple[int, ...]:
    assert image.mode == "RGB"
    return image.getpixel(xy)


# ---- bad files: each fails in open_image with one line naming the file and the reason


def _assert_fails(path: Path, reason: str, **kw: object) -> None:
    with pytest.raises(ImageError) as info:
        open_image(path, **kw)
    message = str(info.value)
    assert isinstance(info.value, VlitError)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    _assert_fails(tmp_path / "gone.png", "no such file")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    _assert_fails(path, "empty file")


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is text, not a PNG\n")
    _assert_fails(path, "not an image")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    _assert_fails(tmp_path, "not a regular file (a directory)")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_fails_on_open_not_later(tmp_path: Path, fmt: str) -> None:
    whole = _png(tmp_path, _noise(), f"whole.{fmt.lower()}", format=fmt)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(data[: len(data) // 2])
    _assert_fails(cut, "truncated")


def test_corrupt_data(tmp_path: Path) -> None:
    data = bytearray(_png(tmp_path, _noise(64, 64)).read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    _assert_fails(path, "corrupt")


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    data = _png(tmp_path, Image.new("RGB", (2000, 1000))).read_bytes()
    header_only = tmp_path / "bomb.png"
    header_only.write_bytes(data[:100])
    # Decoding would report truncation; the size check must come first and name the size.
    _assert_fails(header_only, "2000x1000 = 2000000 pixels is over the limit of 1000000", max_pixels=1_000_000)
    assert open_image(_png(tmp_path, Image.new("RGB", (2000, 1000)), "ok.png"), max_pixels=2_000_000).size == (
        2000, 1000)


# ---- modes: every one ends as 8-bit RGB with the right values


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    image.putpixel((1, 1), (0, 0, 255, 255))
    image.putpixel((2, 2), (0, 0, 0, 128))
    out = open_image(_png(tmp_path, image))
    assert _pixel(out) == (255, 255, 255)
    assert _pixel(out, (1, 1)) == (0, 0, 255)
    assert all(abs(v - 127) <= 1 for v in _pixel(out, (2, 2)))


def test_la_is_composited_over_white(tmp_path: Path) -> None:
    image = Image.new("LA", (2, 2), (0, 0))
    image.putpixel((1, 0), (40, 255))
    out = open_image(_png(tmp_path, image))
    assert _pixel(out) == (255, 255, 255) and _pixel(out, (1, 0)) == (40, 40, 40)


def test_pa_is_composited_over_white() -> None:
    image = Image.new("PA", (2, 1))
    image.putpalette([0, 200, 0] * 256)
    image.putpixel((0, 0), (0, 0))
    image.putpixel((1, 0), (0, 255))
    out = load_image(image)
    assert _pixel(out) == (255, 255, 255) and _pixel(out, (1, 0)) == (0, 200, 0)


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    out = open_image(_png(tmp_path, image, transparency=0))
    assert _pixel(out) == (255, 255, 255) and _pixel(out, (1, 0)) == (200, 100, 50)


def test_palette_without_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (1, 1))
    image.putpalette([10, 20, 30] + [0] * 765)
    assert _pixel(open_image(_png(tmp_path, image, name="p.gif"))) == (10, 20, 30)


def test_cmyk(tmp_path: Path) -> None:
    out = open_image(_png(tmp_path, Image.new("CMYK", (3, 3), (0, 255, 255, 0)), "c.tif"))
    assert _pixel(out) == (255, 0, 0)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path, dtype: type) -> None:
    values = np.array([[0, 257 * 128, 65535, 1000]], dtype=dtype)
    image = Image.fromarray(values)
    assert image.mode == ("I;16" if dtype is np.uint16 else "I")
    # Pillow writes mode I (32-bit) only as TIFF; 16-bit PNGs open as I;16.
    out = open_image(_png(tmp_path, image, "s.png" if dtype is np.uint16 else "s.tif"))
    assert [_pixel(out, (x, 0))[0] for x in range(4)] == [0, 128, 255, 4]
    assert _pixel(out, (1, 0)) == (128, 128, 128)


def test_one_bit_and_grey(tmp_path: Path) -> None:
    bits = Image.new("1", (2, 1), 0)
    bits.putpixel((1, 0), 1)
    out = open_image(_png(tmp_path, bits, "b.png"))
    assert _pixel(out) == (0, 0, 0) and _pixel(out, (1, 0)) == (255, 255, 255)
    assert _pixel(open_image(_png(tmp_path, Image.new("L", (1, 1), 77), "l.png"))) == (77, 77, 77)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise turn
    out = open_image(_png(tmp_path, image, "o.jpg", exif=exif, quality=95))
    assert out.size == (20, 40)
    top, bottom = _pixel(out, (10, 5)), _pixel(out, (10, 35))
    assert top[2] > 200 and top[0] < 60  # the blue half is now on top
    assert bottom[0] > 200 and bottom[2] < 60


def test_load_image_resolves_against_root_and_passes_images_through(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _png(tmp_path, Image.new("RGB", (3, 2), (1, 2, 3)), "sub/a.png")
    assert _pixel(load_image("sub/a.png", tmp_path)) == (1, 2, 3)
    assert load_image(tmp_path / "sub" / "a.png", Path("/elsewhere")).size == (3, 2)
    grey = Image.new("L", (2, 2), 9)
    assert _pixel(load_image(grey)) == (9, 9, 9)
    with pytest.raises(ImageError, match="no such file"):
        load_image("sub/b.png", tmp_path)


# ---- what is no image file is refused by its type and size before a byte is read


def test_special_files_are_refused_before_reading(special_files) -> None:
    for path, reason in special_files.items():
        _assert_fails(path, reason)
        with pytest.raises(ImageError) as caught:
            load_image(path.name, root=path.parent)
        assert str(caught.value) == f"{path}: {reason}"


def test_a_file_over_the_size_limit_is_refused_unread(sparse_file, monkeypatch) -> None:
    from vlit.data.reading.images import ImageTooLarge

    path = sparse_file("huge.png", (64 << 20) + 1)
    with pytest.raises(ImageTooLarge) as caught:
        open_image(path)
    assert str(caught.value) == (f"{path}: 64.0 MiB is over the limit of 64 MiB for an image file "
                                 "(setting VLIT_MAX_IMAGE_MB)")
    monkeypatch.setenv("VLIT_MAX_IMAGE_MB", "65")
    _assert_fails(path, "not an image")  # within the raised limit it is read (zeros: no image format)


def test_a_link_to_a_good_image_opens(tmp_path: Path) -> None:
    path = _png(tmp_path, _noise())
    (tmp_path / "link.png").symlink_to(path)
    assert open_image(tmp_path / "link.png").size == (32, 24)
