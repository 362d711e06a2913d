"""Print or start the `vllm serve` command for DeepSeek-V3, built from Settings.

    python -m app.backends.vllm_launcher            # print the command
    python -m app.backends.vllm_launcher --exec     # replace this process with it

Settings used (env vars): VLLM_MODEL, VLLM_TENSOR_PARALLEL_SIZE, VLLM_PIPELINE_PARALLEL_SIZE,
VLLM_DATA_PARALLEL_SIZE, VLLM_ENABLE_EXPERT_PARALLEL, VLLM_SPECULATIVE_TOKENS (MTP draft tokens),
VLLM_MAX_MODEL_LEN, VLLM_CHAT_TEMPLATE, VLLM_PORT, MODEL_NAME, MODEL_API_KEY.
"""
import argparse
import json
import os
import shlex
import shutil
import sys

from app.core.config import ModelBackendKind, Settings


def vllm_command(settings: Settings) -> list[str]:
    """`vllm serve` with TP/PP/DP/EP, MTP speculative decoding and the DeepSeek-V3 tool parser."""
    served_name = settings.model_name if settings.model_backend is ModelBackendKind.vllm else settings.vllm_model
    cmd = [
        "vllm", "serve", settings.vllm_model,
        "--host", "0.0.0.0",
        "--port", str(settings.vllm_port),
        "--served-model-name", served_name,
        "--tensor-parallel-size", str(settings.vllm_tensor_parallel_size),
        "--max-model-len", str(settings.vllm_max_model_len),
        "--trust-remote-code",
        "--enable-auto-tool-choice",
        "--tool-call-parser", "deepseek_v3",
    ]
    if settings.vllm_pipeline_parallel_size > 1:
        cmd += ["--pipeline-parallel-size", str(settings.vllm_pipeline_parallel_size)]
    if settings.vllm_data_parallel_size > 1:
        cmd += ["--data-parallel-size", str(settings.vllm_data_parallel_size)]
    if settings.vllm_enable_expert_parallel:
        cmd.append("--enable-expert-parallel")
    if settings.vllm_speculative_tokens > 0:
        spec = {"method": "deepseek_mtp", "num_speculative_tokens": settings.vllm_speculative_tokens}
        cmd += ["--speculative-config", json.dumps(spec)]
    if settings.vllm_chat_template:
        cmd += ["--chat-template", settings.vllm_chat_template]
    if settings.model_api_key:
        cmd += ["--api-key", settings.model_api_key]
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exec", action="store_true", help="run the command instead of printing it")
    args = parser.parse_args(argv)
    cmd = vllm_command(Settings())
    if not args.exec:
        print(shlex.join(cmd))
        return 0
    if shutil.which("vllm") is None:
        print("error: `vllm` is not installed here; run the printed command on a GPU host "
              "or use the `model` service of docker-compose.yml", file=sys.stderr)
        return 2
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main())
