"""LangGraph checkpointers: SQLite file by default, PostgreSQL when given a postgres URL."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


@contextmanager
def open_checkpointer(target: str | Path) -> Iterator[BaseCheckpointSaver]:
    """A checkpointer for ``target``: a postgres URL or a SQLite file path (created if missing)."""
    text = str(target)
    if is_postgres_url(text):
        with PostgresSaver.from_conn_string(text.replace("postgresql+psycopg://", "postgresql://", 1)) as saver:
            saver.setup()
            yield saver
        return
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()
