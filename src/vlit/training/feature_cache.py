"""Frozen-feature cache: while the vision encoder is frozen its output for an image never changes, so it is
computed once, stored on disk keyed by (image content, encoder), and reused across epochs, stages and runs.

Features are stored in float16 and every consumer, including the run that computed them, uses the stored
values, so a resumed run and an uninterrupted one see bit-identical inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from vlit.config import ModelConfig, to_dict
from vlit.data.conversation import ImageRef
from vlit.data.loading.transforms import ImageSpec

FORMAT_VERSION = 1


def encoder_key(cfg: ModelConfig, spec: ImageSpec) -> str:
    """Everything that decides an image's features: encoder config, its preprocessing, and (for random
    weights) the seed they were drawn from."""
    vision = to_dict(cfg.vision)
    payload = {"vision": vision, "spec": to_dict(spec), "version": FORMAT_VERSION,
               "seed": cfg.seed if cfg.vision.source == "random" else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


class FeatureCache:
    """Get features float[I, N, D] for image references, computing only the ones never seen."""

    def __init__(self, folder: str | Path, key: str, memory_items: int = 8192, dtype=torch.float16):
        self.folder = Path(folder) / key
        self.memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.memory_items = memory_items
        self.dtype = dtype
        self._file_keys: dict[tuple[str, int, int], str] = {}
        self.hits = self.misses = 0

    def image_key(self, ref: ImageRef) -> str:
        """sha1 of the file's bytes (memoised by path, size and mtime), or of an in-memory image's pixels."""
        if isinstance(ref, Image.Image):
            h = hashlib.sha1(f"{ref.mode}{ref.size}".encode())
            h.update(ref.tobytes())
            return h.hexdigest()
        path = Path(ref)
        stat = path.stat()
        memo = (str(path), stat.st_size, stat.st_mtime_ns)
        if memo not in self._file_keys:
            self._file_keys[memo] = hashlib.sha1(path.read_bytes()).hexdigest()
        return self._file_keys[memo]

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def _remember(self, key: str, value: torch.Tensor) -> None:
        self.memory[key] = value
        self.memory.move_to_end(key)
        while len(self.memory) > self.memory_items:
            self.memory.popitem(last=False)

    def _lookup(self, key: str) -> torch.Tensor | None:
        if key in self.memory:
            self.memory.move_to_end(key)
            return self.memory[key]
        path = self._path(key)
        if path.exists():
            value = load_file(path)["features"]
            self._remember(key, value)
            return value
        return None

    def _store(self, key: str, value: torch.Tensor) -> torch.Tensor:
        value = value.detach().to("cpu", self.dtype).contiguous()
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unique temp name then rename: concurrent processes may write the same key; either copy is fine.
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        save_file({"features": value}, tmp)
        os.replace(tmp, path)
        self._remember(key, value)
        return value

    def get(self, refs: Sequence[ImageRef], compute: Callable[[list[ImageRef]], torch.Tensor],
            device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        keys = [self.image_key(r) for r in refs]
        found = {k: v for k in dict.fromkeys(keys) if (v := self._lookup(k)) is not None}
        todo = [k for k in dict.fromkeys(keys) if k not in found]
        self.hits += len(keys) - sum(k in todo for k in keys)
        self.misses += len(todo)
        if todo:
            first = {k: refs[keys.index(k)] for k in todo}
            with torch.no_grad():
                computed = compute(list(first.values()))
            for k, value in zip(todo, computed, strict=True):
                found[k] = self._store(k, value)
        return torch.stack([found[k] for k in keys]).to(device=device, dtype=dtype)
