"""Rendering the web app's pages: one Jinja2 environment (autoescaped: a body, a name or an
attribute is always text), one layout (`templates/app/base.html`) and one policy for what a
page may load (`APP_CSP`: its own scripts, styles and images, nothing inline, nothing else).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates" / "app"
STATIC = Path(__file__).parent / "static"
APP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a name a template expects and was not given is an error, not ""
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:  # Any: template values
    """A page of the app: `template` (under templates/app) extends `base.html`; `context`
    holds `person` (the signed-in `web.auth.Person`, or None on the sign-in pages) and
    whatever the template shows. Never cached, never framed."""
    html = environment.get_template(template).render(request=request, path=request.url.path, **context)
    return HTMLResponse(
        html, status_code=status, headers={"Cache-Control": "no-store", "Content-Security-Policy": APP_CSP}
    )
