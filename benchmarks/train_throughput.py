"""Training throughput: vlit's loop against transformers' LlavaForConditionalGeneration in a plain PyTorch loop.

Both train the same LLaVA-architecture model (a CLIP-style vision tower, a 2-layer MLP projector, the
packaged SmolLM2-135M) with the same frozen parts (vision tower and LLM frozen, projector trained: LLaVA's
stage 1), on the same quickstart instruction data, with the same batch size and number of samples, in the
same run. The baseline recomputes the vision tower every step and batches rows in sampling order; vlit reads
frozen features from its cache and groups batches by modality and length. Also reported: the FLOP/s each
achieves as a fraction of this machine's matrix-multiply peak, measured in the same run.

Also reported: the time per step the loop waits for its next batch (data loading), with the batches encoded
in the loop (0 workers, synchronous) and by DataLoader workers, with the feature cache on (tokenizing only)
and off (every step also decodes and resizes its images), all in the same run.

`--mixed-precision bf16` runs both under bf16 autocast (vlit through its `train.mixed_precision`, the
baseline under `torch.autocast`) and also times the baseline in float32, so the gain of bf16 on this machine
is a ratio from the same run too.

    python benchmarks/train_throughput.py            # about 10 minutes on 2 CPU cores
    python benchmarks/train_throughput.py --quick    # about 2 minutes
    python benchmarks/train_throughput.py --quick --mixed-precision bf16
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import LlavaForConditionalGeneration

from vlit.config import (
    Config,
    DataConfig,
    DatasetConfig,
    LLMConfig,
    MixtureConfig,
    MLPConnectorConfig,
    ModelConfig,
    StageConfig,
    TrainConfig,
    VisionConfig,
)
from vlit.data.sources.build import build_quickstart
from vlit.models.build import build_model
from vlit.models.export import llava_config, llava_state_dict
from vlit.training.loop import Trainer
from vlit.training.stream import StageStream

DATASETS = ["fmnist_classification", "fmnist_multiple_choice", "fmnist_caption", "scenes_caption", "scenes_vqa",
            "scenes_counting", "scenes_dialogue", "scenes_refer", "scenes_grounded_caption"]
# A ViT-B/32-shaped CLIP tower (random weights: no CLIP ships offline): 49 patch tokens at 224 px.
VISION = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
          "image_size": 224, "patch_size": 32}


def matmul_peak(dtype: torch.dtype = torch.float32, seconds: float = 3.0, n: int = 2048) -> float:
    """Best FLOP/s of a square matmul in `dtype` on this machine (the roofline to compare against)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def recipe(root: Path, steps: int, batch_size: int, cache: Path, group_by_length: bool,
           precision: str = "no") -> Config:
    model = ModelConfig(
        vision=VisionConfig(source="random", name="clip_vision_model", random_config=VISION, resize="stretch"),
        connector=MLPConnectorConfig(kind="mlp"), llm=LLMConfig(), template="chatml", seed=0)
    data = MixtureConfig(datasets=[DatasetConfig(name=n, path=f"{n}/train.json", style="llava15") for n in DATASETS])
    stage = StageConfig(name="stage1", data=data, train=["connector"], lr={"connector": 1e-3}, steps=steps,
                        batch_size=batch_size, max_grad_norm=1.0, warmup_ratio=0.0)
    train = TrainConfig(seed=0, mixed_precision=precision, feature_cache=True, cache_dir=str(cache),
                        group_by_length=group_by_length, log_every=10**9, save_every=0, keep_last=1)
    return Config(model=model, data=DataConfig(root=str(root)), stages=[stage], train=train)


def baseline(cfg: Config, steps: int, batch_size: int) -> tuple[float, float, float]:
    """LlavaForConditionalGeneration + plain PyTorch loop: (samples/s, tokens/s, FLOPs per sample)."""
    vlm, processor = build_model(cfg.model)
    llava = LlavaForConditionalGeneration(llava_config(vlm))
    llava.load_state_dict(llava_state_dict(vlm), strict=False)
    llava.requires_grad_(False)
    llava.model.multi_modal_projector.requires_grad_(True)
    llava.eval()
    optimizer = torch.optim.AdamW([p for p in llava.parameters() if p.requires_grad], lr=1e-3)
    plain = dataclasses.replace(cfg.train, group_by_length=False)
    stream = StageStream(cfg.stages[0], Path(cfg.data.root), processor, seed=0, group_by_length=plain.group_by_length)
    batches = iter(stream)

    autocast = cfg.train.mixed_precision == "bf16"

    def step() -> tuple[int, int]:
        batch, _ = next(batches)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = llava(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                        pixel_values=batch.pixel_values, labels=batch.labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in llava.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad()
        return batch.input_ids.shape[0], int(batch.attention_mask.sum())

    with FlopCounterMode(display=False) as counter:
        n, _ = step()
    flops_per_sample = counter.get_total_flops() / n
    samples = tokens = 0
    start = time.perf_counter()
    for _ in range(steps):
        s, t = step()
        samples, tokens = samples + s, tokens + t
    elapsed = time.perf_counter() - start
    return samples / elapsed, tokens / elapsed, flops_per_sample


def vlit_loop(cfg: Config, out: Path) -> tuple[float, float]:
    """samples/s and tokens/s of vlit's Trainer, read from its own metrics log (steady state)."""
    Trainer(cfg, out).run()
    import json

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "samples_per_s" in r][-1]
    return last["samples_per_s"], last["tokens_per_s"]


