"""Packed rows against padded batches (`train.packing`): training steps of each quickstart family's LLM-facing
stage on the same real batches (and the InstructBLIP-style warm-up's batches of 32), one after the other in
the same run, float32 (what a CPU without bf16 runs).
Each batch is timed padded, then packed; the ratio is padded time over packed time. Also prints the padding the
length grouping leaves and the largest difference between the two losses.

    python benchmarks/packing.py            # about 8 minutes on 2 CPU cores: 30 batches a stage (3 of 32)
    python benchmarks/packing.py --quick    # about 3 minutes: 6 batches a stage
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import torch

from vlit.config import Config, load_yaml
from vlit.data.sources.build import build_quickstart
from vlit.models.build import build_model
from vlit.training.stages import apply_stage, stage_processor
from vlit.training.stream import StageStream

STAGES = [("llava15", "finetune", 1), ("minigptv2", "multitask", 1), ("instructblip", "blip2", 1),
          ("instructblip", "blip2_warmup", 8)]
"""Each recipe's stage that takes most of its training time (batches of 4 rows), and the InstructBLIP-style
warm-up's batches of 32 (about 1,300 tokens packed), which `train.packing_max_tokens` leaves padded; the last
number divides the batches timed (a batch of 32 takes 8 of 4)."""


def measure(name: str, stage_name: str, data: Path, batches: int) -> tuple[float, float, float, float]:
    """(padded seconds, packed seconds, mean padding fraction, largest loss difference) over `batches` steps."""
    cfg = load_yaml(Config, name, [f"data.root={data}", "data.build=null", "train.num_workers=0",
                                   "train.mixed_precision=no", "model.llm.dtype=float32"])
    stage = next(s for s in cfg.stages if s.name == stage_name)
    model, processor = build_model(cfg.model)
    apply_stage(model, stage)
    stream = StageStream(stage, data, stage_processor(processor, stage), 0, 0, 1, cfg.train.group_by_length,
                         cfg.train.group_size, 0, with_pixels=True)
    model.eval()  # no dropout: both ways compute the same network, so their losses can be compared
    times, padding, diff = {False: 0.0, True: 0.0}, [], 0.0
    for i, (batch, *_) in enumerate(itertools.islice(iter(stream), batches + 2)):
        with torch.no_grad():
            features = model.image_features(batch.pixel_values)
        inputs = {**batch.model_inputs(), "pixel_values": None, "image_features": features}
        losses = {}
        for pack in (False, True):
            start = time.perf_counter()
            loss = model(**inputs, loss_per=stage.loss_per, pack=pack).loss
            loss.backward()
            if i >= 2:  # two warm-up batches
                times[pack] += time.perf_counter() - start
            model.zero_grad(set_to_none=True)
            losses[pack] = loss.item()
        diff = max(diff, abs(losses[True] - losses[False]))
        padding.append(float((batch.attention_mask == 0).float().mean()))
    return times[False], times[True], sum(padding) / len(padding), diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 batches a stage instead of 30 (1 of 32)")
    parser.add_argument("--data", type=Path, help="a quickstart build (default: built here, about 25 s)")
    args = parser.parse_args()
    batches = 6 if args.quick else 30
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "data"
            build_quickstart(data, seed=0, progress=False)
        print(f"torch threads: {torch.get_num_threads()}; {batches} training steps a stage, float32")
        print("| family (stage) | padding | padded s | packed s | padded / packed | max loss difference |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, stage, fewer in STAGES:
            padded, packed, padding, diff = measure(name, stage, data, max(1, batches // fewer))
            print(f"| {name} ({stage}) | {padding:.1%} | {padded:.1f} | {packed:.1f} | **{padded / packed:.2f}x** "
                  f"| {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
