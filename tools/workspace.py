"""File operations confined to one workspace root directory.

Every path is resolved (symlinks followed) and must stay inside the root; ``..``, absolute paths
outside the root and symlinks pointing out are refused with a :class:`ToolError`. Writes into
``.git/`` are refused too, because git configuration and hooks can make later git commands
execute code. Commands (pytest, git) run in the sandbox, never on the host.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from tools.registry import ToolError
from tools.sandbox import Sandbox, SandboxLimits, SandboxResult

SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", "node_modules", ".venv"}
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
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ToolError(f"workspace is not a directory: {root}")
        self.sandbox = sandbox
        self.config = config

    # -- paths -----------------------------------------------------------------------------
    def resolve(self, path: str) -> Path:
        """The absolute path for ``path`` (relative to the root), or ToolError if it escapes."""
        if not path or "\x00" in path:
            raise ToolError("path must be a non-empty string")
        candidate = Path(path)
        full = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        if full != self.root and self.root not in full.parents:
            raise ToolError(f"path {path!r} is outside the workspace")
        return full

    def relative(self, full: Path) -> str:
        return full.relative_to(self.root).as_posix() or "."

    def _writable(self, path: str) -> Path:
        full = self.resolve(path)
        if ".git" in full.relative_to(self.root).parts:
            raise ToolError("writing inside .git/ is not allowed")
        if full.is_dir():
            raise ToolError(f"{path!r} is a directory")
        return full

    # -- reading ---------------------------------------------------------------------------
    def read(self, path: str, start_line: int = 1, end_line: int | None = None) -> str:
        """Lines ``start_line..end_line`` (1-based, inclusive), each prefixed with its number."""
        full = self.resolve(path)
        if not full.is_file():
            raise ToolError(f"no such file: {path}")
        if full.stat().st_size > self.config.max_read_bytes:
            raise ToolError(f"{path} is larger than {self.config.max_read_bytes} bytes; use grep")
        lines = full.read_text(errors="replace").splitlines()
        last = len(lines) if end_line is None else min(end_line, len(lines))
        if start_line < 1 or start_line > max(last, 1):
            raise ToolError(f"line range {start_line}-{end_line} is outside {path} ({len(lines)} lines)")
        width = len(str(last))
        body = "\n".join(f"{n:>{width}}| {lines[n - 1]}" for n in range(start_line, last + 1))
        return f"{self.relative(full)} (lines {start_line}-{last} of {len(lines)})\n{body}"

    def list(self, path: str = ".", pattern: str = "*") -> list[str]:
        """Files under ``path`` whose workspace-relative path matches the glob ``pattern``."""
        base = self.resolve(path)
        if not base.is_dir():
            raise ToolError(f"not a directory: {path}")
        found = []
        for item in sorted(base.rglob("*")):
            rel = item.relative_to(self.root)
            if SKIP_DIRS & set(rel.parts) or not item.is_file():
                continue
            if fnmatch.fnmatch(rel.as_posix(), pattern) or fnmatch.fnmatch(item.name, pattern):
                found.append(rel.as_posix())
            if len(found) >= self.config.max_list_entries:
                break
        return found

    def grep(self, pattern: str, path: str = ".", glob: str = "*") -> list[str]:
        """``file:line: text`` for every line matching the regular expression ``pattern``."""
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ToolError(f"invalid regular expression: {exc}") from None
        target = self.resolve(path)
        files = [self.relative(target)] if target.is_file() else [
            f for f in self.list(path, glob) if (self.root / f).stat().st_size <= self.config.max_read_bytes]
        matches = []
        for rel in files:
            try:
                text = (self.root / rel).read_text()
            except UnicodeDecodeError:
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if regex.search(line):
                    matches.append(f"{rel}:{number}: {line}")
                    if len(matches) >= self.config.max_grep_matches:
                        return matches
        return matches

    # -- writing ---------------------------------------------------------------------------
    def write(self, path: str, content: str) -> str:
        full = self._writable(path)
        full.parent.mkdir(parents=True, exist_ok=True)
        self.resolve(path)  # the parent chain may not contain a symlink created meanwhile
        full.write_text(content)
        return f"wrote {len(content.splitlines())} lines to {self.relative(full)}"

    def edit(self, path: str, search: str, replace: str, replace_all: bool = False) -> str:
        """Replace ``search`` by ``replace``; ``search`` must occur exactly once unless replace_all."""
        full = self._writable(path)
        if not full.is_file():
            raise ToolError(f"no such file: {path}")
        if not search:
            raise ToolError("search text must not be empty")
        text = full.read_text()
        count = text.count(search)
        if count == 0:
            raise ToolError(f"search text not found in {path}")
        if count > 1 and not replace_all:
            raise ToolError(f"search text occurs {count} times in {path}; add context or set replace_all")
        full.write_text(text.replace(search, replace))
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
