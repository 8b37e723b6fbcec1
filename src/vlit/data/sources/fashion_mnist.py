"""Fashion-MNIST (MIT licence, Zalando Research) as instruction data: 28x28 grey product photos, 10 classes.

The Debian package `dataset-fashion-mnist` installs the four IDX files offline. IDX: a big-endian header
(magic 2051 + count + rows + cols for images, 16 bytes; magic 2049 + count for labels, 8 bytes), then one
unsigned byte per pixel or label. Tasks made from the labels: classification over all ten classes, four-way
multiple choice, yes/no ("Is this a coat?"), and captions.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from vlit.data.prompting.templates import TaskRecord
from vlit.data.sources import Example, supported, with_article
from vlit.errors import VlitError

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
INSTALL_HINT = "install it with `sudo apt-get install dataset-fashion-mnist`"
CLASSES: tuple[str, ...] = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
NAMES: tuple[str, ...] = tuple(c.lower() for c in CLASSES)
"""Class names as answers are written: lower case, as VQA normalisation would leave them."""
SUBJECT = "fashion item"
Split = Literal["train", "test"]
_FILES = {"train": "train", "test": "t10k"}
_CAPTIONS = ("a grayscale photo of {item}", "{item} on a black background",
             "a small black and white picture of {item}", "a product photo of {item}",
             "a low resolution image of {item}")


def _read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    """uint8 array shaped by the IDX header: (N,) for labels, (N, rows, cols) for images."""
    if not path.is_file():
        raise VlitError(f"{path}: Fashion-MNIST file not found; {INSTALL_HINT}")
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as e:
        raise VlitError(f"{path}: not a readable gzip file: {e}") from e
    header = 4 + 4 * dims
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise VlitError(f"{path}: not an IDX file with magic number {magic}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    if len(raw) - header != int(np.prod(shape)):
        raise VlitError(f"{path}: header says {shape} but holds {len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@lru_cache(maxsize=4)
def load_split(split: Split, root: Path = FASHION_MNIST_ROOT) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8[N, 28, 28], labels uint8[N]) of the train (60,000) or test (10,000) split."""
    if split not in _FILES:
        raise VlitError(f"split: expected train or test, got {split!r}")
    prefix = Path(root) / _FILES[split]
    images = _read_idx(prefix.with_name(f"{prefix.name}-images-idx3-ubyte.gz"), 2051, 3)
    labels = _read_idx(prefix.with_name(f"{prefix.name}-labels-idx1-ubyte.gz"), 2049, 1)
    if len(images) != len(labels):
        raise VlitError(f"{root}: {len(images)} {split} images but {len(labels)} labels")
    if labels.size and labels.max() >= len(CLASSES):
        raise VlitError(f"{root}: {split} label {labels.max()} is not one of the {len(CLASSES)} classes")
    return images, labels


def _classification(label: int, rng: random.Random) -> TaskRecord:
    return TaskRecord("classification", answers=(NAMES[label],), question=f"What type of {SUBJECT} is this?",
                      options=NAMES, answer_index=label, subject=SUBJECT)


def _multiple_choice(label: int, rng: random.Random) -> TaskRecord:
    name = NAMES[label]
    options = [name, *rng.sample([n for n in NAMES if n != name], 3)]
    rng.shuffle(options)
    return TaskRecord("multiple_choice", answers=(name,), question=f"Which {SUBJECT} is shown in the image?",
                      options=tuple(options), answer_index=options.index(name), subject=SUBJECT)


def _yes_no(label: int, rng: random.Random) -> TaskRecord:
    name = NAMES[label]
    asked = name if rng.random() < 0.5 else rng.choice([n for n in NAMES if n != name])
    return TaskRecord("yes_no", answers=("yes" if asked == name else "no",),
                      question=f"Is this {with_article(asked)}?", subject=SUBJECT)


def _caption(label: int, rng: random.Random) -> TaskRecord:
    captions = [c.format(item=with_article(NAMES[label])) for c in rng.sample(_CAPTIONS, 3)]
    return TaskRecord("caption", answers=tuple(c[0].upper() + c[1:] + "." for c in captions))


MAKERS: dict[str, Callable[[int, random.Random], TaskRecord]] = {
    "classification": _classification, "multiple_choice": _multiple_choice, "yes_no": _yes_no,
    "caption": _caption,
}
"""Task type -> the record it makes of an image's label."""
TASKS = supported(MAKERS, "Fashion-MNIST")


def examples(kind: str, split: Split, count: int, rng: random.Random,
             root: Path = FASHION_MNIST_ROOT) -> list[Example]:
    """`count` examples of task type `kind` on distinct images drawn at random from `split`."""
    if kind not in TASKS:
        raise VlitError(f"task: Fashion-MNIST makes {', '.join(TASKS)} tasks, not {kind!r}")
    images, labels = load_split(split, Path(root))
    if count > len(images):
        raise VlitError(f"count: {count} exceeds the {len(images)} Fashion-MNIST {split} images")
    out = []
    for index in sorted(rng.sample(range(len(images)), count)):
        label = int(labels[index])
        out.append(Example(Image.fromarray(images[index]), MAKERS[kind](label, rng)))
    return out
