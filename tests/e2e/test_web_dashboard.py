"""The dashboard in a real browser against a real `empathic serve`: texts sent over the API
(some failed by the carrier), an admin signs in and opens /dashboard; the four charts are drawn
by Chart.js with the totals /v1/stats gives, each with its figures as text; axe-core finds
nothing serious at a phone's width and a desktop's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.browser import DESKTOP, PHONE, Pages, axe_check, browser, shot, sign_in  # noqa: F401 (browser: a fixture)
from tests.e2e.server import Server, eventually

ADMIN, PASSWORD = "admin@example.com", "some-password-123"
SETTLED = {"delivered", "undelivered", "failed", "blocked"}
# Each chart's datasets, summed by label, as Chart.js holds them.
TOTALS = """id => {
  const chart = Chart.getChart(document.getElementById(id + '-chart'));
  if (!chart) return null;
  const out = {};
  for (const d of chart.data.datasets) out[d.label] = d.data.reduce((a, b) => a + b, 0);
  return {labels: chart.data.labels.length, totals: out};
}"""


def _sums(points: list[dict[str, Any]], keys: list[str]) -> dict[str, int]:
    return {k: sum(p[k] for p in points) for k in keys}


def test_the_dashboard_draws_the_apis_figures(tmp_path: Path, browser: Pages) -> None:  # noqa: F811
    server = Server(tmp_path / "data", tmp_path, env={"EMPATHIC_BOOTSTRAP_ADMIN": f"{ADMIN}:{PASSWORD}"})
    try:
        server.start()
        with server.client() as api:
            assert api.patch("/v1/simulator", json={"receipt_delay": 0.05}).status_code == 200
            ids = []
            for i, topic in enumerate(["orders", "orders", "support", "orders"]):
                sent = api.post("/v1/messages", json={"to": f"+1415555{700 + i:04d}", "body": f"Hello {i}", "topic": topic})
                assert sent.status_code == 202, sent.text
                ids.append(sent.json()["id"])
            eventually(lambda: all(api.get(f"/v1/messages/{i}").json()["status"] in SETTLED for i in ids) or None,
                       timeout=15, what="texts settled")
            assert api.patch("/v1/simulator", json={"fail_share": 1.0}).status_code == 200
            bad = [api.post("/v1/messages", json={"to": f"+1415555{710 + i:04d}", "body": "Doomed", "topic": "orders"}).json()["id"]
                   for i in range(2)]
            eventually(lambda: all(api.get(f"/v1/messages/{i}").json()["status"] in SETTLED for i in bad) or None,
                       timeout=15, what="failed texts settled")
            assert api.patch("/v1/simulator", json={"fail_share": 0.0}).status_code == 200
            period = {"period": "24h"}
            report = api.get("/v1/stats/messages", params=period).json()
            throughput = api.get("/v1/stats/throughput", params={**period, "bucket": "hour"}).json()["points"]
            deferred = api.get("/v1/stats/deferred", params=period).json()
        assert report["totals"]["accepted"] == 6 and report["totals"]["failed"] == 2

        page = browser.page(DESKTOP)
        page.goto(f"{server.url}/dashboard")  # not signed in: the sign-in page, back here after
        sign_in(page, ADMIN, PASSWORD)
        expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
        expect(page.locator('[data-figure="accepted"]')).to_have_text("6")

        charts = {}
        for chart in ("throughput", "queue", "deferred", "failures"):
            expect(page.locator(f"#{chart}-summary")).not_to_have_text("Loading…")
            charts[chart] = page.evaluate(TOTALS, chart)
            assert charts[chart] is not None, chart
        want = _sums(throughput, ["accepted", "sent", "delivered", "failed"])
        assert charts["throughput"]["totals"] == want and charts["throughput"]["labels"] == len(throughput)
        assert want["accepted"] == 6 and want["failed"] == 2
        assert charts["failures"]["totals"] == {"failed": sum(f["count"] for f in report["totals"]["failures"])} == {"failed": 2}
        assert charts["deferred"]["totals"] == {
            "deferred now": sum(d["count"] for d in deferred["now"]),
            "deferred in the period": sum(d["count"] for d in deferred["in_period"]),
        }
        # Each chart's figures as text: its accessible name and its table.
        assert "failed 2" in (page.locator("#failures-chart").get_attribute("aria-label") or "")
        page.locator("#throughput-figure summary").click()
        expect(page.locator("#throughput-table table")).to_be_visible()
        by_topic = page.locator("#by-topic")
        expect(by_topic).to_contain_text("orders")
        expect(by_topic).to_contain_text("support")
        axe_check(page)
        shot(page, tmp_path, "dashboard-desktop")

        page.set_viewport_size({"width": PHONE, "height": 800})
        page.reload()
        expect(page.locator("#failures-summary")).not_to_have_text("Loading…")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE + 1, f"the page is {width} px wide at {PHONE}"
        axe_check(page)
        shot(page, tmp_path, "dashboard-phone")

        page.get_by_label("Period", exact=True).select_option("7d")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("#charts")).to_have_attribute("data-query", "period=7d")
        expect(page.locator('[data-figure="accepted"]')).to_have_text("6")
    finally:
        server.terminate()
