"""File operations confined to one workspace root directory.

Every host-side read, list, grep, write and edit goes through :class:`tools.confined.ConfinedDir`:
paths are resolved and must stay inside the root, then opened without following any symlink
swapped in meanwhile; only regular, singly linked files are touched (see that module). ``..``,
absolute paths outside the root and symlinks pointing out are refused with a :class:`ToolError`.
Writes into ``.git/`` are refused too, because git configuration and hooks can make later git
commands execute code. Commands (pytest, git, ``git apply``) run in the sandbox, never on the host.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from tools.confined import ConfinedDir
from tools.registry import ToolError
from tools.sandbox import Sandbox, SandboxLimits, SandboxResult

SKIP_DIRS = frozenset({".git", "__pycache__", ".pytest_cache", ".mypy_cache", "node_modules", ".venv"})
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0",
           "GIT_PAGER": "cat", "GIT_OPTIONAL_LOCKS": "0"}


@dataclass(frozen=True)
class WorkspaceConfig:
    """Bounds for workspace operations."""

    max_read_bytes: int = 1 << 20
    max_list_entries: int = 500
    max_grep_matches: int = 200
    command_limits: SandboxLimits = field(default_factory=lambda: SandboxLimits(
        cpu_seconds=60, wall_seconds=120, memory_bytes=2 << 30, max_processes=128))


class Workspace:
    """A root directory plus confined read/write/edit/list/grep and sandboxed commands."""

    def __init__(self, root: Path, sandbox: Sandbox, config: WorkspaceConfig = WorkspaceConfig()) -> None:
        self.files = ConfinedDir(root)
        self.root = self.files.root
        self.sandbox = sandbox
        self.config = config

    # -- paths -----------------------------------------------------------------------------
    def resolve(self, path: str) -> Path:
        """The absolute path for ``path`` (relative to the root), or ToolError if it escapes."""
        return self.files.resolve(path)

    def relative(self, full: Path) -> str:
        return self.files.relative(full)

    def _writable(self, path: str) -> Path:
        full = self.resolve(path)
        if ".git" in full.relative_to(self.root).parts:
            raise ToolError("writing inside .git/ is not allowed")
        if full.is_dir():
            raise ToolError(f"{path!r} is a directory")
        return full

    def _text(self, path: str) -> str:
        data = self.files.read_bytes(path, self.config.max_read_bytes)
        return data.decode("utf-8", errors="replace")

    # -- reading ---------------------------------------------------------------------------
    def read(self, path: str, start_line: int = 1, end_line: int | None = None) -> str:
        """Lines ``start_line..end_line`` (1-based, inclusive), each prefixed with its number."""
        lines = self._text(path).splitlines()
        last = len(lines) if end_line is None else min(end_line, len(lines))
        if start_line < 1 or start_line > max(last, 1):
            raise ToolError(f"line range {start_line}-{end_line} is outside {path} ({len(lines)} lines)")
        width = len(str(last))
        body = "\n".join(f"{n:>{width}}| {lines[n - 1]}" for n in range(start_line, last + 1))
        return f"{self.relative(self.resolve(path))} (lines {start_line}-{last} of {len(lines)})\n{body}"

    def list(self, path: str = ".", pattern: str = "*") -> list[str]:
        """Files under ``path`` whose workspace-relative path matches the glob ``pattern``."""
        if not self.files.is_dir(path):
            raise ToolError(f"not a directory: {path}")
        found = []
        for rel in sorted(self.files.files(path, SKIP_DIRS)):
            if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pattern):
                found.append(rel)
                if len(found) >= self.config.max_list_entries:
                    break
        return found

    def grep(self, pattern: str, path: str = ".", glob: str = "*") -> list[str]:
        """``file:line: text`` for every line matching the regular expression ``pattern``."""
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ToolError(f"invalid regular expression: {exc}") from None
        single = not self.files.is_dir(path)
        files = [self.relative(self.resolve(path))] if single else self.list(path, glob)
        matches = []
        for rel in files:
            try:
                text = self.files.read_bytes(rel, self.config.max_read_bytes).decode()
            except UnicodeDecodeError:
                continue
            except ToolError:
                if single:
                    raise
                continue  # too large, or not a plain file: skipped in a directory search
            for number, line in enumerate(text.splitlines(), 1):
                if regex.search(line):
                    matches.append(f"{rel}:{number}: {line}")
                    if len(matches) >= self.config.max_grep_matches:
                        return matches
        return matches

    # -- writing ---------------------------------------------------------------------------
    def write(self, path: str, content: str) -> str:
        self._writable(path)
        full = self.files.write_text(path, content)
        return f"wrote {len(content.splitlines())} lines to {self.relative(full)}"

    def edit(self, path: str, search: str, replace: str, replace_all: bool = False) -> str:
        """Replace ``search`` by ``replace``; ``search`` must occur exactly once unless replace_all."""
        full = self._writable(path)
        if not search:
            raise ToolError("search text must not be empty")
        text = self._text(path)
        count = text.count(search)
        if count == 0:
            raise ToolError(f"search text not found in {path}")
        if count > 1 and not replace_all:
            raise ToolError(f"search text occurs {count} times in {path}; add context or set replace_all")
        self.files.write_text(path, text.replace(search, replace))
        return f"replaced {count if replace_all else 1} occurrence(s) in {self.relative(full)}"

    def apply_patch(self, patch: str) -> str:
        """Apply a unified diff (paths relative to the root) with ``git apply`` in the sandbox."""
        targets = re.findall(r"^(?:---|\+\+\+) (?:[ab]/)?(\S+)", patch, flags=re.MULTILINE)
        if not targets:
            raise ToolError("no file headers (--- a/FILE / +++ b/FILE) found in the patch")
        for target in targets:
            if target != "/dev/null":
                self._writable(target)
        if not patch.endswith("\n"):
            patch += "\n"
        result = self.run(["git", "apply", "--recount", "--whitespace=nowarn", "-v", "-"], stdin=patch)
        if not result.ok:
            raise ToolError(f"patch did not apply:\n{result.stderr.strip()}")
        return f"patch applied:\n{result.stderr.strip()}"

    # -- commands --------------------------------------------------------------------------
    def run(self, argv: list[str], stdin: str | None = None) -> SandboxResult:
        """Run ``argv`` in the sandbox with the workspace as working directory."""
        return self.sandbox.run(argv, cwd=self.root, stdin=stdin, env=GIT_ENV,
                                limits=self.config.command_limits)
