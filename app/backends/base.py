"""What the rest of the app needs from a model backend."""
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class BackendStatus:
    """A snapshot for /health: `state` is ready, starting, unhealthy, crashed, missing_model or unreachable."""

    backend: str
    state: str
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def as_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "state": self.state, "detail": self.detail, **self.extra}


class ModelBackend(Protocol):
    """An OpenAI-compatible endpoint (`base_url` ends in /v1) plus its lifecycle."""

    base_url: str
    api_key: str | None
    model_name: str

    async def start(self) -> None:
        """Begin serving (or watching) the model; returns without waiting for it to be ready."""

    async def stop(self) -> None:
        """Release what `start` acquired."""

    async def status(self) -> BackendStatus:
        """Current health."""
