"""Alembic environment: uses the engine handed over by app.db.migrate, else Settings()."""
from alembic import context

from app.db.models import Base


def _engine():
    engine = context.config.attributes.get("engine")
    if engine is None:  # invoked from the alembic CLI: `alembic -c app/alembic.ini upgrade head`
        from app.core.config import Settings
        from app.db.session import make_engine

        engine = make_engine(Settings())
    return engine


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
