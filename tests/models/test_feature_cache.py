from __future__ import annotations

import dataclasses
import threading

import pytest
import torch
from PIL import Image

from vlit.models.feature_cache import FeatureCache, encode_images, encoder_key, image_key


def _vision_calls(model) -> list[int]:
    calls: list[int] = []
    model.vision.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    return calls


def test_cache_computes_once_and_matches_the_encoder(debug_config, debug_model, tmp_path):
    model, processor = debug_model
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 30), colour).save(paths[-1])
    folder = tmp_path / "cache" / encoder_key(debug_config.model, processor.image_spec)
    cache = FeatureCache(model, processor, 8192, folder, torch.float16)
    direct = encode_images(model, processor, [str(p) for p in paths])
    calls = _vision_calls(model)
    first = cache.features([str(p) for p in paths + paths[:1]], dtype=torch.float32)
    assert calls == [2]  # the repeated image is computed once
    torch.testing.assert_close(first[:2], direct, atol=1e-2, rtol=1e-2)  # stored as float16
    again = cache.features([str(p) for p in paths], dtype=torch.float32)
    assert calls == [2] and torch.equal(again, first[:2])
    # A new cache object (another epoch, stage or run) reads the disk copy: identical values, no compute.
    fresh = FeatureCache(model, processor, 8192, folder, torch.float16)
    assert torch.equal(fresh.features([str(paths[1])], dtype=torch.float32), first[1:2]) and calls == [2]
    assert (fresh.hits, fresh.misses) == (1, 0)


def test_key_follows_encoder_and_image_content(debug_config, debug_model, tmp_path):
    _, processor = debug_model
    key = encoder_key(debug_config.model, processor.image_spec)
    other_layer = dataclasses.replace(debug_config.model.vision, feature_layer=-1)
    assert key != encoder_key(dataclasses.replace(debug_config.model, vision=other_layer), processor.image_spec)
    assert key != encoder_key(debug_config.model, dataclasses.replace(processor.image_spec, resize="pad"))
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(a)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(b)
    assert image_key(str(a)) == image_key(str(b))  # same content, same key
    Image.new("RGB", (8, 8), (9, 2, 3)).save(b)
    assert image_key(str(a)) != image_key(str(b))
    assert image_key("b.png", tmp_path) == image_key(b)  # relative paths resolve against the root


def test_memory_only_cache_keeps_the_encoder_output_and_evicts(debug_model, red_image):
    model, processor = debug_model
    blue_image = Image.new("RGB", (40, 30), (20, 20, 220))
    cache = FeatureCache(model, processor, capacity=1)
    calls = _vision_calls(model)
    red = cache.features([red_image])
    cache.features([blue_image])  # evicts red
    cache.features([red_image])
    assert calls == [1, 1, 1]
    assert torch.equal(red, encode_images(model, processor, [red_image]))  # no rounding without a dtype
    assert len(cache) == 1 and (cache.hits, cache.misses) == (0, 3)
    assert cache.features([]) is None


def test_threads_share_one_encoding(debug_model, red_image):
    model, processor = debug_model
    cache = FeatureCache(model, processor)
    calls = _vision_calls(model)
    threads = [threading.Thread(target=cache.features, args=([red_image],)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and (cache.hits, cache.misses) == (3, 1)


def test_a_special_file_is_keyed_and_refused_without_being_read(debug_model, special_files, sparse_file):
    from vlit.data.reading.images import ImageError

    model, processor = debug_model
    cache = FeatureCache(model, processor, 8)
    huge = sparse_file("huge.png", (64 << 20) + 1)  # hashing it would read 64 MiB of zeros
    for path in [*special_files, huge]:
        assert image_key(str(path)) == f"refused:{path}"
        with pytest.raises(ImageError, match=f"^{path}: "):
            cache.features([str(path)])
