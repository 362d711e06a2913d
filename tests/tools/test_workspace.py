"""Workspace tools: confinement to the root, reading, editing, patching, commands in the sandbox."""
import os
import subprocess
from pathlib import Path

import pytest

from tools.registry import ToolRegistry
from tools.sandbox import Sandbox
from tools.workspace import Workspace
from tools.workspace_tools import workspace_tools

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "calc.py").write_text(CALC)
    (root / "test_calc.py").write_text(TEST)
    (root / "pkg" / "notes.txt").write_text("alpha\nbeta\ngamma\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "-C", str(root), "add", "."], check=True)
    subprocess.run([*git, "-C", str(root), "commit", "-qm", "init"], check=True)
    return root


@pytest.fixture
def tools(repo: Path, sandbox: Sandbox) -> ToolRegistry:
    return ToolRegistry().register(*workspace_tools(Workspace(repo, sandbox)))


def call(tools: ToolRegistry, name: str, **arguments) -> str:
    return tools.call(name, arguments).result


def test_read_with_line_ranges(tools):
    assert call(tools, "read_file", path="pkg/notes.txt") == "pkg/notes.txt (lines 1-3 of 3)\n1| alpha\n2| beta\n3| gamma"
    assert call(tools, "read_file", path="pkg/notes.txt", start_line=2, end_line=2).endswith("\n2| beta")
    assert "outside pkg/notes.txt" in call(tools, "read_file", path="pkg/notes.txt", start_line=9)
    assert call(tools, "read_file", path="missing.py") == "error: no such file: missing.py"


def test_list_and_grep(tools):
    assert call(tools, "list_files") == "calc.py\npkg/notes.txt\ntest_calc.py"  # .git is skipped
    assert call(tools, "list_files", pattern="*.py") == "calc.py\ntest_calc.py"
    assert call(tools, "grep", pattern=r"return a \W b") == "calc.py:2:     return a - b"
    assert call(tools, "grep", pattern="zzz") == "(no matches)"
    assert call(tools, "grep", pattern="(").startswith("error: invalid regular expression")


def test_write_and_edit(tools, repo):
    assert call(tools, "write_file", path="new/dir/f.txt", content="one\ntwo\n") == "wrote 2 lines to new/dir/f.txt"
    assert (repo / "new/dir/f.txt").read_text() == "one\ntwo\n"
    assert call(tools, "edit_file", path="calc.py", search="a - b", replace="a + b") == \
        "replaced 1 occurrence(s) in calc.py"
    assert (repo / "calc.py").read_text() == CALC.replace("a - b", "a + b")
    assert "not found" in call(tools, "edit_file", path="calc.py", search="nothing", replace="x")
    (repo / "dup.txt").write_text("x x x")
    assert "occurs 3 times" in call(tools, "edit_file", path="dup.txt", search="x", replace="y")
    assert call(tools, "edit_file", path="dup.txt", search="x", replace="y", replace_all=True).startswith("replaced 3")
    assert (repo / "dup.txt").read_text() == "y y y"


def test_apply_unified_diff(tools, repo):
    patch = (
        "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n"
        " def add(a, b):\n-    return a - b\n+    return a + b\n"
    )
    result = call(tools, "apply_patch", patch=patch)
    assert result.startswith("patch applied"), result
    assert (repo / "calc.py").read_text() == CALC.replace("a - b", "a + b")
    assert call(tools, "apply_patch", patch=patch).startswith("error: patch did not apply")
    assert (repo / "calc.py").stat().st_uid == repo.stat().st_uid
    assert "no file headers" in call(tools, "apply_patch", patch="just words")


@pytest.mark.parametrize("path", ["../outside.txt", "pkg/../../outside.txt", "/etc/passwd", "/tmp/x.txt"])
def test_paths_outside_the_root_are_refused(tools, repo, path):
    for name, extra in (("read_file", {}), ("write_file", {"content": "x"}), ("list_files", {}),
                        ("edit_file", {"search": "a", "replace": "b"})):
        result = call(tools, name, path=path, **extra)
        assert "outside the workspace" in result, (name, result)
    assert not (repo.parent / "outside.txt").exists()


def test_symlink_escapes_are_refused(tools, repo, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    os.symlink(secret, repo / "link.txt")
    os.symlink(tmp_path, repo / "linkdir")
    assert "outside the workspace" in call(tools, "read_file", path="link.txt")
    assert "outside the workspace" in call(tools, "write_file", path="linkdir/evil.txt", content="x")
    assert "outside the workspace" in call(tools, "read_file", path="linkdir/secret.txt")
    patch = "--- a/link.txt\n+++ b/link.txt\n@@ -1 +1 @@\n-TOP SECRET\n+changed\n"
    assert "outside the workspace" in call(tools, "apply_patch", patch=patch)
    assert secret.read_text() == "TOP SECRET" and not (tmp_path / "evil.txt").exists()
    os.symlink("calc.py", repo / "inside_link.py")  # a link that stays inside is fine
    assert "def add" in call(tools, "read_file", path="inside_link.py")


def test_git_directory_is_read_only(tools, repo):
    result = call(tools, "write_file", path=".git/hooks/pre-commit", content="#!/bin/sh\nrm -rf /\n")
    assert result == "error: writing inside .git/ is not allowed"
    assert not (repo / ".git/hooks/pre-commit").exists()


def test_run_pytest_in_the_sandbox_and_git(tools, repo):
    failing = call(tools, "run_command", command="python -m pytest -q -p no:cacheprovider")
    assert failing.startswith("exit code 1") and "1 failed" in failing
    assert call(tools, "git_status") == "(no changes)"
    call(tools, "edit_file", path="calc.py", search="a - b", replace="a + b")
    passing = call(tools, "run_command", command="python -m pytest -q -p no:cacheprovider")
    assert passing.startswith("exit code 0") and "1 passed" in passing
    assert call(tools, "git_status").strip() == "M calc.py"
    diff = call(tools, "git_diff", path="calc.py")
    assert "-    return a - b\n+    return a + b" in diff
    owner = repo.stat().st_uid
    assert {p.stat().st_uid for p in repo.rglob("*")} == {owner}


def test_commands_cannot_reach_outside(tools, repo, tmp_path):
    (tmp_path / "outside.txt").write_text("host file")
    result = call(tools, "run_command", command=f"cat {tmp_path}/outside.txt; echo x > {tmp_path}/made.txt; "
                                                "python -c \"import socket; socket.create_connection(('1.1.1.1', 80), 2)\"")
    assert result.startswith("exit code 1")
    assert "host file" not in result and not (tmp_path / "made.txt").exists()
    assert "Network is unreachable" in result


def test_workspace_must_exist(sandbox, tmp_path):
    with pytest.raises(Exception, match="not a directory"):
        Workspace(tmp_path / "missing", sandbox)
