"""The Alembic migrations build exactly the schema the code declares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from empathic.store.db import Database
from empathic.store.partitions import schema_filter
from empathic.store.schema import metadata
from tests.conftest import POSTGRES_URL, postgres_schema


@pytest.fixture(params=["sqlite", "postgresql"])
async def upgraded(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database brought to the newest migration by Alembic itself (the `database`
    fixture replays a recorded upgrade on PostgreSQL)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'test.db'}")
        await db.migrate()
        yield db
        await db.close()
        return
    async with postgres_schema() as schema:
        db = Database(POSTGRES_URL, schema=schema)
        try:
            await db.migrate()
            yield db
        finally:
            await db.close()


async def test_migrations_match_schema_and_are_idempotent(upgraded: Database) -> None:
    await upgraded.migrate()  # a second run changes nothing

    def diff(connection):  # type: ignore[no-untyped-def]
        options = {"compare_type": True, "include_object": schema_filter(connection.dialect.name)}
        return compare_metadata(MigrationContext.configure(connection, opts=options), metadata)

    async with upgraded.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


_SHAPE = """
SELECT 'column', table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
       || ' ' || coalesce(collation_name, '') || ' ' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = current_schema()
UNION ALL
SELECT 'index', tablename || ' ' || replace(indexdef, current_schema() || '.', '')
  FROM pg_indexes WHERE schemaname = current_schema()
UNION ALL
SELECT 'constraint', conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
UNION ALL
SELECT 'partition', c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid)
  FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relispartition AND c.relkind = 'r'
UNION ALL
SELECT 'version', version_num FROM alembic_version
"""


async def test_the_recorded_upgrade_builds_what_alembic_builds() -> None:
    shapes = []
    for migrated in (False, True):
        async with postgres_schema(migrated=migrated) as schema:
            db = Database(POSTGRES_URL, schema=schema)
            try:
                if not migrated:
                    await db.migrate()
                async with db.transaction() as conn:
                    shapes.append(sorted(tuple(r) for r in await conn.execute(text(_SHAPE))))
            finally:
                await db.close()
    alembic_built, replayed = shapes
    assert len(alembic_built) > 200
    assert replayed == alembic_built
