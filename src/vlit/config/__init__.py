"""Typed configs (dataclasses with docstrings and validation) and their YAML form."""

from vlit.config.loader import ConfigError, apply_overrides, from_dict, load_yaml, save_yaml, to_dict
from vlit.config.model import (
    ConnectorConfig,
    LLMConfig,
    MergeConnectorConfig,
    MLPConnectorConfig,
    ModelConfig,
    QFormerConnectorConfig,
    VisionConfig,
)

__all__ = [
    "ConfigError",
    "ConnectorConfig",
    "LLMConfig",
    "MLPConnectorConfig",
    "MergeConnectorConfig",
    "ModelConfig",
    "QFormerConnectorConfig",
    "VisionConfig",
    "apply_overrides",
    "from_dict",
    "load_yaml",
    "save_yaml",
    "to_dict",
]
