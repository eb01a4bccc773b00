"""Shared fixtures: a real Runtime on a real SQLite file, driven through the real ASGI app."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from empathic.api.app import create_app
from empathic.engine.dispatcher import DispatchSettings
from empathic.engine.runtime import Runtime, Settings
from empathic.store.db import Database
from tests.patience import patient

API_KEY = "emp_test_key_0123456789"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=None,
        bootstrap_api_key=API_KEY,
        simulator={"receipt_delay": 0.05, "seed": 7},
        dispatch=DispatchSettings(retry_base=0.05),
    )
    for name, value in overrides.items():
        setattr(settings, name, value)
    return settings


@pytest.fixture(params=["sqlite", "postgresql"])
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """The whole engine on each backend (PostgreSQL: a schema of its own per test)."""
    if request.param == "sqlite":
        (tmp_path / "data").mkdir()
        shutil.copyfile(await _migrated_sqlite(), tmp_path / "data" / "empathic.sqlite3")
        rt = Runtime(make_settings(tmp_path))
        await rt.start()
        try:
            yield rt
        finally:
            await rt.stop()
        return
    async with postgres_schema(migrated=True) as schema:
        rt = Runtime(make_settings(tmp_path, database_url=POSTGRES_URL, database_schema=schema))
        await rt.start()
        try:
            yield rt
        finally:
            await rt.stop()


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime)  # lifespan is not run by ASGITransport; the fixture started it
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://empathic.test", headers={"Authorization": f"Bearer {API_KEY}"}
    ) as client:
        yield client


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until `check` returns a truthy value; fail with the last value after `timeout`
    (times `PATIENCE`, for a loaded machine)."""
    timeout = patient(timeout)
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


def daytime_zone() -> str:
    """A fixed-offset zone where it is around noon right now, so tests that send marketing or
    conversational texts through the real clock are never held by quiet hours."""
    from datetime import UTC, datetime

    offset = 12 - datetime.now(UTC).hour  # -11 .. +12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"  # Etc/GMT-3 is UTC+3


async def subscribe(api: httpx.AsyncClient, phone: str, topic: str = "deals") -> str:
    """Create the contact (at midday in its zone) with express consent to `topic`; its id."""
    made = await api.post("/v1/contacts", json={"phone": phone, "timezone": daytime_zone()})
    assert made.status_code == 201, made.text
    contact = made.json()
    granted = await api.post(  # consent collected on the business's own form (not double opt-in)
        f"/v1/contacts/{contact['id']}/consents",
        json={"topic": topic, "action": "granted", "source": "web_form", "evidence": "signup form"},
    )
    assert granted.status_code == 201, granted.text
    return contact["id"]


POSTGRES_URL = os.environ.get("EMPATHIC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database on each backend (PostgreSQL: a schema of its own per test;
    SQLite: a copy of a file migrated once per process). `migrate` at start is a no-op then,
    as in every process but the first; tests/integration/test_migrations.py runs Alembic."""
    if request.param == "sqlite":
        shutil.copyfile(await _migrated_sqlite(), tmp_path / "test.db")
        db = Database(f"sqlite:///{tmp_path / 'test.db'}")
        await db.migrate()
        yield db
        await db.close()
        return
    async with postgres_schema(migrated=True) as schema:
        db = Database(POSTGRES_URL, schema=schema)
        try:
            await db.migrate()
            yield db
        finally:
            await db.close()


@asynccontextmanager
async def postgres_schema(*, migrated: bool = False) -> AsyncIterator[str]:
    """A fresh schema on the test PostgreSQL, dropped afterwards; skip (fail in CI) without one.

    `migrated`: already at the newest migration, by replaying the statements one real
    Alembic upgrade sent in this process (half the time of running Alembic again); tests of
    migrations themselves take an empty schema."""
    if not _postgres_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and CI=true: it is required")
        pytest.skip("PostgreSQL not running on 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = Database(POSTGRES_URL)
    try:
        statements = await _upgrade_statements(admin) if migrated else []
        async with admin.transaction() as conn:
            await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            if statements:
                await conn.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')
                raw = (await conn.get_raw_connection()).driver_connection
                for script, parameters in _scripts(statements):
                    if parameters:
                        await conn.exec_driver_sql(script, parameters)
                    else:  # one round trip for a run of DDL (asyncpg's simple query protocol)
                        await raw.execute(script)
        yield schema
    finally:
        async with admin.transaction() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


def _scripts(statements: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The upgrade's statements with each run of parameterless ones joined into one script:
    a migrated schema costs a few round trips instead of one per statement."""
    scripts: list[tuple[str, Any]] = []
    run: list[str] = []
    for statement, parameters in statements:
        if parameters:
            if run:
                scripts.append((";\n".join(run), ()))
                run = []
            scripts.append((statement, parameters))
        else:
            run.append(statement)
    if run:
        scripts.append((";\n".join(run), ()))
    return scripts


_SQLITE: list[Path] = []  # an empty SQLite file at the newest migration, once per process


async def _migrated_sqlite() -> Path:
    if not _SQLITE:
        folder = tempfile.mkdtemp(prefix="empathic-migrated-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = Path(folder) / "empathic.sqlite3"
        db = Database(f"sqlite:///{path}")
        try:
            await db.migrate()
        finally:
            await db.close()
        _SQLITE.append(path)
    return _SQLITE[0]


_UPGRADE: list[tuple[str, Any]] = []  # what `Database.migrate` sent to an empty schema, once per process


async def _upgrade_statements(admin: Database) -> list[tuple[str, Any]]:
    if _UPGRADE:
        return _UPGRADE
    schema = f"t_{uuid.uuid4().hex[:12]}"
    async with admin.transaction() as conn:
        await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    db = Database(POSTGRES_URL, schema=schema)
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        assert schema not in statement, statement  # the replay runs under another search_path
        sent.append((statement, parameters or ()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        await db.migrate()
    finally:
        await db.close()
        async with admin.transaction() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    _UPGRADE[:] = sent
    return _UPGRADE
