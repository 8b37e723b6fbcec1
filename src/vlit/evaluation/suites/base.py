"""`Suite`: one of the papers' benchmarks as data (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vlit.errors import VlitError

if TYPE_CHECKING:
    from vlit.evaluation.benchmarks import Reader
    from vlit.evaluation.samples import EvalSample

Submission = Callable[[list["EvalSample"], list[str], Path], Path]
"""(samples, predictions, folder) -> the file a benchmark's evaluation server takes (VQAv2 test-dev's JSON,
MMBench's xlsx/tsv, SEED's JSONL); written beside the predictions."""


@dataclass(frozen=True)
class Suite:
    read: Reader
    """(benchmark config, style, style to render in, seed, frame) -> samples, as `benchmarks.READERS`."""
    metric: str
    """The `METRICS` name that scores every sample of it (its reference script's rule)."""
    files: str
    """What PATH is, in a line (README table and errors): e.g. "LLaVA's eval/pope folder"."""
    mode: Literal["generate", "rank"] = "generate"
    """How answers are produced: generated, or ranked among the candidates (InstructBLIP's constrained answers)."""
    style_modes: dict[str, Literal["generate", "rank"]] = field(default_factory=dict)
    """Prompt style -> mode, where that style's paper answers this benchmark otherwise than `mode` (InstructBLIP
    ranks multiple choice and classification, MiniGPT-v2 ranks IconQA's candidates)."""
    max_new_tokens: int = 32
    published: dict[str, float] = field(default_factory=dict)
    """Model -> the headline number its paper reports here (x 100, as printed), shown beside vlit's."""
    submission: Submission | None = None

    def mode_for(self, style: str) -> Literal["generate", "rank"]:
        """How the benchmark is answered when asked in `style`."""
        return self.style_modes.get(style, self.mode)


def find_file(folder: Path, names: tuple[str, ...], what: str) -> Path:
    """The first of `names` (globs) in `folder`, or PATH itself when it is a file; an error naming the folder
    and the file names looked for."""
    if folder.is_file():
        return folder
    for name in names:
        found = sorted(folder.glob(name))
        if found:
            return found[0]
    raise VlitError(f"{folder}: no {what} ({' or '.join(names)})")
