"""The benchmark runner on the debug model: generate and rank modes, resuming after an interruption, the
held-in / held-out table, and `vlit eval` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlit.cli import main
from vlit.data.prompting.styles import LETTERS
from vlit.evaluation.benchmarks import quickstart_benchmarks
from vlit.evaluation.report import markdown_table, write_report
from vlit.evaluation.runner import evaluate, run_benchmark
from vlit.inference.pipeline import Pipeline


@pytest.fixture(scope="module")
def quickstart_data(tmp_path_factory) -> Path:
    from vlit.data.sources.build import build_quickstart
    from vlit.data.sources.fashion_mnist import FASHION_MNIST_ROOT

    if not FASHION_MNIST_ROOT.exists():
        pytest.skip("Debian package dataset-fashion-mnist not installed (make test installs it)")
    out = tmp_path_factory.mktemp("eval") / "data"
    build_quickstart(out, seed=0, scale=0.05, progress=False)
    return out


@pytest.fixture(scope="module")
def pipe(checkpoint) -> Pipeline:
    return Pipeline.from_pretrained(checkpoint)


def _bench(data: Path, name: str, **changes):
    (bench,) = quickstart_benchmarks(data, max_samples=4, names=[name])
    bench.max_new_tokens = 6
    for key, value in changes.items():
        setattr(bench, key, value)
    return bench


def _predictions(path: Path) -> dict[str, str]:
    return {row["id"]: row["prediction"] for row in map(json.loads, path.read_text().splitlines())}


def test_generate_mode_writes_predictions_and_metrics(pipe, quickstart_data, tmp_path):
    bench = _bench(quickstart_data, "fmnist_classification")
    (result,) = run_benchmark(pipe, "debug", bench, tmp_path, batch_size=3)
    assert (result.benchmark, result.split, result.task, result.count) == (
        "fmnist_classification", "held_in", "classification", 4)
    assert 0.0 <= result.primary <= 1.0
    preds = _predictions(tmp_path / "debug" / "fmnist_classification.predictions.jsonl")
    assert len(preds) == 4 and all(isinstance(p, str) for p in preds.values())
    metrics = json.loads((tmp_path / "debug" / "fmnist_classification.metrics.json").read_text())
    assert metrics["classification"]["count"] == 4
    assert metrics["classification"]["accuracy"] == result.primary


def test_rank_mode_answers_with_a_candidate(pipe, quickstart_data, tmp_path):
    bench = _bench(quickstart_data, "fmnist_classification", mode="rank")
    run_benchmark(pipe, "debug", bench, tmp_path)
    preds = _predictions(tmp_path / "debug" / "fmnist_classification.predictions.jsonl")
    from vlit.evaluation.benchmarks import load_samples

    candidates = {s.id: s.candidates for s in load_samples(bench, "llava15")}
    assert preds.keys() == candidates.keys()
    assert all(preds[i] in candidates[i] for i in preds)


@pytest.mark.parametrize("style", ["llava15", "instructblip"])
def test_rank_mode_answers_multiple_choice_with_an_option_letter(pipe, quickstart_data, tmp_path, style):
    bench = _bench(quickstart_data, "fmnist_multiple_choice", mode="rank")
    (result,) = run_benchmark(pipe, "debug", bench, tmp_path, style=style)
    preds = _predictions(tmp_path / "debug" / "fmnist_multiple_choice.predictions.jsonl")
    assert len(preds) == 4 and all(p in LETTERS for p in preds.values())
    assert result.task == "multiple_choice"


def test_an_interrupted_run_continues_and_scores_the_same(pipe, quickstart_data, tmp_path, monkeypatch):
    bench = _bench(quickstart_data, "scenes_counting", max_samples=6)
    (full,) = run_benchmark(pipe, "debug", bench, tmp_path / "full", batch_size=2)
    path = tmp_path / "full" / "debug" / "scenes_counting.predictions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    # What a kill leaves: two whole lines and one cut short.
    part = tmp_path / "part" / "debug" / "scenes_counting.predictions.jsonl"
    part.parent.mkdir(parents=True)
    part.write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    asked: list[int] = []
    generate = pipe.generate
    monkeypatch.setattr(pipe, "generate", lambda convs, **kw: asked.append(len(convs)) or generate(convs, **kw))
    (resumed,) = run_benchmark(pipe, "debug", bench, tmp_path / "part", batch_size=2)
    assert len(lines) > 3
    assert sum(asked) == len(lines) - 2  # only the samples without a whole line were answered again
    assert resumed.metrics == full.metrics
    assert _predictions(part) == _predictions(path)
    assert part.read_text() == path.read_text()


def test_several_checkpoints_give_one_table_with_held_in_and_held_out(pipe, quickstart_data, tmp_path):
    benches = [_bench(quickstart_data, "fmnist_classification", max_samples=2),
               _bench(quickstart_data, "fmnist_yes_no", max_samples=2)]
    results = evaluate({"a": pipe, "b": pipe}, benches, tmp_path)
    table = markdown_table(results)
    header, _, row_a, row_b = table.splitlines()
    assert header.index("held-in") < header.index("**held-in avg**") < header.index("held-out")
    assert "fmnist_yes_no (held-out, accuracy)" in header
    assert row_a.startswith("| a |") and row_b.startswith("| b |")
    assert row_a.split("|")[2:] == row_b.split("|")[2:]  # the same model scores the same
    path = write_report(results, tmp_path)
    assert path.read_text() == table
    assert len(json.loads((tmp_path / "results.json").read_text())) == 4


def test_a_row_scored_on_some_columns_has_no_average(pipe, quickstart_data, tmp_path):
    both = [_bench(quickstart_data, "fmnist_classification", max_samples=2),
            _bench(quickstart_data, "scenes_vqa", max_samples=2)]
    results = evaluate({"full": pipe}, both, tmp_path) + evaluate({"part": pipe}, both[:1], tmp_path)
    _, _, full, part = markdown_table(results).splitlines()
    full_cells, part_cells = ([cell.strip() for cell in row.split("|")[2:5]] for row in (full, part))
    assert full_cells[2].startswith("**")
    # The held-in average of the partial row: only one of its two columns was scored.
    assert part_cells == [full_cells[0], "–", "–"]


def test_vlit_eval_end_to_end(checkpoint, quickstart_data, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["eval", "--checkpoint", str(checkpoint), "--benchmarks", str(quickstart_data), "--out", str(out),
                 "--max-samples", "1"])
    assert code == 0
    table = (out / "results.md").read_text()
    assert "held-in avg" in table and "held-out avg" in table
    assert table in capsys.readouterr().out
    assert (out / "ckpt" / "scenes_spatial.predictions.jsonl").exists()


def test_vlit_eval_names_a_missing_benchmark(checkpoint, tmp_path, capsys):
    code = main(["eval", "--checkpoint", str(checkpoint), "--benchmarks", str(tmp_path / "nope.txt"),
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nope.txt" in err
