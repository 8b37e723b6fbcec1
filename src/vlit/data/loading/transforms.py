"""Make an image the square input a vision encoder expects, and map boxes through the same geometry.

Every resize, crop or pad is an axis-aligned affine map (scale, then offset); keeping it as data lets boxes go
forward (pixels of the original -> pixels of the model input) and back (a predicted box -> the original
image), which MiniGPT-v2's own code forgot for some transforms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image

Box = tuple[float, float, float, float]
"""x1, y1, x2, y2 in pixels."""


@dataclass(frozen=True)
class ImageSpec:
    """What an encoder wants: a `size` x `size` RGB image, normalised as (x / 255 - mean) / std."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: Literal["stretch", "pad", "crop"] = "stretch"


@dataclass(frozen=True)
class Geometry:
    """new = old * scale + offset, per axis: how a box in the original maps into the model input."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    out_w: float
    out_h: float

    def forward(self, box: Box) -> Box:
        x1, y1, x2, y2 = box
        return (x1 * self.scale_x + self.offset_x, y1 * self.scale_y + self.offset_y,
                x2 * self.scale_x + self.offset_x, y2 * self.scale_y + self.offset_y)

    def inverse(self, box: Box) -> Box:
        x1, y1, x2, y2 = box
        return ((x1 - self.offset_x) / self.scale_x, (y1 - self.offset_y) / self.scale_y,
                (x2 - self.offset_x) / self.scale_x, (y2 - self.offset_y) / self.scale_y)


def square_geometry(width: int, height: int, size: int, resize: str) -> Geometry:
    """The affine map of `resize` from a width x height image onto a size x size square: exactly what
    `to_square` does to the pixels (integer paste and crop offsets included), so boxes land on them.

    - stretch: scale each axis to `size`;
    - pad: paste onto a square canvas of side max(w, h) at the integer offset LLaVA-1.5's expand2square uses
      (`(side - w) // 2`), then scale to `size`;
    - crop: scale the short side to `size` (the long side rounded), then cut the centre at an integer offset.
    """
    if resize == "stretch":
        return Geometry(size / width, size / height, 0.0, 0.0, size, size)
    if resize == "pad":
        side = max(width, height)
        s = size / side
        return Geometry(s, s, (side - width) // 2 * s, (side - height) // 2 * s, size, size)
    if resize == "crop":
        (nw, nh), (left, top) = _crop_plan(width, height, size)
        return Geometry(nw / width, nh / height, -float(left), -float(top), size, size)
    raise ValueError(f"resize: unknown mode {resize!r}")


def _crop_plan(width: int, height: int, size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(resized width, height) and the (left, top) of the centre crop: the short side becomes `size`."""
    s = size / min(width, height)
    nw, nh = max(size, round(width * s)), max(size, round(height * s))
    return (nw, nh), ((nw - size) // 2, (nh - size) // 2)


def to_square(image: Image.Image, spec: ImageSpec) -> tuple[Image.Image, Geometry]:
    """Resize an RGB image to the spec's square; returns the image and the geometry its boxes follow."""
    w, h = image.size
    geo = square_geometry(w, h, spec.size, spec.resize)
    if spec.resize == "stretch":
        return image.resize((spec.size, spec.size), Image.Resampling.BICUBIC), geo
    if spec.resize == "pad":
        side = max(w, h)
        fill = tuple(int(m * 255) for m in spec.mean)  # LLaVA-1.5's expand2square pads with the mean colour
        canvas = Image.new("RGB", (side, side), fill)
        canvas.paste(image, ((side - w) // 2, (side - h) // 2))
        return canvas.resize((spec.size, spec.size), Image.Resampling.BICUBIC), geo
    (nw, nh), (left, top) = _crop_plan(w, h, spec.size)
    resized = image.resize((nw, nh), Image.Resampling.BICUBIC)
    return resized.crop((left, top, left + spec.size, top + spec.size)), geo


def normalize(image: Image.Image, spec: ImageSpec) -> torch.Tensor:
    """float[3, S, S] from a square RGB image."""
    x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    return (x - mean) / std


def pixel_values(image: Image.Image, spec: ImageSpec) -> torch.Tensor:
    """float[3, S, S]: the encoder input for one RGB image."""
    return normalize(to_square(image.convert("RGB"), spec)[0], spec)
