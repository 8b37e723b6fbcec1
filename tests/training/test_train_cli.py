from __future__ import annotations

import json

from vlit.cli import main


def test_overrides_may_come_after_out(train_config, tmp_path, capsys):
    # The README's order: `vlit train RECIPE key=value --out DIR key=value`.
    out = tmp_path / "run"
    code = main(["train", "debug", f"data.root={train_config.data.root}", "data.build=null", "--out", str(out),
                 f"train.cache_dir={train_config.train.cache_dir}", "stages.0.steps=1", "stages.1.steps=2"])
    assert code == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["steps"] for r in rows if r.get("event") == "stage_start"] == [1, 2]
    assert str(out / "model") in capsys.readouterr().out
