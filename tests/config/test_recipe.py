"""`vlit.config.recipe`: a whole recipe is consistent, and every bundled recipe loads."""

from __future__ import annotations

import pytest
import yaml

from vlit.config import Config, ConfigError, LoRAConfig, ModelConfig, load_yaml
from vlit.config.data import DatasetConfig, MixtureConfig
from vlit.config.loader import BUNDLED, recipe_path
from vlit.config.train import DataConfig, StageConfig


def _stage(name: str, parts: list[str], dataset: str = "a") -> StageConfig:
    return StageConfig(name, MixtureConfig(datasets=[DatasetConfig(dataset, f"{dataset}.json")]), parts,
                       {p: 1e-4 for p in parts}, steps=1)


def test_lora_stage_needs_lora_adapters():
    with pytest.raises(ConfigError, match="'lora' needs model.lora"):
        Config(stages=[_stage("s", ["lora"])])
    Config(model=ModelConfig(lora=LoRAConfig()), stages=[_stage("s", ["lora"])])


def test_a_held_out_dataset_is_never_trained_on():
    with pytest.raises(ConfigError, match="'b' is held out and must never be trained on"):
        Config(data=DataConfig(held_out=["b"]), stages=[_stage("s", ["connector"], "b")])


def test_stage_names_are_unique():
    with pytest.raises(ConfigError, match="stage names must be unique"):
        Config(stages=[_stage("s", ["connector"]), _stage("s", ["connector"])])


@pytest.mark.parametrize("name", sorted(str(p.relative_to(BUNDLED).with_suffix(""))
                                        for p in BUNDLED.rglob("*.yaml") if "accelerate" not in p.parts))
def test_every_bundled_recipe_loads(name):
    cfg = load_yaml(Config, name)
    # The hub recipes describe the published models (what `vlit info` shows); the others also train.
    assert cfg.stages or name.startswith("hub/"), name


@pytest.mark.parametrize(("name", "style"), [
    ("debug", "llava15"), ("instructblip", "instructblip"), ("llava15", "llava15"), ("minigptv2", "minigptv2"),
    ("hub/instructblip-vicuna7b", "instructblip"), ("hub/llava15-7b", "llava15"), ("hub/minigptv2-llama2", "minigptv2"),
])
def test_recipes_state_the_prompt_style_their_model_is_asked_in(name, style):
    assert yaml.safe_load(recipe_path(name).read_text())["model"]["prompt_style"] == style
