"""`vlit.models.connectors.mlp`: LLaVA-1.5's projector keeps one token per visual token."""

from __future__ import annotations

import pytest
import torch

from vlit.config import MLPConnectorConfig
from vlit.models.connectors import build_connector


@pytest.mark.parametrize("n", [1, 49, 64, 576])
def test_mlp_keeps_one_token_per_patch(n):
    for kind, layers in (("mlp", 2), ("linear", 1)):
        conn = build_connector(MLPConnectorConfig(kind=kind), 32, 48)
        out = conn(torch.randn(2, n, 32))
        assert out.shape == (2, n, 48) and conn.num_tokens(n) == n
        assert sum(isinstance(m, torch.nn.Linear) for m in conn.modules()) == layers
