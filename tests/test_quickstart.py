"""The quickstart main job, shortened (`--steps 2`), through the same code path `make quickstart` runs: data
build, the three trainings, evaluation with intervals and the untrained baselines, the image-shuffle check, the
refer drawing, the timing, the table and the summary."""

from __future__ import annotations

import json
import re

import pytest

from vlit.cli import main

pytestmark = pytest.mark.slow


def test_quickstart_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--steps", "2", "--scale", "0.05", "--eval-samples", "2"]) == 0
    printed = capsys.readouterr().out
    for name in ("instructblip", "llava15", "minigptv2"):
        assert (out / name / "model" / "model.safetensors").exists()
        assert (out / name / "loss.png").read_bytes().startswith(b"\x89PNG")
        meta = json.loads((out / name / "model" / "config.json").read_text())
        assert meta["trained_parts"]
    table = (out / "eval" / "results.md").read_text()
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert rows == ["instructblip", "instructblip (untrained connector)", "llava15", "llava15 (untrained connector)",
                    "minigptv2", "minigptv2 (untrained connector)"]
    assert "held-in avg" in table and "held-out avg" in table
    own = (out / "eval" / "results_own_protocol.md").read_text()
    assert "fmnist_classification-ranked" in own and "scenes_identify" in own and own in printed
    assert [line.split("|")[1].strip() for line in own.splitlines()[2:]] == ["instructblip", "minigptv2"]
    assert re.search(r"\| \d+\.\d \(\d+\.\d-\d+\.\d\) \|", table)  # 95% intervals beside the scores
    shuffle = json.loads((out / "eval" / "image_shuffle.json").read_text())
    assert set(shuffle) == {"instructblip", "llava15", "minigptv2"}
    assert all(check["in_place"] > 0 and check["shuffled"] > 0 for check in shuffle.values())
    assert "shuffled" in printed
    assert (out / "eval" / "minigptv2" / "scenes_refer.boxes.png").read_bytes().startswith(b"\x89PNG")
    timing = json.loads((out / "timing.json").read_text())
    assert {"data", "train minigptv2", "evaluate instructblip"} <= set(timing["phases_s"])
    assert "Time per phase" in printed
    assert table in printed
    assert "Held-in Fashion-MNIST accuracy" in printed
    assert "truth:" in printed and str(out / "eval" / "results.md") in printed
    assert ") px" in printed  # refer targets shown in pixels, beside the box read from the answer
