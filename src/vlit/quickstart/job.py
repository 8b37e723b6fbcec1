"""The quickstart's flow: data, three trainings, evaluation with intervals and baselines, the image-shuffle check,
then what a person reads (`vlit.quickstart.show`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from vlit.config import Config, load_yaml
from vlit.machine import cores
from vlit.quickstart.parallel import Job, default_workers, last_step, lines, run_jobs
from vlit.quickstart.timing import PhaseTimer

if TYPE_CHECKING:
    from vlit.evaluation.image_use import ShuffleCheck
    from vlit.evaluation.runner import Result

RECIPES = {"instructblip": "InstructBLIP-style (BLIP-2's stage 2 with the queries alone, then instruction-aware)",
           "llava15": "LLaVA-1.5-style (MLP, then MLP + LoRA)",
           "minigptv2": "MiniGPT-v2-style (4 tokens merged + linear, LoRA, task identifiers)"}
SPLITS = ("fmnist_classification", "fmnist_multiple_choice", "scenes_vqa", "scenes_counting", "scenes_yes_no",
          "scenes_refer", "fmnist_yes_no", "scenes_spatial")
"""Test splits every family is scored on (the last two held out)."""
OWN_SPLITS = {"minigptv2": ("scenes_identify",)}
"""Splits only one family is scored on: MiniGPT-v2's `[identify]` task."""
RANKED = {"instructblip": ("fmnist_classification", "fmnist_multiple_choice")}
"""Splits a family also answers by ranking the candidates, where that is its paper's protocol (InstructBLIP's
constrained answers for classification and multiple choice); its generated answers are scored beside them."""
SAMPLES = 100
"""Test samples per split: a 95% interval on 100 samples at 70% spans about 60-78."""
BASELINE_SPLITS = ("fmnist_classification",)
"""The untrained-connector baselines are scored on the headline split only: an untrained connector makes the
model talk to the token limit, so each baseline split costs about 20 s."""
EVAL_BATCH = 100
"""Answers generated per batch: a whole split at once. A decoding step of the 135M LLM costs about the same for
32 rows or 100, so fewer batches are fewer steps (2 cores of an Intel Xeon, float32, trained quickstart models:
the LLaVA-style evaluation 56 s against 70 s at 32, the InstructBLIP-style 121 s against 130 s; the same
answers, ranked scores within 4e-5)."""
SHUFFLE_ROWS = {"fmnist_classification": 32, "scenes_vqa": 32}
"""Test rows of the image-shuffle check, per dataset."""
EVAL_DTYPE = "float32"
"""The evaluation runs on the CPU in float32 even where a recipe stores the frozen LLM in bf16 to train faster:
generating in bf16 on a CPU is slower (2 cores of an Intel Xeon with AMX: 300 quickstart answers of the LLaVA-style
model in 65 s in bf16, 41 s in float32, the same answers)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlit quickstart", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    parser.add_argument("--steps", type=int, default=None, help="run every stage for N steps (a short check)")
    parser.add_argument("--scale", type=float, default=1.0, help="data size multiplier")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data build and of every training")
    parser.add_argument("--eval-samples", type=int, default=None,
                        help=f"samples per test split (default {SAMPLES}; 4 with --steps)")
    parser.add_argument("--workers", type=int, default=None,
                        help="families trained and evaluated at a time, each in a process of its own (default: "
                             "one per CPU core, up to three; one on a GPU)")
    parser.add_argument("--examples", type=int, default=2, help="example answers shown per test split")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="dotted overrides applied to every recipe, e.g. `train.mixed_precision=no "
                             "model.llm.dtype=float32` (what a CPU without bf16 runs)")
    return parser


def recipe(name: str, args: argparse.Namespace, data: Path) -> Config:
    overrides = [f"data.root={data}", "data.build=null", f"train.seed={args.seed}", f"model.seed={args.seed}"]
    if args.steps is not None:
        overrides += every_stage_steps(name, args.steps)
        overrides += ["train.save_every=0", f"train.log_every={max(1, args.steps // 2)}"]
    return load_yaml(Config, name, overrides + list(args.overrides))


def every_stage_steps(name: str, steps: int) -> list[str]:
    """The overrides that run each stage of recipe `name` for `steps` steps (a short check)."""
    return [f"stages.{i}.steps={steps}" for i in range(len(load_yaml(Config, name).stages))]


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers: {args.workers} is not a positive number of processes")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from vlit.assets import smollm2_folder
    from vlit.data.sources.build import build_quickstart
    from vlit.evaluation.report import markdown_table, write_report
    from vlit.quickstart import show

    timer = PhaseTimer()
    out, data = args.out, args.out / "data"
    configs = {name: recipe(name, args, data) for name in RECIPES}  # a bad override fails before any work
    if not (data / "manifest.json").exists():
        print(f"[1/3] building the quickstart data in {data}")
        with timer("data"):
            build_quickstart(data, seed=args.seed, scale=args.scale)
    smollm2_folder()  # the packaged LLM converted once here, not by every family's process at once
    samples = args.eval_samples or (4 if args.steps else SAMPLES)
    workers = args.workers if args.workers is not None else default_workers(len(RECIPES))
    print(f"[2/3] training the three families, then evaluating each on {samples} samples per test split, its "
          f"untrained baseline, and whether it uses its image ({out / 'eval'}); "
          + (f"{workers} at a time, {max(1, cores() // workers)} thread(s) each:" if workers > 1 else "in turn:"))
    for name, title in RECIPES.items():
        print(f"  {name}: {title}: {' -> '.join(s.name for s in configs[name].stages)}"
              + (f" (output: {out / name / 'job.log'})" if workers > 1 else ""))
    jobs = [Job(name, family, (name, configs[name], out, data, samples), out / name / "job.log",
                _steps(configs[name]) + _answers(name, samples), partial(_progress, name, out))
            for name in RECIPES]
    families = run_jobs(jobs, workers)
    for name in RECIPES:
        timer.add(families[name].seconds)
    results = [r for name in RECIPES for r in families[name].results]
    shuffles = {name: families[name].shuffle for name in RECIPES}
    print("[3/3] results")
    table = write_report(_ordered([r for r in results if r.benchmark in SPLITS]), out / "eval")
    # A family's own protocol (InstructBLIP's ranked answers, MiniGPT-v2's [identify]) in a table of its own:
    # the main table's averages stay over the splits every family is scored on.
    own = out / "eval" / "results_own_protocol.md"
    own.write_text(markdown_table(_ordered([r for r in results if r.benchmark not in SPLITS])))
    (out / "eval" / "image_shuffle.json").write_text(json.dumps(
        {name: dataclasses.asdict(check) for name, check in shuffles.items()}, indent=2) + "\n")
    print("\n" + table.read_text())
    print("Each family's own protocol: InstructBLIP's ranked answers (the candidates scored by likelihood), "
          "MiniGPT-v2's [identify] task:\n\n" + own.read_text())
    show.image_use(shuffles)
    show.examples(out / "eval", data, list(RECIPES), args.examples)
    boxes = show.refer_boxes(out / "eval", data, "minigptv2", configs["minigptv2"].model.prompt_style)
    timer.write(out / "timing.json")
    print("\nTime per phase" + (f" (the families' phases overlap, {workers} at a time)" if workers > 1 else "")
          + ":\n" + timer.table())
    show.summary(results, out, list(RECIPES), table, boxes, timer.total)
    return 0


@dataclasses.dataclass
class Family:
    """What one family's job hands back: its final checkpoint, scores, image-shuffle check and phase times."""

    checkpoint: Path
    results: list[Result]
    shuffle: ShuffleCheck
    seconds: dict[str, float]


