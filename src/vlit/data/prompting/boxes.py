"""Boxes as text and as geometry: MiniGPT-v2's 0..100 grid, LLaVA-1.5's unit floats, IoU, and the affine maps
that every resize, crop or pad applies to an image (its boxes must follow, which MiniGPT-v2 forgot).

Pixel boxes are `(x1, y1, x2, y2)` in continuous coordinates: pixel column `i` covers `[i, i + 1)`, so a shape
whose leftmost drawn column is 10 and rightmost 19 has `x1 = 10, x2 = 20`.

Grid boxes are four ints on 0..100: `int(coord / side * 100)` with x by width and y by height (MiniGPT-v2's
formula). Grid -> pixel returns the *centre* of the grid cell, `(g + 0.5) * side / 100` clamped to the image,
so a pixel -> grid -> pixel round trip is off by at most half a cell and grid -> pixel -> grid is exact.

`read_boxes` is the one reader of boxes in text (with their phrases); the parsers it builds on are lenient on
purpose: model output may be truncated or sloppy, so they return whatever well-formed boxes the text holds and
never raise.

A model whose image input is padded or cropped to a square (`ImageSpec.resize`) sees boxes in that square's
pixels: `model_geometry` is the map into it, `boxes_in_frame` puts a record's boxes there for a training
target, and `read_boxes` maps predicted boxes back to the original.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from vlit.data.loading.transforms import Box, Geometry, ImageSpec, square_geometry

GRID = 100
GridBox = tuple[int, int, int, int]
DELIM = "<delim>"

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_GRID_RE = re.compile("".join(rf"<{_NUM}>\s*" for _ in range(4)))
_UNIT_RE = re.compile(r"\[" + ",".join([_NUM] * 4) + r"\]")
_OPEN, _CLOSE = "<p>", "</p>"


# ---- pixel <-> grid <-> unit ------------------------------------------------------------------------------

def _to_cell(coord: float, side: float) -> int:
    # coord * GRID first: exact for integer pixels, so a coordinate on a cell edge is not floored one cell low
    return min(GRID, max(0, int(coord * GRID / side)))


def _from_cell(cell: float, side: float) -> float:
    return min(float(side), max(0.0, (cell + 0.5) * side / GRID))


def to_grid(box: Sequence[float], width: float, height: float) -> GridBox:
    """Pixel box -> MiniGPT-v2 grid box (ints on 0..100, clamped)."""
    x1, y1, x2, y2 = box
    return (_to_cell(x1, width), _to_cell(y1, height), _to_cell(x2, width), _to_cell(y2, height))


def from_grid(box: Sequence[float], width: float, height: float) -> Box:
    """Grid box -> pixel box, each coordinate at the centre of its grid cell (clamped to the image)."""
    x1, y1, x2, y2 = box
    return (_from_cell(x1, width), _from_cell(y1, height), _from_cell(x2, width), _from_cell(y2, height))


def to_unit(box: Sequence[float], width: float, height: float) -> Box:
    """Pixel box -> LLaVA-1.5's normalised box, coordinates in 0..1 rounded to two decimals."""
    x1, y1, x2, y2 = box
    return tuple(round(min(1.0, max(0.0, v)), 2) for v in (x1 / width, y1 / height, x2 / width, y2 / height))


def from_unit(box: Sequence[float], width: float, height: float) -> Box:
    x1, y1, x2, y2 = box
    return (x1 * width, y1 * height, x2 * width, y2 * height)


# ---- text -------------------------------------------------------------------------------------------------

def format_grid_box(box: Sequence[int]) -> str:
    """`{<x1><y1><x2><y2>}`."""
    return "{" + "".join(f"<{int(v)}>" for v in box) + "}"


def format_grid_boxes(boxes: Iterable[Sequence[int]]) -> str:
    """Several grid boxes joined by `<delim>`."""
    return DELIM.join(format_grid_box(b) for b in boxes)


def format_grounded(phrase: str, boxes: Iterable[Sequence[int]]) -> str:
    """`<p>phrase</p> {<..>}` (several boxes joined by `<delim>`)."""
    return f"<p>{phrase}</p> {format_grid_boxes(boxes)}"


def format_unit_box(box: Sequence[float]) -> str:
    """LLaVA-1.5's `[0.12, 0.30, 0.55, 0.90]`."""
    return "[" + ", ".join(f"{v:.2f}" for v in box) + "]"


def _ordered(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float, float, float]:
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def parse_grid_boxes(text: str) -> list[GridBox]:
    """Every `<a><b><c><d>` group in `text`, in order. Braces, spaces and `<delim>` are optional; values are
    clamped to 0..100 and corners put in order (x1 <= x2, y1 <= y2). Never raises."""
    boxes = []
    for m in _GRID_RE.finditer(text):
        # Clamp as floats first: int() of a 400-digit number's float (inf) would raise.
        values = [int(min(GRID, max(0.0, float(v)))) for v in m.groups()]
        boxes.append(tuple(int(v) for v in _ordered(*values)))
    return boxes


