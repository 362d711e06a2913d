"""`native`: the platform's own runtime (`python -m model_runtime serve`) as a managed subprocess."""
import logging
import shlex
import socket
import sys
from pathlib import Path

from app.backends.base import BackendStatus
from app.backends.supervisor import ProcessSupervisor
from app.core.config import Settings

log = logging.getLogger("app.backends.native")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(settings: Settings, port: int) -> list[str]:
    """The command that serves the model (contract 3), or MODEL_COMMAND with its placeholders filled."""
    if settings.model_command:
        return [
            part.format(python=sys.executable, model=settings.model_path, port=port, name=settings.model_name)
            for part in shlex.split(settings.model_command)
        ]
    return [
        sys.executable, "-m", "model_runtime", "serve",
        "--model", str(settings.model_path),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--served-model-name", settings.model_name,
        "--dtype", settings.model_dtype,
        "--speculative-tokens", str(settings.model_speculative_tokens),
        *(["--num-threads", str(settings.model_num_threads)] if settings.model_num_threads else []),
        *(["--enforce-eager"] if settings.model_enforce_eager else
          ["--compile-cache-dir", str(settings.model_compile_cache_dir or settings.var_dir / "compile-cache")]),
    ]


class NativeBackend:
    """Supervises the native server; degraded (`missing_model`) when the model directory is absent."""

    def __init__(self, settings: Settings) -> None:
        port = settings.model_port or free_port()
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.api_key: str | None = None
        self.model_name = settings.model_name
        self.model_path = Path(settings.model_path)
        self._check_model_dir = not settings.model_command
        self.supervisor = ProcessSupervisor(
            server_command(settings, port),
            health_url=f"http://127.0.0.1:{port}/health",
            log_path=settings.var_dir / "logs" / "model_server.log",
            pid_path=settings.model_pidfile or settings.var_dir / "run" / "model_server.json",
            name="native model server",
            health_interval_s=settings.model_health_interval_s,
            start_timeout_s=settings.model_start_timeout_s,
        )

    def _missing_model(self) -> bool:
        return self._check_model_dir and not (self.model_path / "config.json").is_file()

    async def start(self) -> None:
        if self._missing_model():
            log.error(
                f"model directory {self.model_path} has no config.json: the native model server is not "
                "started and /health reports 'degraded'. Set MODEL_PATH, or MODEL_BACKEND=openai/vllm."
            )
            return
        await self.supervisor.start()

    async def stop(self) -> None:
        await self.supervisor.stop()

    async def status(self) -> BackendStatus:
        if self._missing_model():
            return BackendStatus("native", "missing_model", f"no config.json in {self.model_path}")
        sup = self.supervisor
        return BackendStatus("native", sup.state, sup.detail,
                             {"restarts": sup.restarts, "base_url": self.base_url, "pid": sup.pid})
