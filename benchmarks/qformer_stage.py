"""Does BLIP-2's first stage (`objective: qformer`) teach the packaged Q-Former to read the image?

The InstructBLIP recipe's model (EfficientNet-Lite0 features, MiniLM-initialised Q-Former), one `qformer` stage on
the quickstart's Fashion-MNIST captions, scene captions and Fashion-MNIST class names, trained by vlit's loop.
On held-out test rows, before and after: in-batch ITC retrieval (image -> text top-1; a text identical to the
row's own counts, as the stage's positives do) against its chance level, and the ITC / ITM / ITG losses with the
images in place and shuffled across the batch (rolled by one): a Q-Former that reads the image loses more to the
shuffle. Also printed: seconds per optimizer step.

    vlit data build quickstart --out /tmp/blip2/data
    python benchmarks/qformer_stage.py --data /tmp/blip2/data --out /tmp/blip2/run --steps 300
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from vlit.config import Config, DatasetConfig, load_yaml
from vlit.data.loading.dataset import load_dataset
from vlit.data.loading.side_inputs import right_padded
from vlit.data.reading.images import resolve_image_path
from vlit.models.build import build_model
from vlit.models.feature_cache import FeatureCache, encoder_key
from vlit.models.saving import load_weights
from vlit.training.checkpoint import HEADS_FILE, latest_checkpoint
from vlit.training.loop import Trainer
from vlit.training.qformer_objective import TEXT, QFormerObjective

DATASETS = ("fmnist_caption", "scenes_caption", "fmnist_classification")


def recipe(args) -> Config:
    """instructblip.yaml's model in float32, its stages replaced by one `qformer` stage."""
    stage = {"name": "blip2", "objective": "qformer", "train": ["connector"], "lr": {"connector": args.lr},
             "steps": args.steps, "batch_size": args.batch_size, "warmup_ratio": 0.05,
             "data": {"datasets": [{"name": n, "path": f"{n}/train.json", "style": "instructblip"}
                                   for n in DATASETS]}}
    return load_yaml(Config, "instructblip", [
        f"data.root={args.data}", "data.build=null", f"model.connector.num_queries={args.queries}",
        "model.llm.dtype=float32", "train.mixed_precision=no", "train.log_every=5",
        f"train.cache_dir={args.out}/features", f"stages={json.dumps([stage])}"])


@torch.no_grad()
def evaluate(cfg: Config, checkpoint: Path | None, batch_size: int) -> dict[str, str]:
    """Per dataset: retrieval top-1 (and chance) and the losses in place vs shuffled, on its test rows."""
    torch.manual_seed(0)
    model, processor = build_model(cfg.model)
    objective = QFormerObjective(model.vision, model.connector, cfg.stages[0].qformer)
    if checkpoint is not None:
        load_weights(model, checkpoint / "model" / "model.safetensors", ["connector"])
        objective.heads.load_state_dict(load_file(checkpoint / HEADS_FILE))
    objective.eval()
    folder = Path(cfg.train.cache_dir) / encoder_key(cfg.model, processor.image_spec)
    cache = FeatureCache(model, processor, 8192, folder, torch.float16)
    report = {}
    for name in DATASETS:
        data = load_dataset(DatasetConfig(name=name, path=f"{name}/test.json"), Path(cfg.data.root))
        rows = [data.get(i) for i in range(len(data) // batch_size * batch_size)]
        hits = chance = 0.0
        losses: dict[str, dict[str, float]] = {"in place": {}, "shuffled": {}}
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            features = cache.features([str(resolve_image_path(r.images[0], data.image_root)) for r in batch],
                                      "cpu", torch.float32)
            text = right_padded([objective.answer_input.encode(r) for r in batch], 0)
            query_out, _ = objective.grounded(model.connector.ln_vision(features), text)
            sim = objective.similarity(query_out, objective.text_features(text))
            same = (text.ids[:, None] == text.ids[None]).all(-1)
            hits += same[torch.arange(len(batch)), sim.argmax(1)].sum().item()
            chance += same.float().mean(1).sum().item()
            for kind, order in (("in place", torch.arange(len(batch))), ("shuffled", torch.arange(len(batch)).roll(1))):
                torch.manual_seed(0)  # the same ITM negatives for both
                for key, value in objective(image_features=features[order], side={TEXT: text}).parts.items():
                    losses[kind][key] = losses[kind].get(key, 0.0) + value.item() * len(batch)
        report[name] = (f"{len(rows)} rows, ITC top-1 {hits / len(rows):.1%} (chance {chance / len(rows):.1%}); "
                        + "; ".join(f"{kind}: " + ", ".join(f"{k} {v / len(rows):.3f}" for k, v in d.items())
                                    for kind, d in losses.items()))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a quickstart build (vlit data build quickstart)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    args = parser.parse_args()
    cfg = recipe(args)
    before = evaluate(cfg, None, args.batch_size)
    start = time.perf_counter()
    Trainer(cfg, args.out).run()
    seconds = time.perf_counter() - start
    after = evaluate(cfg, latest_checkpoint(args.out), args.batch_size)
    print(f"{args.steps} steps of batch {args.batch_size}: {seconds / args.steps:.2f} s per step (feature cache "
          "filling included)")
    for name in DATASETS:
        print(f"{name}\n  before: {before[name]}\n  after:  {after[name]}")


if __name__ == "__main__":
    main()
