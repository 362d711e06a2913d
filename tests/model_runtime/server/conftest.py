"""A tiny random checkpoint with the real DeepSeek vocabulary, and a real server process on it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
import torch

from model_runtime import DeepseekV3ForCausalLM, ModelConfig
from model_runtime.loader.save import save_checkpoint
from model_runtime.tokenizer import load_tokenizer
from tests.model_runtime.checkpoints import randomize_, tiny_config

REPO_ROOT = Path(__file__).resolve().parents[3]
MODEL_NAME = "tiny-deepseek"
MAX_MODEL_LEN = 512
SERVER_CONFIG = tiny_config(
    vocab_size=129280, hidden_size=32, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=2,
    q_lora_rank=32, kv_lora_rank=32, n_routed_experts=4, num_experts_per_tok=2, n_group=2, topk_group=1,
    num_nextn_predict_layers=1, max_position_embeddings=4096,
)
# Unigram logit bonus by the first character of a token's text (see add_token_prior).
TOKEN_PRIOR = {'"': 8.0, "}": 5.0, "]": 5.0, ",": 5.0}


def add_token_prior(model: DeepseekV3ForCausalLM, bonus: dict[int, float]) -> None:
    """Give each token id in `bonus` a context-independent logit bonus of about that much.

    Hidden dimension 0 of every embedding is set to a large constant, so after the final RMSNorm
    it stays large and positive whatever the context; lm_head column 0 then acts as a unigram
    prior. Favouring tokens that start with a closing quote, bracket or comma makes a random model end
    strings, numbers and containers about as soon as a trained one would, so constrained outputs finish
    within a small max_tokens. Without the grammar mask the output is still gibberish: the mask
    is what makes it valid JSON.
    """
    hidden = model.config.hidden_size
    constant = 4.0
    h0 = constant / (constant / hidden ** 0.5)  # dim 0 after RMSNorm when it dominates the stream
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = constant
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight[:, 0] = 0.0
        for token_id, value in bonus.items():
            model.lm_head.weight[token_id, 0] = value / h0


def write_server_checkpoint(path: Path) -> Path:
    tokenizer = load_tokenizer()
    bonus = {}
    for token_id in range(tokenizer.vocab_size):
        text = tokenizer.decode([token_id])
        if text[:1] in TOKEN_PRIOR:
            bonus[token_id] = TOKEN_PRIOR[text[:1]]
    config = ModelConfig.from_dict(SERVER_CONFIG)
    torch.manual_seed(0)
    model = DeepseekV3ForCausalLM(config)
    randomize_(model, 0)
    add_token_prior(model, bonus)
    return save_checkpoint(model, config, path, dtype=torch.float32)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    base_url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start_server(checkpoint: Path, log_path: Path, *extra: str, timeout: float = 120.0) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "model_runtime", "serve", "--model", str(checkpoint), "--host", "127.0.0.1",
               "--port", str(port), "--served-model-name", MODEL_NAME, "--dtype", "float32",
               "--max-model-len", str(MAX_MODEL_LEN), "--kv-cache-memory", "8M", "--log-level", "warning", "--device", "cpu", "--enforce-eager",
               *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    log_file = log_path.open("w")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError(f"server did not become healthy in {timeout}s:\n{server.log()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def server_checkpoint(tmp_path_factory) -> Path:
    return write_server_checkpoint(tmp_path_factory.mktemp("server-ckpt"))


def client_for(server: Server) -> openai.OpenAI:
    """The official client on a test server (no retries: a failure shows at once)."""
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)
