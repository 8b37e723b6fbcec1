"""The top-level config of a recipe file (`configs/*.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vlit.config.model import ModelConfig


@dataclass
class Config:
    """A recipe: the model to build (later sections: data mixtures, training stages)."""

    model: ModelConfig = field(default_factory=ModelConfig)
