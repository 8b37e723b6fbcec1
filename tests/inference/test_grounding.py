from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vlit.data.prompting.boxes import from_grid, to_grid
from vlit.inference.grounding import (
    GroundedBox,
    draw_grounding,
    format_grounding,
    palette,
    parse_grounding,
    save_grounding,
)

W, H = 200, 100


def _px(*grid: int) -> tuple[float, ...]:
    return from_grid(grid, W, H)


@pytest.mark.parametrize(("text", "expected"), [
    ("{<12><30><55><90>}", [(None, (12, 30, 55, 90))]),
    ("<p>red ball</p> {<12><30><55><90>}<delim>{<60><10><80><40>}",
     [("red ball", (12, 30, 55, 90)), ("red ball", (60, 10, 80, 40))]),
    ("A <p>cat</p> {<0><0><10><10>} sits by a <p>dog</p> {<50><50><100><100>}.",
     [("cat", (0, 0, 10, 10)), ("dog", (50, 50, 100, 100))]),
    ("{<1><2><3><4>} then <p>x</p> {<5><6><7><8>}", [(None, (1, 2, 3, 4)), ("x", (5, 6, 7, 8))]),
    # truncated or sloppy output: what is well formed survives
    ("<p>red ball</p> {<12><30><55>", []),
    ("<p>red ball {<12><30><55><90>}", [(None, (12, 30, 55, 90))]),
    ("<p>cat</p><p>dog</p> {<1><1><2><2>}", [("dog", (1, 1, 2, 2))]),
    ("{<55><90><12><30>}", [(None, (12, 30, 55, 90))]),  # corners put in order
    ("{<-5><30><155><90>}", [(None, (0, 30, 100, 90))]),  # clamped to the grid
    ("<p>a {<9><9><9><9>}</p> {<1><2><3><4>}", [("a {<9><9><9><9>}", (1, 2, 3, 4))]),
    ("no boxes at all", []),
    ("", []),
])
def test_parses_minigptv2_output(text, expected):
    assert parse_grounding(text, W, H) == [GroundedBox(p, _px(*g)) for p, g in expected]


def test_boxes_are_in_pixels_of_the_original_image():
    (found,) = parse_grounding("{<10><20><50><100>}", 640, 480)
    assert found.box == pytest.approx((67.2, 98.4, 323.2, 480.0))  # x by width, y by height; cell centres


def test_huge_numbers_and_bad_sizes_do_not_raise():
    assert parse_grounding("{<" + "9" * 400 + "><2><3><4>}", W, H) == [GroundedBox(None, _px(3, 2, 100, 4))]
    assert parse_grounding("{<1><2><3><4>}", 0, H) == []
    assert parse_grounding(None, W, H) == []  # type: ignore[arg-type]


_FRAGMENTS = ["<p>", "</p>", "{", "}", "<", ">", "<delim>", "-", ".", " ", "\n", "red", "<12>", "7", "100",
              "99999"]


@settings(deadline=None)  # pure Python and fast, but a loaded CI machine must not make it flaky
@given(st.one_of(st.text(), st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("".join)),
       st.floats(allow_nan=True), st.floats(allow_nan=True))
def test_parser_never_raises(text, width, height):
    for g in parse_grounding(text, width, height):
        assert g.phrase is None or isinstance(g.phrase, str)
        x1, y1, x2, y2 = g.box
        assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height


_phrases = st.text(min_size=1, max_size=12).filter(
    lambda s: s == s.strip() and "<p>" not in s and "</p>" not in s)


@st.composite
def _grounded(draw) -> tuple[int, int, list[GroundedBox]]:
    width, height = draw(st.integers(1, 4000)), draw(st.integers(1, 4000))

    def box() -> tuple[float, float, float, float]:
        xs = sorted(draw(st.floats(0, width)) for _ in range(2))
        ys = sorted(draw(st.floats(0, height)) for _ in range(2))
        return (xs[0], ys[0], xs[1], ys[1])

    bare = [GroundedBox(None, box()) for _ in range(draw(st.integers(0, 3)))]
    phrases = draw(st.lists(_phrases, max_size=4))
    phrased = [GroundedBox(p, box()) for p in phrases for _ in range(draw(st.integers(1, 2)))]
    return width, height, bare + phrased


@settings(max_examples=200, deadline=None)
@given(_grounded())
def test_parse_round_trips_what_format_writes(case):
    width, height, found = case
    parsed = parse_grounding(format_grounding(found, width, height), width, height)
    assert [g.phrase for g in parsed] == [g.phrase for g in found]
    for p, g in zip(parsed, found, strict=True):
        cell = (width / 100, height / 100)
        assert all(abs(a - b) <= cell[i % 2] for i, (a, b) in enumerate(zip(p.box, g.box, strict=True)))
        assert to_grid(p.box, width, height) == to_grid(g.box, width, height)  # the very same grid cells


@pytest.mark.parametrize("background", [(0, 0, 0), (255, 255, 255), (128, 128, 128)])
def test_drawing_marks_each_box_in_its_own_colour(background, tmp_path):
    image = Image.new("RGB", (W, H), background)
    found = [GroundedBox("red ball", (20.0, 30.0, 80.0, 90.0)), GroundedBox(None, (120.0, 10.0, 190.0, 60.0))]
    drawn = draw_grounding(image, found)
    assert drawn.size == image.size and image.getpixel((20, 60)) == background  # the input is untouched
    colours = palette(2)
    assert drawn.getpixel((20, 60)) == colours[0]  # left edge of the first box
    assert drawn.getpixel((189, 40)) == colours[1]
    assert drawn.getpixel((50, 60)) == background  # inside stays visible
    path = save_grounding(image, found, tmp_path / "out" / "boxes.png")
    with Image.open(path) as saved:
        assert saved.format == "PNG" and saved.convert("RGB").tobytes() == drawn.tobytes()


def test_palette_colours_are_distinct():
    colours = palette(12)
    assert len(set(colours)) == 12


def test_boxes_named_on_the_models_input_map_back_to_the_image():
    from vlit.data.loading.transforms import ImageSpec

    crop = ImageSpec(100, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "crop")  # 200x100 -> its centre 100x100 (x 50..150)
    (found,) = parse_grounding("<p>ball</p> {<0><30><60><90>}", 200, 100, frame=crop)
    assert found.phrase == "ball" and found.box == pytest.approx((50.5, 30.5, 110.5, 90.5))
    stretch = ImageSpec(224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "stretch")
    assert parse_grounding("{<10><20><50><100>}", 640, 480, frame=stretch) == parse_grounding(
        "{<10><20><50><100>}", 640, 480)
