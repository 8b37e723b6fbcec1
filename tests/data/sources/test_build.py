from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlit.data.conversation import Conversation, Turn
from vlit.data.prompting.styles import restyle
from vlit.data.prompting.templates import TaskRecord
from vlit.data.sources.build import QUICKSTART, build_quickstart, held_out_categories, scaled
from vlit.data.sources.fashion_mnist import FASHION_MNIST_ROOT
from vlit.errors import VlitError


def _write_idx(root: Path, prefix: str, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    head = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape)
    (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + images.tobytes()))
    head = (2049).to_bytes(4, "big") + count.to_bytes(4, "big")
    (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(head + labels.tobytes()))


@pytest.fixture(scope="module")
def fmnist(tmp_path_factory) -> Path:
    """A small stand-in for the Debian package, so the build test runs wherever the package is missing."""
    root = tmp_path_factory.mktemp("fmnist")
    _write_idx(root, "train", 120, 0)
    _write_idx(root, "t10k", 60, 1)
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory, fmnist) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("qs") / "quickstart"
    return out, build_quickstart(out, seed=3, scale=0.05, fashion_mnist_root=fmnist, progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_builds_with_one_seed_are_byte_identical(built, fmnist, tmp_path):
    out, _ = built
    again = build_quickstart(tmp_path / "again", seed=3, scale=0.05, fashion_mnist_root=fmnist, progress=False)
    assert _files(out) == _files(tmp_path / "again")
    assert again == json.loads((out / "manifest.json").read_text())
    other = build_quickstart(tmp_path / "other", seed=4, scale=0.05, fashion_mnist_root=fmnist, progress=False)
    assert _files(tmp_path / "other") != _files(out) and other["seed"] == 4


def test_manifest_lists_every_dataset_with_counts_files_and_licence(built):
    out, manifest = built
    assert [d["name"] for d in manifest["datasets"]] == [s.name for s in QUICKSTART]
    for entry, spec in zip(manifest["datasets"], QUICKSTART, strict=True):
        assert entry["counts"] == {"train": scaled(spec.train, 0.05), "test": scaled(spec.test, 0.05)}
        assert entry["licence"] == {"fashion_mnist": "MIT", "scenes": "CC0-1.0"}[entry["source"]]
        assert entry["held"] == ("held_out" if spec.held_out else "held_in")
        for split, path in entry["files"].items():
            rows = json.loads((out / path).read_text(encoding="utf-8"))
            assert len(rows) == entry["counts"][split]
        assert set(entry["files"]) == {s for s, n in entry["counts"].items() if n}


def test_held_out_split_follows_instructblip(built):
    _, manifest = built
    entries = manifest["datasets"]
    held_in = {d["category"] for d in entries if d["held"] == "held_in"}
    held_out = [d for d in entries if d["held"] == "held_out"]
    assert all(d["counts"]["train"] == 0 for d in held_out)  # never trained
    unseen = {d["category"] for d in held_out} - held_in
    assert unseen and set(manifest["held_out"]["categories"]) == unseen  # a whole category held out
    assert any(d["category"] in held_in for d in held_out)  # and a dataset whose category is trained
    assert held_out_categories(QUICKSTART) == ["visual reasoning"]
    assert "InstructBLIP" in manifest["held_out"]["policy"]


def test_rows_are_llava_conversations_with_task_records(built):
    out, manifest = built
    for entry in manifest["datasets"]:
        for path in entry["files"].values():
            text = (out / path).read_text(encoding="utf-8")
            assert text.endswith("]\n") and text.startswith("[\n  {")
            for row in json.loads(text):
                assert set(row) == {"id", "image", "conversations", "dataset", "task"}
                assert row["dataset"] == entry["name"]
                task = TaskRecord.from_dict(row["task"])
                assert task.type == entry["task"] and task.category == entry["category"]
                with Image.open(out / path.rsplit("/", 1)[0] / row["image"]) as image:
                    image.load()
                    assert task.image_size in (None, image.size)
                turns = [Turn({"human": "user", "gpt": "assistant"}[c["from"]], c["value"])
                         for c in row["conversations"]]
                conversation = Conversation(turns, [row["image"]], row["id"], {"task": row["task"]})
                conversation.check()
                assert turns[0].content.startswith("<image>\n")
                restyle(conversation, "minigptv2", random.Random(0)).check()


def test_ids_are_unique_and_name_dataset_and_split(built):
    out, manifest = built
    ids = [row["id"] for d in manifest["datasets"] for p in d["files"].values()
           for row in json.loads((out / p).read_text())]
    assert len(ids) == len(set(ids))
    assert "scenes_refer-test-00000" in ids


def test_rebuilding_over_an_earlier_build_replaces_it(fmnist, tmp_path):
    out = tmp_path / "qs"
    build_quickstart(out, scale=0.1, fashion_mnist_root=fmnist, progress=False)
    build_quickstart(out, scale=0.05, fashion_mnist_root=fmnist, progress=False)
    fresh = tmp_path / "fresh"
    build_quickstart(fresh, scale=0.05, fashion_mnist_root=fmnist, progress=False)
    assert _files(out) == _files(fresh)  # no stale images from the larger build


def test_refuses_a_folder_with_other_files(fmnist, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(VlitError, match="not empty"):
        build_quickstart(tmp_path, scale=0.05, fashion_mnist_root=fmnist, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_missing_fashion_mnist_gives_the_apt_hint(tmp_path):
    with pytest.raises(VlitError, match="apt-get install dataset-fashion-mnist"):
        build_quickstart(tmp_path / "qs", scale=0.05, fashion_mnist_root=tmp_path / "none", progress=False)


@pytest.mark.slow
@pytest.mark.skipif(not (FASHION_MNIST_ROOT / "train-labels-idx1-ubyte.gz").is_file(),
                    reason="apt-get install dataset-fashion-mnist")
def test_full_scale_build_has_a_few_thousand_training_rows(tmp_path):
    manifest = build_quickstart(tmp_path / "qs", progress=False)
    train = sum(d["counts"]["train"] for d in manifest["datasets"] if d["held"] == "held_in")
    assert 2000 <= train <= 4000
    assert all(100 <= d["counts"]["test"] <= 300 for d in manifest["datasets"])
