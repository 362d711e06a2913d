"""What a paused agent run's dangerous tool calls would do, for the person approving them.

`write_file` and `edit_file` become a unified diff of the file as it is now against the file as
the call would leave it (read through the workspace's confined reader, never written);
`apply_patch` is its own diff; `run_command` shows its command. A call whose arguments cannot be
read, or whose edit would fail, says why instead.
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from tools.confined import ConfinedDir
from tools.registry import ToolError

MAX_PREVIEW_BYTES = 512 * 1024


def _current(workspace: ConfinedDir, path: str) -> str | None:
    """The file's text now; None when it does not exist yet."""
    try:
        return workspace.read_bytes(path, MAX_PREVIEW_BYTES).decode("utf-8", "replace")
    except ToolError:
        if workspace.resolve(path).exists():
            raise
        return None


def _diff(path: str, old: str | None, new: str) -> str:
    before = [] if old is None else old.splitlines(keepends=True)
    lines = difflib.unified_diff(before, new.splitlines(keepends=True),
                                 "/dev/null" if old is None else f"a/{path}", f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _edited(old: str | None, args: dict[str, Any]) -> str:
    if old is None:
        raise ToolError("the file does not exist")
    if not args.get("search"):
        raise ToolError("the search text is empty")
    count = old.count(args["search"])
    if count == 0:
        raise ToolError("the search text is not in the file")
    if count > 1 and not args.get("replace_all"):
        raise ToolError(f"the search text occurs {count} times")
    return old.replace(args["search"], args.get("replace", ""))


def preview_call(workspace: ConfinedDir, call: dict[str, Any]) -> dict[str, Any]:
    """`{"id", "name", "arguments", "diff" | "command" | "error"}` for one tool call."""
    name = call["function"]["name"]
    preview: dict[str, Any] = {"id": call.get("id"), "name": name, "arguments": call["function"]["arguments"]}
    try:
        args = json.loads(call["function"]["arguments"] or "{}")
        if name == "write_file":
            preview["diff"] = _diff(args["path"], _current(workspace, args["path"]), args["content"])
        elif name == "edit_file":
            old = _current(workspace, args["path"])
            preview["diff"] = _diff(args["path"], old, _edited(old, args))
        elif name == "apply_patch":
            preview["diff"] = args["patch"]
        elif name == "run_command":
            preview["command"] = args["command"]
    except (ToolError, KeyError, TypeError, json.JSONDecodeError) as exc:
        preview["error"] = f"cannot preview this call: {exc}"
    return preview


def preview_calls(root: Path, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Previews of the calls a run waits on, against its workspace at `root`."""
    workspace = ConfinedDir(root)
    return [preview_call(workspace, call) for call in calls]
