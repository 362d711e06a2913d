"""`python -m model_runtime serve`: load the engine, serve the OpenAI-compatible API with uvicorn."""
from __future__ import annotations

import argparse
import logging
import re
import sys
from contextlib import nullcontext
from pathlib import Path

from model_runtime.chat_formats import CHAT_FORMATS

SIZE_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def byte_size(text: str) -> int:
    """`1073741824`, `512M`, `2G`, `1.5GiB` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size in bytes: {text!r} (examples: 268435456, 512M, 2G)")
    size = int(float(match.group(1)) * SIZE_SUFFIXES[match.group(2).upper()])
    if size < 1:
        raise argparse.ArgumentTypeError("the size must be positive")
    return size


def served_name(model: str) -> str:
    """The default served name: the checkpoint directory's name (`models/deepseek-v3-tiny/` ->
    `deepseek-v3-tiny`), as the app's MODEL_NAME defaults to MODEL_PATH's."""
    return Path(model).name or model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint directory (HF layout)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name",
                        help="the `model` clients send (default: the checkpoint directory's name)")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--speculative-tokens", type=int, default=0, help="MTP draft tokens per step (0: off)")
    parser.add_argument("--max-model-len", type=int, help="context length (default: the model's)")
    parser.add_argument("--kv-cache-memory", type=byte_size, help="KV cache budget in bytes (512M, 2G, ...)")
    parser.add_argument("--max-num-seqs", type=int, help="requests decoded together at most")
    parser.add_argument("--seed", type=int, default=0, help="seed of requests that give none")
    parser.add_argument("--max-body-bytes", type=byte_size, default="4M",
                        help="largest request body accepted; larger ones are a 413 before parsing (default 4M)")
    parser.add_argument("--num-threads", type=int, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="torch device of the weights and the KV cache (cpu, cuda, cuda:1)")
    parser.add_argument("--enforce-eager", action="store_true",
                        help="no captured (compiled) decode step: every forward runs eagerly")
    parser.add_argument("--compile-cache-dir", help="Inductor's on-disk cache of compiled decode steps, kept between runs")
    parser.add_argument("--keep-fp8", action="store_true",
                        help="FP8 checkpoints: keep the block-scaled weights FP8 in memory (~1 byte a weight)")
    parser.add_argument("--warmup", action="store_true",
                        help="compile the decode step of every batch bucket before serving, not at first use")
    parser.add_argument("--chat-format", choices=sorted(CHAT_FORMATS),
                        help="use this family's bundled chat template (default: the checkpoint's, format detected)")
    parser.add_argument("--reasoning-parser", default="deepseek_r1", choices=["deepseek_r1", "none"],
                        help="deepseek_r1: <think>...</think> becomes reasoning_content; none: it stays in content")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; a model that cannot be loaded is a message and exit status 2."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with compile_cache(args.compile_cache_dir):
        return _serve(args)


def compile_cache(directory: str | None):
    """Inductor's on-disk cache of compiled steps in `directory` while serving (None: Inductor's
    default). Torch's own switch for it, which sets and restores the variable Inductor reads."""
    if directory is None:
        return nullcontext()
    from torch._inductor.runtime.cache_dir_utils import temporary_cache_dir

    return temporary_cache_dir(str(Path(directory).resolve()))


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from model_runtime.engine.async_engine import AsyncLLMEngine
    from model_runtime.engine.config import EngineConfig
    from model_runtime.server.app import create_app

    options = {"max_model_len": args.max_model_len, "kv_cache_memory_bytes": args.kv_cache_memory,
               "max_num_seqs": args.max_num_seqs, "num_threads": args.num_threads, "chat_format": args.chat_format,
               "device": args.device, "enforce_eager": args.enforce_eager,
               "warmup": args.warmup,
               "keep_fp8": args.keep_fp8,
               "compile_in_background": True}  # requests never wait for a compile
    try:
        config = EngineConfig(model=args.model, dtype=args.dtype, speculative_tokens=args.speculative_tokens,
                              seed=args.seed, **{k: v for k, v in options.items() if v is not None})
        engine = AsyncLLMEngine.from_config(config)
    except (ValueError, OSError) as exc:  # ConfigError, CheckpointError, TokenizerLoadError included
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app(engine, args.served_model_name or served_name(args.model), args.model,
                         args.reasoning_parser, args.max_body_bytes)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    finally:
        engine.shutdown()
    return 0
