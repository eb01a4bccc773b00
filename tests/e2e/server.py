"""`empathic serve` as a real subprocess on a free loopback port, with its logs kept for failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.patience import patient

API_KEY = "emp_e2e_key_0123456789"

T = TypeVar("T")


def eventually(check: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """Poll `check` (blocking) until it returns something truthy; fail with its last value
    after `timeout` (times `PATIENCE`, for a loaded machine)."""
    timeout = patient(timeout)
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what or 'condition'} not met within {timeout}s; last value: {last!r}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `empathic serve` subprocess; its stdout/stderr go to files we can show on failure.

    `role` is passed as `--role` (api, worker, all; None: the default, all). A worker serves
    no HTTP: it is ready once it logs that it started. `env` is added to the environment
    after the EMPATHIC_* settings of the caller's own are removed (e.g. a PostgreSQL URL and
    schema, EMPATHIC_LEASE_TTL)."""

    READY_LINE = "empathic started as worker"

    def __init__(
        self,
        data_dir: Path,
        logs: Path,
        project: Path | None = None,
        *,
        role: str | None = None,
        env: dict[str, str] | None = None,
        name: str = "server",
    ) -> None:
        self.project = project
        self.data_dir = data_dir
        self.logs = logs
        self.role = role
        self.env = dict(env or {})
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 20.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting (several can then start at once); see wait_ready."""
        self.starts += 1
        self.stderr_path = self.logs / f"{self.name}-{self.starts}.err"
        env = {**os.environ, "EMPATHIC_BOOTSTRAP_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"}
        for name in ("EMPATHIC_DATABASE_URL", "EMPATHIC_DATABASE_SCHEMA", "EMPATHIC_PROJECT", "EMPATHIC_DATA_DIR",
                     "EMPATHIC_PORT", "EMPATHIC_ROLE", "EMPATHIC_LEASE_TTL"):
            env.pop(name, None)
        env.update(self.env)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "empathic.cli", "serve", "--port", str(self.port),
                 "--data-dir", str(self.data_dir), "--log-level", "info",
                 *(["--project", str(self.project)] if self.project else []),
                 *(["--role", self.role] if self.role else [])],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until /healthz answers (a worker: until it logs that it started), `timeout` times
        `PATIENCE`."""
        assert self.proc is not None
        timeout = patient(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode} before it was ready:\n{self.stderr()}")
            if self.role == "worker":
                if self.READY_LINE in self.log():
                    return
            else:
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        pytest.fail(f"{self.name} not ready within {timeout}s:\n{self.stderr()}")

    def log(self) -> str:
        """Everything it wrote to stderr so far (its log)."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-5000:]
        except OSError:
            return "(no stderr)"

    def kill(self) -> None:
        """SIGKILL: no clean shutdown at all."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; returns the exit code, or None if it had to be killed."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10.0)
