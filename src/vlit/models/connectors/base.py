"""The one interface every connector implements: visual features in, LLM-width tokens out."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from vlit.data.loading.batch import SideInputBuilder, TextInput


class Connector(nn.Module, ABC):
    """Maps float[B, N, Dv] vision features to float[B, M, Dl] tokens for the LLM.

    A connector that reads more than the features (InstructBLIP's Q-Former reads the instruction) declares
    those side inputs in `side_inputs()`; the processor builds exactly them and `forward` gets them after the
    features, in the declared order.
    """

    def side_inputs(self) -> dict[str, SideInputBuilder]:
        """The side inputs `forward` takes after the features (in this order), by the name of its parameter,
        each with the builder the processor uses."""
        return {}

    @abstractmethod
    def forward(self, features: torch.Tensor, *side: TextInput) -> torch.Tensor:
        """float[B, N, Dv] (+ declared side inputs, one row per image) -> float[B, M, Dl]."""

    @abstractmethod
    def num_tokens(self, num_patches: int) -> int:
        """M, the number of tokens emitted for an image of `num_patches` visual tokens."""

    def adapt_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A connector state read from a checkpoint of a related architecture, under this module's names
        (identity for most connectors)."""
        return state

    #: Weights set from a pretrained init at build time that a checkpoint loaded over them may lack.
    pretrained_keys: frozenset[str] = frozenset()
