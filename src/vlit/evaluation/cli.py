"""`vlit eval --checkpoint DIR [DIR ...] --benchmarks NAME_OR_FILE ... --out DIR`."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import get_args

from vlit.config.model import StyleName


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="vlit eval", description="Score checkpoints on benchmarks; one table, held-in and held-out.")
    parser.add_argument("--checkpoint", nargs="+", default=[], type=Path,
                        help="checkpoint folder(s); several give one table side by side")
    parser.add_argument("--predictions", nargs="+", default=[], metavar="NAME=FILE",
                        help="score answers produced elsewhere (LLaVA's answers JSONL, {question_id, text}, or "
                             "vlit's predictions) for the benchmark NAME; no model runs")
    parser.add_argument("--benchmarks", nargs="+", default=[],
                        help="NAME=PATH for one of the papers' benchmarks (see --list), a quickstart build folder, "
                             "a benchmark YAML list, or a dataset file")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--list", action="store_true", help="print the benchmarks vlit knows (NAME=PATH) and exit")
    parser.add_argument("--judge-url", default=None,
                        help="an OpenAI-compatible API (https://api.openai.com/v1, a local vLLM server) whose model "
                             "scores the open-ended benchmarks (llava_bench, mmvet) with their published prompts; "
                             "without it their answers are written and the table says unscored")
    parser.add_argument("--judge-model", default=None,
                        help="the judge model (the papers: gpt-4-0314 for LLaVA-Bench, gpt-4-0613 for MM-Vet)")
    parser.add_argument("--judge-key-env", default="OPENAI_API_KEY",
                        help="environment variable holding the judge API's key (default OPENAI_API_KEY; unset: "
                             "no key is sent)")
    parser.add_argument("--max-samples", type=int, default=None, help="first N samples of each benchmark")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--mode", choices=["generate", "rank"], default=None,
                        help="override every benchmark's mode (rank: constrained answers for classification "
                             "and multiple choice)")
    parser.add_argument("--style", choices=[*get_args(StyleName), "as_is"], default=None,
                        help="prompt style (default: the one each checkpoint's model config names, prompt_style)")
    args = parser.parse_args(argv)
    if args.list:
        from vlit.evaluation.suites.listing import suites_table

        print(suites_table(), end="")
        return 0
    if not args.benchmarks or args.out is None:
        parser.error("the following arguments are required: --benchmarks, --out (or --list)")
    logging.basicConfig(level=logging.WARNING, format="vlit eval: %(levelname)s: %(message)s")
    from vlit.evaluation.benchmarks import resolve_benchmarks
    from vlit.evaluation.report import write_report
    from vlit.evaluation.runner import evaluate

    judge = _judge(parser, args)
    benchmarks = resolve_benchmarks(args.benchmarks, args.max_samples)
    if not args.checkpoint and not args.predictions:
        parser.error("give --checkpoint (run a model) or --predictions (score answers made elsewhere)")
    if args.predictions:
        from vlit.evaluation.runner import score_predictions

        by_name = {b.name: b for b in benchmarks}
        results = []
        for item in args.predictions:
            name, sep, file = item.partition("=")
            if not sep or name not in by_name:
                parser.error(f"--predictions {item}: expected NAME=FILE with NAME one of --benchmarks "
                             f"({', '.join(by_name)})")
            results += score_predictions(Path(file).stem, by_name[name], Path(file), args.out, judge)
        table = write_report(results, args.out)
        print(table.read_text())
        return 0
    if args.mode:
        for bench in benchmarks:
            bench.mode = args.mode
    labels = _labels(args.checkpoint)
    results = evaluate(dict(zip(labels, args.checkpoint, strict=True)), benchmarks, args.out, args.batch_size,
                       args.style, judge)
    table = write_report(results, args.out)
    print(table.read_text())
    print(f"predictions and metrics: {args.out}/<checkpoint>/\ntable: {table}")
    return 0


def _judge(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The judge model of `--judge-url` / `--judge-model` (both or neither), its key from the environment."""
    if args.judge_url is None and args.judge_model is None:
        return None
    if args.judge_url is None or args.judge_model is None:
        parser.error("--judge-url and --judge-model go together")
    from vlit.evaluation.judge import Judge

    return Judge(args.judge_url, args.judge_model, os.environ.get(args.judge_key_env) or None)


def _labels(folders: list[Path]) -> list[str]:
    """Short unique names: the folder name, or its parent's when that is generic (`run/model`)."""
    labels = [f.parent.name if f.name in ("model", "final") and f.parent.name else f.name for f in folders]
    return [label if labels.count(label) == 1 else f"{label}-{i}" for i, label in enumerate(labels)]
