"""The model's trainable parts as data: which weights belong to `vision`, `connector`, `llm` and `lora`.

`lora` is the LoRA adapter weights inside the LLM; `llm` is every other LLM weight. Stages, checkpoints and
parameter counts all speak in these four names.
"""

from __future__ import annotations

import torch
from torch import nn

PARTS = ("vision", "connector", "llm", "lora")


def part_of(name: str) -> str:
    """The part a parameter or buffer name of VisionLanguageModel belongs to."""
    return "lora" if "lora_" in name else name.split(".", 1)[0]


def part_parameters(model: nn.Module, part: str) -> list[nn.Parameter]:
    return [p for name, p in model.named_parameters() if part_of(name) == part]


def part_state(model: nn.Module, parts: list[str] | set[str],
               state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """State-dict entries (parameters and buffers, e.g. BatchNorm statistics) of the given parts, from `state`
    when given (a full state gathered from sharded processes) or else from the model."""
    return {k: v for k, v in (model.state_dict() if state is None else state).items() if part_of(k) in parts}


def trainable_parts(model: nn.Module) -> list[str]:
    return [part for part in PARTS if any(p.requires_grad for p in part_parameters(model, part))]


def set_trainable(model: nn.Module, parts: list[str] | set[str]) -> None:
    """requires_grad exactly for the parameters of `parts`; trained modules in train mode, the rest in eval
    mode (a frozen encoder keeps its BatchNorm statistics and a frozen LLM runs without dropout)."""
    for name, p in model.named_parameters():
        p.requires_grad_(part_of(name) in parts)
    model.eval()
    for part in ("vision", "connector", "llm"):
        if part in parts or (part == "llm" and "lora" in parts):
            getattr(model, part).train()


def count_parameters(model: nn.Module) -> dict[str, tuple[int, int]]:
    """{part: (total, trainable)}; tied weights counted once (`named_parameters()` skips repeats)."""
    counts = {part: [0, 0] for part in PARTS}
    for name, p in model.named_parameters():
        counts[part_of(name)][0] += p.numel()
        counts[part_of(name)][1] += p.numel() if p.requires_grad else 0
    return {part: (total, trainable) for part, (total, trainable) in counts.items()}
