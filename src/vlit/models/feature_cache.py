"""The one vision-feature cache: an image's encoder output computed once and reused.

While the vision encoder is frozen its output for an image never changes. Training reuses it across epochs,
stages and runs (a disk store); inference across the turns of a chat, which re-sends the whole conversation
each turn (memory only). Only the encoder's output is cached: the connector runs again each time, because the
Q-Former reads the instruction, which may change.

One image key serves both: a file is the sha1 of its bytes (memoised by path, size and mtime, so an edited
file is hashed and encoded again), an in-memory image the sha1 of its mode, size and pixels.

Training stores features in float16 and every consumer, including the run that computed them, uses the
stored values, so a resumed run and an uninterrupted one see bit-identical inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from vlit.config import ModelConfig, to_dict
from vlit.data.conversation import ImageRef
from vlit.data.loading.processor import Processor
from vlit.data.loading.transforms import ImageSpec
from vlit.data.reading.files import IMAGE_FILE_LIMIT, FileRefused, open_regular, regular_file
from vlit.data.reading.images import resolve_image_path
from vlit.models.vlm import VisionLanguageModel

FORMAT_VERSION = 1



def encoder_key(cfg: ModelConfig, spec: ImageSpec) -> str:
    """Everything that decides an image's features: encoder config, its preprocessing, and (for random
    weights) the seed they were drawn from. Names the disk store's folder."""
    payload = {"vision": to_dict(cfg.vision), "spec": to_dict(spec), "version": FORMAT_VERSION,
               "seed": cfg.seed if cfg.vision.source == "random" else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def image_key(ref: ImageRef, root: Path | None = None) -> str:
    """The identity of an image reference (a relative path is resolved against `root`): same key, same
    pixels."""
    if isinstance(ref, Image.Image):
        h = hashlib.sha1(f"{ref.mode}{ref.size}".encode())
        h.update(ref.tobytes())
        return h.hexdigest()
    path = resolve_image_path(ref, root)
    try:
        # Checked before hashing reads it: a link to /dev/zero would never end, a FIFO never start.
        stat = regular_file(path, IMAGE_FILE_LIMIT)
    except FileRefused:
        # Loading will fail with a clear ImageError naming the file; the key only needs to be distinct.
        return f"refused:{path}"
    return _file_sha1(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=1 << 16)
def _file_sha1(path: str, size: int, mtime_ns: int) -> str:
    """The sha1 of a file's bytes, memoised by (path, size, mtime): an edited file gets a new key. Bounded, so
    a 665k-image dataset does not keep every path in memory (a re-hash costs one read of the file)."""
    with open_regular(path, IMAGE_FILE_LIMIT) as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def encode_images(model: VisionLanguageModel, processor: Processor, images: Sequence[ImageRef]) -> torch.Tensor:
    """float[I, N, Dv]: decode and preprocess images, run the vision encoder on its device and dtype."""
    param = next(model.vision.parameters())
    return model.image_features(processor.pixels(list(images)).to(param.device, param.dtype))


class FeatureCache:
    """An LRU of vision-encoder outputs float[N, Dv] per image, keyed by `image_key`, with an optional disk
    store (`folder`, one per `encoder_key`). Thread-safe: a server answers conversations from threads.

    `capacity` is the number of images kept in memory (0: none). `dtype` (e.g. float16) is the stored
    precision: values are rounded to it, kept on the CPU, and returned as stored; None keeps the encoder's
    output as it is, on its device.
    """

    def __init__(self, model: VisionLanguageModel, processor: Processor, capacity: int = 32,
                 folder: str | Path | None = None, dtype: torch.dtype | None = None):
        self.model = model
        self.processor = processor
        self.capacity = capacity
        self.folder = Path(folder) if folder is not None else None
        self.dtype = dtype
        self.hits = 0
        self.misses = 0
        self._memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._memory)

    def clear(self) -> None:
        """Forget what is in memory (the disk store stays)."""
        with self._lock:
            self._memory.clear()

    @torch.no_grad()
    def features(self, images: Sequence[ImageRef], device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> torch.Tensor | None:
        """float[I, N, Dv] for `images` in order (None for no images), on `device` in `dtype` when given;
        encodes only the images neither in memory nor on disk, all in one batch."""
        if not images:
            return None
        with self._lock:
            stacked = self._get(images, lambda refs: encode_images(self.model, self.processor, refs))
        return stacked.to(device=device if device is not None else stacked.device, dtype=dtype or stacked.dtype)

    def _get(self, refs: Sequence[ImageRef], compute: Callable[[list[ImageRef]], torch.Tensor]) -> torch.Tensor:
        keys = [image_key(ref, self.processor.image_root) for ref in refs]
        found: dict[str, torch.Tensor] = {}
        missing: dict[str, ImageRef] = {}
        for key, ref in zip(keys, refs, strict=True):
            if key in found or key in missing:
                continue
            value = self._lookup(key)
            if value is None:
                missing[key] = ref
            else:
                found[key] = value
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        if missing:
            for key, value in zip(missing, compute(list(missing.values())), strict=True):
                found[key] = self._store(key, value)
        return torch.stack([found[key] for key in keys])

    def _path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / key[:2] / f"{key}.safetensors"

    def _lookup(self, key: str) -> torch.Tensor | None:
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        path = self._path(key)
        if path is None or not path.exists():
            return None
        value = load_file(path)["features"]
        self._remember(key, value)
        return value

    def _store(self, key: str, value: torch.Tensor) -> torch.Tensor:
        value = value.detach()
        if self.dtype is not None:
            value = value.to("cpu", self.dtype).contiguous()
        path = self._path(key)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Unique temp name then rename: concurrent processes may write the same key; either copy is fine.
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            save_file({"features": value.to("cpu").contiguous()}, tmp)
            os.replace(tmp, path)
        self._remember(key, value)
        return value

    def _remember(self, key: str, value: torch.Tensor) -> None:
        if self.capacity <= 0:
            return
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self.capacity:
            self._memory.popitem(last=False)
