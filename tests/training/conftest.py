from __future__ import annotations

import dataclasses

import pytest

from vlit.config import Config, load_yaml


@pytest.fixture(scope="session")
def debug_data(tmp_path_factory):
    """The debug recipe's tiny quickstart build, made once per test session."""
    from vlit.data.sources.build import build_quickstart

    root = tmp_path_factory.mktemp("debug-data")
    build_quickstart(root, seed=0, scale=0.05, progress=False)
    return root


@pytest.fixture
def train_config(debug_data, tmp_path) -> Config:
    cfg = load_yaml(Config, "debug", [f"data.root={debug_data}", f"train.cache_dir={tmp_path / 'features'}"])
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, build=None))
