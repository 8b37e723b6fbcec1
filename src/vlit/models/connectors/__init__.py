"""Connectors from vision features to LLM tokens: `mlp`/`linear` (LLaVA), `merge` (MiniGPT-v2), `qformer`
(InstructBLIP). One interface (`Connector`); the config's `kind` picks the class."""

from __future__ import annotations

from vlit.config import ConnectorConfig, MergeConnectorConfig, MLPConnectorConfig, QFormerConnectorConfig
from vlit.models.connectors.base import Connector


def build_connector(cfg: ConnectorConfig, vision_dim: int, llm_dim: int) -> Connector:
    """A freshly initialised connector (seed torch before calling for a reproducible init)."""
    if isinstance(cfg, MLPConnectorConfig):
        from vlit.models.connectors.mlp import MLPConnector

        return MLPConnector(cfg, vision_dim, llm_dim)
    if isinstance(cfg, MergeConnectorConfig):
        from vlit.models.connectors.merge import MergeConnector

        return MergeConnector(cfg, vision_dim, llm_dim)
    if isinstance(cfg, QFormerConnectorConfig):
        from vlit.models.connectors.qformer import QFormerConnector

        return QFormerConnector(cfg, vision_dim, llm_dim)
    raise TypeError(f"unknown connector config {type(cfg).__name__}")


__all__ = ["Connector", "build_connector"]
