"""Alembic migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.core.config import Settings
from app.db.migrate import alembic_config, upgrade
from app.db.models import Base
from app.db.session import make_engine


def test_migrations_match_models_and_roundtrip(database_url, tmp_path):
    engine = make_engine(Settings(database_url=database_url, var_dir=tmp_path))
    try:
        upgrade(engine)
        command.downgrade(alembic_config(engine), "base")
        assert "users" not in inspect(engine).get_table_names()
        upgrade(engine)
        upgrade(engine)  # idempotent at head
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()
