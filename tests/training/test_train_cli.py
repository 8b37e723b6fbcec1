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


def test_a_run_folder_the_disk_refuses_is_one_line(train_config, tmp_path, monkeypatch, capsys):
    import errno

    def read_only(cfg, path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    # The first file a run writes: no closer handler than the CLI's own says anything about it.
    monkeypatch.setattr("vlit.training.loop.save_yaml", read_only)
    out = tmp_path / "run"
    assert main(["train", "debug", f"data.root={train_config.data.root}", "data.build=null", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"vlit train: error: {out / 'config.yaml'}: Read-only file system; make the "
                                       "folder writable (or write elsewhere)\n")
