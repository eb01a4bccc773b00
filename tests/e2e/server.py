"""`empathic serve` as a real subprocess on a free loopback port, with its logs kept for failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

API_KEY = "emp_e2e_key_0123456789"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `empathic serve` subprocess; its stdout/stderr go to files we can show on failure."""

    def __init__(self, data_dir: Path, logs: Path, project: Path | None = None) -> None:
        self.project = project
        self.data_dir = data_dir
        self.logs = logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 20.0) -> None:
        self.starts += 1
        self.stderr_path = self.logs / f"server-{self.starts}.err"
        env = {**os.environ, "EMPATHIC_BOOTSTRAP_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"}
        for name in ("EMPATHIC_DATABASE_URL", "EMPATHIC_PROJECT", "EMPATHIC_DATA_DIR", "EMPATHIC_PORT"):
            env.pop(name, None)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "empathic.cli", "serve", "--port", str(self.port),
                 "--data-dir", str(self.data_dir), "--log-level", "info",
                 *(["--project", str(self.project)] if self.project else [])],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode} before it was healthy:\n{self.stderr()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        pytest.fail(f"server not healthy within {timeout}s:\n{self.stderr()}")

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
