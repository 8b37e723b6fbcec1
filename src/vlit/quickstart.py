"""`vlit quickstart`: the main job on the embedded default parts, with nothing downloaded.

1. builds the quickstart instruction data (Fashion-MNIST + rendered scenes; held-in and held-out datasets);
2. trains an InstructBLIP-style model (Q-Former) and a LLaVA-style model (MLP, then LoRA) from the packaged
   parts (EfficientNet-Lite0, all-MiniLM-L6-v2, SmolLM2-135M-Instruct);
3. evaluates both on held-in and held-out test splits, and the same models with an untrained connector on
   three of them, prints the table and example answers beside the ground truth, and says where every output is.

`--steps N` runs every stage for N steps only (same code path; what `make test` runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

from vlit.config import Config, load_yaml

RECIPES = {"instructblip": "InstructBLIP-style (Q-Former)", "llava15": "LLaVA-1.5-style (MLP + LoRA)"}
BENCHMARKS = {"fmnist_classification": 100, "fmnist_multiple_choice": 16, "scenes_counting": 16, "scenes_vqa": 16,
              "scenes_yes_no": 16, "scenes_refer": 16, "fmnist_yes_no": 24, "scenes_spatial": 24}
"""Test splits the quickstart scores, and how many samples of each (a few minutes on 2 CPU cores). The headline
Fashion-MNIST accuracy gets the most: one checkpoint scored 35% on the first 40 samples and 51% on all 200."""
BASELINE_BENCHMARKS = {"fmnist_classification": 20, "scenes_vqa": 16, "scenes_spatial": 24}
"""The splits the untrained-connector baselines are scored on (two held-in, one held-out), and on how many samples
(the first of the trained models' samples): enough to show what training added, at a fraction of the cost of
scoring them everywhere (they always generate to the token limit)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlit quickstart", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    parser.add_argument("--steps", type=int, default=None, help="run every stage for N steps (a short check)")
    parser.add_argument("--scale", type=float, default=1.0, help="data size multiplier")
    parser.add_argument("--eval-samples", type=int, default=None, help="samples per benchmark (default: per "
                        "benchmark, fewer with --steps)")
    parser.add_argument("--examples", type=int, default=2, help="example answers shown per benchmark")
    return parser


def recipe(name: str, args: argparse.Namespace, data: Path) -> Config:
    overrides = [f"data.root={data}", "data.build=null"]
    if args.steps is not None:
        cfg = load_yaml(Config, name)
        overrides += [f"stages.{i}.steps={args.steps}" for i in range(len(cfg.stages))]
        overrides += ["train.save_every=0", f"train.log_every={max(1, args.steps // 2)}"]
    return load_yaml(Config, name, overrides)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from vlit.data.sources.build import build_quickstart
    from vlit.evaluation.benchmarks import quickstart_benchmarks
    from vlit.evaluation.report import write_report
    from vlit.evaluation.runner import evaluate
    from vlit.inference.pipeline import Pipeline
    from vlit.models.build import build_model
    from vlit.training.loop import Trainer

    start = time.perf_counter()
    out, data = args.out, args.out / "data"
    if not (data / "manifest.json").exists():
        print(f"[1/3] building the quickstart data in {data}")
        build_quickstart(data, seed=0, scale=args.scale)
    checkpoints: dict[str, object] = {}
    for name, title in RECIPES.items():
        cfg = recipe(name, args, data)
        print(f"[2/3] training {title}: {' -> '.join(s.name for s in cfg.stages)} ({out / name})")
        checkpoints[name] = Trainer(cfg, out / name).run(resume=(out / name / "checkpoints").exists())
        model, processor = build_model(cfg.model)  # the same parts, connector as initialised: the baseline
        checkpoints[f"{name} (untrained connector)"] = Pipeline(model, processor)
    samples = args.eval_samples
    benches = quickstart_benchmarks(data, names=list(BENCHMARKS))
    for bench in benches:
        bench.max_samples = samples or (min(4, BENCHMARKS[bench.name]) if args.steps else BENCHMARKS[bench.name])
    baseline_benches = [dataclasses.replace(b, max_samples=min(b.max_samples, BASELINE_BENCHMARKS[b.name]))
                        for b in benches if b.name in BASELINE_BENCHMARKS]
    print(f"[3/3] evaluating {len(RECIPES)} models on {len(benches)} test splits and their untrained baselines on "
          f"{len(baseline_benches)} ({out / 'eval'})")
    results = []
    for label, source in checkpoints.items():
        results += evaluate({label: source}, benches if label in RECIPES else baseline_benches, out / "eval")
    table = write_report(results, out / "eval")
    print("\n" + table.read_text())
    _show_examples(out / "eval", benches, list(RECIPES), args.examples)
    _summary(results, out, table, time.perf_counter() - start)
    return 0


def _show_examples(folder: Path, benches, labels: list[str], count: int) -> None:
    from vlit.evaluation.benchmarks import load_samples
    from vlit.evaluation.extract import extract_box, extract_choice

    print("Example answers (trained models), ground truth beside them:")
    for bench in benches:
        samples = load_samples(bench, "llava15")[:count]
        print(f"\n  {bench.name} ({bench.split.replace('_', '-')})")
        for label in labels:
            preds = {}
            path = folder / label / f"{bench.name}.predictions.jsonl"
            for line in path.read_text().splitlines():
                row = json.loads(line)
                preds[row["id"]] = row["prediction"]
            for s in samples:
                question = s.conversation.turns[-1].content.replace("<image>", "").strip().splitlines()[0]
                answer = preds.get(s.id, "")
                truth = s.references[0] if s.references else ""
                if isinstance(truth, str):
                    shown, truth_shown = repr(answer[:60]), repr(truth)
                    # InstructBLIP-style prompts answer with the option itself, LLaVA-style with its letter.
                    choice = s.task == "multiple_choice" and s.candidates
                    index = extract_choice(truth, s.candidates) if choice else None
                    if index is not None:
                        truth_shown += f" ({s.candidates[index]})"
                else:  # a box: the answer as the metric reads it, in pixels beside the target's pixels
                    box = extract_box(answer, s.meta["image_size"])
                    shown = f"{answer[:60]!r} -> {_pixels(box) if box else 'no box'}"
                    truth_shown = _pixels(truth)
                print(f"    [{label}] Q: {question[:70]}\n      answer: {shown}   truth: {truth_shown}")


def _pixels(box) -> str:
    return f"({', '.join(f'{v:.0f}' for v in box)}) px"


def _summary(results, out: Path, table: Path, seconds: float) -> None:
    fashion = {r.checkpoint: r.primary for r in results if r.benchmark == "fmnist_classification"}
    print("\nHeld-in Fashion-MNIST accuracy of generated answers (chance 10%):")
    for label, value in fashion.items():
        print(f"  {label:<40} {value:6.1%}")
    print(f"\nDone in {seconds / 60:.1f} min. Outputs:")
    print(f"  data:        {out / 'data'} (manifest.json, images, LLaVA JSON per dataset and split)")
    for name in RECIPES:
        print(f"  {name + ':':<12} {out / name / 'model'} (checkpoint), {out / name / 'loss.png'}, "
              f"{out / name / 'metrics.jsonl'}")
    print(f"  evaluation:  {table} (table), {out / 'eval'}/<model>/ (predictions, metrics)")
    print(f"  try it:      vlit ask --checkpoint {out / 'llava15' / 'model'} --image IMAGE \"What is this?\"")
