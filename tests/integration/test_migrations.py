"""The Alembic migrations build exactly the schema the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from empathic.store.db import Database
from empathic.store.partitions import schema_filter
from empathic.store.schema import metadata


async def test_migrations_match_schema_and_are_idempotent(database: Database) -> None:
    await database.migrate()  # a second run changes nothing

    def diff(connection):  # type: ignore[no-untyped-def]
        options = {"compare_type": True, "include_object": schema_filter(connection.dialect.name)}
        return compare_metadata(MigrationContext.configure(connection, opts=options), metadata)

    async with database.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
