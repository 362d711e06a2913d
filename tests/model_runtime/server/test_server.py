"""The real server process (`python -m model_runtime serve`, MTP speculation on) driven with the
official openai client: chat, streaming, tools, response_format, completions, errors, metrics,
32 parallel streams and client disconnects."""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import jsonschema
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from model_runtime.tokenizer import load_tokenizer
from model_runtime.tool_calls import CALLS_BEGIN
from tests.model_runtime.server.conftest import MAX_MODEL_LEN, MODEL_NAME, client_for, start_server, stop_server

pytestmark = pytest.mark.timeout(300)

MESSAGES = [{"role": "user", "content": "What is the weather in Paris, and what is 2 + 3?"}]
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24},
                                                         "unit": {"enum": ["celsius", "fahrenheit"]}},
                       "required": ["city", "unit"]}}},
    {"type": "function", "function": {
        "name": "add", "description": "Add two integers",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 1000},
                                                         "b": {"type": "integer", "minimum": 0, "maximum": 1000}},
                       "required": ["a", "b"]}}},
]
PARAMETERS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}
PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 16},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "height": {"type": "number"},
        "member": {"type": "boolean"},
        "role": {"enum": ["admin", "user", "guest"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3},
        "manager": {"type": ["string", "null"], "maxLength": 8},
    },
    "required": ["name", "age", "height", "member", "role", "tags", "manager"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server(server_checkpoint, tmp_path_factory):
    running = start_server(server_checkpoint, tmp_path_factory.mktemp("server-log") / "server.log",
                           "--speculative-tokens", "1")
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def client(server):
    return client_for(server)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def metrics(server) -> dict[str, float]:
    """Samples of /metrics by name (labels folded into the name as name{k=v,...})."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def wait_idle(server, timeout: float = 20.0) -> dict[str, float]:
    """Metrics once no request runs or waits and no KV block is held."""
    deadline = time.monotonic() + timeout
    while True:
        values = metrics(server)
        idle = (values["model_runtime_num_requests_running"] == 0 and values["model_runtime_num_requests_waiting"] == 0
                and values["model_runtime_kv_blocks_used"] == 0)
        if idle or time.monotonic() > deadline:
            return values
        time.sleep(0.2)


def test_models_and_health(server, client):
    assert httpx.get(f"{server.base_url}/health").json() == {"status": "ok", "pid": server.process.pid}
    models = client.models.list().data
    assert [m.id for m in models] == [MODEL_NAME]
    assert models[0].max_model_len == MAX_MODEL_LEN


def test_plain_chat_reports_usage(client, tokenizer):
    response = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, max_tokens=8, temperature=0,
                                              extra_body={"ignore_eos": True})
    choice = response.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason == "length"
    assert response.usage.prompt_tokens == len(tokenizer.encode_chat(MESSAGES))
    assert response.usage.completion_tokens == 8
    assert response.usage.total_tokens == response.usage.prompt_tokens + 8


def test_streaming_equals_whole_response_and_ends_with_usage(client):
    kwargs = dict(model=MODEL_NAME, messages=MESSAGES, max_tokens=12, temperature=0, extra_body={"ignore_eos": True})
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_logprobs(client):
    response = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, max_tokens=4, temperature=0,
                                              logprobs=True, top_logprobs=3, extra_body={"ignore_eos": True})
    content = response.choices[0].logprobs.content
    assert len(content) == 4
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3
        assert entry.logprob == pytest.approx(max(t.logprob for t in entry.top_logprobs), abs=1e-4)  # greedy


def _check_call(call) -> None:
    assert call.type == "function" and call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), PARAMETERS[call.function.name])


@pytest.mark.parametrize("temperature, parallel", [(0.0, False), (1.0, True)])
def test_tool_choice_required_yields_valid_calls(client, temperature, parallel):
    response = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, tools=TOOLS, tool_choice="required",
                                              parallel_tool_calls=parallel, max_tokens=200, temperature=temperature,
                                              seed=7)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message
    assert choice.message.tool_calls and (parallel or len(choice.message.tool_calls) == 1)
    for call in choice.message.tool_calls:
        _check_call(call)


def test_named_tool_choice_streams_one_call(client):
    stream = client.chat.completions.create(
        model=MODEL_NAME, messages=MESSAGES, tools=TOOLS, max_tokens=200, temperature=0, stream=True,
        tool_choice={"type": "function", "function": {"name": "add"}})
    chunks = list(stream)
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) == 1 and deltas[0].index == 0 and deltas[0].function.name == "add"
    _check_call(deltas[0])
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert CALLS_BEGIN not in "".join(c.choices[0].delta.content or "" for c in chunks)


def test_tool_choice_none_and_auto_return_content(client):
    for choice in ("none", "auto"):
        response = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, tools=TOOLS, tool_choice=choice,
                                                  max_tokens=6, temperature=0)
        assert response.choices[0].message.tool_calls is None
        assert response.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_response_format_json_object(client, temperature):
    for seed in range(3):
        response = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, max_tokens=256, seed=seed,
                                                  temperature=temperature, response_format={"type": "json_object"})
        assert response.choices[0].finish_reason == "stop"
        assert isinstance(json.loads(response.choices[0].message.content), dict)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_response_format_json_schema(client, temperature):
    response_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True}}
    for seed in range(3):
        stream = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, max_tokens=256, seed=seed,
                                                temperature=temperature, response_format=response_format, stream=True)
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(text), PERSON_SCHEMA)


def test_completions_text_and_token_prompts(client, tokenizer):
    prompt = "The capital of France is"
    by_text = client.completions.create(model=MODEL_NAME, prompt=prompt, max_tokens=6, temperature=0, logprobs=2,
                                        extra_body={"ignore_eos": True})
    ids = tokenizer.encode(prompt, add_bos=True)
    by_ids = client.completions.create(model=MODEL_NAME, prompt=ids, max_tokens=6, temperature=0,
                                       extra_body={"ignore_eos": True})
    assert by_text.choices[0].text == by_ids.choices[0].text and by_text.choices[0].text
    assert by_text.usage.prompt_tokens == len(ids) and by_text.usage.completion_tokens == 6
    assert len(by_text.choices[0].logprobs.tokens) == 6
    assert all(len(top) == 2 for top in by_text.choices[0].logprobs.top_logprobs)
    streamed = list(client.completions.create(model=MODEL_NAME, prompt=prompt, max_tokens=6, temperature=0,
                                              stream=True, extra_body={"ignore_eos": True}))
    assert "".join(c.choices[0].text for c in streamed) == by_text.choices[0].text
    assert streamed[-1].choices[0].finish_reason == "length"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"temperature": 5}, "temperature"),
    ({"n": 0}, "n"),
    ({"presence_penalty": 2.5}, "presence_penalty"),
    ({"logit_bias": {"abc": 1}}, "logit_bias keys must be token ids"),
    ({"logit_bias": {"5": 150}}, "logit_bias values"),
    ({"logit_bias": {"999999999": 1}}, "logit_bias token ids"),
    ({"extra_body": {"min_tokens": 9}}, "min_tokens"),
    ({"extra_body": {"repetition_penalty": 0}}, "repetition_penalty"),
    ({"extra_body": {"chat_template_kwargs": {"messages": []}}}, "chat_template_kwargs"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": MAX_MODEL_LEN}, "maximum context length"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
    ({"tool_choice": "required"}, "tools"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "nope"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object",
      "properties": {"a": {"$ref": "#/nowhere"}}}}}}, "json_schema"),
    ({"stop": [""]}, "stop"),
])
def test_bad_parameters_are_400(client, kwargs, fragment):
    request = {"model": MODEL_NAME, "messages": MESSAGES, "max_tokens": 4, **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**request)
    error = caught.value.body
    assert caught.value.status_code == 400 and fragment in error["message"], error
    assert error["type"] == "invalid_request_error"


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-nothing", messages=MESSAGES)
    assert caught.value.body["code"] == "model_not_found" and "gpt-nothing" in caught.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-nothing", prompt="hi")


def test_prompt_longer_than_context_is_400(client):
    long_text = "hello " * (MAX_MODEL_LEN + 50)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": long_text}])
    assert "maximum context length" in caught.value.body["message"] and caught.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=MODEL_NAME, prompt=[5] * (MAX_MODEL_LEN + 1))
    assert "maximum context length" in caught.value.body["message"] and caught.value.body["param"] == "prompt"
    assert caught.value.body["code"] == "context_length_exceeded"


@pytest.mark.parametrize("body", [b'{"model": ', b"[]", b'{"model": "tiny-deepseek"}', b"\xff\xfe"])
def test_malformed_bodies_are_400_not_500(server, body):
    for path in ("/v1/chat/completions", "/v1/completions"):
        response = httpx.post(f"{server.base_url}{path}", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def _post_json(http: httpx.Client, path: str, payload: dict) -> httpx.Response:
    """POST with json.dumps' ASCII escapes, so a lone surrogate travels as the six characters \\ud800."""
    return http.post(path, content=json.dumps(payload), headers={"content-type": "application/json"})


def test_lone_surrogate_is_400_and_the_connection_stays_usable(server):
    """Once a TypeError in the tokenizer that dropped the keep-alive connection."""
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        for path, payload in [
            ("/v1/chat/completions", {"model": MODEL_NAME, "messages": [{"role": "user", "content": "a\ud800b"}]}),
            ("/v1/completions", {"model": MODEL_NAME, "prompt": "\udfff", "max_tokens": 2}),
            ("/v1/chat/completions", {"model": MODEL_NAME, "messages": [{"role": "user", "content": "hi"}],
                                      "stop": ["\ud800"]}),
        ]:
            response = _post_json(http, path, payload)
            assert response.status_code == 400, response.text
            assert "surrogate" in response.json()["error"]["message"]
        good = _post_json(http, "/v1/chat/completions", {"model": MODEL_NAME, "max_tokens": 2,
                                                         "messages": [{"role": "user", "content": "hi"}]})
        assert good.status_code == 200, good.text


def test_deeply_nested_tool_schema_is_400(server):
    """A 200-deep `parameters` schema with tool_choice "required" raised PydanticSerializationError."""
    schema: dict = {"type": "string"}
    for _ in range(200):
        schema = {"type": "object", "properties": {"x": schema}}
    payload = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "hi"}], "tool_choice": "required",
               "tools": [{"type": "function", "function": {"name": "deep", "parameters": schema}}]}
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        response = _post_json(http, "/v1/chat/completions", payload)
    assert response.status_code == 400, response.text
    assert "deeper than 64 levels" in response.json()["error"]["message"]


