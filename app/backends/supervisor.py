"""Run a server process, health-check it over HTTP, restart it when it dies or hangs."""
import asyncio
import logging
import os
import signal
from pathlib import Path

import httpx

log = logging.getLogger("app.supervisor")


class ProcessSupervisor:
    """Keep `command` running and healthy.

    The process writes to `log_path`. It counts as ready once `GET health_url` answers 200.
    When it exits, or fails `max_failed_checks` health checks in a row after being ready, or
    is not ready within `start_timeout_s`, it is (killed and) restarted after a backoff that
    doubles up to `max_backoff_s`.
    """

    def __init__(
        self,
        command: list[str],
        health_url: str,
        log_path: Path,
        *,
        name: str = "model server",
        health_interval_s: float = 5.0,
        start_timeout_s: float = 300.0,
        max_failed_checks: int = 3,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.command = command
        self.health_url = health_url
        self.log_path = log_path
        self.name = name
        self.health_interval_s = health_interval_s
        self.start_timeout_s = start_timeout_s
        self.max_failed_checks = max_failed_checks
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.state = "stopped"
        self.detail = ""
        self.restarts = 0
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Start supervising in the background."""
        self._task = asyncio.create_task(self._supervise(), name=f"supervise {self.name}")

    async def stop(self) -> None:
        """Stop supervising and terminate the process."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._terminate()
        self.state = "stopped"

    async def _supervise(self) -> None:
        backoff = self.min_backoff_s
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
            while True:
                await self._spawn()
                was_ready = await self._watch(client)
                await self._terminate()
                backoff = self.min_backoff_s if was_ready else min(backoff * 2, self.max_backoff_s)
                self.restarts += 1
                log.error(
                    f"{self.name} is down ({self.detail}); restarting in {backoff:g} s",
                    extra={"restarts": self.restarts, "log_path": str(self.log_path), "log_tail": self._log_tail()},
                )
                await asyncio.sleep(backoff)

    async def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command, stdout=out, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid = self._proc.pid
        self.state, self.detail = "starting", f"pid {self.pid}"
        log.info(f"started {self.name}", extra={"pid": self.pid, "command": self.command})

    async def _watch(self, client: httpx.AsyncClient) -> bool:
        """Return when the process must be restarted; True if it had been ready."""
        assert self._proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        failed, was_ready = 0, False
        while True:
            interval = self.health_interval_s if was_ready else min(0.5, self.health_interval_s)
            try:
                code = await asyncio.wait_for(asyncio.shield(self._proc.wait()), timeout=interval)
            except asyncio.TimeoutError:
                code = None
            if code is not None:
                self.state, self.detail = "crashed", f"exited with code {code}"
                return was_ready
            if await self._healthy(client):
                if not was_ready:
                    log.info(f"{self.name} is ready", extra={"pid": self.pid, "health_url": self.health_url})
                failed, was_ready = 0, True
                self.state, self.detail = "ready", f"pid {self.pid}"
            elif was_ready:
                failed += 1
                self.state, self.detail = "unhealthy", f"{failed} failed health checks"
                if failed >= self.max_failed_checks:
                    return True
            elif loop.time() > deadline:
                self.state, self.detail = "unhealthy", f"not ready after {self.start_timeout_s:g} s"
                return False

    async def _healthy(self, client: httpx.AsyncClient) -> bool:
        try:
            return (await client.get(self.health_url)).status_code == 200
        except httpx.HTTPError:
            return False

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                await asyncio.wait_for(proc.wait(), timeout=wait_s)
                return
            except asyncio.TimeoutError:
                continue

    def _log_tail(self, n_bytes: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - n_bytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""
