"""Sandbox behaviour and escape attempts. Every escape must fail with a clear result, and the
host must keep working afterwards (checked by `_host_is_fine`)."""
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tools.sandbox import Sandbox, SandboxError, SandboxLimits, SandboxResult

QUICK = SandboxLimits(cpu_seconds=5, wall_seconds=10)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(QUICK)


def _processes_of(uid: int | None) -> list[int]:
    """Host pids running as ``uid`` (there should be none once its run is over)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                owner = entry.stat().st_uid
            except FileNotFoundError:
                continue
            if owner == uid:
                pids.append(int(entry.name))
    return pids


def _describe(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().replace("\t", " ")[:400]
    except OSError as exc:
        return str(exc)


def _host_is_fine(sandbox: Sandbox, escape: SandboxResult) -> None:
    """After an escape attempt: no process of its run is left and a normal run still works."""
    assert escape.uid is not None or not sandbox.drops_privileges
    deadline = time.monotonic() + 5
    while escape.uid is not None and _processes_of(escape.uid) and time.monotonic() < deadline:
        time.sleep(0.05)
    leftovers = {pid: _describe(pid) for pid in _processes_of(escape.uid)} if escape.uid is not None else {}
    assert leftovers == {}
    result = sandbox.run_python("print(6 * 7)")
    assert result.ok and result.stdout == "42\n"


def test_runs_code_and_reports_output(sandbox):
    result = sandbox.run_python("import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)")
    assert result.returncode == 3
    assert (result.stdout, result.stderr) == ("out\n", "err\n")
    assert not result.ok and not result.timed_out and result.killed_reason is None


def test_files_stdin_and_imports_from_work_dir(sandbox):
    result = sandbox.run_python(
        "import sys, helper; print(helper.double(int(sys.stdin.read())))",
        files={"helper.py": "def double(x):\n    return 2 * x\n"}, stdin="21",
    )
    assert result.ok, result.stderr
    assert result.stdout == "42\n"


def test_rejects_file_names_outside_the_work_dir(sandbox):
    with pytest.raises(SandboxError):
        sandbox.run_python("pass", files={"../evil.py": "x"})
    with pytest.raises(SandboxError):
        sandbox.run(["true"], cwd=Path("/nonexistent/dir"))


def test_unknown_command_is_a_clear_error(sandbox):
    result = sandbox.run(["no-such-command-xyz"])
    assert result.killed_reason == "sandbox_error" and result.returncode is None
    assert "command not found: no-such-command-xyz" in result.stderr


def test_environment_is_scrubbed(sandbox, monkeypatch):
    monkeypatch.setenv("SANDBOX_TEST_SECRET", "hunter2")
    result = sandbox.run_python("import os, json; print(json.dumps(dict(os.environ)))", env={"EXTRA": "1"})
    assert result.ok
    assert "hunter2" not in result.stdout and "SANDBOX_TEST_SECRET" not in result.stdout
    assert '"EXTRA": "1"' in result.stdout


def test_runs_as_unprivileged_user(sandbox):
    if not sandbox.drops_privileges:
        pytest.skip("host does not run as root: runs keep the caller's uid (see docs/SANDBOX.md)")
    result = sandbox.run_python("import os; print(os.getuid(), os.getgid(), os.getgroups())")
    uid, gid, groups = result.stdout.split(maxsplit=2)
    assert int(uid) >= 200_000 and int(gid) == int(uid) and groups.strip() == "[]"


def test_no_new_privs_is_set(sandbox):
    """A setuid binary in the sandbox cannot raise privileges again (was `NoNewPrivs: 0`)."""
    result = sandbox.run(["grep", "NoNewPrivs", "/proc/self/status"])
    assert result.ok, result.stderr
    assert result.stdout.split() == ["NoNewPrivs:", "1"]


def test_escape_write_outside_workspace(sandbox, tmp_path):
    open_dir = tmp_path / "world_writable"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    repo_file = Path(__file__).resolve().parent / "sandbox_escape_marker.txt"
    targets = [open_dir / "pwned.txt", repo_file, Path("/tmp/sandbox_escape_marker.txt"), Path("/etc/pwned")]
    code = (
        "import sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        open(path, 'w').write('pwned')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('denied', path, type(exc).__name__)\n"
    )
    result = sandbox.run(["python", "-c", code, *map(str, targets)])
    assert result.ok, result.stderr
    for target in targets:
        assert not target.exists(), f"{target} was written from the sandbox"
    # /tmp inside the sandbox is a private tmpfs: the write "succeeds" there and vanishes.
    assert "wrote /tmp/sandbox_escape_marker.txt" in result.stdout
    # The repository is read-only to the sandbox's uid; a checkout under /tmp is not even visible
    # (the private /tmp hides it), which CI's clean clones may be.
    repo_denial = "FileNotFoundError" if str(repo_file).startswith("/tmp/") else "PermissionError"
    assert f"denied {repo_file} {repo_denial}" in result.stdout
    assert "denied /etc/pwned PermissionError" in result.stdout
    _host_is_fine(sandbox, result)


def test_escape_read_secret_outside_workspace(sandbox, tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    secret = private / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    secret.chmod(0o600)
    code = (
        "import sys, os\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        print('read', path, open(path).read())\n"
        "    except OSError as exc:\n"
        "        print('denied', path, type(exc).__name__)\n"
        "print('ls', sorted(os.listdir('/tmp')))\n"
    )
    result = sandbox.run(["python", "-c", code, str(secret), "/etc/shadow", "/root/.bash_history"])
    assert result.ok, result.stderr
    assert "TOP-SECRET-VALUE" not in result.stdout
    assert f"denied {secret}" in result.stdout
    assert "denied /etc/shadow" in result.stdout
    # The host's /tmp (where the secret lives) is not even visible: only the work dir is mounted.
    listing = result.stdout.splitlines()[-1]
    assert listing.startswith("ls [") and "pytest-of" not in listing
    _host_is_fine(sandbox, result)


def _listener() -> tuple[socket.socket, int]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    return server, server.getsockname()[1]


def _accepted(server: socket.socket) -> bool:
    try:
        conn, _ = server.accept()
    except TimeoutError:
        return False
    conn.close()
    return True


CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3).sendall(b'hi')\n"
    "    print('connected')\n"
    "except OSError as exc:\n"
    "    print('blocked', type(exc).__name__)\n"
)


def test_escape_network_socket_to_host_listener(sandbox):
    server, port = _listener()
    with server:
        result = sandbox.run(["python", "-c", CONNECT, str(port)])
        assert result.ok, result.stderr
        assert result.stdout.startswith("blocked"), result.stdout
        assert not _accepted(server)
        # Same program with network allowed reaches the listener: the test can tell the difference.
        allowed = sandbox.run(["python", "-c", CONNECT, str(port)], limits=replace(QUICK, network=True))
        assert allowed.stdout == "connected\n", allowed.stderr
        assert _accepted(server)
    _host_is_fine(sandbox, result)


def test_escape_fork_bomb(sandbox):
    bomb = (
        "import os, time\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        time.sleep(0.01)\n"
    )
    result = sandbox.run_python(bomb, limits=replace(QUICK, wall_seconds=3))
    assert result.timed_out and result.killed_reason == "wall_timeout"
    assert result.returncode is None
    _host_is_fine(sandbox, result)


def test_fork_is_limited_to_max_processes(sandbox):
    code = (
        "import os, time\n"
        "children = 0\n"
        "try:\n"
        "    for _ in range(100):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "        children += 1\n"
        "except OSError as exc:\n"
        "    print('fork failed after', children, type(exc).__name__)\n"
        "os.killpg(0, 9)\n"
    )
    result = sandbox.run_python(code, limits=replace(QUICK, max_processes=10))
    assert "fork failed after 9 BlockingIOError" in result.stdout, (result.stdout, result.stderr)
    _host_is_fine(sandbox, result)


def test_escape_allocate_8_gb(sandbox):
    result = sandbox.run_python("data = bytearray(8 << 30)\nprint('allocated')")
    assert not result.ok
    assert result.killed_reason == "memory"
    assert "MemoryError" in result.stderr and "allocated" not in result.stdout
    _host_is_fine(sandbox, result)


def test_escape_infinite_loop_cpu_limit(sandbox):
    result = sandbox.run_python("while True:\n    pass", limits=replace(QUICK, cpu_seconds=1))
    assert result.timed_out and result.killed_reason == "cpu_timeout"
    assert result.cpu_s >= 0.9
    _host_is_fine(sandbox, result)


def test_escape_sleeping_forever_wall_limit(sandbox):
    result = sandbox.run_python("import time\ntime.sleep(1000)", limits=replace(QUICK, wall_seconds=1))
    assert result.timed_out and result.killed_reason == "wall_timeout" and result.returncode is None
    assert result.duration_s < 5
    _host_is_fine(sandbox, result)


def test_escape_output_flood(sandbox):
    result = sandbox.run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)")
    assert result.killed_reason == "output" and result.truncated
    assert len(result.stdout) == QUICK.max_output_bytes
    _host_is_fine(sandbox, result)


def test_large_output_is_truncated_not_killed(sandbox):
    result = sandbox.run_python("print('y' * 200_000)")
    assert result.ok and result.truncated and result.killed_reason is None
    assert result.stdout == "y" * QUICK.max_output_bytes


def test_escaped_daemon_is_killed_with_the_run(sandbox):
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "print('parent done')\n"
    )
    result = sandbox.run_python(code)
    assert result.ok and result.stdout == "parent done\n"
    _host_is_fine(sandbox, result)


def test_file_size_limit(sandbox):
    result = sandbox.run_python(
        "open('big', 'wb').write(b'z' * (2 << 20))", limits=replace(QUICK, max_file_bytes=1 << 20))
    assert not result.ok
    assert "File too large" in result.stderr or "EFBIG" in result.stderr


def test_given_cwd_is_writable_and_ownership_restored(sandbox, tmp_path):
    (tmp_path / "input.txt").write_text("data")
    result = sandbox.run(["sh", "-c", "cat input.txt > copy.txt && pwd"], cwd=tmp_path)
    assert result.ok, result.stderr
    assert result.stdout.strip() == str(tmp_path)
    assert (tmp_path / "copy.txt").read_text() == "data"
    owner = tmp_path.stat().st_uid
    assert {p.stat().st_uid for p in tmp_path.iterdir()} == {owner}


def test_fresh_work_dir_is_removed(sandbox):
    result = sandbox.run_python("import os; open('f', 'w').write('x'); print(os.getcwd())")
    assert result.ok
    assert not Path(result.stdout.strip()).exists()


def test_concurrent_runs_from_threads(sandbox):
    results: dict[int, str] = {}

    def work(i: int) -> None:
        results[i] = sandbox.run_python(f"import time; time.sleep(0.2); print({i} * {i})").stdout

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: f"{i * i}\n" for i in range(8)}


def test_runs_pytest_inside(sandbox):
    files = {"test_x.py": "def test_ok():\n    assert 1 + 1 == 2\n"}
    result = sandbox.run(["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], files=files,
                         limits=replace(QUICK, wall_seconds=60, cpu_seconds=30))
    assert result.ok, result.stdout + result.stderr
    assert "1 passed" in result.stdout
