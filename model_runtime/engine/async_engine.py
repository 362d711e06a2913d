"""AsyncLLMEngine: the engine loop in a background thread, requests as async iterators.

The event loop never touches engine state: it sends commands (add, abort) through a queue that the
engine thread drains between steps, and receives StepOutputs through per-request asyncio queues.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import AsyncIterator

from model_runtime.engine.config import EngineConfig
from model_runtime.engine.llm_engine import LLMEngine
from model_runtime.engine.outputs import StepOutput
from model_runtime.engine.sampling_params import SamplingParams

log = logging.getLogger(__name__)


class AsyncLLMEngine:
    def __init__(self, engine: LLMEngine):
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.max_model_len = engine.max_model_len
        self.model_config = engine.model_config
        self._commands: queue.Queue = queue.Queue()
        self._streams: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = {}
        self._stats: dict = engine.stats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="llm-engine", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, config: EngineConfig) -> "AsyncLLMEngine":
        return cls(LLMEngine(config))

    # ---- engine thread -------------------------------------------------------------------
    def _deliver(self, request_id: str, item) -> None:
        target = self._streams.get(request_id)
        if target is not None:
            loop, q = target
            loop.call_soon_threadsafe(q.put_nowait, item)

    def _loop(self) -> None:
        while not self._stop.is_set():
            block = not self.engine.has_unfinished_requests()
            try:
                while True:
                    command = self._commands.get(timeout=0.05) if block else self._commands.get_nowait()
                    block = False
                    self._apply(command)
            except queue.Empty:
                pass
            if not self.engine.has_unfinished_requests():
                self._stats = self.engine.stats()
                continue
            try:
                outputs = self.engine.step()
            except Exception as exc:  # a bug must not hang clients: fail every request in flight
                log.exception("engine step failed")
                for request_id in list(self.engine.sequences):
                    self.engine.abort_request(request_id)
                    self._deliver(request_id, exc)
                outputs = []
            self._stats = self.engine.stats()
            for out in outputs:
                self._deliver(out.request_id, out)

    def _apply(self, command) -> None:
        kind, request_id, payload = command
        if kind == "add":
            prompt_ids, params = payload
            try:
                self.engine.add_request(request_id, prompt_ids, params)
            except ValueError as exc:
                self._deliver(request_id, exc)
        else:
            self.engine.abort_request(request_id)

    # ---- event loop side -----------------------------------------------------------------
    async def generate(self, prompt_token_ids: list[int], params: SamplingParams, request_id: str) -> AsyncIterator[StepOutput]:
        """Incremental outputs of one request. Leaving early aborts it and frees its blocks."""
        self.engine.validate(prompt_token_ids, params)  # raise ValueError before anything starts
        q: asyncio.Queue = asyncio.Queue()
        self._streams[request_id] = (asyncio.get_running_loop(), q)
        self._commands.put(("add", request_id, (list(prompt_token_ids), params)))
        finished = False
        try:
            while True:
                item = await q.get()
                if isinstance(item, Exception):
                    raise item
                yield item
                if item.finished:
                    finished = True
                    return
        finally:
            self._streams.pop(request_id, None)
            if not finished:
                self._commands.put(("abort", request_id, None))

    async def abort(self, request_id: str) -> None:
        self._commands.put(("abort", request_id, None))

    def stats(self) -> dict:
        return dict(self._stats)

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
