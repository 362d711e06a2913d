"""The OpenAI (and vLLM) parameters clients send, V3.1 thinking and tool calls, and LangChain's
ChatOpenAI, against a real server process (`--chat-format deepseek_v3_1`) with the official client."""
from __future__ import annotations

import json

import httpx
import jsonschema
import pytest

from model_runtime.tokenizer import load_tokenizer
from model_runtime.tool_calls import CALL_BEGIN, CALLS_BEGIN, TOOL_SEP
from tests.model_runtime.server.conftest import MODEL_NAME, client_for, start_server, stop_server
from tests.model_runtime.server.test_server import MESSAGES, PARAMETERS, TOOLS, metrics

pytestmark = pytest.mark.timeout(300)

THINK_END_ID = 128799  # </think>
EOS_ID = 1
LONG_MESSAGES = [{"role": "user", "content": "Summarise the following notes. " + " ".join(
    f"Note {i}: the meeting moved to room {i * 7}." for i in range(12))}]


@pytest.fixture(scope="module")
def server(server_checkpoint, tmp_path_factory):
    running = start_server(server_checkpoint, tmp_path_factory.mktemp("v31-log") / "server.log",
                           "--chat-format", "deepseek_v3_1")
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def client(server):
    return client_for(server)


@pytest.fixture(scope="module")
def v31():
    return load_tokenizer(chat_format_name="deepseek_v3_1")


def chat(client, **kwargs):
    return client.chat.completions.create(**{"model": MODEL_NAME, "messages": MESSAGES, **kwargs})


def streamed(client, **kwargs) -> tuple[dict[int, str], dict[int, str], dict[int, str], list]:
    """(content, reasoning, finish_reason) by choice index, and the chunks."""
    chunks = list(chat(client, stream=True, **kwargs))
    content: dict[int, str] = {}
    reasoning: dict[int, str] = {}
    finish: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            content[choice.index] = content.get(choice.index, "") + (choice.delta.content or "")
            extra = getattr(choice.delta, "reasoning_content", None)
            if extra:
                reasoning[choice.index] = reasoning.get(choice.index, "") + extra
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    return content, reasoning, finish, chunks


def test_n_choices_share_the_prompt_through_the_prefix_cache(server, client, v31):
    prompt_tokens = len(v31.encode_chat(LONG_MESSAGES))
    before = metrics(server)["model_runtime_prefix_cache_hits_total"]
    response = chat(client, messages=LONG_MESSAGES, n=3, max_tokens=6, temperature=1.0, seed=11,
                    extra_body={"ignore_eos": True})
    hits = metrics(server)["model_runtime_prefix_cache_hits_total"] - before
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert len({c.message.content for c in response.choices}) > 1  # each choice samples on its own
    assert response.usage.prompt_tokens == prompt_tokens and response.usage.completion_tokens == 18
    full_blocks = (prompt_tokens - 1) // 16  # a block is shared once its next token is known too
    assert hits >= 2 * full_blocks * 16 and full_blocks >= 5, (hits, prompt_tokens)
    # streamed: every choice gets its own deltas and finish; same seed, same choices
    content, _, finish, chunks = streamed(client, messages=LONG_MESSAGES, n=3, max_tokens=6, temperature=1.0,
                                          seed=11, extra_body={"ignore_eos": True})
    assert content == {c.index: c.message.content for c in response.choices}
    assert finish == {0: "length", 1: "length", 2: "length"}


def test_seed_per_request_reproduces_and_differs(client):
    kwargs = dict(max_tokens=10, temperature=1.0, extra_body={"ignore_eos": True})
    first = chat(client, seed=5, **kwargs).choices[0].message.content
    assert chat(client, seed=5, **kwargs).choices[0].message.content == first
    assert chat(client, seed=6, **kwargs).choices[0].message.content != first


@pytest.mark.parametrize("penalty", [{"frequency_penalty": 2.0}, {"presence_penalty": 2.0},
                                     {"extra_body": {"repetition_penalty": 2.0, "ignore_eos": True}}])
