"""The six claims of the seed articles that vlit's recipes can test on the quickstart data, as data.

A claim names its arms: recipes under `configs/reproduce/`, the first the method as published, each other one
the same file with one thing switched (`switch`: the dotted config fields that may differ, `*` for any list
index). What is compared is a `Measure`: the mean over a few score keys (test splits scored per sample by their
metric, or the answer lengths of `arms.LENGTH_KEYS`) of each key's mean over its samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vlit.errors import VlitError

HELD_IN = ("fmnist_classification", "fmnist_multiple_choice", "scenes_vqa", "scenes_counting", "scenes_yes_no")
"""The held-in test splits every InstructBLIP and LLaVA arm trains on and is scored on."""
HELD_OUT = ("fmnist_yes_no", "scenes_spatial")
"""The quickstart's held-out splits: never trained on (scenes_spatial holds out a whole task category)."""


@dataclass(frozen=True)
class Measure:
    """What a comparison compares: the mean over `keys` of each key's mean over its samples."""

    name: str
    keys: tuple[str, ...]
    unit: Literal["points", "words"] = "points"
    """points: scores in 0..1 shown x 100; words: answer lengths, shown as they are."""

    @property
    def scale(self) -> float:
        return 100.0 if self.unit == "points" else 1.0


@dataclass(frozen=True)
class Comparison:
    """`first` against `second` on `measure`: `higher` expects the first's mean above the second's by a margin
    that matters; `close` expects the two within `margin` of each other."""

    measure: Measure
    first: str
    second: str
    expect: Literal["higher", "close"]
    margin: float
    """In the measure's raw units (0.03 is 3 points): the smallest difference that matters (`higher`), or the
    largest that still counts as close (`close`)."""
    decides: bool = True
    """Whether the claim's verdict rests on it; False: shown beside it (a detail of the claim)."""


@dataclass(frozen=True)
class Arm:
    label: str
    recipe: str
    """A bundled recipe name (`reproduce/llava15`)."""


@dataclass(frozen=True)
class Claim:
    name: str
    paper: str
    statement: str
    arms: tuple[Arm, ...]
    switch: tuple[str, ...]
    comparisons: tuple[Comparison, ...]
    curves: bool = False
    """Plot the held-in score over training steps (the arms' recipes keep checkpoints for it)."""
    note: str = ""
    """How the miniature tests the claim, where it departs from the paper's setting."""

    def arm(self, label: str) -> Arm:
        return next(a for a in self.arms if a.label == label)


ALL = Measure("mean of held-in and held-out splits", HELD_IN + HELD_OUT)
HELD_IN_MEAN = Measure("held-in mean", HELD_IN)
HELD_OUT_MEAN = Measure("held-out mean", HELD_OUT)
POINTS = 0.03
"""The smallest effect on a mean of accuracies that the verdicts count: 3 points (the papers' ablations report
drops of 2-10 points on their averages)."""

