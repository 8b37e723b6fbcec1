"""`vlit.models.connectors.merge`: MiniGPT-v2's merge of k adjacent visual tokens."""

from __future__ import annotations

import pytest
import torch

from vlit.config import MergeConnectorConfig
from vlit.errors import VlitError
from vlit.models.connectors import build_connector


@pytest.mark.parametrize(("n", "k"), [(64, 4), (256, 4), (1024, 4), (48, 2), (49, 7)])
def test_merge_concatenates_k_adjacent_tokens(n, k):
    conn = build_connector(MergeConnectorConfig(merge=k), 16, 40)
    feats = torch.randn(3, n, 16)
    out = conn(feats)
    assert out.shape == (3, n // k, 40) and conn.num_tokens(n) == n // k
    # Token j of the output is the projection of input tokens jk..jk+k-1 laid side by side.
    manual = conn.proj(torch.cat([feats[:, i] for i in range(k)], dim=-1))
    torch.testing.assert_close(out[:, 0], manual)


def test_merge_rejects_counts_that_do_not_divide():
    conn = build_connector(MergeConnectorConfig(merge=4), 16, 40)
    with pytest.raises(VlitError, match="49 visual tokens cannot be merged in groups of 4"):
        conn(torch.randn(1, 49, 16))
    with pytest.raises(VlitError, match="49"):
        conn.num_tokens(49)
