"""`vllm` and `openai`: an OpenAI-compatible server the app does not run itself."""
import httpx

from app.backends.base import BackendStatus


class RemoteBackend:
    """Any OpenAI-compatible base URL (vLLM, a hosted API); health = `GET {base_url}/models` answers."""

    def __init__(self, kind: str, base_url: str, api_key: str | None, model_name: str) -> None:
        self.kind = kind
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model_name = model_name

    async def start(self) -> None:
        """Nothing to start: the server is managed elsewhere (docker-compose, a cluster, a provider)."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def status(self) -> BackendStatus:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            async with httpx.AsyncClient(timeout=3.0) as client:
                resp = await client.get(f"{self.base_url}/models", headers=headers)
        except httpx.HTTPError as exc:
            return BackendStatus(self.kind, "unreachable", f"{self.base_url}: {exc.__class__.__name__}")
        state = "ready" if resp.status_code == 200 else "unhealthy"
        return BackendStatus(self.kind, state, f"GET /models -> {resp.status_code}", {"base_url": self.base_url})
