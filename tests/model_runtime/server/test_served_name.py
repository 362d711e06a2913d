"""The README's command: `serve --model models/deepseek-v3-tiny` serves the name `deepseek-v3-tiny`
(the checkpoint directory's name), which the README's next commands pass as `--model`."""
import os
import subprocess
import sys
import time

import httpx
import openai

from tests.model_runtime.server.conftest import REPO_ROOT, free_port


def test_the_default_served_name_is_the_checkpoint_directory_name(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "model_runtime", "serve", "--model", "models/deepseek-v3-tiny/", "--port",
               str(port), "--dtype", "float32", "--log-level", "warning", "--enforce-eager"]
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        card = client.models.list().data[0]
        assert (card.id, card.model_extra["root"]) == ("deepseek-v3-tiny", "models/deepseek-v3-tiny/")
        reply = client.chat.completions.create(model="deepseek-v3-tiny", max_tokens=4,
                                               messages=[{"role": "user", "content": "def f():"}])
        assert reply.choices[0].message.content is not None
    finally:
        process.terminate()
        process.wait(timeout=20)
