"""Engine requests as the handlers see them: outputs with metrics, errors as API errors, and
cancellation when the client goes away.

`start_generation` primes the engine's iterator so that a request the engine refuses (a
ValueError: prompt too long, bad parameters) becomes a 400 before any response is sent.
Closing the returned iterator (or cancelling the task that iterates it) closes the engine's
iterator, which aborts the request and frees its KV blocks.

A request with `n` choices is `n` engine requests on the same prompt (`start_choices`): the first
is started alone and primed, so its prompt is in the prefix cache (every full block) when the
others are admitted and they prefill only the rest. `merge` interleaves their outputs for a
stream; `collect_or_cancel` waits for all of them.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import Request

from model_runtime.engine.outputs import StepOutput, TokenLogprob
from model_runtime.engine.sampling_params import SamplingParams
from model_runtime.server.errors import APIError, bad_request
from model_runtime.server.metrics import ServerMetrics

DISCONNECT_POLL_SECONDS = 0.25


@dataclass
class Collected:
    """The whole output of a finished request."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Timing:
    """Records time-to-first-token and inter-token latency of one request."""

    def __init__(self, metrics: ServerMetrics, arrival: float) -> None:
        self._metrics = metrics
        self._last = arrival
        self._first = True

    def observe(self, output: StepOutput) -> None:
        count = len(output.new_token_ids)
        if not count:
            return
        now = time.monotonic()
        gap, self._last = now - self._last, now
        self._metrics.generation_tokens.inc(count)
        if self._first:
            self._first = False
            self._metrics.time_to_first_token.observe(gap)
            self._metrics.prompt_tokens.inc(output.num_prompt_tokens)
            return
        for _ in range(count):  # several tokens in one step (speculation) share the step's time
            self._metrics.inter_token_latency.observe(gap / count)


async def _with_metrics(first: StepOutput, rest: AsyncIterator[StepOutput], timing: _Timing) -> AsyncIterator[StepOutput]:
    async with contextlib.aclosing(rest):
        timing.observe(first)
        yield first
        if first.finished:
            return
        async for output in rest:
            timing.observe(output)
            yield output


async def start_generation(engine, metrics: ServerMetrics, prompt_ids: list[int], params: SamplingParams,
                           request_id: str) -> AsyncIterator[StepOutput]:
    """The engine's outputs for one request, primed: a refused request raises a 400 here."""
    arrival = time.monotonic()
    outputs = engine.generate(prompt_ids, params, request_id)
    try:
        first = await anext(outputs)
    except ValueError as exc:
        await outputs.aclose()
        raise bad_request(str(exc)) from exc
    except StopAsyncIteration:
        raise APIError(500, "the engine ended the request without output") from None
    except BaseException:
        await outputs.aclose()
        raise
    return _with_metrics(first, outputs, _Timing(metrics, arrival))


async def start_choices(engine, metrics: ServerMetrics, prompt_ids: list[int], params: list[SamplingParams],
                        request_id: str) -> list[AsyncIterator[StepOutput]]:
    """One primed iterator per choice (engine request ids `{request_id}-{i}`); all or none start."""
    first = await start_generation(engine, metrics, prompt_ids, params[0], f"{request_id}-0")
    rest = await asyncio.gather(*(start_generation(engine, metrics, prompt_ids, p, f"{request_id}-{i}")
                                  for i, p in enumerate(params[1:], 1)), return_exceptions=True)
    started = [first, *(r for r in rest if not isinstance(r, BaseException))]
    failed = [r for r in rest if isinstance(r, BaseException)]
    if failed:
        for outputs in started:
            await outputs.aclose()
        raise failed[0]
    return started


async def merge(outputs: list[AsyncIterator[StepOutput]]) -> AsyncIterator[tuple[int, StepOutput]]:
    """(choice index, output) of several requests as they arrive; leaving early aborts them all."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(index: int, stream: AsyncIterator[StepOutput]) -> None:
        try:
            async with contextlib.aclosing(stream):
                async for output in stream:
                    await queue.put((index, output))
            await queue.put((index, None))
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            await queue.put((index, exc))

    tasks = [asyncio.create_task(pump(i, stream)) for i, stream in enumerate(outputs)]
    remaining = len(tasks)
    try:
        while remaining:
            index, item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _collect(outputs: AsyncIterator[StepOutput]) -> Collected:
    result = Collected()
    async with contextlib.aclosing(outputs):
        async for output in outputs:
            result.text += output.text_delta
            result.token_ids += output.new_token_ids
            result.logprobs += output.logprobs or []
            result.prompt_tokens = output.num_prompt_tokens
            result.completion_tokens = output.num_output_tokens
            if output.finished:
                result.finish_reason = output.finish_reason
    return result


async def _collect_all(outputs: list[AsyncIterator[StepOutput]]) -> list[Collected]:
    tasks = [asyncio.create_task(_collect(stream)) for stream in outputs]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()


async def collect_or_cancel(outputs: list[AsyncIterator[StepOutput]], request: Request) -> list[Collected] | None:
    """Run every choice to the end; None (all aborted) when the client disconnects first."""
    task = asyncio.create_task(_collect_all(outputs))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return None
    finally:
        if not task.done():  # this handler itself was cancelled
            task.cancel()
