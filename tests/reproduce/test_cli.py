"""`vlit reproduce --quick` end to end on two claims that together take every path (benchmark scores, answer
lengths, held-in curves over checkpoints, an arm shared by claims), then again: the second run reuses every
finished arm-seed and trains nothing."""

from __future__ import annotations

import json

import pytest

from vlit.cli import main

pytestmark = pytest.mark.slow

VERDICTS = {"reproduced", "not reproduced", "inconclusive at this budget"}


def test_quick_runs_end_to_end_and_reuses_finished_arms(tmp_path, capsys):
    out = tmp_path / "rep"
    args = ["reproduce", "balanced-sampling", "response-format", "--quick", "--seeds", "1", "--out", str(out)]
    assert main(args) == 0
    report = (out / "report.md").read_text()
    assert "Verdict rule" in report and report in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert [r["claim"] for r in results] == ["balanced-sampling", "response-format"]
    for result in results:
        assert result["verdict"] in VERDICTS
        assert (out / f"{result['claim']}.png").read_bytes().startswith(b"\x89PNG")
        assert f"![{result['claim']}]({result['claim']}.png)" in report
        for comparison in result["comparisons"]:
            diff = comparison["difference"]
            assert diff["low"] <= diff["mean"] <= diff["high"] and comparison["verdict"] in VERDICTS
    curves = results[0]["curves"]
    assert set(curves) == {"sqrt", "proportional", "uniform"}
    # Every held-in split at the instruction stage's 2 steps, a checkpoint each.
    assert all(len(curve) == 2 for by_split in curves.values() for curve in by_split.values())
    lengths = results[1]["per_key"]["ambiguous prompts"]
    assert set(lengths) == {"words:open", "words:short"}
    arms = out / "arms"
    assert sorted(p.name for p in arms.iterdir()) == ["instructblip", "instructblip-proportional",
                                                      "instructblip-uniform", "llava15", "llava15-ambiguous"]
    assert not list(arms.rglob("checkpoints"))  # scored, then deleted
    answers = (arms / "llava15" / "seed-0" / "eval" / "words-open.jsonl").read_text().splitlines()
    assert json.loads(answers[0])["prompt"] == "<image>\nWhat do you see in this picture?"

    finished = {p: p.stat().st_mtime_ns for p in arms.rglob("*.json")}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in arms.rglob("*.json")} == finished
    printed = capsys.readouterr().out
    assert printed.count(": reused (") == 5 and ": training (" not in printed
