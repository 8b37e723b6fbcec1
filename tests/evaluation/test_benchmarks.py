"""`vlit.evaluation.benchmarks`: what `--benchmarks` names, resolved into configs; one reader per format."""

from __future__ import annotations

import json

import pytest

from vlit.config import ConfigError
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import READERS, BenchmarkConfig, load_samples, resolve_benchmarks


def test_a_benchmark_names_a_reader_or_one_of_the_papers_benchmarks():
    from vlit.evaluation.suites import SUITES

    assert not set(READERS) & set(SUITES)
    with pytest.raises(ConfigError, match="'nope' is not a benchmark vlit reads"):
        BenchmarkConfig(name="x", format="nope", path="x.json")


def _questions(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_question_file_is_told_from_a_vlit_file_by_its_rows(tmp_path):
    questions = tmp_path / "pope.json"  # JSON Lines under a .json name, as POPE ships
    _questions(questions, [{"question_id": i, "image": "a.png", "text": "Is there a cat?", "label": "yes"}
                           for i in (1, 2)])
    vlit_rows = tmp_path / "scenes" / "test.json"
    vlit_rows.parent.mkdir()
    vlit_rows.write_text(json.dumps([{"id": "r", "conversations": [{"from": "human", "value": "Q"},
                                                                   {"from": "gpt", "value": "A"}]}]))
    benches = resolve_benchmarks([str(questions), str(vlit_rows)], max_samples=3)
    assert [(b.name, b.format, b.max_samples) for b in benches] == [("pope", "llava_questions", 3),
                                                                    ("scenes", "vlit", 3)]


def test_yaml_paths_are_relative_to_the_yaml_and_names_unique(tmp_path):
    questions = tmp_path / "q.jsonl"
    _questions(questions, [{"question_id": "a", "image": "img/1.png", "text": "What is it?", "answer": "cat"}])
    listing = tmp_path / "benches.yaml"
    listing.write_text("benchmarks:\n  - {name: mine, format: llava_questions, path: q.jsonl, image_root: .,\n"
                       "     split: held_in, max_samples: 1}\n")
    (bench,) = resolve_benchmarks([str(listing)], max_samples=5)
    assert bench.path == str(questions) and bench.image_root == str(tmp_path) and bench.max_samples == 1
    (sample,) = load_samples(bench, "llava15")
    assert sample.references == ["cat"] and sample.conversation.images == [str(tmp_path / "img" / "1.png")]
    with pytest.raises(VlitError, match="name 'mine' appears more than once"):
        resolve_benchmarks([str(listing), str(listing)])
    listing.write_text("benchmarks:\n  - {name: x, format: pdf, path: q.jsonl}\n")
    with pytest.raises(VlitError, match=r"benches.yaml: benchmarks\[0\]\.format: 'pdf' is not a benchmark vlit reads"):
        resolve_benchmarks([str(listing)])
    with pytest.raises(VlitError, match="a benchmark YAML, a quickstart folder or a dataset file"):
        resolve_benchmarks([str(tmp_path / "notes.txt")])


def test_the_papers_benchmarks_refuse_an_ablation_style_by_name(tmp_path):
    # A suite's prompts are written for the papers' three styles; an ablation's style is refused before reading.
    bench = BenchmarkConfig(name="pope", format="pope", path=str(tmp_path))
    with pytest.raises(VlitError, match="not 'minigptv2_untagged'"):
        load_samples(bench, "minigptv2_untagged")
