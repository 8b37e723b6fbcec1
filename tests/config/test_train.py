"""`vlit.config.train`: a stage's parts, rates and length are consistent; run-wide settings."""

from __future__ import annotations

import pytest

from vlit.config import ConfigError, DatasetConfig, MixtureConfig, StageConfig, TrainConfig

DATA = MixtureConfig(datasets=[DatasetConfig("a", "a.json")])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"train": []}, "train: name at least one part"),
    ({"train": ["llm", "lora"], "lr": {"llm": 1e-5, "lora": 1e-4}}, "choose 'llm' .* or 'lora'"),
    ({"train": ["connector", "lora"], "lr": {"connector": 1e-3}}, "lr: no learning rate for trained part 'lora'"),
    ({"lr": {"connector": 1e-3, "vision": 1e-5}}, "lr: 'vision' is not trained"),
    ({"steps": None}, "give exactly one of steps or epochs"),
    ({"epochs": 1.0}, "give exactly one of steps or epochs"),
    ({"steps": 0}, "longer than zero"),
    ({"steps": None, "epochs": 0.0}, "longer than zero"),
    ({"batch_size": 0}, "batch_size and grad_accum must be >= 1"),
    ({"data": MixtureConfig()}, "a stage needs at least one dataset"),
])
def test_inconsistent_stages_are_refused(kwargs, message):
    base = {"name": "s", "data": DATA, "train": ["connector"], "lr": {"connector": 1e-3}, "steps": 10}
    with pytest.raises(ConfigError, match=message):
        StageConfig(**{**base, **kwargs})


def test_epochs_instead_of_steps():
    stage = StageConfig("s", DATA, ["connector"], {"connector": 1e-3}, epochs=0.5)
    assert stage.steps is None and stage.epochs == 0.5 and stage.loss_per == "token"


def test_train_defaults_keep_the_feature_cache_and_length_grouping():
    train = TrainConfig()
    assert train.feature_cache and train.group_by_length and train.mixed_precision == "no"
