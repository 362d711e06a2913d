"""LangGraph checkpointers: SQLite file by default, PostgreSQL when given a postgres URL."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver


class CheckpointError(RuntimeError):
    """The thread store could not be opened."""


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


@contextmanager
def open_checkpointer(target: str | Path) -> Iterator[BaseCheckpointSaver]:
    """A checkpointer for ``target``: a postgres URL or a SQLite file path (created if missing)."""
    with ExitStack() as stack:
        saver = _open(str(target), stack)
        yield saver


def _open(target: str, stack: ExitStack) -> BaseCheckpointSaver:
    if is_postgres_url(target):
        import psycopg  # imported here: only PostgreSQL users pay for it
        from langgraph.checkpoint.postgres import PostgresSaver

        url = target.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            saver = stack.enter_context(PostgresSaver.from_conn_string(url))
            saver.setup()
        except psycopg.Error as exc:
            raise CheckpointError(f"cannot open the PostgreSQL thread store: {exc}") from exc
        return saver
    path = Path(target).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False)
        stack.callback(conn.close)
        saver = SqliteSaver(conn)
        saver.setup()
    except (OSError, sqlite3.Error) as exc:
        raise CheckpointError(f"cannot open the SQLite thread store {path}: {exc}") from exc
    return saver
