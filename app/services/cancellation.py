"""Cancelling background runs (agent and eval runs): a flag per run that the run checks.

`Cancellations.cancel(run_id)` sets the flag; the run's own thread notices it at its next
check (`check`, or a model token through `CancellableChatModel`), raises `RunCancelled`, and
records the status `cancelled` itself.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from agents.model_client import ChatModel, ModelConfig


class RunCancelled(Exception):
    """The run was asked to stop."""


class Cancellations:
    """The cancel flags of one runner's runs."""

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def flag(self, run_id: str) -> threading.Event:
        with self._lock:
            return self._flags.setdefault(run_id, threading.Event())

    def cancel(self, run_id: str) -> None:
        self.flag(run_id).set()

    def check(self, run_id: str) -> None:
        """Raise RunCancelled once the run has been cancelled."""
        if self.flag(run_id).is_set():
            raise RunCancelled(run_id)

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._flags.pop(run_id, None)


class CancellableChatModel(ChatModel):
    """A ChatModel that raises RunCancelled before a turn, or at the next token, once `flag` is set
    (closing the model's stream, so the server stops generating)."""

    def __init__(self, config: ModelConfig, flag: threading.Event) -> None:
        super().__init__(config)
        self._flag = flag

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
             on_token: Callable[[str], None] | None = None, max_tokens: int | None = None) -> dict[str, Any]:
        def checked(text: str) -> None:
            if self._flag.is_set():
                raise RunCancelled()
            if on_token is not None:
                on_token(text)

        if self._flag.is_set():
            raise RunCancelled()
        return super().chat(messages, tools, checked, max_tokens)
