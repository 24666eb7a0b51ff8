"""Alembic environment: the URL comes from the service's settings (set by app.store.migrate)."""

import zlib

from alembic import context

from app.store.engine import make_engine
from app.store.schema import Base

# Instances that start together on one PostgreSQL database take turns: the first creates the schema, the
# others wait on this lock inside their migration transaction and then find it at head.
MIGRATION_LOCK = zlib.crc32(b"deconv-arena alembic upgrade")

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=connection.dialect.name == "sqlite"
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
