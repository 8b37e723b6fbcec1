"""LLaVA-1.5's projector: Linear-GELU-Linear from the vision width to the LLM width (`linear`: one Linear,
the original LLaVA). Module names match transformers' LlavaMultiModalProjector so export is a rename-free copy.
"""

from __future__ import annotations

import torch
from torch import nn

from vlit.config import MLPConnectorConfig
from vlit.models.connectors.base import Connector


class MLPConnector(Connector):
    def __init__(self, cfg: MLPConnectorConfig, vision_dim: int, llm_dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(vision_dim, llm_dim, bias=cfg.bias)
        self.act = nn.GELU()
        self.linear_2 = nn.Linear(llm_dim, llm_dim, bias=cfg.bias) if cfg.kind == "mlp" else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """float[B, N, Dv] -> float[B, N, Dl]: one LLM token per visual token."""
        x = self.linear_1(features)
        return x if self.linear_2 is None else self.linear_2(self.act(x))

    def num_tokens(self, num_patches: int) -> int:
        return num_patches