def vlit_flops_per_sample(cfg: Config) -> float:
    """FLOPs of one vlit training step on cached features, per sample."""
    model, processor = build_model(cfg.model)
    stream = StageStream(cfg.stages[0], Path(cfg.data.root), processor, seed=0)
    batch, _ = next(iter(stream))
    features = model.image_features(batch.pixel_values).detach()
    with FlopCounterMode(display=False) as counter:
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels,
                    image_features=features)
        out.loss.backward()
    return counter.get_total_flops() / batch.input_ids.shape[0]


def data_wait(cfg: Config, out: Path, workers: int, feature_cache: bool) -> tuple[float, float]:
    """(seconds per step the loop waited for its next batch, samples/s) over the second half of the steps:
    the first half includes starting the workers and filling their prefetch queue."""
    import json

    steps = cfg.stages[0].steps or 2
    train = dataclasses.replace(cfg.train, num_workers=workers, feature_cache=feature_cache,
                                log_every=max(steps // 2, 1))
    Trainer(dataclasses.replace(cfg, train=train), out).run()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "data_wait_s" in r][-1]
    return last["data_wait_s"], last["samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and less data")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--mixed-precision", choices=("no", "bf16"), default="no")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the data-loading rows")
    args = parser.parse_args()
    precision = args.mixed_precision
    steps = 6 if args.quick else 30
    torch.manual_seed(0)
    random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "data", Path(tmp) / "features"
        build_quickstart(root, seed=0, scale=0.1 if args.quick else 0.3, progress=False)
        # Each row is measured against the matmul peak of the precision its matmuls run in.
        peaks = {"no": matmul_peak()}
        rows = []  # (name, precision, samples/s, tokens/s, FLOPs per sample)
        suffix = ""
        if precision == "bf16":
            peaks["bf16"] = matmul_peak(torch.bfloat16)
            suffix = ", bf16"
            fp32 = baseline(recipe(root, steps, args.batch_size, cache, False), steps, args.batch_size)
            rows.append(("baseline, float32", "no", *fp32))
        base_sps, base_tps, base_flops = baseline(recipe(root, steps, args.batch_size, cache, False, precision),
                                                  steps, args.batch_size)
        rows.append((f"baseline (Llava + plain loop){suffix}", precision, base_sps, base_tps, base_flops))
        # vlit: a first pass fills the feature cache (as the first epoch of a run does); the timed run reads it.
        warm = recipe(root, steps, args.batch_size, cache, True, precision)
        Trainer(warm, Path(tmp) / "warm").run()
        cfg = recipe(root, steps, args.batch_size, cache, True, precision)
        sps, tps = vlit_loop(cfg, Path(tmp) / "vlit")
        rows.append((f"vlit (feature cache + grouping){suffix}", precision, sps, tps, vlit_flops_per_sample(cfg)))
        waits = {}  # (feature cache, workers) -> (data wait s/step, samples/s)
        for feature_cache in (True, False):
            for workers in (0, args.workers):
                name = f"wait-{feature_cache}-{workers}"
                waits[feature_cache, workers] = data_wait(cfg, Path(tmp) / name, workers, feature_cache)
    print("matmul peak (measured): " + ", ".join(f"{'float32' if k == 'no' else k} {v / 1e9:.1f} GFLOP/s"
                                                 for k, v in peaks.items()))
    print(f"{'':<40}{'samples/s':>10}{'tokens/s':>10}{'GFLOP/s':>9}{'of peak':>9}")
    for name, dtype, s, t, f in rows:
        print(f"{name:<40}{s:>10.2f}{t:>10.1f}{s * f / 1e9:>9.1f}{s * f / peaks[dtype]:>9.1%}")
    if precision == "bf16":
        print(f"baseline bf16 / float32 samples/s: {base_sps / fp32[0]:.2f}x")
    print(f"vlit / baseline samples/s: {sps / base_sps:.2f}x (target >= 1.5x)")
    print(f"data loading, ms per step the loop waits for its next batch (second half of {steps} steps):")
    for feature_cache in (True, False):
        (before, sps0), (after, sps1) = waits[feature_cache, 0], waits[feature_cache, args.workers]
        label = "feature cache on " if feature_cache else "feature cache off"
        print(f"  {label}: 0 workers {1e3 * before:8.1f} ms ({sps0:.2f} samples/s)   {args.workers} workers "
              f"{1e3 * after:8.1f} ms ({sps1:.2f} samples/s)   workers / none {after / max(before, 1e-9):.2f}x")


if __name__ == "__main__":
    main()
