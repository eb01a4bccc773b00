"""The two commands together: `empathic smsc-sim` and `empathic serve` bound to it over SMPP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.server import API_KEY, Server, free_port


def start_smsc(port: int, summary: Path, logs: Path) -> subprocess.Popen[bytes]:
    out = open(logs / "smsc.out", "wb")  # noqa: SIM115 - kept open for the child's lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "empathic.cli", "smsc-sim", "--port", str(port), "--summary", str(summary),
         "--receipt-delay", "0.05", "--system-id", "acme", "--password", "Zq7xW3kp"],
        stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "listening on" in (logs / "smsc.out").read_text(errors="replace"):
            return proc
        assert proc.poll() is None, (logs / "smsc.out").read_text(errors="replace")
        time.sleep(0.05)
    raise AssertionError("smsc-sim did not start")


def test_serve_sends_over_smpp_to_smsc_sim(tmp_path: Path) -> None:
    port = free_port()
    summary = tmp_path / "summary.json"
    smsc = start_smsc(port, summary, tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "empathic.toml").write_text(
        '[sender]\nname = "Acme"\nnumber = "+18005550100"\n\n'
        f'[[channels]]\ntype = "smpp"\nname = "carrier"\nhost = "127.0.0.1"\nport = {port}\n'
        'system_id = "acme"\npassword_env = "ACME_SMSC_PASSWORD"\nwindow = 20\n',
        encoding="utf-8",
    )
    os.environ["ACME_SMSC_PASSWORD"] = "Zq7xW3kp"
    server = Server(tmp_path / "data", tmp_path, project=project)
    try:
        server.start()
        auth = {"Authorization": f"Bearer {API_KEY}"}
        sent = [
            httpx.post(f"{server.url}/v1/messages", headers=auth, timeout=10,
                       json={"to": f"+1415555010{i}", "body": f"Your order {i} shipped", "topic": "transactional"})
            for i in range(3)
        ]
        assert all(r.status_code == 202 for r in sent), [r.text for r in sent]
        ids = [r.json()["id"] for r in sent]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            got = [httpx.get(f"{server.url}/v1/messages/{i}", headers=auth, timeout=10).json() for i in ids]
            if all(m["status"] == "delivered" for m in got):
                break
            time.sleep(0.1)
        assert [m["status"] for m in got] == ["delivered"] * 3, got
        assert "Zq7xW3kp" not in server.stderr()  # the secret is never logged
    finally:
        server.terminate()
        os.environ.pop("ACME_SMSC_PASSWORD", None)
        smsc.send_signal(signal.SIGTERM)
        smsc.wait(timeout=10)
    result = json.loads(summary.read_text())
    assert (result["received"], result["unique"], result["duplicates"], result["receipts_sent"]) == (3, 3, 0, 3)
    printed = (tmp_path / "smsc.out").read_text()
    assert '"received": 3' in printed