def test_body_over_the_limit_is_413_before_parsing(server):
    content = "x" * (5 << 20)  # over the default --max-body-bytes 4M
    payload = {"model": MODEL_NAME, "messages": [{"role": "user", "content": content}]}
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        declared = _post_json(http, "/v1/chat/completions", payload)
        body = json.dumps(payload).encode()
        chunked = http.post("/v1/completions", headers={"content-type": "application/json"},
                            content=(body[i : i + 65536] for i in range(0, len(body), 65536)))
    for response in (declared, chunked):
        assert response.status_code == 413, response.text[:200]
        assert "the limit is 4194304 bytes" in response.json()["error"]["message"]


def test_out_of_vocab_token_ids_are_400(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=MODEL_NAME, prompt=[1, 10**9], max_tokens=2)
    assert "token ids" in caught.value.body["message"]


def test_parallel_streams_all_finish_and_free_every_block(server):
    async def one(client: openai.AsyncOpenAI, i: int) -> tuple[str, str | None, int]:
        stream = await client.chat.completions.create(
            model=MODEL_NAME, messages=[{"role": "user", "content": f"story number {i}"}], max_tokens=24,
            temperature=1.0, seed=i, stream=True, stream_options={"include_usage": True},
            extra_body={"ignore_eos": True})
        text, finish, usage = "", None, 0
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage.completion_tokens
        return text, finish, usage

    async def run():
        async with openai.AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0,
                                      timeout=240) as client:
            return await asyncio.gather(*(one(client, i) for i in range(32)))

    before = metrics(server)["model_runtime_generation_tokens_total"]
    results = asyncio.run(run())
    assert [finish for _, finish, _ in results] == ["length"] * 32
    assert [usage for _, _, usage in results] == [24] * 32
    values = wait_idle(server)
    assert values["model_runtime_kv_blocks_used"] == 0
    assert values["model_runtime_kv_blocks_free"] == values["model_runtime_kv_blocks_total"] > 0
    assert values["model_runtime_generation_tokens_total"] - before == 32 * 24


