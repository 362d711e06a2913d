"""Sandbox for untrusted code: model output, benchmark completions, agent commands.

Every run goes through ``tools/sandbox_launcher.py`` in a fresh interpreter, which puts the
target in new mount/PID/network namespaces, applies rlimits and drops to an unprivileged uid
(see docs/SANDBOX.md for the guarantees and their limits). This module starts the launcher,
enforces the wall-clock limit, reads output within its bound and kills the whole tree.

``Sandbox.run`` is thread-safe: all per-run state is local, the uid pool is locked, and no
``preexec_fn`` is used.
"""
from __future__ import annotations

import json
import math
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

LAUNCHER = Path(__file__).with_name("sandbox_launcher.py")
MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")
KILL_GRACE_S = 2.0


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one run. ``memory_bytes`` is address space (RLIMIT_AS)."""

    cpu_seconds: float = 10.0
    wall_seconds: float = 20.0
    memory_bytes: int = 1 << 30
    max_processes: int = 64
    max_file_bytes: int = 16 << 20
    max_output_bytes: int = 64 << 10
    network: bool = False
    max_open_files: int = 256
    kill_after_output_bytes: int = 8 << 20  # per stream: a flood past this is killed ("output")
    tmpfs_bytes: int = 64 << 20  # size of the private /tmp, /var/tmp, /dev/shm


@dataclass
class SandboxResult:
    """Outcome of one run. ``returncode`` is negative for a signal, None when we killed it."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    killed_reason: str | None  # "wall_timeout" | "cpu_timeout" | "output" | "memory" | "sandbox_error" | None
    duration_s: float
    truncated: bool
    cpu_s: float = 0.0
    uid: int | None = None  # the unprivileged uid the run used (None when not dropping privileges)

    @property
    def ok(self) -> bool:
        """True when the program exited 0 within its limits."""
        return self.returncode == 0 and not self.timed_out


class SandboxError(ValueError):
    """Bad arguments to the sandbox (not a failure of the sandboxed program)."""


class _UidPool:
    """Hands out distinct unprivileged uids so concurrent runs never share RLIMIT_NPROC or signals."""

    def __init__(self, first: int = 200_000, count: int = 60_000) -> None:
        self._first, self._count = first, count
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            while True:
                uid = self._first + random.randrange(self._count)
                if uid not in self._used:
                    self._used.add(uid)
                    return uid

    def release(self, uid: int) -> None:
        with self._lock:
            self._used.discard(uid)


