"""`vlit train CONFIG [key=value ...] --out DIR [--resume]`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vlit.config import Config, load_yaml


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="vlit train", description="Train a recipe's stages in order (single process, or under "
        "`accelerate launch` for DDP / FSDP / DeepSpeed).")
    parser.add_argument("config", help="recipe YAML or bundled recipe name (debug, llava15, instructblip, ...)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. stages.0.steps=100 train.seed=1")
    parser.add_argument("--out", required=True, type=Path, help="run folder: checkpoints, metrics, final model")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    args = parser.parse_intermixed_args(argv)  # overrides may follow --out
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_yaml(Config, args.config, args.overrides)
    from vlit.training.loop import Trainer

    final = Trainer(cfg, args.out).run(resume=args.resume)
    print(f"final model: {final}\nmetrics: {args.out / 'metrics.jsonl'}\nloss curve: {args.out / 'loss.png'}")
    return 0
