"""Typed configs (dataclasses with docstrings and validation) and their YAML form."""

from vlit.config.loader import (
    ConfigError,
    apply_overrides,
    from_dict,
    load_yaml,
    recipe_path,
    save_yaml,
    to_dict,
)
from vlit.config.model import (
    ConnectorConfig,
    LLMConfig,
    MergeConnectorConfig,
    MLPConnectorConfig,
    ModelConfig,
    QFormerConnectorConfig,
    VisionConfig,
)
from vlit.config.recipe import Config

__all__ = [
    "Config",
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
    "recipe_path",
    "save_yaml",
    "to_dict",
]
