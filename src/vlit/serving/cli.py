"""`vlit serve` (the OpenAI-compatible API server) and `vlit demo` (the web page, Gradio imported only there)."""

from __future__ import annotations

import argparse
import os

from vlit.errors import VlitError
from vlit.inference.cli import add_checkpoint_args, add_generation_args, generation_options, load_pipeline
from vlit.serving.settings import MIB, ServerSettings

# ---- vlit serve --------------------------------------------------------------------------------------------


def serve_parser() -> argparse.ArgumentParser:
    defaults = ServerSettings()
    parser = argparse.ArgumentParser(prog="vlit serve", description=(
        "Serve a checkpoint through an OpenAI-compatible API (POST /v1/chat/completions, GET /v1/models, "
        "GET /health). Concurrent requests are decoded in one running batch (continuous batching)."))
    add_checkpoint_args(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model-name", help="the model id clients send (default: the checkpoint folder's name)")
    parser.add_argument("--api-key", default=os.environ.get("VLIT_API_KEY"),
                        help="require 'Authorization: Bearer KEY' (default: $VLIT_API_KEY; none: no key)")
    limits = parser.add_argument_group("batching and limits")
    limits.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size,
                        help="answers decoded at once; a request joins the running batch at the next step")
    limits.add_argument("--static-batching", action="store_true",
                        help="start a batch only when the previous one has finished (the older policy)")
    limits.add_argument("--batch-wait-ms", type=float, default=defaults.batch_wait_ms,
                        help="with --static-batching: how long a request may wait for others to share its batch")
    limits.add_argument("--prefix-cache-size", type=int, default=defaults.prefix_cache_size,
                        help="finished answers whose KV cache is kept for the conversation's next turn")
    limits.add_argument("--max-queue", type=int, default=defaults.max_queue,
                        help="waiting requests beyond this get 503")
    limits.add_argument("--max-tokens-limit", type=int, default=defaults.max_tokens_limit,
                        help="largest max_tokens a request may ask for")
    limits.add_argument("--default-max-tokens", type=int, default=None,
                        help=f"max_tokens when a request gives none (default: {defaults.default_max_tokens}, "
                             "or the limit if lower)")
    limits.add_argument("--max-prompt-tokens", type=int, default=defaults.max_prompt_tokens,
                        help="longest prompt, images included (the model's context length applies besides)")
    limits.add_argument("--max-prompt-chars", type=int, default=None,
                        help="characters of text over all messages, checked before tokenizing (default: 16 per "
                             "token of --max-prompt-tokens)")
    limits.add_argument("--max-stop-chars", type=int, default=defaults.max_stop_chars,
                        help="longest stop string a request may send")
    limits.add_argument("--max-images", type=int, default=defaults.max_images, help="images per request")
    limits.add_argument("--max-image-pixels", type=int, default=defaults.max_image_pixels)
    limits.add_argument("--max-image-mb", type=float, default=defaults.max_image_bytes / MIB)
    limits.add_argument("--max-body-mb", type=float, default=defaults.max_body_bytes / MIB)
    limits.add_argument("--allow-image-host", action="append", default=[], metavar="HOST",
                        help="fetch http(s) image URLs from this host (repeatable; default: refuse all)")
    limits.add_argument("--image-fetch-timeout", type=float, default=defaults.image_fetch_timeout_s,
                        metavar="SECONDS", help="the whole fetch of one remote image, first byte to last")
    return parser


def serve_settings(args: argparse.Namespace) -> ServerSettings:
    """The server's limits from `vlit serve`'s arguments (a VlitError names a bad one)."""
    default_max_tokens = args.default_max_tokens or min(ServerSettings.default_max_tokens, args.max_tokens_limit)
    return ServerSettings(
        model_name=args.model_name or args.checkpoint.resolve().name, api_key=args.api_key,
        max_batch_size=args.max_batch_size, static_batching=args.static_batching,
        batch_wait_ms=args.batch_wait_ms, prefix_cache_size=args.prefix_cache_size, max_queue=args.max_queue,
        max_body_bytes=int(args.max_body_mb * MIB), max_image_bytes=int(args.max_image_mb * MIB),
        max_image_pixels=args.max_image_pixels, max_images=args.max_images,
        max_tokens_limit=args.max_tokens_limit, default_max_tokens=default_max_tokens,
        max_prompt_tokens=args.max_prompt_tokens, max_prompt_chars=args.max_prompt_chars,
        max_stop_chars=args.max_stop_chars, allowed_image_hosts=tuple(args.allow_image_host),
        image_fetch_timeout_s=args.image_fetch_timeout)


def serve_main(argv: list[str]) -> int:
    args = serve_parser().parse_args(argv)
    if not 0 < args.port < 65536:
        raise VlitError(f"--port: must be in 1..65535, got {args.port}")
    settings = serve_settings(args)  # bad limits fail before the model loads

    import uvicorn

    from vlit.serving.api import create_app

    uvicorn.run(create_app(load_pipeline(args), settings), host=args.host, port=args.port, log_level="info")
    return 0


# ---- vlit demo ---------------------------------------------------------------------------------------------


def demo_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlit demo", description=(
        "A web page (Gradio) to upload an image, chat about it in several turns with streamed answers, pick a "
        "MiniGPT-v2 task and see the boxes of the answer drawn on the image. Works offline: no analytics, no "
        "share link, no web fonts."))
    add_checkpoint_args(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=7860)
    add_generation_args(parser)
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        raise VlitError(f"--port: must be in 1..65535, got {args.port}")

    from vlit.inference.options import GenerationOptions

    generation = generation_options(args)
    options = GenerationOptions.make(**generation)  # a bad option fails before the model loads
    if options.num_beams > 1:
        raise VlitError("--num-beams: the demo streams its answers; beam search cannot stream")
    # Read by gradio when it starts: no telemetry and no version check, so the demo never goes online.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        from vlit.serving.demo import build_demo, launch
    except ModuleNotFoundError as e:
        if (e.name or "").partition(".")[0] != "gradio":
            raise
        raise VlitError("the web demo needs gradio: pip install 'vlit[serve]'") from None

    pipe = load_pipeline(args)
    demo = build_demo(pipe, generation, title=f"vlit demo: {args.checkpoint.resolve().name}")
    launch(demo, args.host, args.port)
    return 0
