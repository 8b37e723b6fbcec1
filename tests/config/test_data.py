"""`vlit.config.data`: dataset and mixture configs."""

from __future__ import annotations

import pytest

from vlit.config import ConfigError, DatasetConfig, MixtureConfig, from_dict


def test_negative_weight_is_refused():
    with pytest.raises(ConfigError, match="weight: must be >= 0"):
        DatasetConfig(name="a", path="a.json", weight=-1)


def test_dataset_names_are_unique_within_a_mixture():
    with pytest.raises(ConfigError, match="name 'a' appears more than once"):
        MixtureConfig(datasets=[DatasetConfig("a", "a.json"), DatasetConfig("a", "b.json")])


def test_styles_and_sampling_are_choices():
    with pytest.raises(ConfigError, match="style: 'alpaca' is not one of"):
        from_dict(DatasetConfig, {"name": "a", "path": "a.json", "style": "alpaca"}, "")
    with pytest.raises(ConfigError, match="sampling: 'balanced' is not one of"):
        from_dict(MixtureConfig, {"sampling": "balanced"}, "")
    assert MixtureConfig().sampling == "sqrt" and MixtureConfig().on_bad_row == "fail"