def test_client_disconnect_aborts_the_request(server):
    before = metrics(server)["model_runtime_generation_tokens_total"]
    body = {"model": MODEL_NAME, "messages": MESSAGES, "max_tokens": 400, "stream": True, "ignore_eos": True}
    with httpx.Client(timeout=60) as http, http.stream("POST", f"{server.base_url}/v1/chat/completions",
                                                      json=body) as response:
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]
    assert any(line.startswith("data: ") for line in received)
    values = wait_idle(server)
    assert values["model_runtime_num_requests_running"] == 0 and values["model_runtime_kv_blocks_used"] == 0
    assert values["model_runtime_generation_tokens_total"] - before < 400


def test_metrics_cover_requests_tokens_latency_and_drafts(server, client):
    client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, max_tokens=8, temperature=0,
                                   extra_body={"ignore_eos": True})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, temperature=3)
    values = metrics(server)
    assert values["model_runtime_http_requests_total{endpoint=/v1/chat/completions,status=200}"] >= 1
    assert values["model_runtime_http_requests_total{endpoint=/v1/chat/completions,status=400}"] >= 1
    assert values["model_runtime_prompt_tokens_total"] > 0 and values["model_runtime_generation_tokens_total"] >= 8
    assert values["model_runtime_time_to_first_token_seconds_count"] >= 1
    assert values["model_runtime_inter_token_latency_seconds_count"] >= 7
    assert values["model_runtime_kv_cache_bytes_per_token"] > 0
    assert values["model_runtime_spec_decode_draft_tokens_total"] > 0
    assert 0 <= values["model_runtime_spec_decode_accepted_tokens_total"] <= values[
        "model_runtime_spec_decode_draft_tokens_total"]
