"""The hosted preference page, `/p/{token}`: a person changes what they get without logging in.

The token (core.links) proves the link was issued for this contact and has not expired. The
page shows each non-essential topic (receive it or not, by which channel), quiet hours,
email hours, language and a weekly limit on offers; saving writes the preferences and any
consent change to the ledger (source `web_form`, evidence `preference page`), so it takes
effect before the next send. Plain HTML forms, no script: it works on any phone's browser.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape
from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.engine.runtime import Runtime, runtime_of
from empathic.core import links
from empathic.core.consent import ALL_TOPICS, ConsentAction, ConsentState
from empathic.core.json import Json
from empathic.core.preferences import DAY_GROUPS, LANGUAGES, Preferences, PreferencesError
from empathic.core.preferences import parse as parse_preferences
from empathic.core.topics import TopicKind
from empathic.engine import consents
from empathic.store import consent as consent_store
from empathic.store import contacts as contact_store
from empathic.store.contacts import Contact
from empathic.store import preferences as preference_store
from empathic.store import privacy
from empathic.web import security

router = APIRouter(tags=["preference page"], include_in_schema=False)
_pages = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
CHANNELS = [("sms", "Text"), ("email", "Email"), ("both", "Text and email")]
DAY_LABELS = {"every_day": "every day", "weekdays": "on weekdays", "weekend": "at weekends"}
LANGUAGE_NAMES = {"en": "English", "es": "Español", "fr": "Français", "de": "Deutsch", "pt": "Português", "it": "Italiano"}
MAX_FORM_BYTES = 16_384
SOURCE, EVIDENCE = "web_form", "preference page"
# The page's own inline style; no script, nothing loaded, posted only to itself, never framed.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


class _Gone(Exception):
    pass


@router.get("/p/{token}", response_class=HTMLResponse)
async def show(token: str, request: Request) -> HTMLResponse:
    rt = runtime_of(request)
    async with rt.db.transaction() as conn:
        try:
            link, contact, key = await _open(conn, rt, token)
        except (links.BadLink, _Gone) as exc:
            return _message_page(_sentence(str(exc)), 404)
        return await _render(conn, rt, link.workspace_id, contact, form_token=security.form_token(key, token))


@router.post("/p/{token}", response_class=HTMLResponse)
async def save(token: str, request: Request) -> HTMLResponse:
    rt = runtime_of(request)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _message_page("That form was too large.", 413)
    if not security.same_origin({k.lower(): v for k, v in request.headers.items()}, _hosts(request, rt)):
        return _message_page("That form was sent from another site, so nothing was changed.", 403)
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    now = rt.now()
    async with rt.db.transaction() as conn:
        try:
            link, contact, key = await _open(conn, rt, token)
        except (links.BadLink, _Gone) as exc:
            return _message_page(_sentence(str(exc)), 404)
        if not security.form_token_valid(key, token, form.get("form_token", "")):
            return _message_page("That form was not the one this page gave, so nothing was changed. "
                                 "Open your link again.", 403)
        ws = link.workspace_id
        issued = security.form_token(key, token)
        state = (await consent_store.states(conn, ws, [contact.id]))[contact.id]
        if form.get("action") == "stop_all":
            if not state.opted_out_of_all("sms"):
                await _record(conn, ws, contact, ALL_TOPICS, ConsentAction.REVOKED, now)
            page = await _render(conn, rt, ws, contact, saved=True, form_token=issued)
        else:
            try:
                prefs = parse_preferences(_preferences_from(form, rt), rt.project.topics.kinds)
            except PreferencesError as exc:
                return await _render(conn, rt, ws, contact, error=_explain(exc), status=400, form=form,
                                     form_token=issued)
            await preference_store.put(conn, ws, contact.id, prefs.to_data(), now)
            for name, kind in _topics(rt):
                wanted = f"receive:{name}" in form
                if wanted != _receiving(state, name, kind):
                    await _record(conn, ws, contact, name, ConsentAction.GRANTED if wanted else ConsentAction.REVOKED, now)
            page = await _render(conn, rt, ws, contact, saved=True, form_token=issued)
    rt.committed()
    return page


async def _open(conn: AsyncConnection, rt: Runtime, token: str) -> tuple[links.Link, Contact, bytes]:
    workspace_id = links.workspace_of(token)
    try:
        key = await privacy.link_key(conn, workspace_id)
    except LookupError:
        raise links.BadLink("this link is not valid") from None
    link = links.verify(key, token, rt.now())
    contact = await contact_store.get(conn, workspace_id, link.contact_id)
    if contact is None:
        raise _Gone("there is nothing on file for you any more")
    return link, contact, key


async def _record(
    conn: AsyncConnection, ws: str, contact: Contact, topic: str, action: ConsentAction, now: datetime
) -> None:
    await consents.record(
        conn, ws, contact, topic=topic, action=action, source=SOURCE, actor=f"contact:{contact.id}",
        evidence=EVIDENCE, now=now,
    )


def _topics(rt: Runtime) -> list[tuple[str, TopicKind]]:
    return [(name, kind) for name, kind in rt.project.topics.kinds.items() if not kind.essential]


def _receiving(state: ConsentState, topic: str, kind: TopicKind) -> bool:
    if kind is TopicKind.MARKETING:
        return state.granted(topic, "sms")
    return not state.opted_out(topic, "sms")


def _preferences_from(form: dict[str, str], rt: Runtime) -> Json:
    data: Json = {
        "channels": {name: form[f"channel:{name}"] for name, _ in _topics(rt) if form.get(f"channel:{name}", "sms") != "sms"},
        "language": form.get("language") or None,
    }
    if "quiet_on" in form:
        data["quiet_hours"] = {"from": form.get("quiet_from", ""), "to": form.get("quiet_to", "")}
    if "email_on" in form:
        data["email_hours"] = {"days": form.get("email_days", ""), "from": form.get("email_from", ""), "to": form.get("email_to", "")}
    cap = form.get("max_marketing_per_week", "").strip()
    if cap:
        data["max_marketing_per_week"] = int(cap) if cap.isdigit() else cap
    return data


def _explain(exc: PreferencesError) -> str:
    where = {"quiet_hours": "Quiet hours", "email_hours": "Email hours", "max_marketing_per_week": "Offers a week",
             "language": "Language", "channels": "Channels"}
    return f"{where.get(exc.field.split('.')[0], exc.field)}: {exc.detail}. Nothing was changed."


async def _render(
    conn: AsyncConnection, rt: Runtime, ws: str, contact: Contact, *, saved: bool = False, error: str | None = None,
    status: int = 200, form: dict[str, str] | None = None, form_token: str,
) -> HTMLResponse:
    state = (await consent_store.states(conn, ws, [contact.id]))[contact.id]
    stored = await preference_store.get(conn, ws, contact.id)
    try:
        prefs = parse_preferences(stored or {})
    except PreferencesError:
        prefs = Preferences()
    data = prefs.to_data()
    topics = [
        {
            "name": name, "kind": kind.value, "label": name.replace("_", " ").capitalize(),
            "receiving": _receiving(state, name, kind) if form is None else f"receive:{name}" in form,
            "channel": data["channels"].get(name, "sms") if form is None else form.get(f"channel:{name}", "sms"),
        }
        for name, kind in _topics(rt)
    ]
    phone = contact.phone or ""
    html = _pages.get_template("preferences.html").render(
        sender=rt.project.sender.name,
        phone_hint=f"the number ending {phone[-4:]}" if len(phone) >= 4 else "you",
        saved=saved, error=error, topics=topics, channels=CHANNELS,
        quiet=data["quiet_hours"], email_hours=data["email_hours"],
        day_groups=[(d, DAY_LABELS[d]) for d in DAY_GROUPS], languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        language=data["language"], max_marketing=data["max_marketing_per_week"], form_token=form_token,
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store", "Content-Security-Policy": PAGE_CSP})


def _hosts(request: Request, rt: Runtime) -> set[str]:
    """The hosts this page is served as: the one asked for, and the public URL's."""
    hosts = {request.headers.get("host", "")}
    if rt.settings.public_url:
        hosts.add(rt.settings.public_url.split("://", 1)[-1].split("/", 1)[0])
    return hosts


def _message_page(text: str, status: int) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang=en><meta charset=utf-8><title>Preferences</title><p>{_escape(text)}</p></html>",
        status_code=status, headers={"Cache-Control": "no-store"},
    )


def _sentence(text: str) -> str:
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else "This link is no longer valid."


def _escape(text: str) -> str:
    return str(escape(text))
