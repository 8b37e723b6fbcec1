"""VSR and HatefulMemes as MiniGPT-v2's eval_vqa.py asks and scores them (exact true/false; yes/no accuracy), and
HatefulMemes' ROC-AUC as InstructBLIP reports it, from ranked yes/no scores the runner keeps; by hand on fixtures
written here, and the ranked run end to end on the debug model."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from vlit.cli import main as cli
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for
from vlit.evaluation.runner import run_benchmark
from vlit.inference.pipeline import Pipeline

SAMPLES = "/work/shared/eval-samples"


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def vsr(tmp_path):
    data = tmp_path / "visual-spatial-reasoning" / "data"
    (data / "images").mkdir(parents=True)
    rows = [{"image": "1.jpg", "caption": "The cat is on the bed.", "label": 1, "relation": "on"},
            {"image": "1.jpg", "caption": "The cat is under the bed.", "label": 0, "relation": "under"},
            {"image": "2.jpg", "caption": "The dog is left of the car.", "label": 0, "relation": "left of"},
            {"image": "3.jpg", "caption": "The cup is on the table.", "label": 1, "relation": "on"}]
    return _jsonl(data / "splits" / "zeroshot" / "test.jsonl", rows).parent


@pytest.fixture
def memes(tmp_path):
    folder = tmp_path / "hateful_memes"
    (folder / "img").mkdir(parents=True)
    rows = []
    for i, (label, colour) in enumerate([(1, "red"), (0, "green"), (0, "blue"), (0, "white")]):
        Image.new("RGB", (16, 16), colour).save(folder / "img" / f"0{i}.png")
        rows.append({"id": 100 + i, "img": f"img/0{i}.png", "label": label, "text": f"meme text {i}"})
    _jsonl(folder / "dev.jsonl", rows)
    return folder


def test_vsr_asks_true_or_false_and_scores_minigptv2s_exact_match(vsr):
    bench = resolve_benchmarks([f"vsr={vsr}"])[0]
    samples = load_samples(bench, "minigptv2")
    assert samples[0].conversation.turns[0].content == (
        "<image>\n[vqa] Based on the image, is this statement true or false? The cat is on the bed.")
    # The images folder is found where the VSR repository keeps it (data/images, above data/splits/zeroshot).
    assert samples[0].conversation.images == [f"{vsr.parents[1]}/images/1.jpg"]
    assert [s.references[0] for s in samples] == ["true", "false", "false", "true"]
    # "True" lower-cases to the label; "yes" is not "false"; a trailing space is not stripped.
    scores = metric_for("vsr")(["True", "false", "yes", "true "], samples)
    assert scores == {"accuracy": 0.5}
    assert bench.answer_mode("instructblip") == "rank" and bench.answer_mode("minigptv2") == "generate"


def test_hateful_memes_accuracy_and_auc_by_hand(memes):
    samples = load_samples(resolve_benchmarks([f"hateful_memes={memes}"])[0], "minigptv2")
    assert samples[0].conversation.turns[0].content == (
        '<image>\n[vqa] This is an image with: "meme text 0" written on it. Is it hateful? Answer:')
    assert samples[0].conversation.images == [f"{memes}/img/00.png"]
    # labels 1, 0, 0, 0. MiniGPT-v2: "Yes" -> 1 right; "no." unread, wrong; " NO " -> 0 right; "yes" -> 1 wrong.
    scores = metric_for("hateful_memes")(["Yes", "no.", " NO ", "yes"], samples)
    assert scores["accuracy"] == 0.5 and scores["unparsed"] == 0.25 and scores["auc_from_scores"] == 0.0
    # AUC of the answers (1, 0, 0, 1): the positive beats two negatives and ties one -> 2.5 / 3.
    assert scores["roc_auc"] == pytest.approx(2.5 / 3)
    # Ranked: log P(yes) - log P(no) per meme orders them: the positive is above every negative -> 1.0.
    for sample, (yes, no) in zip(samples, [(-0.1, -2.0), (-1.0, -0.5), (-0.9, -1.0), (-0.2, -0.4)], strict=True):
        sample.meta["scores"] = {"yes": yes, "no": no}
    scores = metric_for("hateful_memes")(["yes", "no", "yes", "yes"], samples)
    assert scores["roc_auc"] == 1.0 and scores["auc_from_scores"] == 1.0 and scores["accuracy"] == 0.5


def test_bad_rows_are_named(memes, vsr):
    _jsonl(memes / "dev.jsonl", [{"id": 1, "img": "img/00.png", "label": 2, "text": "t"}])
    with pytest.raises(VlitError, match=r"dev\.jsonl:1\.label: 2 is not 0 or 1"):
        load_samples(resolve_benchmarks([f"hateful_memes={memes}"])[0], "llava15")
    _jsonl(vsr / "test.jsonl", [{"image": "1.jpg", "label": 1}])
    with pytest.raises(VlitError, match=r"test\.jsonl:1\.caption: missing"):
        load_samples(resolve_benchmarks([f"vsr={vsr}"])[0], "llava15")


def test_the_real_rows_load():
    samples = load_samples(resolve_benchmarks([f"vsr={SAMPLES}/vsr/zeroshot"])[0], "minigptv2")
    assert [s.references[0] for s in samples] == ["true", "false", "false", "true", "false", "false"]
    assert samples[2].conversation.turns[0].content.endswith("true or false? The handbag is right of the cat.")
    (meme,) = load_samples(resolve_benchmarks([f"hateful_memes={SAMPLES}/hateful-memes"])[0], "instructblip")
    assert meme.id == "8291" and meme.references == ["yes"]
    assert meme.conversation.images == [f"{SAMPLES}/hateful-memes/img/08291.png"]
    assert meme.conversation.turns[0].content == (
        '<image>\nThis is an image with: "white people is this a shooting range" written on it. Is it hateful? '
        "Answer:")


def test_a_ranked_run_keeps_the_scores_for_the_auc(checkpoint, memes, tmp_path, capsys):
    pipe = Pipeline.from_pretrained(checkpoint)
    bench = resolve_benchmarks([f"hateful_memes={memes}"])[0]
    (result,) = run_benchmark(pipe, "debug", bench, tmp_path, style="instructblip")  # InstructBLIP ranks
    lines = [json.loads(line) for line in (tmp_path / "debug" / "hateful_memes.predictions.jsonl").open()]
    assert all(r["prediction"] in ("yes", "no") and set(r["scores"]) == {"yes", "no"} for r in lines)
    assert result.metrics["auc_from_scores"] == 1.0
    expected = metric_for("hateful_memes")  # the AUC of the kept scores, recomputed
    samples = load_samples(bench, "instructblip")
    for sample, row in zip(samples, lines, strict=True):
        sample.meta["scores"] = row["scores"]
    assert result.metrics == expected([r["prediction"] for r in lines], samples)
    # A second run finds every answer done and reads the scores back with them.
    (resumed,) = run_benchmark(pipe, "debug", bench, tmp_path, style="instructblip")
    assert resumed.metrics == result.metrics
    # vlit's own predictions file, scored without a model, gives the same numbers (its scores are read back).
    assert cli(["eval", "--benchmarks", f"hateful_memes={memes}", "--predictions",
                f"hateful_memes={tmp_path / 'debug' / 'hateful_memes.predictions.jsonl'}",
                "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "hateful_memes.predictions" / "hateful_memes.metrics.json").read_text())
    assert again["hateful_memes"]["roc_auc"] == result.metrics["roc_auc"]
