"""completion_budget: the one check that a prompt and its completion fit the context."""
import pytest

from model_runtime.engine.context_length import ContextLengthExceeded, completion_budget


def test_a_fitting_request_gets_its_max_tokens_or_all_the_room():
    assert completion_budget(10, 5, 32) == 5
    assert completion_budget(10, 22, 32) == 22  # exactly fills the context
    assert completion_budget(10, None, 32) == 22
    assert completion_budget(31, None, 32) == 1


def test_a_prompt_that_leaves_no_room_is_refused():
    for prompt in (32, 40):
        with pytest.raises(ContextLengthExceeded, match="maximum context length is 32") as caught:
            completion_budget(prompt, None, 32, prompt_param="messages")
        assert caught.value.param == "messages" and isinstance(caught.value, ValueError)
    with pytest.raises(ContextLengthExceeded) as caught:
        completion_budget(32, 1, 32)
    assert caught.value.param == "prompt"


def test_max_tokens_larger_than_the_room_is_refused():
    with pytest.raises(ContextLengthExceeded, match="maximum context length is 32") as caught:
        completion_budget(10, 23, 32)
    assert caught.value.param == "max_tokens" and "33 tokens (10 in the prompt, 23 for the completion)" in str(caught.value)
