"""The shared OpenAI client of agents and evals: one endpoint config, the answer not the thinking."""
import asyncio

import httpx
import openai
import pytest

from agents.model_client import ChatModel, ModelConfig
from evals.generation import EndpointConfig, Generator
from evals.prompts import Request
from tests.support.scripted_openai import ScriptedOpenAIServer
from tools.openai_client import ModelEndpoint, answer_text, model_error

THOUGHTFUL = "<think>Let me see: 6 x 7 is 42, so...</think>\n\nThe answer is 42."


def test_answer_text_drops_only_a_leading_thinking_block():
    assert answer_text(THOUGHTFUL) == "The answer is 42."
    assert answer_text("  <think>never ended") == ""
    assert answer_text("Plain <think>not a block</think>") == "Plain <think>not a block</think>"
    assert answer_text(None) is None


def test_agents_and_evals_get_the_answer_from_one_client_config():
    with ScriptedOpenAIServer([THOUGHTFUL, THOUGHTFUL]) as server:
        message = ChatModel(ModelConfig(base_url=server.base_url, model="m", max_retries=0)).chat(
            [{"role": "user", "content": "6 x 7?"}])
        assert message["content"] == "The answer is 42."

        async def ask() -> tuple[str, int]:
            async with Generator(EndpointConfig(base_url=server.base_url, model="m", max_retries=0)) as generator:
                return await generator.generate(Request(messages=[{"role": "user", "content": "6 x 7?"}]))

        text, tokens = asyncio.run(ask())
        assert text == "The answer is 42." and tokens > 0
    assert isinstance(ModelConfig(base_url="http://h/v1", model="m"), ModelEndpoint)
    assert isinstance(EndpointConfig(base_url="http://h/v1", model="m"), ModelEndpoint)


def test_clients_use_the_openai_retries_and_clear_errors():
    endpoint = ModelEndpoint(base_url="http://127.0.0.1:9/v1", model="m", timeout_s=2, max_retries=5)
    assert endpoint.client().max_retries == 5 and endpoint.async_client().max_retries == 5
    with pytest.raises(ValueError, match="http:// or https://"):
        ModelEndpoint(base_url="localhost:8000", model="m")
    error = model_error(openai.APITimeoutError(request=httpx.Request("POST", endpoint.base_url)), endpoint)
    assert str(error) == "model endpoint timed out after 2s (5 retries)"
