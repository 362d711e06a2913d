"""OpenAI request fields -> SamplingParams, with a 400 for what this server cannot honour."""
from __future__ import annotations

from model_runtime.engine.sampling_params import LogitsProcessor, SamplingParams
from model_runtime.server.errors import bad_request
from model_runtime.server.protocol import _SamplingFields


def check_unsupported(request: _SamplingFields) -> None:
    """Reject fields that are accepted by OpenAI but not implemented here."""
    if request.n != 1:
        raise bad_request("n > 1 is not supported; send several requests instead", "n")
    if request.presence_penalty:
        raise bad_request("presence_penalty is not supported; only 0 is accepted", "presence_penalty")
    if request.frequency_penalty:
        raise bad_request("frequency_penalty is not supported; only 0 is accepted", "frequency_penalty")
    if request.logit_bias:
        raise bad_request("logit_bias is not supported", "logit_bias")


def max_new_tokens(requested: int | None, prompt_tokens: int, max_model_len: int) -> int:
    """The completion budget; a prompt or a request that does not fit the context is a 400."""
    if prompt_tokens >= max_model_len:
        raise bad_request(
            f"This model's maximum context length is {max_model_len} tokens, but the prompt has "
            f"{prompt_tokens} tokens (at least one token must be left for the completion). "
            "Please shorten the prompt.", "messages", "context_length_exceeded")
    room = max_model_len - prompt_tokens
    if requested is None:
        return room
    if requested > room:
        raise bad_request(
            f"This model's maximum context length is {max_model_len} tokens. However, you requested "
            f"{prompt_tokens + requested} tokens ({prompt_tokens} in the prompt, {requested} for the "
            "completion). Please reduce the prompt or the completion length.", "max_tokens",
            "context_length_exceeded")
    return requested


def build_sampling_params(
    request: _SamplingFields,
    *,
    max_tokens: int,
    logprobs: int | None,
    logits_processors: list[LogitsProcessor],
) -> SamplingParams:
    """SamplingParams of a validated request (OpenAI defaults: temperature 1, top_p 1)."""
    try:
        return SamplingParams(
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            top_k=-1 if not request.top_k else request.top_k,
            max_tokens=max_tokens,
            stop=request.stop,
            seed=request.seed,
            logprobs=logprobs,
            ignore_eos=request.ignore_eos,
            skip_special_tokens=True,
            logits_processors=logits_processors,
        )
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
