"""`vlit reproduce [CLAIM ...] --seeds N --out DIR [--quick]`: train every arm of the claims with every seed on
one quickstart build, score them, and write the report (`DIR/report.md`, a PNG per claim, `results.json`).

An interrupted run continues where it stopped: finished arm-seeds are reused, a training resumes from its last
checkpoint, an evaluation from its last written answer. Arms shared by several claims train once.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import time
from pathlib import Path

from vlit.reproduce.arms import DEFAULT, QUICK, Budget, arm_config, arm_folder, score_arm, train_arm
from vlit.reproduce.claims import CLAIMS, Claim, score_keys, select, wants_curves


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlit reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("claims", nargs="*", help=f"claims by name or number (default: all): {', '.join(CLAIMS)}")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm (0..N-1)")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--quick", action="store_true", help="a few steps and samples: the same code path in "
                        "minutes (what the tests run); its verdicts mean nothing")
    parser.add_argument("--eval-samples", type=int, default=None, help="test samples per split")
    parser.add_argument("--list", action="store_true", help="list the claims and their arms, run nothing")
    return parser


def machine() -> str:
    """The CPU and what the run had of it, for the report."""
    import torch

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    return f"{model}, {os.cpu_count()} cores, torch {torch.__version__} threads {torch.get_num_threads()}"


def run(claims: list[Claim], seeds: list[int], out: Path, budget: Budget) -> Path:
    """Train and score every arm-seed the claims need (reusing finished ones), then write the report."""
    from vlit.data.sources.build import build_quickstart
    from vlit.reproduce.report import analyse, write_report

    start = time.perf_counter()
    data = out / "data"
    if not (data / "manifest.json").exists():
        print(f"building the quickstart data (scale {budget.scale}) in {data}")
        build_quickstart(data, seed=0, scale=budget.scale, progress=False)
    recipes = list(dict.fromkeys(a.recipe for c in claims for a in c.arms))
    print(f"{len(claims)} claims, {len(recipes)} arms x {len(seeds)} seeds ({out / 'arms'})")
    scores: dict[str, dict[int, dict]] = {}
    timings = []
    for n, recipe in enumerate(recipes, 1):
        keys = score_keys(claims, recipe)
        for seed in seeds:
            folder = arm_folder(out, recipe, seed)
            done = "reused" if (folder / "trained.json").exists() else "training"
            print(f"[{n}/{len(recipes)}] {recipe} seed {seed}: {done} ({folder})", flush=True)
            cfg = arm_config(recipe, seed, data, budget)
            trained = train_arm(cfg, folder)
            # The curves cover the last stage, the one the claim is about, from its first checkpoint.
            curves = sum(s.steps or 0 for s in cfg.stages[:-1]) if wants_curves(recipe) else None
            scores.setdefault(recipe, {})[seed] = state = score_arm(folder, keys, data, budget, curves)
            timings.append((recipe, seed, trained, state["seconds"].get("eval", 0.0)))
            print(f"  trained in {trained / 60:.1f} min, scored in {timings[-1][3] / 60:.1f} min", flush=True)
    results = [analyse(c, scores, seeds, budget.resamples) for c in claims]
    minutes = (time.perf_counter() - start) / 60
    slowest = max(timings, key=lambda t: t[2] + t[3])
    each = ", ".join(f"{Path(r).name}/{s} {(a + b) / 60:.1f}" for r, s, a, b in timings)
    header = [
        f"Run: {len(claims)} claims, {len(recipes)} arms x {len(seeds)} seeds (seeds {', '.join(map(str, seeds))}), "
        f"{'--quick' if budget.steps else 'the default budget'}: {budget.eval_samples} test samples per split, "
        f"{budget.length_samples} per answer-length request, curves on {budget.curve_samples} per held-in split; "
        f"intervals from {budget.resamples} bootstrap redraws.",
        f"Machine: {machine()}. This invocation: {minutes:.1f} min (arm-seeds finished earlier are reused, not "
        f"timed again); per arm-seed training + scoring as last run: "
        f"{each} min; "
        f"slowest {slowest[0]} seed {slowest[1]}.",
    ]
    report = write_report(results, out, header)
    print(f"\n{report.read_text()}\nreport: {report}")
    return report


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    claims = select(args.claims)
    if args.list:
        for c in claims:
            arms = "; ".join(f"{a.label}: configs/{a.recipe}.yaml" for a in c.arms)
            print(f"{c.name} ({c.paper}; switch {', '.join(c.switch)})\n  {c.statement}\n  {arms}")
        return 0
    budget = QUICK if args.quick else DEFAULT
    if args.eval_samples is not None:
        budget = dataclasses.replace(budget, eval_samples=args.eval_samples)
    run(claims, list(range(args.seeds)), args.out, budget)
    return 0
