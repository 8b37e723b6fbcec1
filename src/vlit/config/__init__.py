"""Typed configs (dataclasses with docstrings and validation) and their YAML form."""

from vlit.config.data import DatasetConfig, MixtureConfig
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
    LoRAConfig,
    MergeConnectorConfig,
    MLPConnectorConfig,
    ModelConfig,
    QFormerConnectorConfig,
    VisionConfig,
)
from vlit.config.recipe import Config
from vlit.config.train import DataConfig, QFormerObjectiveConfig, StageConfig, TrainConfig

__all__ = [
    "Config",
    "ConfigError",
    "ConnectorConfig",
    "DataConfig",
    "DatasetConfig",
    "LLMConfig",
    "LoRAConfig",
    "MLPConnectorConfig",
    "MergeConnectorConfig",
    "MixtureConfig",
    "ModelConfig",
    "QFormerConnectorConfig",
    "QFormerObjectiveConfig",
    "StageConfig",
    "TrainConfig",
    "VisionConfig",
    "apply_overrides",
    "from_dict",
    "load_yaml",
    "recipe_path",
    "save_yaml",
    "to_dict",
]
