"""The sandbox started by an unprivileged user (user namespace path, see docs/SANDBOX.md)."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
PROGRAM = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from tools.sandbox import Sandbox, SandboxLimits
sandbox = Sandbox()
net = sandbox.run_python("import socket\ntry:\n    socket.create_connection(('127.0.0.1', int(%s)), 2)\n"
                         "    print('connected')\nexcept OSError as e:\n    print('blocked', e.errno)" % sys.argv[2])
loop = sandbox.run_python("while True:\n    pass", limits=SandboxLimits(cpu_seconds=1))
print(json.dumps({"drops": sandbox.drops_privileges, "net": net.stdout.strip(), "net_ok": net.ok,
                  "loop": loop.killed_reason, "loop_cpu": loop.cpu_s}))
"""


def _traversable(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def test_sandbox_as_unprivileged_user():
    if os.geteuid() != 0 or not SYSTEM_PYTHON.exists() or not shutil.which("setpriv"):
        pytest.skip("needs root (to become another user), /usr/bin/python3 and setpriv")
    if not _traversable(REPO):
        pytest.skip(f"{REPO} is not readable by other users")
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        proc = subprocess.run(
            ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", str(SYSTEM_PYTHON),
             "-c", PROGRAM, str(REPO), str(server.getsockname()[1])],
            capture_output=True, text=True, timeout=120, cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["drops"] is False
    assert report["net_ok"] and report["net"].startswith("blocked")
    assert report["loop"] == "cpu_timeout", report
