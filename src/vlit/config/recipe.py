"""The top-level config of a recipe file (`configs/*.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vlit.config.checkpoint import with_init_from
from vlit.config.loader import ConfigError
from vlit.config.model import ModelConfig
from vlit.config.train import DataConfig, StageConfig, TrainConfig


@dataclass
class Config:
    """A recipe: the model, where its data lives, the training stages in order, and run settings."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    stages: list[StageConfig] = field(default_factory=list)
    train: TrainConfig = field(default_factory=TrainConfig)

    @staticmethod
    def resolve(data: dict) -> dict:
        """The raw recipe with `model.init_from`'s checkpoint config under the model section."""
        model = data.get("model")
        if isinstance(model, dict) and model.get("init_from"):
            return {**data, "model": with_init_from(model)}
        return data

    def __post_init__(self) -> None:
        for i, stage in enumerate(self.stages):
            if "lora" in stage.train and self.model.lora is None:
                raise ConfigError(f"stages[{i}].train: 'lora' needs model.lora to be set")
            leaked = [d.name for d in stage.data.datasets if d.name in self.data.held_out]
            if leaked:
                raise ConfigError(f"stages[{i}].data: {leaked[0]!r} is held out and must never be trained on")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError("stages: stage names must be unique")
