"""Boxes follow the image: the geometry `to_square` reports is the one its pixels went through, both ways."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vlit.data.loading.transforms import ImageSpec, square_geometry, to_square
from vlit.data.prompting import boxes as bx

RED = (255, 0, 0)


def _drawn(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    image = Image.new("RGB", (width, height), (40, 40, 200))
    ImageDraw.Draw(image).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=RED)  # x2, y2 exclusive
    return image


def _red_bbox(image: Image.Image) -> tuple[int, int, int, int]:
    a = np.asarray(image.convert("RGB")).astype(int)
    ys, xs = np.nonzero((a[..., 0] > 180) & (a[..., 2] < 100))
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def _assert_tracks(image: Image.Image, box, tol: float = 1.5):
    """The transformed box and the red pixels of the transformed image agree within `tol` pixels."""
    got = _red_bbox(image)
    assert got == pytest.approx(box, abs=tol), (got, box)


@pytest.mark.parametrize("mode", ["stretch", "pad", "crop"])
@pytest.mark.parametrize(("w", "h"), [(300, 200), (160, 320)])
def test_boxes_follow_to_square(mode, w, h):
    box = (w // 2 - 30, h // 2 - 25, w // 2 + 20, h // 2 + 35)  # central, so the crop keeps it
    out, geo = to_square(_drawn(w, h, box), ImageSpec(224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), mode))
    _assert_tracks(out, bx.transform_boxes([box], geo)[0])
    assert bx.iou(geo.inverse(geo.forward(box)), box) == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["stretch", "pad", "crop"])
@pytest.mark.parametrize(("w", "h", "size"), [(301, 200, 224), (161, 320, 224), (97, 63, 50), (640, 479, 336)])
def test_a_box_goes_into_the_model_input_and_back_onto_the_same_pixels(mode, w, h, size):
    box = (w // 2 - w // 6, h // 2 - h // 7, w // 2 + w // 8, h // 2 + h // 5)  # central: every crop keeps it
    square, geometry = to_square(_drawn(w, h, box), ImageSpec(size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), mode))
    assert square.size == (size, size) and (geometry.out_w, geometry.out_h) == (size, size)
    seen = _red_bbox(square)  # where the box really is in the model's input
    assert geometry.forward(box) == pytest.approx(seen, abs=1)
    # And back: the red pixels of the input, mapped through the inverse, land on the drawn box (1 px of the
    # input may be several of the original when the image shrinks).
    assert geometry.inverse(seen) == pytest.approx(box, abs=max(1.0, 1 / geometry.scale_x, 1 / geometry.scale_y))


def test_pad_offsets_are_the_integer_paste():
    # (side - w) is odd: expand2square pastes at its floor, the geometry must too.
    geometry = square_geometry(101, 200, 200, "pad")
    assert geometry.offset_x == 49 and geometry.offset_y == 0 and geometry.scale_x == 1


def test_crop_uses_the_rounded_resize():
    geometry = square_geometry(301, 200, 224, "crop")
    assert geometry.scale_x == 337 / 301 and geometry.scale_y == 224 / 200 and geometry.offset_x == -56
