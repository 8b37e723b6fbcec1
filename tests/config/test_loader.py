"""`vlit.config.loader`: YAML and dicts into typed configs and back, errors that name the field, overrides."""

from __future__ import annotations

import pytest

from vlit.config import (
    Config,
    ConfigError,
    MergeConnectorConfig,
    ModelConfig,
    QFormerConnectorConfig,
    from_dict,
    load_yaml,
    recipe_path,
    save_yaml,
    to_dict,
)


def test_debug_config_loads_and_round_trips(tmp_path, debug_config):
    assert debug_config.model.vision.source == "random"
    save_yaml(debug_config, tmp_path / "c.yaml")
    assert load_yaml(Config, tmp_path / "c.yaml") == debug_config
    assert from_dict(Config, to_dict(debug_config)) == debug_config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"model": {"visoin": {}}}, "model.visoin: unknown field"),
        ({"model": {"seed": "zero"}}, "model.seed: expected int"),
        ({"model": {"seed": True}}, "model.seed: expected int"),
        ({"model": {"connector": {"kind": "resampler"}}}, "model.connector.kind: 'resampler' is not one of"),
        ({"model": {"connector": {"kind": "merge", "merge": 0}}}, "model.connector.merge: must be >= 1"),
        ({"model": {"template": "alpaca"}}, "model.template: 'alpaca' is not one of"),
        ({"model": {"llm": {"source": "random"}}}, "model.llm.random_config: required"),
        ({"model": {"connector": {"kind": "qformer", "hidden_size": 256}}}, "model.connector.init: 'minilm' needs"),
        ({"model": []}, "model: expected a mapping"),
    ],
)
def test_errors_name_the_field(data, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        from_dict(Config, data)


def test_union_picked_by_kind():
    cfg = from_dict(ModelConfig, {"connector": {"kind": "qformer", "num_queries": 8}})
    assert isinstance(cfg.connector, QFormerConnectorConfig) and cfg.connector.num_queries == 8
    cfg = from_dict(ModelConfig, {"connector": {"kind": "merge"}})
    assert cfg.connector == MergeConnectorConfig(merge=4)


def test_overrides_and_file_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  seed: 1\n")
    cfg = load_yaml(Config, path, ["model.seed=7", "model.connector.kind=linear"])
    assert cfg.model.seed == 7 and cfg.model.connector.kind == "linear"
    with pytest.raises(ConfigError, match="expected key=value"):
        load_yaml(Config, path, ["model.seed"])
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(Config, tmp_path / "missing.yaml")
    path.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(Config, path)


@pytest.mark.parametrize("text", ["no", "'no'", "off"])
def test_an_unquoted_no_means_the_word_for_a_choice_of_words(text):
    # YAML 1.1 reads `no` as false; `mixed_precision: no` must still mean "no".
    cfg = load_yaml(Config, "debug", [f"train.mixed_precision={text}"])
    assert cfg.train.mixed_precision == "no"


@pytest.mark.parametrize("text", ["1e-4", "1.0e-4", "0.0001", "+1E-4"])
def test_exponent_without_a_dot_is_a_float(text, tmp_path):
    # YAML 1.1 (PyYAML's default) reads `1e-4` as a string; a learning rate written that way must work.
    cfg = load_yaml(Config, "debug", [f"stages.0.lr.connector={text}"])
    assert cfg.stages[0].lr["connector"] == pytest.approx(1e-4)
    path = tmp_path / "c.yaml"
    path.write_text(recipe_path("debug").read_text().replace("lr: {connector: 1.0e-3}", f"lr: {{connector: {text}}}"))
    assert load_yaml(Config, path).stages[0].lr["connector"] == pytest.approx(1e-4)


def test_overrides_index_lists_and_refuse_non_mappings():
    cfg = load_yaml(Config, "debug", ["stages.1.steps=5"])
    assert cfg.stages[1].steps == 5
    with pytest.raises(ConfigError, match="must be a list index"):
        load_yaml(Config, "debug", ["stages.first.steps=5"])
    with pytest.raises(ConfigError, match="train.seed is not a mapping"):
        load_yaml(Config, "debug", ["train.seed.x=1"])


def test_unknown_recipe_lists_the_bundled_ones():
    with pytest.raises(ConfigError, match="bundled: .*llava15"):
        recipe_path("no-such-recipe")


def test_missing_required_field_and_null_for_required_value():
    from vlit.config import StageConfig

    with pytest.raises(ConfigError, match=r"stages\[0\]\.name: required field is missing"):
        from_dict(Config, {"stages": [{"data": {"datasets": []}, "train": ["connector"], "lr": {}}]})
    with pytest.raises(ConfigError, match="train: a value is required|train: expected a list"):
        from_dict(StageConfig, {"name": "s", "data": {}, "train": None, "lr": {}})


def test_a_config_that_is_no_regular_file_is_refused(special_files):
    for path in special_files:
        with pytest.raises(ConfigError, match=f"^{path}: not a regular file$"):
            load_yaml(Config, path)


def test_an_override_index_outside_the_list_is_named():
    from vlit.config.loader import ConfigError, apply_overrides

    data = {"stages": [{"steps": 1}, {"steps": 2}]}
    with pytest.raises(ConfigError, match=r"'stages.9.steps': index 9 is out of range \(the list has 2 entries\)"):
        apply_overrides(data, ["stages.9.steps=3"])
    with pytest.raises(ConfigError, match="index -1 is out of range"):
        apply_overrides(data, ["stages.-1.steps=3"])
    assert apply_overrides(data, ["stages.1.steps=5"])["stages"][1]["steps"] == 5
