"""Rendered scenes: 1-4 non-overlapping shapes of known kind, colour, size and box on a varied background.

The CLEVR idea at laptop scale: because every shape's attributes and tight pixel box are known, one scene
yields captions, counting, colour/shape VQA, spatial questions, yes/no, referring expressions, region
naming, detection and grounded captions with exact answers (`scene_tasks` poses them). Sides are 192-320 px
in steps of 16, so aspect ratios vary; shapes are at least 14% of the short side, visible at 224 px.
A scene is pure data; rendering it is deterministic (same scene -> identical pixels), and so is sampling
for a given `random.Random` state.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from vlit.errors import VlitError

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 90, 220),
    "yellow": (240, 200, 20), "purple": (148, 60, 189), "orange": (255, 127, 14),
}
KINDS: tuple[str, ...] = ("circle", "square", "triangle", "star")
BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "textured")
_PALE = ((240, 240, 240), (245, 240, 225), (225, 233, 242), (232, 242, 228), (242, 230, 236), (215, 215, 220))
_SIDES = tuple(range(192, 321, 16))
_SIZE_RANGE = {"small": (0.14, 0.19), "large": (0.26, 0.33)}
_GAP = 6


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    size: str
    """`small` or `large`."""
    square: tuple[int, int, int]
    """x, y, side of the square the shape is drawn in."""
    box: tuple[int, int, int, int]
    """Tight pixel box of the drawn pixels, x2/y2 exclusive."""
    area: int
    """Number of drawn pixels."""

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    background: str
    colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    """Background colour (and the gradient's second colour)."""
    texture_seed: int
    shapes: tuple[Shape, ...]
    """Sorted left to right by box centre: the order captions and detection answers use. Fewer shapes than
    drawn when one found no free place (sampling never loops forever)."""


def shape_mask(kind: str, side: int) -> Image.Image:
    """L image side x side with the shape drawn in 255."""
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)
    last = side - 1
    if kind == "circle":
        draw.ellipse((0, 0, last, last), fill=255)
    elif kind == "square":
        draw.rectangle((0, 0, last, last), fill=255)
    elif kind == "triangle":
        draw.polygon([(0, last), (last, last), (last / 2, 0)], fill=255)
    elif kind == "star":
        r_out, r_in, c = last / 2, last / 2 * 0.45, last / 2
        points = [(c + (r_out if i % 2 == 0 else r_in) * math.sin(i * math.pi / 5),
                   c - (r_out if i % 2 == 0 else r_in) * math.cos(i * math.pi / 5)) for i in range(10)]
        draw.polygon(points, fill=255)
    else:
        raise VlitError(f"shape: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    return mask


def _make_shape(kind: str, colour: str, size: str, x: int, y: int, side: int) -> Shape:
    mask = shape_mask(kind, side)
    left, top, right, bottom = mask.getbbox()
    area = int(np.count_nonzero(np.asarray(mask)))
    return Shape(kind, colour, size, (x, y, side), (x + left, y + top, x + right, y + bottom), area)


def _overlaps(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return not (a[0] + a[2] + _GAP <= b[0] or b[0] + b[2] + _GAP <= a[0]
                or a[1] + a[2] + _GAP <= b[1] or b[1] + b[2] + _GAP <= a[1])


def sample_scene(rng: random.Random, min_shapes: int = 1, max_shapes: int = 4) -> Scene:
    """A random scene: size, background and `min_shapes`-`max_shapes` shapes with distinct (colour, kind)
    pairs, so that "the red circle" always names exactly one shape."""
    width, height = rng.choice(_SIDES), rng.choice(_SIDES)
    short = min(width, height)
    count = rng.randint(min_shapes, max_shapes)
    pairs = rng.sample([(c, k) for c in COLOURS for k in KINDS], count)
    squares: list[tuple[int, int, int]] = []
    shapes = []
    for colour, kind in pairs:
        size = rng.choice(("small", "large"))
        lo, hi = _SIZE_RANGE[size]
        for _ in range(200):
            side = int(short * rng.uniform(lo, hi))
            square = (rng.randint(_GAP, width - side - _GAP), rng.randint(_GAP, height - side - _GAP), side)
            if not any(_overlaps(square, s) for s in squares):
                squares.append(square)
                shapes.append(_make_shape(kind, colour, size, *square))
                break
    shapes.sort(key=lambda s: (s.centre[0], s.centre[1]))
    colours = (rng.choice(_PALE), rng.choice(_PALE))
    return Scene(width, height, rng.choice(BACKGROUNDS), colours, rng.getrandbits(32), tuple(shapes))


def _background(scene: Scene) -> np.ndarray:
    """float[H, W, 3] in 0..255."""
    h, w = scene.height, scene.width
    first, second = (np.array(c, dtype=np.float32) for c in scene.colours)
    canvas = np.broadcast_to(first, (h, w, 3)).copy()
    rng = np.random.default_rng(scene.texture_seed)
    if scene.background == "gradient":
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = xx / w * math.cos(angle) + yy / h * math.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        canvas = first + t[..., None] * (second - first)
    elif scene.background == "textured":
        # Smooth blotches rather than per-pixel noise: visible texture, and the PNG stays small.
        coarse = rng.uniform(-14, 14, size=(8, 8)).astype(np.float32)
        field = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC))
        canvas = canvas + field[..., None]
    return canvas


def render_scene(scene: Scene) -> Image.Image:
    """The scene as an RGB image (width x height)."""
    image = Image.fromarray(np.clip(_background(scene), 0, 255).round().astype(np.uint8))
    for shape in scene.shapes:
        x, y, side = shape.square
        image.paste(COLOURS[shape.colour], (x, y, x + side, y + side), shape_mask(shape.kind, side))
    return image

