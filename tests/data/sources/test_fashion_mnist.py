from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import pytest

from vlit.data.sources import fashion_mnist as fm
from vlit.errors import VlitError

REAL = fm.FASHION_MNIST_ROOT / "t10k-labels-idx1-ubyte.gz"
needs_real = pytest.mark.skipif(not REAL.is_file(), reason="apt-get install dataset-fashion-mnist")


def write_idx(root: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """A Fashion-MNIST-shaped IDX pair: big-endian magic + dims header, then uint8 data, gzipped."""
    root.mkdir(parents=True, exist_ok=True)
    head = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape)
    (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + images.astype(np.uint8).tobytes()))
    head = (2049).to_bytes(4, "big") + len(labels).to_bytes(4, "big")
    (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(head + labels.astype(np.uint8).tobytes()))


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 10
    # Image i is filled with the value i, so an example's pixels tell which index (and label) it came from.
    images = np.stack([np.full((28, 28), i, dtype=np.uint8) for i in range(40)])
    write_idx(tmp_path / "fm", "train", images, labels)
    write_idx(tmp_path / "fm", "t10k", images[:20], rng.permutation(labels[:20]))
    return tmp_path / "fm"


def test_reads_idx_header_and_data(fake_root):
    images, labels = fm.load_split("train", fake_root)
    assert images.shape == (40, 28, 28) and images.dtype == np.uint8
    assert images[7, 3, 3] == 7 and labels.tolist() == [i % 10 for i in range(40)]
    assert fm.load_split("test", fake_root)[0].shape == (20, 28, 28)


def test_missing_files_name_the_file_and_the_apt_package(tmp_path):
    with pytest.raises(VlitError, match=r"train-images-idx3-ubyte\.gz.*apt-get install dataset-fashion-mnist"):
        fm.load_split("train", tmp_path)


def test_corrupt_files_are_rejected(fake_root, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("train-labels-idx1-ubyte.gz",):
        (bad / name).write_bytes((fake_root / name).read_bytes())
    (bad / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(20)))
    with pytest.raises(VlitError, match="magic number 2051"):
        fm.load_split("train", bad)
    (bad / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(VlitError, match="gzip"):
        fm.load_split("train", bad)


@pytest.mark.parametrize("kind", fm.TASKS)
def test_examples_answer_from_the_true_label(fake_root, kind):
    examples = fm.examples(kind, "train", 30, random.Random(0), root=fake_root)
    assert len(examples) == 30
    indices = [int(np.asarray(e.image)[0, 0]) for e in examples]
    assert len(set(indices)) == 30  # distinct images
    for index, example in zip(indices, examples, strict=True):
        name, task = fm.NAMES[index % 10], example.task
        assert example.image.size == (28, 28) and example.image.mode == "L"
        if kind == "classification":
            assert task.answer == name and task.options == fm.NAMES
        elif kind == "multiple_choice":
            assert len(task.options) == 4 == len(set(task.options)) and task.answer == name
        elif kind == "yes_no":
            asked = task.question.removeprefix("Is this ").removesuffix("?").split(" ", 1)[1]
            assert task.answers == (("yes",) if asked == name else ("no",))
        else:
            assert all(name in caption for caption in task.answers)


def test_yes_no_and_multiple_choice_are_balanced(fake_root):
    yes = [e.task.answer for e in fm.examples("yes_no", "train", 40, random.Random(1), root=fake_root)]
    assert 10 <= yes.count("yes") <= 30
    positions = [e.task.answer_index for e in fm.examples("multiple_choice", "train", 40, random.Random(1),
                                                          root=fake_root)]
    assert set(positions) == {0, 1, 2, 3}


def test_same_rng_same_examples_and_too_many_is_an_error(fake_root):
    a = fm.examples("caption", "test", 5, random.Random(3), root=fake_root)
    b = fm.examples("caption", "test", 5, random.Random(3), root=fake_root)
    assert [e.task for e in a] == [e.task for e in b]
    with pytest.raises(VlitError, match="exceeds the 20"):
        fm.examples("caption", "test", 21, random.Random(0), root=fake_root)
    with pytest.raises(VlitError, match="not 'detection'"):
        fm.examples("detection", "test", 1, random.Random(0), root=fake_root)


@needs_real
def test_the_debian_package_has_the_real_dataset():
    train_images, train_labels = fm.load_split("train")
    test_images, test_labels = fm.load_split("test")
    assert train_images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert np.bincount(test_labels).tolist() == [1000] * 10
    assert 60 < train_images.mean() < 90  # white garments on black, not noise or zeros
