"""The web app on the API's port: its pages' routers, and its own static files (/static: the
stylesheet, the scripts and the front-end libraries shipped inside the package)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from empathic.web import auth, contacts, dashboard, flows, inbox, live, phone, preferences, signin, users
from empathic.web.pages import STATIC

PAGES = (signin, users, inbox, live, contacts, dashboard, flows, phone, preferences)


def mount(app: FastAPI) -> None:
    auth.install(app)  # a refused page request answers a page (sign in, or why not), not JSON
    for module in PAGES:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
