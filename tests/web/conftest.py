"""A real app process (`python -m app`, SQLite) whose `openai` model backend is a real scripted
OpenAI-compatible HTTP server that answers from the passages it is given, citing one."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app.conftest import AppServer, new_user, start_app, stop_app
from tests.support.scripted_openai import ScriptedOpenAIServer

_PASSAGE = re.compile(r"^\[(?P<label>[^\]\n]+)\]\n(?P<text>.*?)(?=^\[[^\]\n]+\]\n|\Z)", re.M | re.S)


def grounded_reply(request: dict[str, Any]) -> str:
    """Answer with the first sentence of the passage sharing most words with the question, cited."""
    system, question = request["messages"][0]["content"], request["messages"][-1]["content"]
    words = set(re.findall(r"\w+", question.lower()))
    passages = [(m.group("label"), " ".join(m.group("text").split())) for m in _PASSAGE.finditer(system)]
    if not passages:
        return "The documents do not say."
    label, text = max(passages, key=lambda p: len(words & set(re.findall(r"\w+", p[1].lower()))))
    sentence = re.split(r"(?<=[.!?])\s", text)[0]
    return f"According to the document, {sentence} [{label}]"


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
    }
    server = start_app(tmp, f"sqlite:///{tmp / 'app.db'}", env, wait_model=False)
    yield server
    stop_app(server)


@pytest.fixture
def key(app: AppServer) -> str:
    return new_user(app, "reader")


def var_dir(app: AppServer) -> Path:
    return Path(app.settings_env["VAR_DIR"])
