"""Typed configs of datasets and of the mixtures training draws from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vlit.config.loader import ConfigError
from vlit.config.model import StyleName

PromptStyle = Literal["as_is", StyleName]
"""How rows become prompts. `as_is` keeps the conversations written in the file (a user's LLaVA data). The
other three re-render rows that carry a structured task record (vlit's built datasets do) in one paper's
style: a random InstructBLIP template per example, LLaVA-1.5 response-format prompts, or MiniGPT-v2 task
identifiers with boxes on the 0-100 grid."""


@dataclass
class DatasetConfig:
    """One dataset file in LLaVA conversation JSON or JSONL."""

    name: str
    path: str
    """The JSON/JSONL file; relative paths are resolved against the config's `data.root`."""
    image_root: str | None = None
    """Folder the rows' `image` paths are relative to; default: the file's own folder."""
    style: PromptStyle = "as_is"
    weight: float = 1.0
    """Multiplies the dataset's sampling probability before renormalising (InstructBLIP's hand-tuned
    per-dataset weights on top of sqrt sampling)."""
    max_rows: int | None = None

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ConfigError(f"weight: must be >= 0, got {self.weight}")


@dataclass
class MixtureConfig:
    """Datasets drawn together: dataset d of size S_d is picked with probability given by `sampling`."""

    datasets: list[DatasetConfig] = field(default_factory=list)
    sampling: Literal["sqrt", "proportional", "uniform"] = "sqrt"
    merge_qa: bool = False
    """LLaVA's merge of all QA rows of one image into one multi-turn row."""
    on_bad_row: Literal["fail", "skip"] = "fail"
    """`fail` stops at the first bad row (its one line); `skip` names each bad row in one line (the first 20 per
    dataset, then counts), trains on the rest, and stops only when a dataset has no good row left."""
    seed: int = 0

    def __post_init__(self) -> None:
        names = [d.name for d in self.datasets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"datasets: name {dupes[0]!r} appears more than once")
