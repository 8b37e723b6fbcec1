"""NoCaps validation captions (COCO shape, a domain per image), scored by coco-caption overall and per domain
(each domain a corpus of its own), SPICE only where it can run; the numbers computed here by hand."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from vlit.cli import main as cli
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.captioning import spice_unavailable
from vlit.evaluation.metrics import metric_for

SAMPLES = "/work/shared/eval-samples/nocaps"
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="coco-caption's PTB tokenizer runs on Java")
DOMAINS = ["in-domain", "in-domain", "near-domain", "out-domain"]
REFS = ["A dog.", "A cat.", "A bird.", "A fish."]
ANSWERS = ["a dog", "a dog", "a bird", "a fish"]


@pytest.fixture
def nocaps(tmp_path: Path) -> Path:
    folder = tmp_path / "nocaps"
    folder.mkdir()
    images = [{"id": i, "open_images_id": f"{i:016x}", "file_name": f"{i:016x}.jpg", "height": 10, "width": 10,
               "domain": d} for i, d in enumerate(DOMAINS)]
    annotations = [{"image_id": i, "id": i, "caption": c} for i, c in enumerate(REFS)]
    (folder / "nocaps_val_4500_captions.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    return folder


def test_reads_domains_and_asks_per_style(nocaps):
    samples = load_samples(resolve_benchmarks([f"nocaps={nocaps}"])[0], "instructblip")
    assert [s.meta["domain"] for s in samples] == DOMAINS and [s.id for s in samples] == ["0", "1", "2", "3"]
    assert samples[0].conversation.turns[0].content == "<image>\nA short image description:"
    assert samples[3].conversation.images[0].endswith("0000000000000003.jpg")


@needs_java
def test_scored_overall_and_per_domain(nocaps, tmp_path, capsys, caplog):
    samples = load_samples(resolve_benchmarks([f"nocaps={nocaps}"])[0], "llava15")
    with caplog.at_level(logging.WARNING):
        scores = metric_for("nocaps")(ANSWERS, samples)
    # Overall, 4 images: "a" in all (idf 0); each noun and "a <noun>" in one (idf log 4). Images 0, 2, 3 copy
    # their reference: cosine 1 for 1- and 2-grams -> (1 + 1 + 0 + 0) / 4 x 10 = 5; image 1 says dog for cat: 0.
    # CIDEr-D = 15 / 4. In-domain alone (images 0, 1): 5 and 0 -> 2.5. Near- and out-domain hold one image
    # each: log(1 image) - log(df 1) = 0 weighs every n-gram, so 0 (the overall idf would have given 5).
    assert scores["cider"] == pytest.approx(3.75) and scores["in-domain/cider"] == pytest.approx(2.5)
    assert scores["near-domain/cider"] == 0.0 and scores["out-domain/cider"] == 0.0
    if spice_unavailable() is not None:  # no Stanford CoreNLP jars here: no SPICE number at all, and it says so
        assert not any(k.endswith("spice") for k in scores)
        assert "SPICE not computed" in caplog.text
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"id": str(i), "prediction": a}) + "\n" for i, a in enumerate(ANSWERS)))
    assert cli(["eval", "--benchmarks", f"nocaps={nocaps}", "--predictions", f"nocaps={answers}",
                "--out", str(tmp_path / "out")]) == 0
    assert "| answers | 375.0 |" in capsys.readouterr().out
    submission = json.loads((tmp_path / "out" / "answers" / "nocaps_val_evalai.json").read_text())
    assert submission[1] == {"image_id": 1, "caption": "a dog"}


def test_bad_rows_are_named(nocaps):
    path = nocaps / "nocaps_val_4500_captions.json"
    data = json.loads(path.read_text())
    data["images"][2]["domain"] = "neardomain"
    path.write_text(json.dumps(data))
    with pytest.raises(VlitError, match=r"nocaps_val_4500_captions\.json: images\[2\]\.domain: 'neardomain'"):
        load_samples(resolve_benchmarks([f"nocaps={nocaps}"])[0], "llava15")
    data["images"][2]["domain"] = "near-domain"
    data["annotations"].append({"image_id": 9, "id": 9, "caption": "x"})
    path.write_text(json.dumps(data))
    with pytest.raises(VlitError, match="caption.s. of image_id 9, which is not in images"):
        load_samples(resolve_benchmarks([f"nocaps={nocaps}"])[0], "llava15")


@needs_java
def test_the_real_documented_example_loads_and_scores():
    """nocaps.org's documented example: one image, no domain (the example omits it), one caption. Its own
    caption back: BLEU-4 1; CIDEr-D 0, as for any one-image corpus (idf log 1 - log 1 = 0)."""
    (sample,) = load_samples(resolve_benchmarks([f"nocaps={SAMPLES}"])[0], "minigptv2")
    assert sample.references == ["A baby is standing in front of a house."] and "domain" not in sample.meta
    scores = metric_for("nocaps")(["A baby is standing in front of a house."], [sample])
    assert scores["bleu4"] == pytest.approx(1.0, abs=1e-6) and scores["cider"] == 0.0
    assert not any("/" in k for k in scores)
