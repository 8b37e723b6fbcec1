"""MiniGPT-v2's connector: concatenate k adjacent visual tokens into one, then a single Linear.

With k = 4 a 448 px EVA encoder's 1024 tokens become 256: 4x fewer tokens for the LLM, so higher resolution
costs less. "Adjacent" is raster order, as MiniGPT-v2's own reshape does.
"""

from __future__ import annotations

import torch
from torch import nn

from vlit.config import MergeConnectorConfig
from vlit.errors import VlitError
from vlit.models.connectors.base import Connector


class MergeConnector(Connector):
    def __init__(self, cfg: MergeConnectorConfig, vision_dim: int, llm_dim: int):
        super().__init__()
        self.merge = cfg.merge
        self.proj = nn.Linear(vision_dim * cfg.merge, llm_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """float[B, N, Dv] -> float[B, N / k, Dl]."""
        b, n, d = features.shape
        self.num_tokens(n)
        return self.proj(features.reshape(b, n // self.merge, d * self.merge))

    def num_tokens(self, num_patches: int) -> int:
        if num_patches % self.merge:
            raise VlitError(
                f"connector.merge: {num_patches} visual tokens cannot be merged in groups of {self.merge}; "
                f"choose a merge factor that divides {num_patches} or another image size"
            )
        return num_patches // self.merge
