"""`vlit <subcommand>`: one dict from subcommand to the function that runs it.

Each subcommand is `main(argv) -> exit code` in its own module, imported only when called so that
`vlit data stats` does not pay for importing the model stack. A `VlitError` anywhere becomes one line on
stderr and exit code 2, never a traceback; so does a write the disk refuses (full, read-only, not allowed)
wherever no closer handler said more.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable

from vlit.disk import disk_trouble
from vlit.errors import VlitError

COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": ("vlit.quickstart:main", "build the default model and show what it does"),
    "train": ("vlit.training.cli:main", "train a recipe's stages (Accelerate: 1 process to many GPUs)"),
    "info": ("vlit.models.cli:info_main", "parameters per part, visual tokens and prompt of a config"),
    "eval": ("vlit.evaluation.cli:main", "score checkpoints on benchmarks (held-in / held-out table)"),
    "import": ("vlit.models.cli:import_main", "a published LLaVA-1.5 / InstructBLIP / BLIP-2 / MiniGPT-v2 "
               "checkpoint as a vlit checkpoint"),
    "export": ("vlit.models.cli:export_main", "export a checkpoint to a LLaVA, InstructBLIP or BLIP-2 folder"),
    "data": ("vlit.data.cli:main", "validate, inspect, build and convert instruction datasets"),
    "ask": ("vlit.inference.cli:ask_main", "answer one question about an image (or rank candidate answers)"),
    "chat": ("vlit.inference.cli:chat_main", "chat about an image in the terminal, streaming the answers"),
    "serve": ("vlit.serving.cli:serve_main", "serve a checkpoint through an OpenAI-compatible API"),
    "demo": ("vlit.serving.cli:demo_main", "a web page (Gradio) to chat with a checkpoint and see its boxes"),
    "reproduce": ("vlit.reproduce.cli:main", "run the papers' ablations in miniature: seeds, intervals, verdicts"),
}


def _load(target: str) -> Callable[[list[str]], int]:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def _usage() -> str:
    lines = ["usage: vlit <command> [args]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    # peft 0.21 calls a transformers helper that transformers 5 renamed: noise for a CLI user, not a problem.
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"vlit: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        return _load(COMMANDS[name][0])(rest)
    except VlitError as e:
        print(f"vlit {name}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        todo = disk_trouble(e)
        if todo is None:
            raise
        print(f"vlit {name}: error: {e.filename or 'a file'}: {e.strerror}; {todo}", file=sys.stderr)
        return 2
    except SystemExit as e:  # argparse's usage errors, so in-process callers get a code too
        return e.code if isinstance(e.code, int) else 2
    except KeyboardInterrupt:
        print(f"vlit {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
