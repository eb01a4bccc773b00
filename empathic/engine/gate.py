"""Feeding the policy gate: everything `core.policy.decide` needs for a claimed batch.

For each message: the contact's consent (ledger fold), their own preferences, the time
zones to respect (the contact's own, else every zone the number may be in, else the
workspace default), the places whose rules bind (country and state/province of the
number), and what already went to the contact (for caps and marketing de-duplication).
The rules are the project's, tightened by the workspace's own where it set some over the API. Read in a few batched queries in
the dispatcher's claim transaction, so a STOP committed before the claim is always seen.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from empathic.core import policy
from empathic.core import regulations as regulations_mod
from empathic.core.consent import ConsentState
from empathic.core.emails import is_email
from empathic.core.phones import (
    InvalidPhoneNumber,
    region_of,
    subdivision_of,
    timezones_for,
)
from empathic.core.policy import content_key
from empathic.core.preferences import NO_PREFERENCES, Preferences, PreferencesError
from empathic.core.preferences import parse as parse_preferences
from empathic.core.regulations import Regulations, Rules
from empathic.core.topics import TopicKind, Topics
from empathic.store import consent as consent_store
from empathic.store import contacts as contact_store
from empathic.store import messages as store
from empathic.store import preferences as preference_store
from empathic.store import rules as rule_store
from empathic.store.records import Claimed

log = logging.getLogger(__name__)


class RuleBook:
    """One set of regulations with what the gate derives from it, computed once."""

    def __init__(self, regulations: Regulations, topics: Topics) -> None:
        self.regulations = regulations
        self._rules: dict[frozenset[str], Rules] = {}
        kinds = {k for rule in regulations.rules for k in rule.kinds}
        capped = {kind for rule in regulations.rules if rule.cap for kind in rule.cap.kinds}
        # Kinds some rule gives hours or a cap (and marketing, for consent and duplicates).
        self.governed = frozenset({TopicKind.MARKETING} | kinds)
        # Topics whose past sends matter: marketing (de-duplication) and any capped kind.
        self.watched_topics = [t for t, k in topics.kinds.items() if k is TopicKind.MARKETING or k in capped]

    def rules_for(self, places: frozenset[str]) -> Rules:
        if places not in self._rules:
            self._rules[places] = self.regulations.for_places(places)
        return self._rules[places]


class Gate:
    def __init__(self, topics: Topics, regulations: Regulations, default_zone: str = "UTC") -> None:
        self.topics = topics
        self.regulations = regulations
        self.default_zone = default_zone
        self.book = RuleBook(regulations, topics)
        self._workspace_books: dict[str, tuple[datetime, RuleBook]] = {}

    def rules_for(self, places: frozenset[str]) -> Rules:
        return self.book.rules_for(places)

    async def _books(self, conn: AsyncConnection, workspace_ids: set[str]) -> dict[str, RuleBook]:
        """Each workspace's rules: the project's, tightened by the workspace's own if it set any."""
        books = dict.fromkeys(workspace_ids, self.book)
        for workspace_id, (text, updated_at) in (await rule_store.of_workspaces(conn, workspace_ids)).items():
            cached = self._workspace_books.get(workspace_id)
            if cached is None or cached[0] != updated_at:
                try:
                    own = self.regulations.tightened_by(regulations_mod.parse(text, f"workspace {workspace_id} rules"))
                except regulations_mod.RulesError:  # checked when set; the shipped rules changed since
                    log.exception("workspace %s: its own rules no longer parse; applying the project's", workspace_id)
                    own = self.regulations
                cached = (updated_at, RuleBook(own, self.topics))
                self._workspace_books[workspace_id] = cached
            books[workspace_id] = cached[1]
        return books

    async def decide(self, conn: AsyncConnection, batch: Sequence[Claimed], now: datetime) -> list[policy.Decision]:
        """One decision per message, in order; messages sent earlier in the batch count for caps."""
        gated = [(r, r.contact_id) for r in batch if r.contact_id and not self.topics.kind(r.topic).essential]
        by_workspace: dict[str, set[str]] = defaultdict(set)
        for row, contact_id in gated:
            by_workspace[row.workspace_id].add(contact_id)
        books = await self._books(conn, {r.workspace_id for r in batch})
        # by (workspace, contact): a message without a contact finds none of these
        consents: dict[tuple[str, str | None], ConsentState] = {}
        prefs: dict[tuple[str, str | None], Preferences] = {}
        people: dict[tuple[str, str | None], contact_store.Contact] = {}
        history: dict[tuple[str, str | None], list[policy.Sent]] = defaultdict(list)
        for workspace_id, contact_ids in by_workspace.items():
            for contact_id, state in (await consent_store.states(conn, workspace_id, contact_ids)).items():
                consents[(workspace_id, contact_id)] = state
            for contact_id, data in (await preference_store.of_contacts(conn, workspace_id, contact_ids)).items():
                prefs[(workspace_id, contact_id)] = stored_preferences(data, contact_id)
            book = books[workspace_id]
            timed = {  # contacts whose zone or history matters
                contact_id for r, contact_id in gated
                if r.workspace_id == workspace_id and self._timed(r, prefs.get((workspace_id, contact_id)), book)
            }
            if not timed:
                continue
            for contact_id, contact in (await contact_store.by_ids(conn, workspace_id, timed)).items():
                people[(workspace_id, contact_id)] = contact
            for sent in await store.handed_off(conn, workspace_id, timed, book.watched_topics):
                kind = self.topics.kind(sent.topic)
                history[(workspace_id, sent.contact_id)].append(
                    policy.Sent(sent.sent_at, sent.topic, kind, sent.content_key)
                )
        decisions: list[policy.Decision] = []
        for row in batch:
            key = (row.workspace_id, row.contact_id)
            own = prefs.get(key, NO_PREFERENCES)
            candidate, rules = self._candidate(row, people.get(key), own, books[row.workspace_id])
            decision = policy.decide(
                candidate, consents.get(key, ConsentState()), now, rules=rules, history=history.get(key, ()),
                preferences=own,
            )
            if isinstance(decision, policy.Send) and row.contact_id:
                history[key].append(policy.Sent(now, row.topic, candidate.kind, candidate.content_key))
            decisions.append(decision)
        return decisions

    def _timed(self, row: Claimed, prefs: Preferences | None, book: RuleBook) -> bool:
        kind = self.topics.kind(row.topic)
        return kind in book.governed or (prefs is not None and bool(prefs.hours_for(kind, _reach(row), row.topic)))

    def _candidate(
        self, row: Claimed, contact: contact_store.Contact | None, prefs: Preferences, book: RuleBook
    ) -> tuple[policy.Candidate, Rules]:
        kind = self.topics.kind(row.topic)
        if not self._timed(row, prefs, book):  # no rule or preference times or caps this kind: skip the lookups
            return policy.Candidate(row.topic, kind, _reach(row), valid_until=row.valid_until), book.rules_for(frozenset())
        # An email has no place of its own: only the rules everywhere and the person's zone.
        places, number_zones = (frozenset(), ()) if is_email(row.to_addr) else _whereabouts(row.to_addr)
        own_zone = contact.timezone if contact else None
        zones = (own_zone,) if own_zone else number_zones or (self.default_zone,)
        candidate = policy.Candidate(
            topic=row.topic,
            kind=kind,
            channel=_reach(row),
            zones=zones,
            in_reply=bool(row.in_reply_to),
            valid_until=row.valid_until,
            content_key=content_key(row.body) if kind is TopicKind.MARKETING else None,
        )
        return candidate, book.rules_for(places)


def _reach(row: Claimed) -> str:
    """The consent and preference channel of a message: `email` or `sms`."""
    return "email" if is_email(row.to_addr) else "sms"


@lru_cache(maxsize=65536)
def _whereabouts(to: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """The places whose rules bind a number and the zones it may be in (cached per number)."""
    try:
        return frozenset(p for p in (region_of(to), subdivision_of(to)) if p), timezones_for(to)
    except InvalidPhoneNumber:
        return frozenset(), ()


def stored_preferences(data: dict[str, Any], contact_id: str) -> Preferences:
    """Stored preferences were checked when written; a topic removed from the project since
    only loses its channel choice, never the person's hours or limits."""
    try:
        return parse_preferences(data)
    except PreferencesError as exc:  # written by an older version with other rules
        log.warning("contact %s: stored preferences unusable (%s); applying none", contact_id, exc)
        return NO_PREFERENCES
