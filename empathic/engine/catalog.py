"""A workspace's templates and triggers: the project's files, overridden by what the API stored.

Lookups merge the two: a template or trigger stored over the API under a project file's name
replaces it for that workspace; deleting the stored one brings the file's back. Email
variants (`templates/<name>.email.toml`) are the project's: a text stored over the API
under the same name keeps the file's email variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core.templates import EmailTemplate, Template, compile_template
from empathic.engine.project import Project, Trigger
from empathic.store import catalog as store


@lru_cache(maxsize=1024)
def _compiled(name: str, body: str) -> Template:
    return compile_template(name, body)


@dataclass(frozen=True)
class Catalog:
    project: Project

    async def templates(self, conn: AsyncConnection, workspace_id: str) -> dict[str, tuple[Template, str]]:
        """name -> (template, source) where source is "project" or "api"."""
        merged: dict[str, tuple[Template, str]] = {n: (t, "project") for n, t in self.project.templates.items()}
        for name, row in (await store.templates_of(conn, workspace_id)).items():
            merged[name] = (_compiled(name, row["body"]), "api")
        return merged

    async def template(self, conn: AsyncConnection, workspace_id: str, name: str) -> Template | None:
        row = await store.template(conn, workspace_id, name)
        if row:
            return _compiled(name, row["body"])
        return self.project.templates.get(name)

    def email(self, name: str) -> EmailTemplate | None:
        """The email variant (subject, HTML) of template `name`, if the project has one."""
        return self.project.emails.get(name)

    async def triggers(self, conn: AsyncConnection, workspace_id: str) -> dict[str, tuple[Trigger, str]]:
        merged: dict[str, tuple[Trigger, str]] = {n: (t, "project") for n, t in self.project.triggers.items()}
        for name, row in (await store.triggers_of(conn, workspace_id)).items():
            merged[name] = (Trigger(name, row["event_type"], row["template"], row["topic"]), "api")
        return merged

    async def triggers_for(self, conn: AsyncConnection, workspace_id: str, event_type: str) -> list[Trigger]:
        return sorted(
            (t for t, _ in (await self.triggers(conn, workspace_id)).values() if t.event == event_type),
            key=lambda t: t.name,
        )


def template_view(name: str, template: Template, source: str, email: EmailTemplate | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"name": name, "body": template.source, "source": source}
    if email is not None:
        view["email"] = {
            "subject": email.subject.source,
            "text": email.text.source if email.text else None,
            "html": email.html.source if email.html else None,
        }
    return view


def trigger_view(trigger: Trigger, source: str) -> dict[str, Any]:
    return {
        "name": trigger.name,
        "event": trigger.event,
        "template": trigger.template,
        "topic": trigger.topic,
        "source": source,
    }