def parse_unit_boxes(text: str) -> list[Box]:
    """Every `[a, b, c, d]` group of numbers in `text` (LLaVA-1.5 boxes), clamped to 0..1, corners ordered."""
    boxes = []
    for m in _UNIT_RE.finditer(text):
        values = [min(1.0, max(0.0, float(v))) for v in m.groups()]
        boxes.append(_ordered(*values))
    return boxes


Found = tuple[str | None, Box]
"""A box read from text, in pixels, with the phrase it grounds (None for a bare box)."""


def read_boxes(text: str, width: float, height: float, frame: ImageSpec | None = None) -> list[Found]:
    """Every box of a model's answer, in order, in pixels of the `width` x `height` original image: the one
    parser for grounded text (`vlit ask`, the chat, the API, the demo and the refer metric all read with it).

    Rules, lenient because model output is truncated or sloppy (never raises, skips what is malformed):
    - MiniGPT-v2 grid boxes `{<x1><y1><x2><y2>}` (braces, spaces and `<delim>` optional) map to the centres
      of their grid cells. A closed `<p>phrase</p>` owns the boxes after it up to the next `<p>`; boxes
      before the first phrase, or after an unclosed `<p>`, are bare.
    - Only when the text holds no grid box: LLaVA-1.5's unit boxes `[0.12, 0.30, 0.55, 0.90]`, all bare.

    `frame` is the model's image input: a model fed a padded or cropped square names boxes on that square,
    so they are read there and mapped back through the inverse geometry (clipped to the image). None, or a
    stretched input, reads them on the original directly (the same cells as MiniGPT-v2's formula).
    """
    if not isinstance(text, str) or not width > 0 or not height > 0:
        return []
    geometry = model_geometry((width, height), frame)
    side_w, side_h = (width, height) if geometry is None else (geometry.out_w, geometry.out_h)
    pieces = text.split(_OPEN)
    found = [(None, b) for b in parse_grid_boxes(pieces[0])]
    for piece in pieces[1:]:
        phrase, closed, rest = piece.partition(_CLOSE)
        owner = phrase.strip() if closed else None
        found += [(owner, b) for b in parse_grid_boxes(rest if closed else piece)]
    if found:
        found = [(p, from_grid(b, side_w, side_h)) for p, b in found]
    else:
        found = [(None, from_unit(b, side_w, side_h)) for b in parse_unit_boxes(text)]
    if geometry is None:
        return found
    return [(p, clip_box(geometry.inverse(b), width, height)) for p, b in found]


# ---- geometry ---------------------------------------------------------------------------------------------

def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes in the same coordinates; 0.0 when both are empty."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, iw) * max(0.0, ih)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def clip_box(box: Sequence[float], width: float, height: float) -> Box:
    x1, y1, x2, y2 = box
    return (min(width, max(0.0, x1)), min(height, max(0.0, y1)),
            min(width, max(0.0, x2)), min(height, max(0.0, y2)))


def transform_boxes(boxes: Iterable[Sequence[float]], geometry: Geometry, clip: bool = True) -> list[Box]:
    """Map pixel boxes of the original through `geometry`; `clip` keeps them inside the output image (a box
    cropped away entirely becomes empty rather than vanishing, so indices stay aligned with labels)."""
    out = [geometry.forward(tuple(b)) for b in boxes]
    return [clip_box(b, geometry.out_w, geometry.out_h) for b in out] if clip else out


# ---- the model's frame ------------------------------------------------------------------------------------

def model_geometry(image_size: Sequence[float], frame: ImageSpec | None) -> Geometry | None:
    """The map from the original image into the model's square input, or None when boxes are named on the
    original: no frame, or a stretched input (whose grid cells are the original's: the grid formula on the
    original keeps today's exact strings, where float math through the square could flip a cell)."""
    if frame is None or frame.resize == "stretch":
        return None
    width, height = image_size
    return square_geometry(int(width), int(height), frame.size, frame.resize)


def boxes_in_frame(boxes: Iterable[Sequence[float]], image_size: Sequence[float],
                   frame: ImageSpec | None) -> tuple[list[Box], tuple[float, float]]:
    """A record's pixel boxes as the model sees them, and the size of the image they are now in: unchanged
    with the original size when `model_geometry` is None, else mapped into the square and clipped to it."""
    geometry = model_geometry(image_size, frame)
    if geometry is None:
        return [tuple(b) for b in boxes], (image_size[0], image_size[1])
    return transform_boxes(boxes, geometry), (geometry.out_w, geometry.out_h)


def outside_frame(box: Sequence[float], image_size: Sequence[float], frame: ImageSpec | None) -> bool:
    """Whether the box falls entirely outside the model's input (a crop cut it away): such a box cannot be
    named, and its row must not train."""
    geometry = model_geometry(image_size, frame)
    if geometry is None:
        return False
    x1, y1, x2, y2 = geometry.forward(tuple(box))
    return x2 <= 0 or y2 <= 0 or x1 >= geometry.out_w or y1 >= geometry.out_h
