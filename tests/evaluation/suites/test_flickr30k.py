"""Flickr30K from Karpathy's split file (its test images), asked with each paper's caption prompt and scored by
coco-caption (PTB tokenizer, BLEU, CIDEr-D), the numbers computed here by hand."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from vlit.cli import main as cli
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for
from vlit.evaluation.suites.captions import karpathy_samples

SAMPLES = Path("/work/shared/eval-samples/flickr30k/dataset_flickr30k-schema-derived.json")
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="coco-caption's PTB tokenizer runs on Java")


def _image(imgid: int, filename: str, split: str, raws: list[str]) -> dict:
    sentences = [{"tokens": r.lower().rstrip(".!").split(), "raw": r, "imgid": imgid, "sentid": 10 * imgid + j}
                 for j, r in enumerate(raws)]
    return {"sentids": [s["sentid"] for s in sentences], "imgid": imgid, "sentences": sentences, "split": split,
            "filename": filename}


@pytest.fixture
def flickr(tmp_path: Path) -> Path:
    folder = tmp_path / "flickr30k"
    folder.mkdir()
    images = [_image(0, "1000.jpg", "train", ["Two men."]), _image(1, "1001.jpg", "test", ["A dog."]),
              _image(2, "1002.jpg", "test", ["A cat!"])]
    (folder / "dataset_flickr30k.json").write_text(json.dumps({"images": images, "dataset": "flickr30k"}))
    return folder


@pytest.mark.parametrize(("style", "prompt"), [("llava15", "Provide a one-sentence caption for the provided image."),
                                               ("instructblip", "A short image description:"),
                                               ("minigptv2", "[caption] please describe this image?")])
def test_the_test_split_is_asked_with_each_papers_caption_prompt(flickr, style, prompt):
    samples = load_samples(resolve_benchmarks([f"flickr30k={flickr}"])[0], style)
    assert [s.id for s in samples] == ["1001", "1002"] and samples[0].references == ["A dog."]
    assert [s.conversation.turns[0].content for s in samples] == [f"<image>\n{prompt}"] * 2
    assert samples[1].conversation.images[0].endswith("1002.jpg")


@needs_java
def test_scored_as_coco_caption(flickr, tmp_path, capsys):
    samples = load_samples(resolve_benchmarks([f"flickr30k={flickr}"])[0], "llava15")
    scores = metric_for("caption")(["a dog", "a dog"], samples)
    # PTB: "A dog." -> "a dog", "A cat!" -> "a cat". CIDEr-D over 2 images: "a" is in both (idf log 2 - log 2 = 0),
    # "dog" and "a dog" in one (idf log 2). Image 1: cosine 1 for 1- and 2-grams, 0 for 3-, 4-grams, the same
    # length: mean 0.5 x 10 = 5. Image 2: "dog" vs "cat": 0. Corpus: 2.5.
    assert scores["cider"] == pytest.approx(2.5)
    # BLEU: 3 of 4 unigrams match, 1 of 2 bigrams, lengths equal: BLEU-1 0.75, BLEU-2 sqrt(0.75 * 0.5).
    assert scores["bleu1"] == pytest.approx(0.75) and scores["bleu2"] == pytest.approx(math.sqrt(0.375))
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"question_id": q, "text": "a dog"}) + "\n" for q in ("1001", "1002")))
    assert cli(["eval", "--benchmarks", f"flickr30k={flickr}", "--predictions", f"flickr30k={answers}",
                "--out", str(tmp_path / "out")]) == 0
    assert "| answers | 250.0 |" in capsys.readouterr().out


def test_bad_rows_are_named(flickr):
    path = flickr / "dataset_flickr30k.json"
    data = json.loads(path.read_text())
    del data["images"][2]["sentences"][0]["raw"]
    path.write_text(json.dumps(data))
    with pytest.raises(VlitError, match=r"dataset_flickr30k\.json: images\[2\]\.sentences\[0\]\.raw: missing"):
        load_samples(resolve_benchmarks([f"flickr30k={flickr}"])[0], "llava15")
    path.write_text(json.dumps({"images": [], "dataset": "coco"}))
    with pytest.raises(VlitError, match="dataset: 'coco', not flickr30k"):
        load_samples(resolve_benchmarks([f"flickr30k={flickr}"])[0], "llava15")


def test_the_real_karpathy_entry_loads():
    """The sample holds one train image (no test split: the folder is named, with the splits it has); the entry
    itself reads as a test image would."""
    with pytest.raises(VlitError, match=r"no image of split 'test' \(splits in the file: train\)"):
        load_samples(resolve_benchmarks([f"flickr30k={SAMPLES.parent}"])[0], "llava15")
    (sample,) = karpathy_samples(SAMPLES, "train", None, "instructblip")
    assert sample.id == "1000092795" and len(sample.references) == 3
    assert sample.references[0] == "Two men in green shirts standing in a yard."
