"""OpenAI-API model client against the scripted server over real HTTP: streaming, retries, timeouts."""
import socket

import pytest

from agents.model_client import ChatModel, ModelConfig, ModelError
from tests.support.scripted_openai import Reply, ScriptedOpenAIServer, ToolCall

USER = [{"role": "user", "content": "hi"}]


def _model(server: ScriptedOpenAIServer, **kw) -> ChatModel:
    return ChatModel(ModelConfig(base_url=server.base_url, model="m", **kw))


def test_streams_tokens_and_assembles_tool_calls():
    reply = Reply(content="Reading both files now.",
                  tool_calls=[ToolCall("read_file", {"path": "a.py"}), ToolCall("read_file", {"path": "b.py"})])
    with ScriptedOpenAIServer([reply]) as server:
        tokens = []
        message = _model(server).chat(USER, tools=[{"type": "function", "function": {"name": "read_file"}}],
                                      on_token=tokens.append)
        assert len(tokens) > 1 and "".join(tokens) == "Reading both files now."
        assert message["content"] == "Reading both files now."
        assert [(c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]] == [
            ("read_file", '{"path": "a.py"}'), ("read_file", '{"path": "b.py"}')]
        assert all(c["id"] for c in message["tool_calls"])
        assert server.chat_requests[0]["stream"] is True and server.chat_requests[0]["tools"]


def test_retries_server_errors():
    with ScriptedOpenAIServer([Reply(status=503, content="overloaded"), "fine"]) as server:
        message = _model(server, max_retries=2).chat(USER)
        assert message == {"role": "assistant", "content": "fine"}
        assert len(server.chat_requests) == 2


def test_gives_up_with_a_clear_error():
    with ScriptedOpenAIServer([Reply(status=400, content="bad request: no model")]) as server:
        with pytest.raises(ModelError, match="HTTP 400: bad request: no model"):
            _model(server, max_retries=2).chat(USER)
        assert len(server.chat_requests) == 1  # 4xx is not retried


def test_timeout():
    with ScriptedOpenAIServer([Reply(content="late", delay_s=3)]) as server:
        with pytest.raises(ModelError, match="timed out after 0.5s"):
            _model(server, timeout_s=0.5, max_retries=0).chat(USER)


def test_unreachable_endpoint():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = ChatModel(ModelConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=0))
    with pytest.raises(ModelError, match="cannot reach the model endpoint"):
        model.chat(USER)
