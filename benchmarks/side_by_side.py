"""The quickstart's families side by side: trainings one after the other with every core each, against the same
trainings at once, a process each with its share of the cores (`vlit.quickstart.parallel`, what `vlit
quickstart` runs on a CPU). Both from the same built data and warm feature cache, in the same run, float32 (what a
CPU without bf16 runs). Also: one AdamW step over a Q-Former-sized set of parameters (38M; the quickstart's
Q-Former trains 37.5M) with the fused kernel vlit uses against torch's single-tensor loop, on one thread.

    python benchmarks/side_by_side.py            # about 12 minutes on 2 CPU cores: the whole LLaVA- and
                                                 # MiniGPT-v2-style quickstart trainings
    python benchmarks/side_by_side.py --quick    # about 4 minutes: 20 steps a stage, where building the
                                                 # models and starting the processes outweigh the steps
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vlit.config import Config, load_yaml
from vlit.data.sources.build import build_quickstart
from vlit.machine import cores
from vlit.quickstart.job import every_stage_steps
from vlit.quickstart.parallel import Job, run_jobs
from vlit.training.loop import Trainer

FLOAT32 = ["train.mixed_precision=no", "model.llm.dtype=float32", "train.save_every=0", "train.num_workers=0"]


def train(name: str, data: str, out: str, steps: int | None) -> float:
    """One recipe's training; its seconds."""
    overrides = [f"data.root={data}", "data.build=null", *FLOAT32, *(every_stage_steps(name, steps) if steps else [])]
    start = time.perf_counter()
    Trainer(load_yaml(Config, name, overrides), Path(out)).run()
    return time.perf_counter() - start


SHAPES = [(384, 384)] * 120 + [(1280, 384)] * 12 + [(384, 1536)] * 12 + [(1536, 384)] * 12 + [(576, 384)]
"""Q-Former-shaped tensors, 38.0M values: the quickstart's Q-Former trains 37.5M."""


def optimizer_step(fused: bool, repeats: int = 10) -> float:
    """Seconds of one AdamW step over `SHAPES`, on the threads torch has."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s)) for s in SHAPES]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW(params, lr=1e-4, **({"fused": True} if fused else {"foreach": False}))
    for _ in range(3):
        opt.step()
    start = time.perf_counter()
    for _ in range(repeats):
        opt.step()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 steps a stage")
    parser.add_argument("--recipes", nargs="+", default=["llava15", "minigptv2"])
    args = parser.parse_args()
    steps = 20 if args.quick else None
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        build_quickstart(data, seed=0)
        # Warm: the packaged LLM converted and every image's features cached, so neither side pays for it.
        for name in args.recipes:
            train(name, str(data), f"{tmp}/warm-{name}", 1)
        n = len(args.recipes)
        start = time.perf_counter()
        alone = run_jobs([Job(name, train, (name, str(data), f"{tmp}/alone-{name}", steps), Path(tmp) / "alone.log",
                              1, lambda: 0) for name in args.recipes], workers=1)
        sequential = time.perf_counter() - start
        start = time.perf_counter()
        together = run_jobs([Job(name, train, (name, str(data), f"{tmp}/together-{name}", steps),
                                 Path(tmp) / f"{name}.log", 1, lambda: 0) for name in args.recipes], workers=n)
        side_by_side = time.perf_counter() - start
    print(f"\n{cores()} cores; trainings of {', '.join(args.recipes)} ({'20 steps a stage' if steps else 'whole'})")
    for name in args.recipes:
        print(f"  {name}: {alone[name]:.0f} s alone with {cores()} threads, {together[name]:.0f} s beside the "
              f"other{'s' if n > 2 else ''} with {max(1, cores() // n)}")
    print(f"  one after the other: {sequential:.0f} s; side by side: {side_by_side:.0f} s "
          f"(process start-up included): {sequential / side_by_side:.2f}x")
    torch.set_num_threads(1)
    loop, fused = optimizer_step(False), optimizer_step(True)
    count = sum(a * b for a, b in SHAPES) / 1e6
    print(f"AdamW step, {count:.1f}M parameters, one thread: single-tensor loop {loop:.3f} s, fused {fused:.3f} s: "
          f"{loop / fused:.2f}x")


if __name__ == "__main__":
    main()
