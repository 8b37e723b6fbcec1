"""Vision features computed once per image and reused by every later turn of a conversation.

A chat re-sends the whole conversation each turn; without this cache the vision encoder would re-encode the
same image every turn. Only the encoder's output is cached: the connector runs again each turn, because the
Q-Former reads the instruction, which may change.

Images are keyed by identity, not by Python object: a file by its resolved path, modification time and size
(an edited file is encoded again), an in-memory image by a hash of its mode, size and pixel bytes.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path

import torch
from PIL import Image

from vlit.data.conversation import ImageRef
from vlit.data.loading.processor import Processor
from vlit.data.reading.images import resolve_image_path
from vlit.models.vlm import VisionLanguageModel


def image_key(ref: ImageRef, root: Path | None = None) -> Hashable:
    """The identity of an image reference: same key, same pixels."""
    if isinstance(ref, Image.Image):
        digest = hashlib.blake2b(ref.tobytes(), digest_size=16).hexdigest()
        return ("image", ref.mode, ref.size, digest)
    path = resolve_image_path(ref, root)
    try:
        stat = path.stat()
    except OSError:
        # Loading will fail with a clear ImageError naming the file; the key only needs to be distinct.
        return ("path", str(path), None, None)
    return ("path", str(path.resolve()), stat.st_mtime_ns, stat.st_size)


class FeatureCache:
    """An LRU of vision-encoder outputs, float[N, Dv] per image, keyed by `image_key`."""

    def __init__(self, model: VisionLanguageModel, processor: Processor, capacity: int = 32):
        self.model = model
        self.processor = processor
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._store: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()  # a server may answer several conversations from threads

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        with self._lock:
            self._store.clear()

    @torch.no_grad()
    def features(self, images: list[ImageRef]) -> torch.Tensor | None:
        """float[I, N, Dv] for `images` in order (None for no images); encodes only the ones not cached,
        all in one batch."""
        if not images:
            return None
        with self._lock:
            return self._features(images)

    def _features(self, images: list[ImageRef]) -> torch.Tensor:
        keys = [image_key(ref, self.processor.image_root) for ref in images]
        missing = {}
        for key, ref in zip(keys, images, strict=True):
            if key in self._store:
                self._store.move_to_end(key)
            elif key not in missing:
                missing[key] = ref
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        found = {key: self._store[key] for key in keys if key in self._store}
        if missing:
            param = next(self.model.vision.parameters())
            pixels = self.processor.pixels(list(missing.values())).to(param.device, param.dtype)
            for key, feats in zip(missing, self.model.image_features(pixels), strict=True):
                found[key] = feats
                self._remember(key, feats)
        return torch.stack([found[key] for key in keys])

    def _remember(self, key: Hashable, feats: torch.Tensor) -> None:
        if self.capacity <= 0:
            return
        self._store[key] = feats
        self._store.move_to_end(key)
        while len(self._store) > self.capacity:
            self._store.popitem(last=False)
