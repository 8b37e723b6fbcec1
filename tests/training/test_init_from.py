"""Training that starts from a published model: `model.init_from` an imported checkpoint. At its first step the
run's loss is the imported model's loss on that batch (nothing re-initialised, nothing lost), and the trained
checkpoint stands on its own."""

from __future__ import annotations

import dataclasses
import json

import torch
import yaml

from vlit.config import Config, load_yaml
from vlit.models.export import export_llava
from vlit.models.published.importing import import_checkpoint
from vlit.models.saving import load_model
from vlit.training.loop import Trainer
from vlit.training.stream import StageStream


def test_first_step_loss_equals_the_imported_models(tmp_path, debug_model, debug_data):
    model, processor = debug_model
    published = export_llava(model, processor, tmp_path / "llava-hf")
    import_checkpoint(str(published), tmp_path / "imported")
    recipe = {
        "model": {"init_from": str(tmp_path / "imported")},
        "data": {"root": str(debug_data)},
        "stages": [{"name": "finetune", "train": ["connector", "llm"], "lr": {"connector": 1e-3, "llm": 1e-4},
                    "steps": 2, "batch_size": 2, "data": {"datasets": [
                        {"name": "fmnist_caption", "path": "fmnist_caption/train.json", "style": "llava15"}]}}],
        "train": {"feature_cache": False, "num_workers": 0, "log_every": 1},
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    cfg = load_yaml(Config, tmp_path / "recipe.yaml")
    # The recipe's model is the imported one: its tower, LLM and template come from the checkpoint's config.
    assert (cfg.model.template, cfg.model.vision.key_mapping) == ("vicuna_v1", {r"^model\.vision_tower\.": ""})
    final = Trainer(cfg, tmp_path / "run").run()

    imported, imported_processor = load_model(tmp_path / "imported")
    stage = cfg.stages[0]
    stream = StageStream(stage, debug_data, dataclasses.replace(imported_processor, max_length=stage.max_length),
                         cfg.train.seed, 0, 1, cfg.train.group_by_length, cfg.train.group_size, 0)
    batch, _ = next(iter(stream))
    with torch.no_grad():
        expected = imported(**batch.model_inputs()).loss.item()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in rows if r.get("global_step") == 1 and "loss" in r)
    assert abs(first["loss"] - expected) < 1e-5, (first["loss"], expected)
    # The run's checkpoint stores what it trained and needs no init_from to load.
    meta = json.loads((final / "config.json").read_text())
    assert meta["model"]["init_from"] is None and set(meta["stored_parts"]) >= {"connector", "llm"}
    trained, _ = load_model(final)
    assert not torch.equal(trained.connector.linear_1.weight, imported.connector.linear_1.weight)
