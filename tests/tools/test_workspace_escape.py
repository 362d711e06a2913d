"""Attacks on the host-side workspace tools, as a sandboxed command would set them up.

The attack that worked: a sandboxed `run_command` makes `ln -sf /proc/self/environ notes.txt`,
then `grep` (not dangerous, run in the app process) returned the app's environment, admin key
included. Every host-side access now goes through tools.confined.ConfinedDir.
"""
import os
from pathlib import Path

import pytest

from tools.confined import ConfinedDir
from tools.registry import ToolError, ToolRegistry
from tools.sandbox import Sandbox
from tools.workspace import Workspace
from tools.workspace_tools import workspace_tools

PLANT = ("ln -sf /proc/self/environ notes.txt && ln -s /etc/shadow shadow.txt && ln -s / rootlink"
         " && ln -s calc.py alias.py && mkfifo pipe && mkdir sub && ln -s ../calc.py sub/up.py")


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    return Workspace(root, Sandbox())


@pytest.fixture
def planted(workspace: Workspace) -> ToolRegistry:
    tools = ToolRegistry().register(*workspace_tools(workspace))
    result = tools.call("run_command", {"command": PLANT})
    assert result.ok and "exit code 0" in result.result, result.result
    assert (workspace.root / "notes.txt").is_symlink() and (workspace.root / "pipe").exists()
    return tools


def test_grep_does_not_follow_planted_symlinks_out(planted: ToolRegistry):
    hits = planted.call("grep", {"pattern": "."})
    assert hits.ok
    files = {line.split(":", 1)[0] for line in hits.result.splitlines()}
    assert files == {"calc.py", "alias.py", "sub/up.py"}, hits.result  # in-tree symlinks still work
    assert "PATH=" not in hits.result and "root:" not in hits.result


def test_list_shows_only_files_inside(planted: ToolRegistry):
    listed = planted.call("list_files", {}).result.splitlines()
    assert listed == ["alias.py", "calc.py", "sub/up.py"]


@pytest.mark.parametrize("path", ["notes.txt", "shadow.txt", "rootlink/etc/passwd", "/proc/self/environ"])
def test_read_through_an_outward_symlink_is_refused(planted: ToolRegistry, path: str):
    result = planted.call("read_file", {"path": path})
    assert not result.ok and "outside the workspace" in result.result
    grep = planted.call("grep", {"pattern": ".", "path": path})
    assert not grep.ok and "outside the workspace" in grep.result


def test_fifo_is_refused_at_once(planted: ToolRegistry):
    for tool, args in [("read_file", {"path": "pipe"}), ("grep", {"pattern": ".", "path": "pipe"}),
                       ("edit_file", {"path": "pipe", "search": "a", "replace": "b"})]:
        result = planted.call(tool, args)
        assert not result.ok and "not a regular file" in result.result, (tool, result.result)


def test_write_through_an_outward_symlinked_directory_is_refused(workspace: Workspace, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace.root / "out").symlink_to(outside)
    with pytest.raises(ToolError, match="outside the workspace"):
        workspace.write("out/evil.txt", "x")
    assert list(outside.iterdir()) == []


def test_hard_link_to_a_file_outside_is_neither_read_nor_truncated(workspace: Workspace, tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret\n")
    os.link(secret, workspace.root / "linked.txt")
    for action in (lambda: workspace.read("linked.txt"), lambda: workspace.write("linked.txt", ""),
                   lambda: workspace.edit("linked.txt", "s3cret", "x")):
        with pytest.raises(ToolError, match="hard link"):
            action()
    assert secret.read_text() == "s3cret\n"
    assert workspace.grep("s3cret") == []


def test_a_directory_swapped_for_a_symlink_after_the_check_is_not_followed(tmp_path: Path, monkeypatch):
    """The race: the path is checked, then a sandboxed process swaps a directory for a symlink."""
    root, outside = tmp_path / "ws", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("inside\n")
    outside.mkdir()
    (outside / "a.txt").write_text("outside secret\n")
    confined = ConfinedDir(root)
    checked = confined.resolve("sub/a.txt")
    (root / "sub" / "a.txt").unlink()
    (root / "sub").rmdir()
    (root / "sub").symlink_to(outside)
    monkeypatch.setattr(confined, "resolve", lambda path: checked)  # the check already passed
    with pytest.raises(ToolError, match="symlink"):
        confined.read_bytes("sub/a.txt", 1 << 20)
    with pytest.raises(ToolError, match="symlink"):
        confined.write_text("sub/a.txt", "overwritten")
    assert (outside / "a.txt").read_text() == "outside secret\n"
