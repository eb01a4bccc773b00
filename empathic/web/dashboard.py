"""The dashboard: figures from /v1/stats drawn with Chart.js (D).

Any role may look. The period is a plain GET form (a preset, or from/to in UTC); the tables by
flow, trigger, template and topic are the `/v1/stats/messages` figures rendered here (the same
function answers that endpoint); `static/dashboard.js` fetches `/v1/stats/...` for the same
period and draws the charts, each with its figures as a table beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from empathic.core.errors import InputError
from empathic.engine import stats
from empathic.engine.runtime import runtime_of
from empathic.web.auth import Person, signed_in
from empathic.web.pages import render

router = APIRouter(include_in_schema=False)
SignedIn = Annotated[Person, Depends(signed_in)]
TITLES = {"flow": "By flow", "trigger": "By trigger", "template": "By template", "topic": "By topic"}
UNNAMED = {"flow": "(not a flow)", "trigger": "(none: sent through the API or by a person)",
        "template": "(no template)", "topic": "(no topic)"}


def _instant(text: str | None, field: str) -> datetime | None:
    """A datetime-local value (UTC) or an ISO instant; empty is none."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(field, "must be a date and time, such as 2026-12-01T09:00") from None
    return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, person: SignedIn) -> HTMLResponse:
    rt = runtime_of(request)
    q = request.query_params
    now = rt.now()
    given = {k: q.get(k) or None for k in ("period", "from", "to", "bucket")}
    custom = bool(given["from"] or given["to"])
    error: InputError | None = None
    try:
        period = stats.period(now, preset=None if custom else given["period"], start=_instant(given["from"], "from"),
                              end=_instant(given["to"], "to"), bucket=given["bucket"])
    except InputError as exc:
        error = exc
        period = stats.period(now)
    report = await stats.messages_report(rt.db, person.workspace_id, period, now)
    api_query = urlencode({"period": period.preset} if period.preset else
                          {"from": stats.iso(period.start), "to": stats.iso(period.end)})
    return render(
        request, "dashboard.html", status=422 if error else 200, person=person, error=error, report=report,
        period=period, presets=list(stats.PRESETS), buckets=list(stats.BUCKETS), given=given, titles=TITLES,
        unnamed=UNNAMED, api_query=api_query, fmt_from=period.start.strftime("%Y-%m-%dT%H:%M"),
        fmt_to=period.end.strftime("%Y-%m-%dT%H:%M"),
    )