def family(name: str, cfg: Config, out: Path, data: Path, samples: int) -> Family:
    """Train one family (resuming its last checkpoint), then evaluate it: a job of its own process."""
    from vlit.training.loop import Trainer

    timer = PhaseTimer()
    with timer(f"train {name}"):
        checkpoint = Trainer(cfg, out / name).run(resume=(out / name / "checkpoints").exists())
    with timer(f"evaluate {name}"):
        results, shuffle = _evaluate_family(name, checkpoint, cfg, data, out / "eval", samples)
    return Family(checkpoint, results, shuffle, timer.seconds)


def _steps(cfg: Config) -> int:
    return sum(stage.steps for stage in cfg.stages)


def _benchmark_names(name: str) -> list[str]:
    return list(SPLITS + OWN_SPLITS.get(name, ()))


def _answers(name: str, samples: int) -> int:
    """Answers a family's evaluation writes: every split, the ranked ones again, the baseline's split."""
    return samples * (len(_benchmark_names(name)) + len(RANKED.get(name, ())) + len(BASELINE_SPLITS))


def _progress(name: str, out: Path) -> int:
    """A family's job so far, read from what it writes: its training's last logged step, then its answers."""
    answers = [*(out / "eval" / name).glob("*.predictions.jsonl"),
               *(out / "eval" / f"{name} (untrained connector)").glob("*.predictions.jsonl")]
    return last_step(out / name / "metrics.jsonl") + lines(answers)


