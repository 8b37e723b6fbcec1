from __future__ import annotations

import dataclasses

import torch
from PIL import Image

from vlit.models.build import build_model
from vlit.training.feature_cache import FeatureCache, encoder_key


def test_cache_computes_once_and_matches_the_encoder(train_config, tmp_path):
    model, processor = build_model(train_config.model)
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 30), colour).save(paths[-1])
    calls = []

    def compute(refs):
        calls.append(len(refs))
        return model.image_features(processor.pixels(refs))

    cache = FeatureCache(tmp_path / "cache", encoder_key(train_config.model, processor.image_spec))
    first = cache.get([str(p) for p in paths + paths[:1]], compute)
    assert calls == [2]  # the repeated image is computed once
    direct = model.image_features(processor.pixels([str(p) for p in paths]))
    torch.testing.assert_close(first[:2], direct, atol=1e-2, rtol=1e-2)  # stored as float16
    again = cache.get([str(p) for p in paths], compute)
    assert calls == [2] and torch.equal(again, first[:2])
    # A new cache object (another epoch, stage or run) reads the disk copy: identical values, no compute.
    fresh = FeatureCache(tmp_path / "cache", encoder_key(train_config.model, processor.image_spec))
    assert torch.equal(fresh.get([str(paths[1])], compute), first[1:2]) and calls == [2]


def test_key_follows_encoder_and_image_content(train_config, tmp_path):
    _, processor = build_model(train_config.model)
    key = encoder_key(train_config.model, processor.image_spec)
    other_layer = dataclasses.replace(train_config.model.vision, feature_layer=-1)
    assert key != encoder_key(dataclasses.replace(train_config.model, vision=other_layer), processor.image_spec)
    assert key != encoder_key(train_config.model, dataclasses.replace(processor.image_spec, resize="pad"))
    cache = FeatureCache(tmp_path, key)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(a)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(b)
    assert cache.image_key(str(a)) == cache.image_key(str(b))  # same content, same key
    Image.new("RGB", (8, 8), (9, 2, 3)).save(b)
    assert cache.image_key(str(a)) != cache.image_key(str(b))