def test_penalties_break_greedy_repetition(client, penalty):
    plain = chat(client, max_tokens=24, temperature=0, logprobs=True, extra_body={"ignore_eos": True})
    penalised = chat(client, max_tokens=24, temperature=0, logprobs=True,
                     **{"extra_body": {"ignore_eos": True}, **penalty})
    distinct = lambda r: len({t.token for t in r.choices[0].logprobs.content})  # noqa: E731
    assert distinct(penalised) > distinct(plain), (distinct(penalised), distinct(plain))


def test_logit_bias_and_min_tokens(client, v31):
    token = v31.encode(" Paris")
    assert len(token) == 1
    forced = chat(client, max_tokens=5, temperature=0, logit_bias={str(token[0]): 100},
                  extra_body={"ignore_eos": True})
    assert forced.choices[0].message.content == " Paris" * 5
    eos_first = chat(client, max_tokens=20, temperature=0, logit_bias={str(EOS_ID): 100})
    assert eos_first.usage.completion_tokens == 1 and eos_first.choices[0].finish_reason == "stop"
    held = chat(client, max_tokens=20, temperature=0, logit_bias={str(EOS_ID): 100}, extra_body={"min_tokens": 5})
    assert held.usage.completion_tokens == 6 and held.choices[0].finish_reason == "stop"


def test_many_stop_strings_whole_and_streamed(client):
    base = chat(client, max_tokens=30, temperature=0, extra_body={"ignore_eos": True}).choices[0].message.content
    cut = base[8:11]
    expected = base[:base.index(cut)]
    stops = ["never-1", "never-2", cut, "never-3", "never-4", "never-5", "never-6"]
    response = chat(client, max_tokens=30, temperature=0, stop=stops, extra_body={"ignore_eos": True})
    assert response.choices[0].message.content == expected and response.choices[0].finish_reason == "stop"
    content, _, finish, _ = streamed(client, max_tokens=30, temperature=0, stop=stops, extra_body={"ignore_eos": True})
    assert content == {0: expected} and finish == {0: "stop"}


def test_max_completion_tokens_logprobs_and_usage_when_streaming(client):
    response = chat(client, max_completion_tokens=7, temperature=0, logprobs=True, top_logprobs=2,
                    extra_body={"ignore_eos": True})
    assert response.usage.completion_tokens == 7 and len(response.choices[0].logprobs.content) == 7
    chunks = list(chat(client, max_completion_tokens=7, temperature=0, logprobs=True, top_logprobs=2, stream=True,
                       stream_options={"include_usage": True}, extra_body={"ignore_eos": True}))
    streamed_lp = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [(e.token, e.logprob) for e in streamed_lp] == [
        (e.token, pytest.approx(e.logprob, abs=1e-5)) for e in response.choices[0].logprobs.content]
    assert all(len(e.top_logprobs) == 2 for e in streamed_lp)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 7


def test_completions_n_logprobs_and_include_usage(client):
    kwargs = dict(model=MODEL_NAME, prompt="The capital of France is", max_tokens=5, temperature=1.0, seed=3,
                  n=2, logprobs=1, extra_body={"ignore_eos": True})
    whole = client.completions.create(**kwargs)
    assert [c.index for c in whole.choices] == [0, 1] and whole.usage.completion_tokens == 10
    assert all(len(c.logprobs.tokens) == 5 for c in whole.choices)
    chunks = list(client.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    assert texts == {c.index: c.text for c in whole.choices}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10


def test_unknown_fields_are_ignored(client):
    response = chat(client, max_tokens=3, temperature=0, extra_body={
        "a_field_from_the_future": {"x": 1}, "reasoning_effort_v9": "max", "metadata": {"k": "v"}})
    assert response.choices[0].message.content is not None


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v1/chat/completions", 405), ("POST", "/v1/nowhere", 404), ("GET", "/v1/models/x/y", 404),
    ("POST", "/v1/embeddings", 404), ("DELETE", "/v1/models", 405),
])
def test_every_v1_error_has_the_openai_shape(server, method, path, status):
    response = httpx.request(method, f"{server.base_url}{path}", json={"model": MODEL_NAME})
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]