def _evaluate_family(name: str, checkpoint: Path, cfg: Config, data: Path, out: Path, samples: int):
    """A trained family on its splits (ranked too where that is its protocol), its untrained baseline, and
    the image-shuffle check."""
    from vlit.evaluation.benchmarks import quickstart_benchmarks
    from vlit.evaluation.image_use import image_shuffle_check
    from vlit.evaluation.runner import evaluate
    from vlit.inference.pipeline import Pipeline
    from vlit.models.build import build_model

    benches = quickstart_benchmarks(data, max_samples=samples, names=_benchmark_names(name))
    benches += [dataclasses.replace(b, name=ranked_name(b.name), mode="rank")
                for b in benches if b.name in RANKED.get(name, ())]
    pipe = Pipeline.from_pretrained(checkpoint, dtype=EVAL_DTYPE)
    results = evaluate({name: pipe}, benches, out, batch_size=EVAL_BATCH)
    shuffle = image_shuffle_check(pipe, _shuffle_rows(cfg, data, pipe), label=f"{name}: image shuffle")
    # The same parts, the connector as initialised, in the trained model's evaluation dtype.
    model, processor = build_model(dataclasses.replace(cfg.model, llm=dataclasses.replace(cfg.model.llm,
                                                                                          dtype=EVAL_DTYPE)))
    baseline = [b for b in benches if b.name in BASELINE_SPLITS]
    results += evaluate({f"{name} (untrained connector)": Pipeline(model, processor)}, baseline, out,
                        batch_size=EVAL_BATCH)
    return results, shuffle


def ranked_name(split: str) -> str:
    return f"{split}-ranked"


def _shuffle_rows(cfg: Config, data: Path, pipe):
    from vlit.config.data import DatasetConfig
    from vlit.data.loading.dataset import load_dataset
    from vlit.data.reading.images import resolve_image_path

    rows = []
    for dataset, count in SHUFFLE_ROWS.items():
        spec = DatasetConfig(name=dataset, path=f"{dataset}/test.json", style=cfg.model.prompt_style)
        loaded = load_dataset(spec, data, image_spec=pipe.processor.image_spec)
        for i in range(min(count, len(loaded))):
            row = loaded.get(i)
            images = [resolve_image_path(ref, loaded.image_root) for ref in row.images]
            rows.append(dataclasses.replace(row, images=images))
    return rows


def _ordered(results):
    """Each family's row, then its baseline's."""
    order = {label: i for i, label in enumerate(
        label for name in RECIPES for label in (name, f"{name} (untrained connector)"))}
    return sorted(results, key=lambda r: order.get(r.checkpoint, len(order)))