CLAIMS: dict[str, Claim] = {c.name: c for c in (
    Claim("instruction-aware", "InstructBLIP",
          "Removing instruction-aware visual features (the instruction no longer enters the Q-Former) drops "
          "performance, most on tasks that need spatial or temporal reasoning.",
          (Arm("instruction-aware", "reproduce/instructblip"),
           Arm("no instruction in Q-Former", "reproduce/instructblip-no-instruction")),
          ("model.connector.instruction_aware",),
          (Comparison(ALL, "instruction-aware", "no instruction in Q-Former", "higher", POINTS),
           Comparison(Measure("spatial reasoning (scenes_spatial, held out)", ("scenes_spatial",)),
                      "instruction-aware", "no instruction in Q-Former", "higher", POINTS, decides=False))),
    Claim("balanced-sampling", "InstructBLIP",
          "Removing the square-root balanced sampling (sampling in proportion to dataset size, or uniformly) hurts "
          "the held-in average and makes datasets peak at very different steps.",
          (Arm("sqrt", "reproduce/instructblip"), Arm("proportional", "reproduce/instructblip-proportional"),
           Arm("uniform", "reproduce/instructblip-uniform")),
          ("stages.1.data.sampling",),
          (Comparison(HELD_IN_MEAN, "sqrt", "proportional", "higher", POINTS),
           Comparison(HELD_IN_MEAN, "sqrt", "uniform", "higher", POINTS)),
          curves=True,
          note="The instruction stage draws from held-in datasets of 30 to 600 rows (max_rows), no hand weights. "
               "The curves show each arm's held-in splits at every checkpoint; the steps at which they peak are "
               "reported, not judged."),
    Claim("instruction-vs-multitask", "InstructBLIP",
          "Instruction tuning beats multitask learning (the same data with the dataset's name as a prefix instead "
          "of instructions) on held-out datasets, while the two are close on held-in ones.",
          (Arm("instruction tuning", "reproduce/instructblip"), Arm("multitask", "reproduce/instructblip-multitask")),
          ("stages.1.data.datasets.*.style",),
          (Comparison(HELD_OUT_MEAN, "instruction tuning", "multitask", "higher", POINTS),
           Comparison(HELD_IN_MEAN, "instruction tuning", "multitask", "close", POINTS)),
          note="Both arms are asked with instructions at test time (the paper's `train: dataset name, test: "
               "instruction` bar)."),
    Claim("response-format", "LLaVA-1.5",
          "With the response-format prompts the model answers short when asked to and long when asked to; with "
          "InstructBLIP-style ambiguous prompts (`Q: {} A:`) it overfits to short answers.",
          (Arm("response-format prompts", "reproduce/llava15"),
           Arm("ambiguous prompts", "reproduce/llava15-ambiguous")),
          ("model.prompt_style", "stages.*.data.datasets.*.style"),
          (Comparison(Measure("words per answer to an open question", ("words:open",), "words"),
                      "response-format prompts", "ambiguous prompts", "higher", 2.0),
           Comparison(Measure("words per short-answer question", ("words:short",), "words"),
                      "response-format prompts", "ambiguous prompts", "close", 1.0, decides=False)),
          note="Long request: the open question `What do you see in this picture?` about scene images, asked the "
               "same way of both arms (a natural question, in neither arm's training prompts); short request: "
               "scenes_vqa asked as each arm was trained (with `Answer the question using a single word or "
               "phrase.` / as `Q: {} A:`). Length: words in the answer."),
    Claim("mlp-connector", "LLaVA-1.5",
          "The 2-layer MLP connector beats a linear projection.",
          (Arm("2-layer MLP", "reproduce/llava15"), Arm("linear", "reproduce/llava15-linear")),
          ("model.connector.kind",),
          (Comparison(ALL, "2-layer MLP", "linear", "higher", POINTS),)),
    Claim("task-identifiers", "MiniGPT-v2",
          "Task identifiers help it tell grounding tasks apart (with vs without identifiers on refer, identify and "
          "detection).",
          (Arm("identifiers", "reproduce/minigptv2"), Arm("no identifiers", "reproduce/minigptv2-untagged")),
          ("model.prompt_style", "stages.*.data.datasets.*.style"),
          (Comparison(Measure("grounding mean (refer IoU>0.5, identify)", ("scenes_refer", "scenes_identify")),
                      "identifiers", "no identifiers", "higher", POINTS),),
          note="Detection trains in both arms but is not scored: vlit has no detection metric."),
)}


def select(names: list[str]) -> list[Claim]:
    """Claims by name or number (1-6, in the issue's order); all of them when `names` is empty."""
    if not names:
        return list(CLAIMS.values())
    order = list(CLAIMS)
    out = []
    for name in names:
        key = order[int(name) - 1] if name.isdigit() and 1 <= int(name) <= len(order) else name
        if key not in CLAIMS:
            raise VlitError(f"claim {name!r}: not one of {', '.join(order)} (or 1-{len(order)})")
        out.append(CLAIMS[key])
    return list(dict.fromkeys(out))


def score_keys(claims: list[Claim], recipe: str) -> set[str]:
    """Every score key that the claims' comparisons read of the arms that train `recipe`."""
    return {key for c in claims if any(a.recipe == recipe for a in c.arms)
            for comparison in c.comparisons for key in comparison.measure.keys}


def wants_curves(recipe: str) -> bool:
    """Whether some claim (selected or not) plots this recipe's held-in curves: its checkpoints are then scored
    before they are deleted, whichever claims a run asks for, so that a later run can still show them."""
    return any(c.curves and recipe in {a.recipe for a in c.arms} for c in CLAIMS.values())
