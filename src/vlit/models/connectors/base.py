"""The one interface every connector implements: visual features in, LLM-width tokens out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import torch
from torch import nn


class Instruction(NamedTuple):
    """The instruction as the Q-Former's own tokenizer saw it: long[B, T] ids and their 0/1 mask."""

    ids: torch.Tensor
    mask: torch.Tensor


class Connector(nn.Module, ABC):
    """Maps float[B, N, Dv] vision features to float[B, M, Dl] tokens for the LLM."""

    #: True when `forward` reads the instruction (InstructBLIP's instruction-aware Q-Former).
    needs_instruction: bool = False

    @abstractmethod
    def forward(self, features: torch.Tensor, instruction: Instruction | None = None) -> torch.Tensor:
        """float[B, N, Dv] -> float[B, M, Dl]."""

    @abstractmethod
    def num_tokens(self, num_patches: int) -> int:
        """M, the number of tokens emitted for an image of `num_patches` visual tokens."""
