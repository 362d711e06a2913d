"""The scripted server, driven by the official `openai` client over real HTTP."""
import json

import openai
import pytest

from tests.support.scripted_openai import Reply, ScriptedOpenAIServer, ToolCall


def _client(server: ScriptedOpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0, timeout=10)


def test_models_and_text_reply():
    with ScriptedOpenAIServer(["Hello there"], model="m1") as server:
        client = _client(server)
        assert [m.id for m in client.models.list()] == ["m1"]
        reply = client.chat.completions.create(model="m1", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Hello there"
        assert reply.choices[0].finish_reason == "stop"
        assert server.chat_requests[0]["messages"] == [{"role": "user", "content": "hi"}]
        assert server.base_url.endswith("/v1")


def test_tool_calls_non_stream_and_request_recording():
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    with ScriptedOpenAIServer([[ToolCall("add", {"a": 1, "b": 2})], "3"]) as server:
        client = _client(server)
        first = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "1+2"}],
                                               tools=tools)
        call = first.choices[0].message.tool_calls[0]
        assert first.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "add" and json.loads(call.function.arguments) == {"a": 1, "b": 2}
        second = client.chat.completions.create(model="m", messages=[
            {"role": "user", "content": "1+2"},
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "3"},
        ])
        assert second.choices[0].message.content == "3"
        assert server.chat_requests[0]["tools"] == tools
        assert server.chat_requests[1]["messages"][-1]["tool_call_id"] == call.id


def test_stream_text_and_tool_calls():
    reply = Reply(content="Let me look at the file first.", tool_calls=[ToolCall("read_file", {"path": "a.py"})])
    with ScriptedOpenAIServer([reply]) as server:
        stream = _client(server).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True,
            stream_options={"include_usage": True})
        text, arguments, names, finish, usage, chunks = "", "", [], None, None, 0
        for chunk in stream:
            chunks += 1
            usage = chunk.usage or usage
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            text += delta.content or ""
            for call in delta.tool_calls or []:
                names += [call.function.name] if call.function.name else []
                arguments += call.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
        assert text == "Let me look at the file first."
        assert names == ["read_file"] and json.loads(arguments) == {"path": "a.py"}
        assert finish == "tool_calls" and usage is not None and chunks > 5


def test_callable_script_and_completions_endpoint():
    def script(body):
        return f"echo:{body.get('prompt', '')}"

    with ScriptedOpenAIServer(script) as server:
        client = _client(server)
        assert client.completions.create(model="m", prompt="abc").choices[0].text == "echo:abc"
        streamed = "".join(c.choices[0].text for c in client.completions.create(model="m", prompt="xyz",
                                                                               stream=True))
        assert streamed == "echo:xyz"
        assert [path for path, _ in server.requests] == ["/v1/completions", "/v1/completions"]


def test_scripted_errors_and_exhaustion():
    with ScriptedOpenAIServer([Reply(status=503, content="busy")]) as server:
        client = _client(server)
        with pytest.raises(openai.InternalServerError, match="busy"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.InternalServerError, match="script exhausted"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
