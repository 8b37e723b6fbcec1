"""`vlit.config.recipe`: a whole recipe is consistent, and every bundled recipe loads."""

from __future__ import annotations

import pytest

from vlit.config import (
    Config,
    ConfigError,
    LLMConfig,
    LoRAConfig,
    MergeConnectorConfig,
    ModelConfig,
    QFormerConnectorConfig,
    VisionConfig,
    load_yaml,
)
from vlit.config.data import DatasetConfig, MixtureConfig
from vlit.config.loader import BUNDLED, recipe_path
from vlit.config.train import DataConfig, StageConfig
from vlit.models.saving import write_checkpoint


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


# What `vlit import` writes for each family (config.json is all a recipe reads): the hub recipes that start
# from a published model are checked against these.
IMPORTED = {
    "llava": ModelConfig(vision=VisionConfig(source="hub", name="llava-hf/llava-1.5-7b-hf", key_mapping={"^x": ""}),
                         llm=LLMConfig(source="hub", name="llava-hf/llava-1.5-7b-hf"), template="vicuna_v1",
                         prompt_style="llava15"),
    "blip": ModelConfig(vision=VisionConfig(source="hub", name="Salesforce/blip2-opt-2.7b", feature_layer=-1,
                                            drop_cls=False),
                        connector=QFormerConnectorConfig(init="random", hidden_size=768, num_layers=12,
                                                         intermediate_size=3072, cross_attention_frequency=2,
                                                         instruction_aware=False),
                        llm=LLMConfig(source="hub", name="Salesforce/blip2-opt-2.7b"), template="instructblip",
                        prompt_style="instructblip"),
    "blip-t5": ModelConfig(vision=VisionConfig(source="hub", name="Salesforce/blip2-flan-t5-xl", feature_layer=-1,
                                               drop_cls=False, key_mapping={r"^vision_model\.": ""}),
                           connector=QFormerConnectorConfig(init="random", hidden_size=768, num_layers=12,
                                                            intermediate_size=3072, cross_attention_frequency=2,
                                                            instruction_aware=False),
                           llm=LLMConfig(source="hub", name="Salesforce/blip2-flan-t5-xl",
                                         key_mapping={r"^language_model\.": ""}),
                           template="instructblip", prompt_style="instructblip"),
    "minigptv2": ModelConfig(vision=VisionConfig(source="stored", name="blip_2_vision_model",
                                                 random_config={"image_size": 448}, post_layernorm=True),
                             connector=MergeConnectorConfig(), llm=LLMConfig(source="hub", name="meta-llama/x"),
                             lora=LoRAConfig(r=64, alpha=16, target_modules=["q_proj", "v_proj"]),
                             template="llama2_inst", prompt_style="minigptv2", system_prompt=""),
}
FAMILY = {"llava15-7b-finetune": "llava", "llava15-7b-lora": "llava", "instructblip-vicuna7b": "blip",
          "instructblip-from-blip2": "blip", "instructblip-data-mixture": "blip", "minigptv2-stage3": "minigptv2",
          "instructblip-flant5xl": "blip-t5"}
RECIPES = sorted(str(p.relative_to(BUNDLED).with_suffix("")) for p in BUNDLED.rglob("*.yaml")
                 if "accelerate" not in p.parts)


def _load(name, tmp_path):
    """A bundled recipe; one that starts from an imported checkpoint reads a stand-in of that family."""
    family = FAMILY.get(name.removeprefix("hub/"))
    if family is None:
        return load_yaml(Config, name)
    write_checkpoint(tmp_path / family, IMPORTED[family], {}, [])
    return load_yaml(Config, name, [f"model.init_from={tmp_path / family}"])


@pytest.mark.parametrize("name", RECIPES)
def test_every_bundled_recipe_loads_and_trains(name, tmp_path):
    cfg = _load(name, tmp_path)
    assert cfg.stages, name


def test_every_recipe_that_starts_from_a_published_model_is_checked():
    assert {f"hub/{n}" for n in FAMILY} == {r for r in RECIPES if "init_from" in recipe_path(r).read_text()}


@pytest.mark.parametrize(("name", "style"), [
    ("debug", "llava15"), ("instructblip", "instructblip"), ("llava15", "llava15"), ("minigptv2", "minigptv2"),
    ("hub/instructblip-vicuna7b", "instructblip"), ("hub/llava15-7b", "llava15"), ("hub/minigptv2-llama2", "minigptv2"),
    ("hub/llava15-7b-finetune", "llava15"), ("hub/llava15-7b-lora", "llava15"),
    ("hub/instructblip-from-blip2", "instructblip"), ("hub/minigptv2-stage3", "minigptv2"),
    ("hub/instructblip-data-mixture", "instructblip"), ("hub/llava15-665k-academic", "llava15"),
    ("hub/instructblip-flant5xl", "instructblip"),
])
def test_recipes_state_the_prompt_style_their_model_is_asked_in(name, style, tmp_path):
    assert _load(name, tmp_path).model.prompt_style == style


def test_a_recipe_over_an_imported_model_keeps_its_parts_and_changes_what_it_states(tmp_path):
    cfg = _load("hub/instructblip-from-blip2", tmp_path)
    connector = cfg.model.connector
    # From the BLIP-2 import: the Q-Former's size, the tower, the LLM. From the recipe: instruction-aware, BERT.
    assert (connector.hidden_size, connector.num_layers, connector.cross_attention_frequency) == (768, 12, 2)
    assert (connector.instruction_aware, connector.init, connector.max_instruction_tokens) == \
        (True, "bert-base-uncased", 128)
    assert cfg.model.vision.name == "Salesforce/blip2-opt-2.7b" and cfg.model.llm.dtype == "bfloat16"
    assert cfg.model.init_from == str(tmp_path / "blip")
    lora = _load("hub/llava15-7b-lora", tmp_path).model
    assert lora.lora.r == 128 and lora.vision.key_mapping == {"^x": ""}


def test_the_flant5_recipe_tunes_an_instruction_aware_qformer_over_the_blip2_flant5_import(tmp_path):
    """InstructBLIP FlanT5-XL as the paper trains it: BLIP-2 FlanT5-XL's parts, the Q-Former made instruction-aware
    from BERT, only the connector learning; FlanT5 referenced from the import, frozen, no LoRA, in bf16."""
    cfg = _load("hub/instructblip-flant5xl", tmp_path)
    connector = cfg.model.connector
    assert (connector.hidden_size, connector.num_layers, connector.cross_attention_frequency) == (768, 12, 2)
    assert (connector.instruction_aware, connector.init, connector.max_instruction_tokens) == \
        (True, "bert-base-uncased", 128)
    assert cfg.model.llm.name == cfg.model.vision.name == "Salesforce/blip2-flan-t5-xl"
    assert cfg.model.llm.key_mapping == {r"^language_model\.": ""} and cfg.model.llm.dtype == "bfloat16"
    assert cfg.model.lora is None and cfg.model.template == "instructblip"
    assert [stage.train for stage in cfg.stages] == [["connector"]]
    assert cfg.stages[0].lr == {"connector": 1.0e-5} and cfg.model.init_from == str(tmp_path / "blip-t5")
