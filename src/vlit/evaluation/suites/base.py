"""`Suite`: one of the papers' benchmarks as data (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vlit.data.prompting.templates import load_templates
from vlit.errors import VlitError

if TYPE_CHECKING:
    from vlit.evaluation.benchmarks import Reader
    from vlit.evaluation.judge import Ask
    from vlit.evaluation.samples import EvalSample

Submission = Callable[[list["EvalSample"], list[str], Path], Path]
"""(samples, predictions, folder) -> the file a benchmark's evaluation server takes (VQAv2 test-dev's JSON,
MMBench's xlsx/tsv, SEED's JSONL); written beside the predictions."""

JudgedMetric = Callable[[Sequence[str], Sequence["EvalSample"], "Ask"], dict[str, float]]
"""(predictions, samples, ask the judge) -> metrics: an open-ended benchmark scored by a judge model with its
published prompts (`vlit.evaluation.judge`). Raises `Unscored` when the files lack what the judge needs."""

# The published models whose numbers `Suite.published` holds, one spelling each so the report's rows line up.
LLAVA15_7B = "LLaVA-1.5-7B"
INSTRUCTBLIP_FLANT5_XL = "InstructBLIP (FlanT5-XL)"
INSTRUCTBLIP_VICUNA_7B = "InstructBLIP (Vicuna-7B)"
MINIGPTV2_7B = "MiniGPT-v2-7B"

EVAL_STYLES = ("llava15", "instructblip", "minigptv2")
"""The prompt styles a suite's `prompts` covers, one by one or as "all", in the order the list shows them."""


LETTERED = ("…", "…")
"""Placeholder options, for showing a prompt that letters them (`A. …\\nB. …`)."""
JOINED = ("{options}",)
"""Placeholder options, for showing a prompt that lists them in one line (InstructBLIP's `{options}`)."""


def shown(text: str) -> str:
    """A prompt as `Suite.prompts` shows it: in backticks, its line breaks written `\\n`."""
    return "`" + text.replace("\n", "\\n") + "`"


def drawn(task: str) -> str:
    """What a style that draws a template per question (InstructBLIP) asks, for `Suite.prompts`."""
    return f"one of InstructBLIP's {len(load_templates()[task])} templates for {task}"


class Unscored(VlitError):
    """A benchmark whose predictions were written but cannot be scored here (no judge, no ground truth): the
    report shows it as unscored rather than failing the run."""


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
    """The `METRICS` name that scores every sample of it (its reference script's rule); for a judged suite, the
    entry naming its headline."""
    files: str
    """What PATH is, in a line (README table and errors): e.g. "LLaVA's eval/pope folder"."""
    mode: Literal["generate", "rank"] = "generate"
    """How answers are produced: generated, or ranked among the candidates (InstructBLIP's constrained answers)."""
    style_modes: dict[str, Literal["generate", "rank"]] = field(default_factory=dict)
    """Prompt style -> mode, where that style's paper answers this benchmark otherwise than `mode` (InstructBLIP
    ranks multiple choice and classification, MiniGPT-v2 ranks IconQA's candidates)."""
    max_new_tokens: int = 32
    published: dict[str, float] = field(default_factory=dict)
    """Model (the names above) -> the headline number its paper reports here, as printed (x 100; MME's sum),
    shown as a row of the report beside vlit's."""
    submission: Submission | None = None
    pooled: Pooled | None = None
    """The paper's average over this and other benchmarks that it belongs to, if any."""
    judged: JudgedMetric | None = None
    """Set for open-ended benchmarks: scored by a judge model (`vlit eval --judge-url`); without one the
    predictions are written and the report says "unscored"."""
    prompts: dict[str, str] = field(default_factory=dict)
    """How each style asks (style name, or "all") -> the prompt, for `vlit eval --list` and the README."""
    reference: str = ""
    """The reference script the metric reproduces (`vlit eval --list`)."""

    def mode_for(self, style: str) -> Literal["generate", "rank"]:
        """How the benchmark is answered when asked in `style`."""
        return self.style_modes.get(style, self.mode)

