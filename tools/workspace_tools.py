"""Function-calling tools over a :class:`~tools.workspace.Workspace`."""
from __future__ import annotations

from pydantic import BaseModel, Field

from tools.registry import Tool, ToolError
from tools.sandbox import SandboxResult
from tools.workspace import Workspace

MAX_STREAM_CHARS = 8_000


class ReadFileArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace root")
    start_line: int = Field(1, ge=1, description="First line to show (1-based)")
    end_line: int | None = Field(None, ge=1, description="Last line to show (inclusive); omit for the end")


class WriteFileArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace root")
    content: str = Field(description="The complete new file content")


class EditFileArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace root")
    search: str = Field(description="Exact text to find (must occur once unless replace_all)")
    replace: str = Field(description="Text to put in its place")
    replace_all: bool = Field(False, description="Replace every occurrence")


class ApplyPatchArgs(BaseModel):
    patch: str = Field(description="A unified diff with --- a/FILE and +++ b/FILE headers")


class ListFilesArgs(BaseModel):
    path: str = Field(".", description="Directory relative to the workspace root")
    pattern: str = Field("*", description="Glob on the relative path or file name, e.g. '*.py'")


class GrepArgs(BaseModel):
    pattern: str = Field(description="Python regular expression")
    path: str = Field(".", description="File or directory relative to the workspace root")
    glob: str = Field("*", description="Only files matching this glob")


class RunCommandArgs(BaseModel):
    command: str = Field(description="Shell command run in the workspace in a sandbox without network, "
                                     "e.g. 'python -m pytest -q'")


class GitDiffArgs(BaseModel):
    path: str | None = Field(None, description="Limit the diff to this path")


class NoArgs(BaseModel):
    pass


def format_result(result: SandboxResult) -> str:
    """A sandbox result as text for the model: status line, then stdout and stderr tails."""
    if result.killed_reason in ("wall_timeout", "cpu_timeout", "output", "sandbox_error"):
        status = f"killed: {result.killed_reason}"
    else:
        status = f"exit code {result.returncode}"
    parts = [status]
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text.strip():
            clipped = text if len(text) <= MAX_STREAM_CHARS else "...\n" + text[-MAX_STREAM_CHARS:]
            parts.append(f"--- {name} ---\n{clipped.rstrip()}")
    if result.truncated:
        parts.append("(output was truncated)")
    return "\n".join(parts)


def workspace_tools(ws: Workspace) -> list[Tool]:
    """All workspace tools; writing and running are marked dangerous."""

    def git(argv: list[str]) -> str:
        if not (ws.root / ".git").exists():
            raise ToolError("the workspace is not a git repository")
        result = ws.run(["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", *argv])
        return format_result(result) if not result.ok else (result.stdout or "(no changes)")

    def run_command(args: RunCommandArgs) -> str:
        if not args.command.strip():
            raise ToolError("command must not be empty")
        return format_result(ws.run(["sh", "-c", args.command]))

    return [
        Tool("read_file", "Read a text file (with line numbers), optionally a line range.", ReadFileArgs,
             lambda a: ws.read(a.path, a.start_line, a.end_line)),
        Tool("list_files", "List files under a directory, optionally filtered by a glob.", ListFilesArgs,
             lambda a: "\n".join(ws.list(a.path, a.pattern)) or "(no files)"),
        Tool("grep", "Search files for a regular expression; returns file:line: text.", GrepArgs,
             lambda a: "\n".join(ws.grep(a.pattern, a.path, a.glob)) or "(no matches)"),
        Tool("write_file", "Create or overwrite a file with the given content.", WriteFileArgs,
             lambda a: ws.write(a.path, a.content), dangerous=True),
        Tool("edit_file", "Replace an exact piece of text in a file.", EditFileArgs,
             lambda a: ws.edit(a.path, a.search, a.replace, a.replace_all), dangerous=True),
        Tool("apply_patch", "Apply a unified diff to files in the workspace.", ApplyPatchArgs,
             lambda a: ws.apply_patch(a.patch), dangerous=True),
        Tool("run_command", "Run a shell command (tests, scripts) in the workspace sandbox.", RunCommandArgs,
             run_command, dangerous=True),
        Tool("git_status", "Show `git status --short` of the workspace.", NoArgs,
             lambda a: git(["status", "--short"])),
        Tool("git_diff", "Show `git diff` of the workspace, optionally for one path.", GitDiffArgs,
             lambda a: git(["diff", "--", ws.relative(ws.resolve(a.path))] if a.path else ["diff"])),
    ]
