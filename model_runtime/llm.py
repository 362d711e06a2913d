"""The offline API of contract 2, shaped like vLLM's `LLM`."""
from __future__ import annotations

import uuid
from typing import Sequence as Seq

from model_runtime.engine.config import EngineConfig
from model_runtime.engine.llm_engine import LLMEngine
from model_runtime.engine.outputs import CompletionOutput, RequestOutput
from model_runtime.engine.sampling_params import SamplingParams


class LLM:
    def __init__(
        self,
        model: str,
        dtype: str = "bfloat16",
        speculative_tokens: int = 0,
        max_model_len: int | None = None,
        seed: int = 0,
        **engine_options,
    ):
        self.engine = LLMEngine(EngineConfig(
            model=str(model), dtype=dtype, speculative_tokens=speculative_tokens,
            max_model_len=max_model_len, seed=seed, **engine_options,
        ))
        self.tokenizer = self.engine.tokenizer

    def generate(self, prompts: str | list[int] | Seq[str | list[int]], sampling_params: SamplingParams | None = None) -> list[RequestOutput]:
        """One RequestOutput per prompt (strings are tokenised with BOS; token-id lists used as given)."""
        params = sampling_params or SamplingParams()
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        prompt_ids = [self.tokenizer.encode(p, add_bos=True) if isinstance(p, str) else list(p) for p in prompts]
        for ids in prompt_ids:
            self.engine.validate(ids, params)
        ids_of = {}
        for ids in prompt_ids:
            request_id = uuid.uuid4().hex
            self.engine.add_request(request_id, ids, params)
            ids_of[request_id] = ids
        done: dict[str, CompletionOutput] = {}
        texts = {r: "" for r in ids_of}
        tokens: dict[str, list[int]] = {r: [] for r in ids_of}
        logprobs: dict[str, list] = {r: [] for r in ids_of}
        while self.engine.has_unfinished_requests():
            for out in self.engine.step():
                texts[out.request_id] += out.text_delta
                tokens[out.request_id] += out.new_token_ids
                logprobs[out.request_id] += out.logprobs or []
                if out.finished:
                    done[out.request_id] = CompletionOutput(
                        0, texts[out.request_id], tokens[out.request_id], out.finish_reason,
                        logprobs[out.request_id] if params.logprobs is not None else None,
                    )
        return [RequestOutput(r, ids_of[r], [done[r]]) for r in ids_of]

    def chat(self, messages: list[dict], sampling_params: SamplingParams | None = None, tools: list[dict] | None = None,
             chat_template_kwargs: dict | None = None) -> list[RequestOutput]:
        """Render with the checkpoint's chat template (tools in the system prompt; extra template
        variables such as V3.1's `{"thinking": True}`) and generate."""
        ids = self.tokenizer.encode_chat(messages, tools=tools, add_generation_prompt=True,
                                         template_kwargs=chat_template_kwargs)
        return self.generate([ids], sampling_params)

    def stats(self) -> dict:
        return self.engine.stats()
