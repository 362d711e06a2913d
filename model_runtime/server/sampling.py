"""OpenAI request fields -> SamplingParams (one per choice), with a 400 for values the engine refuses."""
from __future__ import annotations

from model_runtime.engine.context_length import ContextLengthExceeded, completion_budget
from model_runtime.engine.sampling_params import LogitsProcessor, SamplingParams
from model_runtime.server.errors import bad_request
from model_runtime.server.protocol import _SamplingFields


def max_new_tokens(requested: int | None, prompt_tokens: int, max_model_len: int, prompt_param: str) -> int:
    """The completion budget; a prompt (field `prompt_param`) or a request that does not fit the
    context is a 400 `context_length_exceeded`."""
    try:
        return completion_budget(prompt_tokens, requested, max_model_len, prompt_param=prompt_param)
    except ContextLengthExceeded as exc:
        raise bad_request(str(exc), exc.param, "context_length_exceeded") from exc


def _logit_bias(request: _SamplingFields) -> dict[int, float] | None:
    """OpenAI's {"token id": bias} with string keys -> {id: bias}."""
    if not request.logit_bias:
        return None
    try:
        return {int(token): bias for token, bias in request.logit_bias.items()}
    except ValueError:
        raise bad_request("logit_bias keys must be token ids, such as {\"1234\": -100}", "logit_bias") from None


def choice_seed(seed: int | None, index: int) -> int | None:
    """Choice `index` of a request with `seed` samples with seed + index (None: the server's seeds)."""
    return None if seed is None else seed + index


def build_sampling_params(
    request: _SamplingFields,
    *,
    max_tokens: int,
    logprobs: int | None,
    logits_processors: list[LogitsProcessor],
    seed: int | None,
) -> SamplingParams:
    """SamplingParams of one choice of a validated request (OpenAI defaults: temperature 1, top_p 1)."""
    try:
        return SamplingParams(
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            top_k=-1 if not request.top_k else request.top_k,
            max_tokens=max_tokens,
            stop=request.stop,
            stop_token_ids=request.stop_token_ids,
            seed=seed,
            logprobs=logprobs,
            ignore_eos=request.ignore_eos,
            skip_special_tokens=True,
            logits_processors=logits_processors,
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            repetition_penalty=request.repetition_penalty,
            logit_bias=_logit_bias(request),
            min_tokens=request.min_tokens,
        )
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
