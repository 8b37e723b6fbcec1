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
class Pooled:
    """A number a paper prints over the parts of several benchmarks at once (MiniGPT-v2's RefCOCO/+/g average
    of 8 split accuracies): the report adds it as one more column where a checkpoint has every part."""

    name: str
    """The column's title."""
    members: tuple[str, ...]
    """The benchmarks (`SUITES` names) whose parts it averages."""
    parts: int
    """How many part scores the published number averages; with fewer the column stays empty."""
    key: str
    """The suffix of a part's score among a member's metrics (`"/accuracy"`: `testA/accuracy`, ...)."""
    published: dict[str, float] = field(default_factory=dict)
    """Model -> the number as printed (x 100)."""


@dataclass(frozen=True)
class Suite:
    read: Reader
    """(benchmark config, style, style to render in, seed, frame) -> samples, as `benchmarks.READERS`."""
    metric: str
    """The `METRICS` name that scores every sample of it (its reference script's rule)."""
    files: str
    """What PATH is, in a line (README table and errors): e.g. "LLaVA's eval/pope folder"."""
    mode: Literal["generate", "rank"] = "generate"
    max_new_tokens: int = 32
    published: dict[str, float] = field(default_factory=dict)
    """Model -> the headline number its paper reports here (x 100, as printed), shown beside vlit's."""
    submission: Submission | None = None
    pooled: Pooled | None = None
    """The paper's average over this and other benchmarks that it belongs to, if any."""


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