def test_thinking_comes_back_as_reasoning_content(client, v31):
    """V3.1 with thinking on: the text before </think> is the reasoning, the rest the answer, whole
    and streamed; the raw output (the same sampling through /v1/completions) is exactly the two."""
    prompt_ids = v31.encode_chat(MESSAGES, template_kwargs={"thinking": True})
    assert v31.decode(prompt_ids).endswith("<｜Assistant｜><think>")
    found = False
    for seed in range(8):
        kwargs = dict(max_tokens=24, temperature=1.0, seed=seed, logit_bias={str(THINK_END_ID): 10.0})
        raw = client.completions.create(model=MODEL_NAME, prompt=prompt_ids, extra_body={"ignore_eos": True},
                                        **kwargs).choices[0].text
        message = chat(client, extra_body={"chat_template_kwargs": {"thinking": True}, "ignore_eos": True},
                       **kwargs).choices[0].message
        reasoning = message.reasoning_content
        if "</think>" in raw:
            assert reasoning + "</think>" + message.content == raw and "</think>" not in reasoning
            found = found or bool(reasoning and message.content)
        else:
            assert (reasoning, message.content) == (raw, "")
        content, streamed_reasoning, _, _ = streamed(
            client, extra_body={"chat_template_kwargs": {"thinking": True}, "ignore_eos": True}, **kwargs)
        assert (streamed_reasoning.get(0, ""), content[0]) == (reasoning, message.content)
    assert found, "no seed gave both reasoning and an answer"
    plain = chat(client, max_tokens=6, temperature=0).choices[0].message
    assert getattr(plain, "reasoning_content", None) is None and plain.content


@pytest.mark.parametrize("stream", [False, True])
def test_v3_1_forced_tool_calls_are_written_and_parsed_in_v3_1_format(client, stream):
    kwargs = dict(tools=TOOLS, tool_choice="required", parallel_tool_calls=False, max_tokens=200, temperature=0,
                  logprobs=True)
    if not stream:
        choice = chat(client, **kwargs).choices[0]
        calls, tokens = choice.message.tool_calls, [t.token for t in choice.logprobs.content]
        finish = choice.finish_reason
    else:
        chunks = list(chat(client, stream=True, **kwargs))
        calls = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
        tokens = [t.token for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason][0]
    assert finish == "tool_calls" and calls
    raw = "".join(tokens)
    assert raw.startswith(CALLS_BEGIN + CALL_BEGIN + calls[0].function.name + TOOL_SEP), raw[:80]
    for call in calls:
        jsonschema.validate(json.loads(call.function.arguments), PARAMETERS[call.function.name])


def test_langchain_chat_openai_bind_tools_and_structured_output(server):
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel, Field

    class Person(BaseModel):
        name: str = Field(max_length=12)
        age: int = Field(ge=0, le=120)

    llm = ChatOpenAI(model=MODEL_NAME, base_url=f"{server.base_url}/v1", api_key="unused", temperature=0,
                     max_tokens=120, max_retries=0, timeout=120)
    weather = {"name": "get_weather", "description": "Current weather of a city", "parameters": PARAMETERS["get_weather"]}
    message = llm.bind_tools([weather], tool_choice="required").invoke("Weather in Paris?")
    assert message.tool_calls and message.tool_calls[0]["name"] == "get_weather"
    jsonschema.validate(message.tool_calls[0]["args"], PARAMETERS["get_weather"])
    for method in ("json_schema", "function_calling"):
        person = llm.with_structured_output(Person, method=method).invoke("Invent a person.")
        assert isinstance(person, Person), method


def test_offline_llm_chat_with_a_chat_format_and_template_kwargs(server_checkpoint):
    from model_runtime import LLM, SamplingParams

    llm = LLM(str(server_checkpoint), dtype="float32", enforce_eager=True, max_model_len=256, kv_cache_memory_bytes=4 << 20,
              chat_format="deepseek_v3_1")
    params = SamplingParams(temperature=0, max_tokens=3, ignore_eos=True)
    thinking = llm.chat(MESSAGES, params, chat_template_kwargs={"thinking": True})[0]
    plain = llm.chat(MESSAGES, params)[0]
    assert thinking.prompt_token_ids[-1] == 128798 and plain.prompt_token_ids[-1] == THINK_END_ID
    assert len(thinking.outputs[0].token_ids) == 3
