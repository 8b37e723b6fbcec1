"""The top-level config of a recipe file (`configs/*.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vlit.config.checkpoint import with_init_from
from vlit.config.loader import ConfigError
from vlit.config.model import ModelConfig, QFormerConnectorConfig
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
            if stage.objective == "qformer":
                _check_qformer_stage(i, self.model)
            if not stage.qformer_reads_instruction and not _instruction_aware(self.model):
                raise ConfigError(f"stages[{i}].qformer_reads_instruction: false withholds the instruction from an "
                                  "instruction-aware Q-Former; model.connector is not one")
            leaked = [d.name for d in stage.data.datasets if d.name in self.data.held_out]
            if leaked:
                raise ConfigError(f"stages[{i}].data: {leaked[0]!r} is held out and must never be trained on")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError("stages: stage names must be unique")


def _instruction_aware(model: ModelConfig) -> bool:
    return isinstance(model.connector, QFormerConnectorConfig) and model.connector.instruction_aware


def _check_qformer_stage(index: int, model: ModelConfig) -> None:
    connector = model.connector
    if not isinstance(connector, QFormerConnectorConfig):
        raise ConfigError(f"stages[{index}].objective: 'qformer' trains a Q-Former connector; model.connector.kind "
                          f"is {connector.kind!r}")
    if not connector.instruction_aware:
        # transformers' Blip2QFormerModel, built for the queries alone, has neither word embeddings nor the text
        # feed-forward layers (`use_qformer_text_input: false`) that the stage's text passes go through.
        raise ConfigError(f"stages[{index}].objective: 'qformer' needs model.connector.instruction_aware: true "
                          "(BLIP-2's query-only Q-Former has no text embeddings or text layers to read answers with)")
