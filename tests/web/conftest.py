"""A real app process (`python -m app`, SQLite) whose `openai` model backend is a real scripted
OpenAI-compatible HTTP server that answers from the passages it is given, citing one.

Questions steer the script: "please fail" gets an HTTP 400 from the model, "slowly" a long answer
streamed slowly (to press Stop), "code" an answer with a fenced code block; without passages
(plain chat) the model echoes the question. Requests with tools (the coding agent) write the
file named last in the task, then report what the tool said."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app.conftest import AppServer, new_user, start_app, stop_app
from tests.support.scripted_openai import Reply, ScriptedOpenAIServer, ToolCall

_PASSAGE = re.compile(r"^\[(?P<label>[^\]\n]+)\]\n(?P<text>.*?)(?=^\[[^\]\n]+\]\n|\Z)", re.M | re.S)


CODE_ANSWER = "Here is how:\n\n```python\nprint('rent', 900)\n```\n\nThat is **all**."


def agent_reply(request: dict[str, Any]) -> str | Reply | list[ToolCall]:
    task = next(m["content"] for m in request["messages"] if m["role"] == "user")
    last = request["messages"][-1]
    if last["role"] == "tool":
        return f"Finished. The tool said: **{last['content'][:60]}**"
    if "slowly" in task:
        return Reply(content="Let me think about this. " * 300, chunk_delay_s=0.05)
    return [ToolCall("write_file", {"path": task.split()[-1], "content": "print('hi')\n"})]


def grounded_reply(request: dict[str, Any]) -> str | Reply | list[ToolCall]:
    """Answer with the first sentence of the passage sharing most words with the question, cited."""
    if request.get("tools"):
        return agent_reply(request)
    system, question = request["messages"][0]["content"], request["messages"][-1]["content"]
    words = set(re.findall(r"\w+", question.lower()))
    if "please fail" in question:
        return Reply(status=400, content="scripted refusal")
    if "slowly" in words:
        return Reply(content="This answer takes a long time to write. " * 60, chunk_delay_s=0.05)
    if "PASSAGES" not in system:
        return f"You said: {question}"
    passages = [(m.group("label"), " ".join(m.group("text").split())) for m in _PASSAGE.finditer(system)]
    if not passages:
        return "The documents do not say."
    label, text = max(passages, key=lambda p: len(words & set(re.findall(r"\w+", p[1].lower()))))
    sentence = re.split(r"(?<=[.!?])\s", text)[0]
    answer = f"According to the document, {sentence} [{label}]"
    return f"{answer}\n\n{CODE_ANSWER}" if "code" in words else answer


@pytest.fixture(scope="module")
def model_server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(grounded_reply) as server:
        yield server


@pytest.fixture(scope="module")
def app(model_server: ScriptedOpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    tmp = tmp_path_factory.mktemp("web")
    env = {
        "MODEL_BACKEND": "openai",
        "MODEL_BASE_URL": model_server.base_url,
        "MODEL_NAME": "scripted-model",
        "MAX_UPLOAD_BYTES": str(8 * 1024 * 1024),
        "RATE_LIMIT_PER_MINUTE": "600",  # the UI polls while documents index and runs go on
    }
    server = start_app(tmp, f"sqlite:///{tmp / 'app.db'}", env, wait_model=False)
    yield server
    stop_app(server)


@pytest.fixture
def key(app: AppServer) -> str:
    return new_user(app, "reader")


def var_dir(app: AppServer) -> Path:
    return Path(app.settings_env["VAR_DIR"])
