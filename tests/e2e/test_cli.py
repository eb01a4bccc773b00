"""The CLI against a running server: `empathic keys create` and `empathic phone`."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.e2e.test_serve import Server, eventually


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "empathic.cli", *args]


def test_keys_create_prints_a_working_key(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", tmp_path)
    try:
        server.start()
        out = subprocess.run(cli("keys", "create", "--data-dir", str(server.data_dir), "--name", "ci"),
                             capture_output=True, text=True, timeout=60, check=True)
        key = out.stdout.strip()
        assert key.startswith("emp_") and len(key) > 30
        ok = httpx.get(f"{server.url}/v1/messages", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
        bad = httpx.get(f"{server.url}/v1/messages", headers={"Authorization": f"Bearer {key}x"})
        assert bad.status_code == 401
    finally:
        server.terminate()


def test_terminal_phone_sends_and_shows_texts(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", tmp_path)
    phone = None
    try:
        server.start()
        api = server.client()
        api.patch("/v1/simulator", json={"receipt_delay": 0.1})
        env = {**os.environ, "EMPATHIC_API_KEY": api.headers["Authorization"].split()[1], "COLUMNS": "200"}
        phone = subprocess.Popen(
            cli("phone", "+14155550177", "--url", server.url, "--interval", "0.1"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in phone.stdout], daemon=True).start()  # type: ignore[union-attr]
        assert "+14155550177" in lines.get(timeout=20)

        phone.stdin.write("Is my order late?\n")  # type: ignore[union-attr]
        phone.stdin.flush()  # type: ignore[union-attr]

        def thread_opened() -> list | None:
            data = api.get("/v1/inbox").json()["data"]
            return data or None

        (thread,) = eventually(thread_opened, timeout=15)
        assert thread["last_message"]["body"] == "Is my order late?"

        api.post(f"/v1/inbox/{thread['id']}/messages", json={"body": "It arrives at 3pm today."})
        seen = ""
        while "It arrives at 3pm today." not in seen:
            seen += lines.get(timeout=15)
        assert "+18005550100" in seen  # shown with the business number it came from

        phone.stdin.close()  # type: ignore[union-attr]
        assert phone.wait(timeout=10) == 0
    finally:
        if phone and phone.poll() is None:
            phone.kill()
        server.terminate()
