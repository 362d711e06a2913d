"""Run a server process, health-check it over HTTP, restart it when it dies or hangs.

The process never outlives the app: it is started through child_exec.py (PR_SET_PDEATHSIG), and
a pidfile records it, so an app that starts after a crash finds a server its predecessor left
(should one survive) and stops it before starting its own. Ready means: the process this
supervisor started is alive and `GET health_url` answers 200 with its pid (a server that reports
another pid is some other process on the port, not ours).
"""
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

CHILD_EXEC = Path(__file__).with_name("child_exec.py")

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
        pid_path: Path,
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
        self.pid_path = pid_path
        self.port = httpx.URL(health_url).port
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
        """Stop a server left by a crashed predecessor, then start supervising in the background."""
        await self._stop_orphan()
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
                if not _port_free(self.port):
                    self.state = "port_in_use"
                    self.detail = (f"127.0.0.1:{self.port} is taken by a process this app did not start; "
                                   "stop it or choose another MODEL_PORT")
                    log.error(f"{self.name} not started: {self.detail}")
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)
                    continue
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
            # Spawned from the event loop's thread, which lives as long as the app: PDEATHSIG fires
            # when the thread that forked the child ends, not only the process.
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, str(CHILD_EXEC), str(os.getpid()), *self.command,
                stdout=out, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
            )
        self.pid = self._proc.pid
        self._write_pidfile()
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
            resp = await client.get(self.health_url)
        except httpx.HTTPError:
            return False
        if resp.status_code != 200:
            return False
        try:
            reported = resp.json().get("pid")
        except (ValueError, AttributeError):
            reported = None
        if reported is not None and reported != self.pid:  # servers that do not report a pid are trusted
            self.detail = f"port {self.port} answers for pid {reported}, not for our pid {self.pid}"
            return False
        return True

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        self.pid_path.unlink(missing_ok=True)
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

    def _write_pidfile(self) -> None:
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        record = {"pid": self.pid, "app_pid": os.getpid(), "host": socket.gethostname(), "port": self.port,
                  "command": self.command}
        tmp = self.pid_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.pid_path)

    async def _stop_orphan(self) -> None:
        """Stop the server a crashed app left behind (its pidfile names it), if it still runs."""
        try:
            record = json.loads(self.pid_path.read_text())
            pid, app_pid = int(record["pid"]), int(record["app_pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if record.get("host", socket.gethostname()) != socket.gethostname():  # a VAR_DIR shared with another host
            raise RuntimeError(f"{self.pid_path} belongs to a model server on host {record['host']}: give each "
                               "app process its own MODEL_PIDFILE")
        if app_pid != os.getpid() and _alive(app_pid) and _is_ours(app_pid):
            raise RuntimeError(f"another app process (pid {app_pid}) runs a model server from {self.pid_path}: "
                               "two apps cannot share one VAR_DIR")
        if not (_alive(pid) and _is_ours(pid)):
            self.pid_path.unlink(missing_ok=True)
            return
        log.warning(f"stopping an orphaned {self.name} (pid {pid}) left by a crashed app process {app_pid}")
        for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            for _ in range(int(wait_s / 0.1)):
                if not _alive(pid):
                    break
                await asyncio.sleep(0.1)
            if not _alive(pid):
                break
        self.pid_path.unlink(missing_ok=True)

    def _log_tail(self, n_bytes: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - n_bytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _is_ours(pid: int) -> bool:
    """The process runs our Python (a recycled pid of an unrelated program is left alone)."""
    try:
        return Path(f"/proc/{pid}/exe").resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


def _port_free(port: int | None) -> bool:
    if port is None:
        return True
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no conflict
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
