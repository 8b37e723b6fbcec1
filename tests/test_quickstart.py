"""The quickstart main job, shortened (`--steps 2`), through the same code path `make quickstart` runs: data
build, both trainings, evaluation with the untrained baselines, the table and the summary."""

from __future__ import annotations

import json

import pytest

from vlit.cli import main

pytestmark = pytest.mark.slow


def test_quickstart_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--steps", "2", "--scale", "0.05", "--eval-samples", "2"]) == 0
    printed = capsys.readouterr().out
    for name in ("instructblip", "llava15"):
        assert (out / name / "model" / "model.safetensors").exists()
        assert (out / name / "loss.png").read_bytes().startswith(b"\x89PNG")
        meta = json.loads((out / name / "model" / "config.json").read_text())
        assert meta["trained_parts"]
    table = (out / "eval" / "results.md").read_text()
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert rows == ["instructblip", "instructblip (untrained connector)", "llava15", "llava15 (untrained connector)"]
    assert "held-in avg" in table and "held-out avg" in table
    assert table in printed
    assert "Held-in Fashion-MNIST accuracy of generated answers" in printed
    assert "truth:" in printed and str(out / "eval" / "results.md") in printed
    assert ") px" in printed  # refer targets shown in pixels, beside the box read from the answer
