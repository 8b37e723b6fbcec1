"""How a prompt style writes boxes as text: MiniGPT-v2's 0..100 grid (`{<x1><y1><x2><y2>}`, phrases as
`<p>phrase</p>`) or LLaVA's 0..1 units (`[x1, y1, x2, y2]`), and a caption with its phrases grounded."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from vlit.data.prompting import boxes as bx
from vlit.errors import VlitError


@dataclass(frozen=True)
class BoxText:
    """How a style writes boxes: one box, several (`join`), and a phrase grounded by its box (`mark`)."""

    name: Literal["grid", "unit"]
    join: str
    mark: Callable[[str, str], str]

    def format(self, box: Sequence[float], width: float, height: float) -> str:
        """A pixel box of a `width` x `height` image as text."""
        if self.name == "grid":
            return bx.format_grid_box(bx.to_grid(box, width, height))
        return bx.format_unit_box(bx.to_unit(box, width, height))


GRID = BoxText("grid", bx.DELIM, lambda phrase, box: f"<p>{phrase}</p> {box}")
UNIT = BoxText("unit", ", ", lambda phrase, box: f"{phrase} {box}")


def ground_caption(caption: str, phrases: tuple[str, ...], box_texts: list[str],
                   mark: Callable[[str, str], str]) -> str:
    """`caption` with each phrase (found in order, case-insensitively) replaced by `mark(phrase, box)`."""
    out, pos = [], 0
    for phrase, box in zip(phrases, box_texts, strict=True):
        m = re.compile(re.escape(phrase), re.IGNORECASE).search(caption, pos)
        if m is None:
            raise VlitError(f"task.phrases: {phrase!r} does not occur in the caption {caption!r} (in order)")
        out += [caption[pos:m.start()], mark(m.group(0), box)]
        pos = m.end()
    return "".join(out) + caption[pos:]
