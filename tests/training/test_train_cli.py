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


def _recipe(tmp_path, data_file: str, on_bad_row: str):
    """A one-stage debug recipe training on `data_file` in `tmp_path`."""
    from vlit.config import Config, load_yaml, save_yaml

    cfg = load_yaml(Config, "debug", ["data.build=null", f"data.root={tmp_path}", "stages.0.steps=2",
                                      "stages.0.batch_size=2", f"stages.0.data.on_bad_row={on_bad_row}",
                                      f"train.cache_dir={tmp_path / 'features'}", "train.num_workers=0"])
    cfg.stages = cfg.stages[:1]
    cfg.stages[0].data.datasets = cfg.stages[0].data.datasets[:1]
    cfg.stages[0].data.datasets[0].path = data_file
    cfg.stages[0].data.datasets[0].style = "as_is"
    save_yaml(cfg, tmp_path / "recipe.yaml")
    return tmp_path / "recipe.yaml"


def _rows(tmp_path, images: list[str]) -> str:
    from PIL import Image

    Image.new("RGB", (40, 30), (10, 200, 10)).save(tmp_path / "good.png")
    qa = [{"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "Green."}]
    rows = [{"id": str(i), "image": image, "conversations": qa} for i, image in enumerate(images)]
    rows += [{"id": "x", "conversations": "not a list"}, {"id": "y", "image": "good.png"}]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    return "rows.json"


def test_skip_trains_on_the_good_rows_and_names_the_bad(tmp_path, special_files, capsys, caplog):
    bad = [str(p) for p in special_files] + ["missing.png"]
    recipe = _recipe(tmp_path, _rows(tmp_path, ["good.png"] * 3 + bad), "skip")
    assert main(["train", str(recipe), "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "model").is_dir()
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().endswith("(row skipped)")]
    assert len(skipped) == 6 and all(f"{tmp_path / 'rows.json'}[" in line for line in skipped)
    assert any("skipped 6 bad row(s) (image: 4, missing: 1, type: 1)" in r.getMessage() for r in caplog.records)


def test_a_bad_data_or_image_file_stops_training_in_one_line(tmp_path, special_files, capsys):
    fifo = tmp_path / "special" / "fifo.png"  # as the data file itself: refused before it is opened
    assert main(["train", str(_recipe(tmp_path, str(fifo), "skip")), "--out", str(tmp_path / "run")]) == 2
    assert f"vlit train: error: {fifo}: not a regular file (a FIFO)\n" in capsys.readouterr().err
    zero, reason = next(iter(special_files.items()))  # as an image, in fail mode: stops at its batch
    recipe = _recipe(tmp_path, _rows(tmp_path, ["good.png", str(zero)]), "fail")
    (tmp_path / "rows.json").write_text(json.dumps(json.loads((tmp_path / "rows.json").read_text())[:2]))
    assert main(["train", str(recipe), "--out", str(tmp_path / "run2")]) == 2
    # (the progress bar, also on stderr, may share the line the error starts on)
    assert f"vlit train: error: {zero}: {reason}\n" in capsys.readouterr().err


def test_packed_rows_train_to_the_padded_runs_first_loss(train_config, tmp_path, monkeypatch):
    """`train.packing=true`: the same first-step loss as the padded run (the same rows, the same weights); a
    batch over `packing_max_tokens` runs padded, so with a limit of 1 every loss is the padded run's."""
    from vlit.models.vlm import VisionLanguageModel

    packed_steps = []
    packed = VisionLanguageModel._packed
    monkeypatch.setattr(VisionLanguageModel, "_packed", lambda self, *a: packed_steps.append(1) or packed(self, *a))
    losses, calls = {}, {}
    for name, packing in (("padded", ["train.packing=false"]), ("packed", ["train.packing=true"]),
                          ("over the limit", ["train.packing=true", "train.packing_max_tokens=1"])):
        out = tmp_path / name.replace(" ", "-")
        assert main(["train", "debug", f"data.root={train_config.data.root}", "data.build=null", "--out", str(out),
                     f"train.cache_dir={train_config.train.cache_dir}", "train.num_workers=0", "train.log_every=1",
                     "stages.0.steps=1", "stages.1.steps=2", *packing]) == 0
        calls[name] = len(packed_steps)
        packed_steps.clear()
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        losses[name] = [r["loss"] for r in rows if "loss" in r]
        assert len(losses[name]) == 3 and all(loss == loss for loss in losses[name])  # one per step, none NaN
    assert calls["padded"] == calls["over the limit"] == 0 < calls["packed"]
    assert abs(losses["packed"][0] - losses["padded"][0]) < 1e-4
    assert losses["over the limit"] == losses["padded"]


def test_packing_an_encoder_decoder_is_refused_in_one_line(debug_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "debug-t5", f"data.root={debug_data}", "data.build=null", "--out", str(out),
                 f"train.cache_dir={tmp_path / 'features'}", "train.packing=true"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vlit train: error: train.packing: rows are packed for a decoder-only LLM") and \
        err.count("\n") == 1
