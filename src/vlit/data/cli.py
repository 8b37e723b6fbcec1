"""`vlit data validate | stats | build`: check a dataset file, describe it, or build vlit's own data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vlit.errors import VlitError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlit data", description="Validate, describe and build datasets.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{validate,stats,build}")

    validate = commands.add_parser("validate", help="check every row of a LLaVA JSON/JSONL file")
    validate.add_argument("file", type=Path)
    validate.add_argument("--images", type=Path, default=None, metavar="ROOT",
                          help="folder the rows' image paths are relative to (default: the file's folder)")
    validate.add_argument("--no-open", action="store_true",
                          help="only check that image files exist instead of decoding them")
    validate.set_defaults(run=_validate)

    stats = commands.add_parser("stats", help="rows, turns, images and token counts of a dataset file")
    stats.add_argument("file", type=Path)
    stats.add_argument("--tokenizer", default=None, metavar="NAME_OR_PATH",
                       help="tokenizer to count tokens with (default: the packaged SmolLM2's)")
    stats.set_defaults(run=_stats)

    build = commands.add_parser("build", help="build one of vlit's datasets")
    build.add_argument("name", choices=["quickstart"])
    build.add_argument("--out", type=Path, required=True, metavar="DIR")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--scale", type=float, default=1.0, help="multiplies the number of rows")
    build.set_defaults(run=_build)
    return parser


def _validate(args: argparse.Namespace) -> int:
    from vlit.data.reading.validate import validate_file

    report = validate_file(args.file, args.images, open_images=not args.no_open)
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return 0 if report.ok else 1


def _tokenizer(name: str | None) -> Any:
    # The model stack (torch, transformers) is imported only here: `validate` must stay fast to start.
    from vlit.assets import load_tokenizer
    from vlit.config import LLMConfig

    return load_tokenizer(LLMConfig() if name is None else LLMConfig(tokenizer=name))


def _stats(args: argparse.Namespace) -> int:
    from vlit.data.reading.llava import read_conversations
    from vlit.data.reading.validate import compute_stats

    conversations = read_conversations(args.file)
    print(compute_stats(conversations, _tokenizer(args.tokenizer)).summary())
    return 0


def _build(args: argparse.Namespace) -> int:
    if args.scale <= 0:
        raise VlitError(f"--scale: must be > 0, got {args.scale}")
    from vlit.data.sources.build import build_quickstart

    manifest = build_quickstart(args.out, seed=args.seed, scale=args.scale)
    print(f"built {args.name} in {args.out} (manifest: {args.out / 'manifest.json'})")
    print(f"  {'dataset':<28} {'task':<20} {'split':<9} {'train':>6} {'test':>6}")
    for d in manifest["datasets"]:
        counts = d["counts"]
        print(f"  {d['name']:<28} {d['task']:<20} {d['held'].replace('_', '-'):<9} {counts.get('train', 0):>6} "
              f"{counts.get('test', 0):>6}")
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)
