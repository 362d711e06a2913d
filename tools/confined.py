"""Host-side file access confined to one directory tree: the one resolve-and-check.

Workspaces are written by sandboxed commands, so anything in them may be a trap: a symlink to
``/proc/self/environ`` or ``/etc/shadow``, a FIFO that blocks a reader forever, a hard link to a
file elsewhere, or a directory swapped for a symlink while the host is reading. Every host-side
access of a workspace goes through :class:`ConfinedDir`:

1. the path is resolved (symlinks followed) and must stay inside the root, so a symlink inside
   the tree to another file inside it still works;
2. the resolved path is opened component by component from a descriptor of the root with
   ``O_NOFOLLOW``, so a symlink swapped in between the check and the open makes the open fail
   (``ELOOP``/``ENOTDIR``) instead of leaving the tree;
3. only regular files with a single hard link are read or written (opened ``O_NONBLOCK``, so a
   FIFO is refused at once instead of hanging); writes truncate only after that check.
"""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from tools.registry import ToolError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class ConfinedDir:
    """A root directory whose files the host reads and writes without ever leaving it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ToolError(f"workspace is not a directory: {root}")

    # -- paths -----------------------------------------------------------------------------
    def resolve(self, path: str | Path) -> Path:
        """The real absolute path for ``path`` (relative to the root), or ToolError if it escapes."""
        text = str(path)
        if not text or "\x00" in text:
            raise ToolError("path must be a non-empty string")
        candidate = Path(text)
        full = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        if full != self.root and self.root not in full.parents:
            raise ToolError(f"path {text!r} is outside the workspace")
        return full

    def relative(self, full: Path) -> str:
        return full.relative_to(self.root).as_posix() or "."

    # -- opening ---------------------------------------------------------------------------
    def _open(self, path: str | Path, flags: int, create_parents: bool = False) -> tuple[int, Path]:
        """Open the regular file at ``path`` (resolved, then walked with O_NOFOLLOW); fd and real path."""
        full = self.resolve(path)
        parts = full.relative_to(self.root).parts
        if not parts:
            raise ToolError(f"{str(path)!r} is a directory")
        dir_fds = [os.open(self.root, _DIR_FLAGS)]
        try:
            for name in parts[:-1]:
                dir_fds.append(self._enter(dir_fds[-1], name, create_parents, path))
            try:
                fd = os.open(parts[-1], flags | _FILE_FLAGS, 0o644, dir_fd=dir_fds[-1])
            except FileNotFoundError:
                raise ToolError(f"no such file: {path}") from None
            except OSError as exc:
                raise ToolError(_refusal(path, exc)) from None
        finally:
            for dir_fd in dir_fds:
                os.close(dir_fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)
            what = "not a regular file" if not stat.S_ISREG(info.st_mode) else "a hard link"
            raise ToolError(f"refused {str(path)!r}: {what}")
        return fd, full

    @staticmethod
    def _enter(dir_fd: int, name: str, create: bool, path: str | Path) -> int:
        """A descriptor of the directory ``name`` in ``dir_fd``, never following a symlink."""
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                raise ToolError(f"no such file: {path}") from None
            try:
                os.mkdir(name, 0o755, dir_fd=dir_fd)
                return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                raise ToolError(_refusal(path, exc)) from None
        except OSError as exc:
            raise ToolError(_refusal(path, exc)) from None

    # -- reading and writing ---------------------------------------------------------------
    def read_bytes(self, path: str | Path, limit: int) -> bytes:
        """The file's bytes; ToolError when it is larger than ``limit``."""
        fd, _ = self._open(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as f:
            if os.fstat(f.fileno()).st_size > limit:
                raise ToolError(f"{path} is larger than {limit} bytes")
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ToolError(f"{path} is larger than {limit} bytes")
        return data

    def write_text(self, path: str | Path, content: str) -> Path:
        """Create or replace the file (parent directories are created); its real path."""
        fd, full = self._open(path, os.O_WRONLY | os.O_CREAT, create_parents=True)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.truncate(0)
            f.write(content)
        return full

    def is_dir(self, path: str | Path) -> bool:
        return self.resolve(path).is_dir()

    def files(self, path: str | Path = ".", skip_dirs: frozenset[str] = frozenset()) -> Iterator[str]:
        """Root-relative paths of the regular files under ``path``.

        Walks with descriptors (``os.fwalk``) and never follows a symlinked directory; a symlink to
        a file is listed only when its target is a regular file inside the root.
        """
        base = self.resolve(path)
        for dirpath, dirnames, filenames, dir_fd in os.fwalk(base, follow_symlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
            rel_dir = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                try:
                    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except OSError:  # removed meanwhile
                    continue
                if stat.S_ISREG(info.st_mode) or (stat.S_ISLNK(info.st_mode) and self._inside_file(rel_dir / name)):
                    yield (rel_dir / name).as_posix()

    def _inside_file(self, rel: Path) -> bool:
        try:
            return self.resolve(rel).is_file()
        except ToolError:
            return False


def _refusal(path: str | Path, exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return f"refused {str(path)!r}: it changed into a symlink or a non-directory while being opened"
    if exc.errno == errno.ENXIO:
        return f"refused {str(path)!r}: not a regular file"
    return f"cannot open {str(path)!r}: {exc.strerror}"
