"""Grounded answers: MiniGPT-v2's box syntax in model output -> boxes in pixels of the original image, and
a drawing of them.

`<p>red ball</p> {<12><30><55><90>}<delim>{<60><10><80><40>}` names two boxes of one phrase; bare boxes
(`[refer]` answers, `[detection]` lists) have no phrase. Grid coordinates (0..100) refer to the image the
model saw: the original, x by its width and y by its height, unless its input was padded or cropped to a
square (`parse_grounding(..., frame=)` maps those back). Model output may be truncated or sloppy, so parsing
takes what is well-formed and never raises.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from vlit.data.loading.transforms import Box, ImageSpec
from vlit.data.prompting import boxes as bx
from vlit.errors import VlitError


@dataclass(frozen=True)
class GroundedBox:
    """A box in pixels of the original image, with the phrase it grounds (None for a bare box)."""

    phrase: str | None
    box: Box

    def to_dict(self) -> dict:
        return {"phrase": self.phrase, "box": [round(v, 2) for v in self.box]}


def parse_grounding(text: str, width: float, height: float, frame: ImageSpec | None = None) -> list[GroundedBox]:
    """Every box in `text`, in order, in pixels of a `width` x `height` image, read by the one box reader
    (`vlit.data.prompting.boxes.read_boxes`, which states the rules): a closed `<p>phrase</p>` owns the boxes
    after it up to the next `<p>`; boxes before the first phrase, or after an unclosed `<p>`, are bare.
    `frame` is the model's image input (`Pipeline.processor.image_spec`): boxes named on a padded or cropped
    square map back to the image. Never raises: malformed pieces are skipped.
    """
    return [GroundedBox(phrase, box) for phrase, box in bx.read_boxes(text, width, height, frame)]


def format_grounding(found: list[GroundedBox], width: float, height: float) -> str:
    """The MiniGPT-v2 text of grounded boxes (what `parse_grounding` reads back): bare boxes first, then each
    run of boxes sharing a phrase as `<p>phrase</p> {..}<delim>{..}`."""
    bare = [bx.to_grid(g.box, width, height) for g in found if g.phrase is None]
    parts = [bx.format_grid_boxes(bare)] if bare else []
    runs: list[tuple[str, list]] = []
    for g in found:
        if g.phrase is None:
            continue
        if runs and runs[-1][0] == g.phrase:
            runs[-1][1].append(bx.to_grid(g.box, width, height))
        else:
            runs.append((g.phrase, [bx.to_grid(g.box, width, height)]))
    parts += [bx.format_grounded(phrase, grid) for phrase, grid in runs]
    return " ".join(parts)


# ---- drawing ----------------------------------------------------------------------------------------------

def palette(n: int) -> list[tuple[int, int, int]]:
    """`n` saturated colours with hues spread by the golden ratio: neighbours always differ clearly."""
    hues = [(i * 0.618034) % 1.0 for i in range(n)]
    return [tuple(round(c * 255) for c in colorsys.hsv_to_rgb(h, 0.85, 0.95)) for h in hues]


def _text_colour(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light fills, white on dark ones (relative luminance)."""
    r, g, b = fill
    return (0, 0, 0) if 0.2126 * r + 0.7152 * g + 0.0722 * b > 140 else (255, 255, 255)


def draw_grounding(image: Image.Image, found: list[GroundedBox]) -> Image.Image:
    """A copy of `image` with each box outlined and labelled. Labels sit on a filled tag in the box's colour
    and every outline has a dark edge, so both read on any background."""
    canvas = image.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    side = max(canvas.size)
    line = max(2, side // 200)
    font = ImageFont.load_default(size=max(10, side // 40))
    phrases = list(dict.fromkeys(g.phrase for g in found))
    colours = dict(zip(phrases, palette(len(phrases)), strict=True))
    for i, g in enumerate(found):
        colour = colours[g.phrase]
        x1, y1, x2, y2 = g.box
        draw.rectangle((x1 - line, y1 - line, x2 + line, y2 + line), outline=(0, 0, 0), width=1)
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=line)
        label = g.phrase if g.phrase is not None else f"box {i + 1}"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        tag_h = bottom - top + 2 * line
        # Above the box when there is room, else just inside its top edge.
        ty = y1 - tag_h if y1 - tag_h >= 0 else y1
        tx = min(max(0.0, x1), max(0.0, canvas.width - (right - left) - 2 * line))
        draw.rectangle((tx, ty, tx + right - left + 2 * line, ty + tag_h), fill=colour, outline=(0, 0, 0))
        draw.text((tx + line - left, ty + line - top), label, fill=_text_colour(colour), font=font)
    return canvas


def save_grounding(image: Image.Image, found: list[GroundedBox], path: str | Path) -> Path:
    """Draw the boxes onto `image` and write a PNG."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        draw_grounding(image, found).save(path, format="PNG")
    except OSError as e:
        raise VlitError(f"{path}: cannot write the drawing ({e.strerror or e})") from None
    return path
