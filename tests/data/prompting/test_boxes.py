from __future__ import annotations

import random

import numpy as np
import pytest

from vlit.data.loading.transforms import Geometry
from vlit.data.prompting import boxes as bx


def test_grid_uses_minigptv2_formula_per_axis():
    # FORMATS.md: int(coord / image_side * 100), x by width and y by height.
    assert bx.to_grid((24, 30, 110, 90), 200, 100) == (12, 30, 55, 90)
    assert bx.to_grid((0, 0, 200, 100), 200, 100) == (0, 0, 100, 100)
    assert bx.to_grid((-5, -1, 250, 120), 200, 100) == (0, 0, 100, 100)  # clamped
    assert bx.to_grid((29, 0, 29, 0), 100, 100)[0] == 29  # a cell edge is not floored to 28 by rounding


def test_pixel_grid_pixel_within_one_grid_unit():
    rng = random.Random(0)
    for _ in range(500):
        w, h = rng.randint(20, 1000), rng.randint(20, 1000)
        x1, x2 = sorted(rng.uniform(0, w) for _ in range(2))
        y1, y2 = sorted(rng.uniform(0, h) for _ in range(2))
        back = bx.from_grid(bx.to_grid((x1, y1, x2, y2), w, h), w, h)
        for orig, new, side in zip((x1, y1, x2, y2), back, (w, h, w, h), strict=True):
            assert abs(orig - new) <= side / bx.GRID / 2 + 1e-9  # cell centre: at most half a cell off


def test_grid_pixel_grid_is_exact():
    for w, h in ((200, 100), (333, 97), (28, 28)):
        for g in range(0, 101):
            assert bx.to_grid(bx.from_grid((g, g, g, g), w, h), w, h) == (g, g, g, g)


def test_unit_boxes_are_two_decimal_fractions():
    assert bx.to_unit((24, 30, 110, 90), 200, 100) == (0.12, 0.3, 0.55, 0.9)
    assert bx.format_unit_box((0.12, 0.3, 0.55, 0.9)) == "[0.12, 0.30, 0.55, 0.90]"
    assert bx.from_unit((0.12, 0.3, 0.55, 0.9), 200, 100) == pytest.approx((24, 30, 110, 90))


def test_serialise_then_parse_is_identity():
    rng = random.Random(1)
    for _ in range(200):
        boxes = []
        for _ in range(rng.randint(1, 4)):
            x1, x2 = sorted(rng.randint(0, 100) for _ in range(2))
            y1, y2 = sorted(rng.randint(0, 100) for _ in range(2))
            boxes.append((x1, y1, x2, y2))
        assert bx.parse_grid_boxes(bx.format_grid_boxes(boxes)) == boxes
        read = bx.read_boxes(bx.format_grounded("red balloon", boxes), 100, 100)
        assert [(p, bx.to_grid(b, 100, 100)) for p, b in read] == [("red balloon", b) for b in boxes]
        unit = [tuple(v / 100 for v in b) for b in boxes]
        text = ", ".join(bx.format_unit_box(b) for b in unit)
        assert np.allclose(bx.parse_unit_boxes(text), unit)


def test_formats_match_minigptv2():
    assert bx.format_grid_box((12, 30, 55, 90)) == "{<12><30><55><90>}"
    assert bx.format_grounded("red balloon", [(12, 30, 55, 90), (1, 2, 3, 4)]) == (
        "<p>red balloon</p> {<12><30><55><90>}<delim>{<1><2><3><4>}")


@pytest.mark.parametrize(("text", "expected"), [
    ("{<12><30><55><90>}", [(12, 30, 55, 90)]),
    ("The box is { <12> <30> <55> <90> } I think", [(12, 30, 55, 90)]),
    ("<12><30><55><90>", [(12, 30, 55, 90)]),                      # no braces
    ("{<55><90><12><30>}", [(12, 30, 55, 90)]),                    # corners swapped
    ("{<12><30><155><90>}", [(12, 30, 100, 90)]),                  # out of range: clamped
    ("{<16><55><24><63>|<11>}", [(16, 55, 24, 63)]),               # rotated-box suffix ignored
    ("{<1><2><3><4>}<delim>{<5><6><7>", [(1, 2, 3, 4)]),           # truncated second box
    ("{<a><b><c><d>}", []),
    ("", []),
    ("{<1><2><3><4>} and {<5><6><7><8>}", [(1, 2, 3, 4), (5, 6, 7, 8)]),
])
def test_lenient_grid_parser(text, expected):
    assert bx.parse_grid_boxes(text) == expected


def _cells(found):
    return [(p, bx.to_grid(b, 100, 100)) for p, b in found]


def test_lenient_grounded_and_unit_parsers():
    # One reader, parse_grounding's rules: boxes after an unclosed <p> or before any phrase are bare (the old
    # parse_grounded dropped them), and a phrase without boxes names none.
    text = "<p>a red circle</p> {<1><2><3><4>} and <p>a cat</p> nothing here, <p>unclosed {<5><6><7><8>}"
    assert _cells(bx.read_boxes(text, 100, 100)) == [("a red circle", (1, 2, 3, 4)), (None, (5, 6, 7, 8))]
    assert _cells(bx.read_boxes("no tags {<1><2><3><4>}", 100, 100)) == [(None, (1, 2, 3, 4))]
    assert bx.parse_unit_boxes("box [0.1, 0.2,0.5 , 1.7] and [0.3, x, 1, 2]") == [(0.1, 0.2, 0.5, 1.0)]


def test_iou():
    assert bx.iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert bx.iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert bx.iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert bx.iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


# ---- boxes through a geometry -----------------------------------------------------------------------------

def test_transform_clips_boxes_that_leave_the_image():
    crop = Geometry(1.0, 1.0, -50.0, -50.0, 50, 50)  # image.crop((50, 50, 100, 100))
    assert bx.transform_boxes([(40, 60, 70, 200), (0, 0, 10, 10)], crop) == [(0, 10, 20, 50), (0, 0, 0, 0)]
    assert bx.transform_boxes([(40, 60, 70, 200)], crop, clip=False) == [(-10, 10, 20, 150)]
