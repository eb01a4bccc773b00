"""A workspace's own sending rules over the API: checked, stored, applied, never looser."""

from __future__ import annotations

import httpx

from tests.conftest import subscribe
from tests.integration.test_consent_api import final

EARLY_ONLY = """
[[rule]]
where = "*"
kinds = ["marketing", "transactional"]
hours = { every_day = "08:00-10:30" }
source = "Our own policy: texts only between 8 and 10:30 in the morning (a test; it is midday here)"
"""


async def test_rules_tighten_the_gate_and_are_removed_again(api: httpx.AsyncClient) -> None:
    before = (await api.get("/v1/rules")).json()
    assert before["rules"] is None and any(r["where"] == "US-FL" for r in before["effective"])
    phone = "+14155550230"
    await subscribe(api, phone)

    saved = await api.put("/v1/rules", json={"rules": EARLY_ONLY})
    assert saved.status_code == 200, saved.text
    assert saved.json()["effective"][-1]["origin"] == "workspace"
    # Transactional texts had no hours at all; now they wait, like marketing (midday here).
    for topic in ("transactional", "deals"):
        sent = (await api.post("/v1/messages", json={"to": phone, "body": f"{topic} news", "topic": topic})).json()
        view = await final(api, sent["id"])
        assert (view["status"], view["reason"]) == ("deferred", "quiet_hours"), topic
    code = (await api.post("/v1/messages", json={"to": phone, "body": "Code 777", "topic": "otp"})).json()
    assert (await final(api, code["id"]))["status"] == "delivered"

    assert (await api.delete("/v1/rules")).status_code == 204
    assert (await api.delete("/v1/rules")).status_code == 404
    alert = (await api.post("/v1/messages", json={"to": phone, "body": "Out for delivery", "topic": "transactional"})).json()
    assert (await final(api, alert["id"]))["status"] == "delivered"


async def test_bad_or_loosening_rules_are_refused_with_the_reason(api: httpx.AsyncClient) -> None:
    cases = {
        "not toml [[": "not valid TOML",
        '[[rule]]\nwhere = "*"\nkinds = ["marketing"]\nhours = { every_day = "08:00-21:00" }\n': "cite its source",
        '[[rule]]\nwhere = "Mars"\nkinds = ["marketing"]\nhours = { every_day = "08:00-21:00" }\nsource = "x"\n': "where",
        # Allowed hours that do not meet the shipped 08:00-21:00 at all: no hour left, refused.
        '[[rule]]\nwhere = "US"\nkinds = ["marketing"]\nhours = { every_day = "22:00-23:00" }\nsource = "x"\n': "no hour",
    }
    for text, words in cases.items():
        response = await api.put("/v1/rules", json={"rules": text})
        assert response.status_code == 422, text
        assert words in response.json()["detail"], (text, response.json()["detail"])
    assert (await api.get("/v1/rules")).json()["rules"] is None


async def test_replaced_rules_apply_to_the_next_message(api: httpx.AsyncClient) -> None:
    phone = "+14155550231"
    await subscribe(api, phone)
    assert (await api.put("/v1/rules", json={"rules": EARLY_ONLY})).status_code == 200
    held = (await api.post("/v1/messages", json={"to": phone, "body": "first", "topic": "transactional"})).json()
    assert (await final(api, held["id"]))["reason"] == "quiet_hours"
    only_marketing = EARLY_ONLY.replace('kinds = ["marketing", "transactional"]', 'kinds = ["marketing"]')
    assert (await api.put("/v1/rules", json={"rules": only_marketing})).status_code == 200
    alert = (await api.post("/v1/messages", json={"to": phone, "body": "second", "topic": "transactional"})).json()
    assert (await final(api, alert["id"]))["status"] == "delivered"
