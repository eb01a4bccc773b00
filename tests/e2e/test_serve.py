"""End to end: `empathic serve` as a real subprocess, driven over real HTTP.

These tests start the real server (API, workers and the built-in carrier simulator on
SQLite) on a free port with a temporary data dir, and talk to it with httpx only.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.server import Server, eventually

PHONE = "+14155550123"
FINAL = {"delivered", "undelivered", "failed", "blocked", "expired"}






def received(api: httpx.Client, phone: str = PHONE) -> list[str]:
    response = api.get(f"/v1/simulator/phones/{phone}/messages", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [m["body"] for m in response.json()["messages"] if m["direction"] == "received"]


def at_least(api: httpx.Client, count: int, phone: str = PHONE) -> list[str] | None:
    texts = received(api, phone)
    return texts if len(texts) >= count else None


def settled(api: httpx.Client, message_id: str, timeout: float = 10.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        view = api.get(f"/v1/messages/{message_id}").json()
        return view if view.get("status") in FINAL else None

    return eventually(check, timeout=timeout, what=f"message {message_id} settled")


def test_event_to_delivery_then_stop_blocks_marketing(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", tmp_path)
    try:
        server.start()
        with server.client() as api:
            config = api.patch("/v1/simulator", json={"receipt_delay": 0.2})
            assert config.status_code == 200, config.text
            assert config.json()["receipt_delay"] == 0.2

            # An event becomes a rendered text on the phone, and then a delivery receipt.
            event = api.post(
                "/v1/events",
                json={
                    "type": "order.dispatched",
                    "contact": {"phone": PHONE, "attributes": {"first_name": "Maya"}},
                    "data": {"order_id": "A-1042", "expected_date": "Friday",
                             "tracking_url": "https://track.example/A-1042"},
                    "idempotency_key": "evt-e2e-1",
                },
            )
            assert event.status_code == 202, event.text
            (message,) = event.json()["messages"]

            texts = eventually(lambda: received(api) or None, what="rendered text at the phone")
            assert len(texts) == 1
            assert "A-1042" in texts[0] and "Maya" in texts[0], texts[0]

            view = settled(api, message["id"])
            assert view["status"] == "delivered", view
            statuses = [e["status"] for e in view["events"]]
            assert statuses == ["queued", "sending", "sent", "delivered"], view["events"]

            # The phone texts back " Stop. ": exactly one confirmation comes back.
            reply = api.post(f"/v1/simulator/phones/{PHONE}/messages", json={"body": " Stop. "})
            assert reply.status_code == 202, reply.text
            texts = eventually(lambda: at_least(api, 2), what="opt-out confirmation")
            assert "unsubscribed" in texts[1], texts
            time.sleep(0.5)  # give a second (wrong) confirmation the time to show up
            assert len(received(api)) == 2

            # Marketing to an opted-out phone is blocked and never reaches it.
            deal = api.post("/v1/messages", json={"to": PHONE, "body": "Deal: 20% off today", "topic": "deals"})
            assert deal.status_code == 202, deal.text
            view = settled(api, deal.json()["id"])
            assert (view["status"], view["reason"]) == ("blocked", "opted_out"), view
            time.sleep(0.3)
            assert len(received(api)) == 2

        started = time.monotonic()
        code = server.terminate(timeout=10.0)
        assert code is not None, f"server did not exit within 10s of SIGTERM:\n{server.stderr()}"
        assert time.monotonic() - started < 10.0
        # uvicorn shuts down cleanly, then re-raises the signal it caught: -15 (or 0) is a clean exit.
        assert code in (0, -signal.SIGTERM), f"exit code {code}:\n{server.stderr()}"
        assert "Application shutdown complete" in server.stderr(), server.stderr()
        assert "Traceback" not in server.stderr(), server.stderr()
    finally:
        server.terminate()


def test_kill_9_and_restart_delivers_everything_exactly_once(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", tmp_path)
    count = 20
    try:
        server.start()
        ids: list[str] = []
        with server.client() as api:
            api.patch("/v1/simulator", json={"receipt_delay": 0.2}).raise_for_status()
            for i in range(count):
                phone = f"+1415555{1100 + i % 5:04d}"
                body = f"crash test message {i:02d}"
                response = api.post("/v1/messages", json={"to": phone, "body": body, "idempotency_key": f"crash-{i}"})
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
        server.kill()  # right away: some are queued, some in flight, some sent

        server.start()
        with server.client() as api:
            api.patch("/v1/simulator", json={"receipt_delay": 0.2}).raise_for_status()
            views = [settled(api, message_id, timeout=15.0) for message_id in ids]
            assert [v["status"] for v in views] == ["delivered"] * count, [(v["id"], v["status"]) for v in views]

            bodies: Counter[str] = Counter()
            for i in range(5):
                bodies.update(received(api, f"+1415555{1100 + i:04d}"))
            twice = {body: n for body, n in bodies.items() if n > 1}
            assert not twice, f"texts received more than once: {twice}"
            assert sorted(bodies) == sorted(f"crash test message {i:02d}" for i in range(count))
    finally:
        server.terminate()
