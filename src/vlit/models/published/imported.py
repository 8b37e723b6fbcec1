"""What a converter of a published layout hands back: a vlit model config and the weights vlit stores."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vlit.config import ModelConfig


@dataclass
class Imported:
    """A published checkpoint in vlit's terms.

    `weights` are under vlit's names (`connector.*`, `vision.model.*`, `llm.*`, LoRA's `llm.base_model...`) and
    hold exactly the `parts` a vlit checkpoint stores; parts not stored (a frozen tower, the LLM) are referenced
    by `config` (hub id or path and `key_mapping`), never copied.
    """

    format: str
    """The detected layout, said to the user (`llava-hf`, `llava`, `llava-projector`, `instructblip`, `blip2`,
    `minigptv2`)."""
    config: ModelConfig
    weights: dict[str, torch.Tensor]
    parts: list[str]
    notes: list[str] = field(default_factory=list)
    """What the user should know about the conversion (printed by `vlit import`)."""