class _Stream:
    """Keeps the first ``keep`` bytes of a stream, counts (and drops) the rest."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.chunks: list[bytes] = []
        self.kept = 0
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        if self.kept < self.keep:
            piece = data[: self.keep - self.kept]
            self.chunks.append(piece)
            self.kept += len(piece)

    @property
    def truncated(self) -> bool:
        return self.total > self.kept

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace")


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """chown ``root`` and everything below it, never following symlinks."""
    os.chown(root, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def _write_files(workdir: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise SandboxError(f"file name must be relative and inside the work dir: {name!r}")
        target = workdir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


class Sandbox:
    """Runs commands under :class:`SandboxLimits`; see docs/SANDBOX.md."""

    def __init__(self, limits: SandboxLimits = SandboxLimits(), *, expose: tuple[Path, ...] = ()) -> None:
        """``expose``: extra directories made readable (read-only) inside the sandbox."""
        self.limits = limits
        self._root = os.geteuid() == 0
        prefixes = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
        self._expose_ro = sorted(prefixes | {os.path.realpath(p) for p in expose})
        self._uids = _UidPool()

    @property
    def drops_privileges(self) -> bool:
        """True when runs execute as a dedicated unprivileged uid (the host runs us as root)."""
        return self._root

    def run_python(self, code: str, **kw) -> SandboxResult:
        """Run Python source with this interpreter (``-B -E -s``; the work dir is on sys.path)."""
        if len(code) > 100_000:
            files = dict(kw.pop("files", None) or {})
            files["_sandbox_main.py"] = code
            return self.run([sys.executable, "-B", "-E", "-s", "_sandbox_main.py"], files=files, **kw)
        return self.run([sys.executable, "-B", "-E", "-s", "-c", code], **kw)

    def run(self, argv: list[str], *, cwd: Path | None = None, stdin: str | None = None,
            files: dict[str, str] | None = None, env: dict[str, str] | None = None,
            limits: SandboxLimits | None = None) -> SandboxResult:
        """Run ``argv`` in ``cwd`` (a fresh temporary directory, removed afterwards, when None)."""
        if not argv:
            raise SandboxError("argv must not be empty")
        limits = limits or self.limits
        fresh = cwd is None
        workdir = Path(tempfile.mkdtemp(prefix="sandbox-")) if fresh else Path(cwd).resolve()
        if not workdir.is_dir():
            raise SandboxError(f"working directory does not exist: {workdir}")
        uid = self._uids.acquire() if self._root else None
        owner = workdir.stat()
        try:
            _write_files(workdir, files or {})
            if uid is not None:
                _chown_tree(workdir, uid, uid)
            return self._launch(argv, workdir, stdin, env or {}, limits, uid)
        finally:
            if fresh:
                shutil.rmtree(workdir, ignore_errors=True)
            elif uid is not None:
                _chown_tree(workdir, owner.st_uid, owner.st_gid)
            if uid is not None:
                self._uids.release(uid)

    def _environment(self, workdir: Path, extra: dict[str, str]) -> dict[str, str]:
        bin_dir = os.path.dirname(sys.executable)
        base = {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONHASHSEED": "0",
        }
        return {**base, **extra}

    def _launch(self, argv: list[str], workdir: Path, stdin: str | None, env: dict[str, str],
                limits: SandboxLimits, uid: int | None) -> SandboxResult:
        status_r, status_w = os.pipe()
        cfg = {
            "argv": list(argv),
            "cwd": str(workdir),
            "env": self._environment(workdir, env),
            "uid": uid,
            "gid": uid,
            "network": limits.network,
            "namespaces": True,
            "status_fd": status_w,
            "expose_ro": self._expose_ro,
            "tmpfs_bytes": limits.tmpfs_bytes,
            "limits": {
                "cpu": max(1, math.ceil(limits.cpu_seconds)),
                "as": limits.memory_bytes,
                "fsize": limits.max_file_bytes,
                "nofile": limits.max_open_files,
                "nproc": limits.max_processes,
            },
        }
        stdin_file = tempfile.TemporaryFile()
        stdin_file.write((stdin or "").encode())
        stdin_file.seek(0)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(cfg)],
                stdin=stdin_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(status_w,), start_new_session=True, env={}, cwd="/",
            )
        finally:
            os.close(status_w)
            stdin_file.close()
        try:
            out, err, status, reason = self._collect(proc, status_r, limits, start)
        finally:
            os.close(status_r)
        result = self._result(proc, out, err, status, reason, limits, time.monotonic() - start)
        result.uid = uid
        return result

    def _collect(self, proc: subprocess.Popen, status_r: int, limits: SandboxLimits,
                 start: float) -> tuple[_Stream, _Stream, bytes, str | None]:
        """Read stdout/stderr/status until EOF, killing the tree on a wall timeout or flood."""
        out, err = _Stream(limits.max_output_bytes), _Stream(limits.max_output_bytes)
        status = bytearray()
        sinks = {proc.stdout.fileno(): out.add, proc.stderr.fileno(): err.add, status_r: status.extend}
        reason: str | None = None
        deadline = start + limits.wall_seconds
        with selectors.DefaultSelector() as sel:
            for fd in sinks:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                now = time.monotonic()
                if now >= deadline:
                    if reason is None:
                        reason = "wall_timeout"
                        self._kill(proc)
                        deadline = now + KILL_GRACE_S
                    else:
                        break  # grace after the kill is over: stop reading
                for key, _ in sel.select(timeout=max(0.0, deadline - now)):
                    data = os.read(key.fd, 65536)
                    if not data:
                        sel.unregister(key.fd)
                        continue
                    sinks[key.fd](data)
                if reason is None and max(out.total, err.total) > limits.kill_after_output_bytes:
                    reason = "output"
                    self._kill(proc)
                    deadline = time.monotonic() + KILL_GRACE_S
        proc.stdout.close()
        proc.stderr.close()
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            proc.wait()
        return out, err, bytes(status), reason

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        """Kill the launcher's process group; its child (PID 1 of the namespace) dies with it
        through PDEATHSIG, and the kernel then kills everything left in the namespace."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @staticmethod
    def _result(proc: subprocess.Popen, out: _Stream, err: _Stream, status: bytes,
                reason: str | None, limits: SandboxLimits, duration: float) -> SandboxResult:
        messages = [json.loads(line) for line in status.decode().splitlines() if line.strip()]
        error = next((m["error"] for m in messages if "error" in m), None)
        final = next((m for m in messages if "status" in m), None)
        returncode: int | None = None
        cpu = final["cpu"] if final is not None else 0.0
        stderr = err.text()
        if error is not None or final is None:
            reason = reason or "sandbox_error"
            why = error or f"launcher exited with {proc.returncode} without a status"
            stderr = f"{stderr}sandbox: {why}\n" if reason == "sandbox_error" else stderr
        elif reason is None:
            returncode = os.waitstatus_to_exitcode(final["status"])
            cpu_limit_hit = returncode == -signal.SIGKILL and cpu >= 0.8 * math.ceil(limits.cpu_seconds)
            if returncode == -signal.SIGXCPU or cpu_limit_hit:
                reason = "cpu_timeout"
            elif returncode != 0 and any(marker in stderr for marker in MEMORY_MARKERS):
                reason = "memory"
        return SandboxResult(
            returncode=returncode,
            stdout=out.text(),
            stderr=stderr,
            timed_out=reason in ("wall_timeout", "cpu_timeout"),
            killed_reason=reason,
            duration_s=duration,
            truncated=out.truncated or err.truncated,
            cpu_s=cpu,
        )

