"""Shared fixtures: a real Runtime on a real SQLite file, driven through the real ASGI app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from empathic.api.app import create_app
from empathic.engine.dispatcher import DispatchSettings
from empathic.engine.runtime import Runtime, Settings

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


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime(make_settings(tmp_path))
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
    """Poll until `check` returns a truthy value; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
