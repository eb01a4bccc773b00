"""Sending rules by place, as data: which hours and caps apply to a message's recipient.

`Regulations` holds rules from the shipped file (`data/regulations.toml`, each citing its
source) and a workspace's own. For one recipient, every rule whose place matches applies:
hours intersect and caps accumulate, so adding a rule can only make sending stricter. That
is how a workspace tightens the shipped rules and never loosens them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources

from empathic.core.errors import InputError
from empathic.core.hours import DAYS, Week, Window
from empathic.core.topics import TopicKind

EVERYWHERE = "*"


class RulesError(InputError):
    """A rules file that cannot be used: which rule, which field, why (all in the message;
    the input at fault is the `rules` as a whole)."""

    def __init__(self, message: str) -> None:
        super().__init__("rules", message, message=message)


@dataclass(frozen=True, slots=True)
class Cap:
    """At most `limit` messages of `kinds` per `period`, per topic or across those kinds."""

    limit: int
    period: timedelta
    kinds: frozenset[TopicKind]
    same_topic: bool
    source: str


@dataclass(frozen=True, slots=True)
class Rule:
    where: str
    kinds: frozenset[TopicKind]
    hours: Week | None
    cap: Cap | None
    source: str

    def applies_to(self, places: frozenset[str]) -> bool:
        return self.where == EVERYWHERE or self.where in places


@dataclass(frozen=True)
class Rules:
    """What binds messages to one recipient: allowed hours per kind and every cap."""

    hours: Mapping[TopicKind, Week]
    caps: tuple[Cap, ...]
    sources: tuple[str, ...]

    def hours_for(self, kind: TopicKind) -> Week | None:
        return self.hours.get(kind)


NO_RULES = Rules({}, (), ())


@dataclass(frozen=True)
class Regulations:
    rules: tuple[Rule, ...]

    def for_places(self, places: Iterable[str]) -> Rules:
        """The combined rules for a recipient in these places (``{"US", "US-FL"}``)."""
        wanted = frozenset(places)
        hours: dict[TopicKind, Week] = {}
        caps: list[Cap] = []
        sources: list[str] = []
        for rule in self.rules:
            if not rule.applies_to(wanted):
                continue
            sources.append(rule.source)
            if rule.hours is not None:
                for kind in rule.kinds:
                    try:
                        hours[kind] = hours[kind].tighten(rule.hours) if kind in hours else rule.hours
                    except ValueError:
                        raise RulesError(
                            f"the rules for {sorted(wanted) or ['*']} leave no hour at all for {kind.value} messages"
                        ) from None
            if rule.cap is not None:
                caps.append(rule.cap)
        return Rules(hours, tuple(caps), tuple(sources))

    def tightened_by(self, other: Regulations) -> Regulations:
        """These rules and a workspace's own, all applied: never looser than either."""
        return Regulations(self.rules + other.rules)

    def check(self) -> None:
        """Raise RulesError if, for any place the rules name, they leave some kind no hour at all."""
        places = {r.where for r in self.rules if r.where != EVERYWHERE}
        for place in [None, *sorted(places)]:
            country = place.split("-")[0] if place else None
            self.for_places({p for p in (country, place) if p})


def parse(text: str, origin: str = "rules") -> Regulations:
    """Read a rules file (TOML, `[[rule]]` tables); errors name the rule and field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{origin}: not valid TOML: {exc}") from None
    unknown = set(data) - {"rule"}
    if unknown:
        raise RulesError(f"{origin}: unknown top-level keys {sorted(unknown)}; expected [[rule]] tables")
    return Regulations(tuple(_rule(raw, f"{origin}: rule {i + 1}") for i, raw in enumerate(data.get("rule", []))))


def shipped() -> Regulations:
    text = resources.files("empathic.core").joinpath("data/regulations.toml").read_text(encoding="utf-8")
    return parse(text, "regulations.toml")


def _rule(raw: object, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: must be a table")
    unknown = set(raw) - {"where", "kinds", "hours", "cap", "source"}
    if unknown:
        raise RulesError(f"{where}: unknown keys {sorted(unknown)}")
    place = raw.get("where")
    if not isinstance(place, str) or not (place == EVERYWHERE or _is_place(place)):
        raise RulesError(f"{where}.where: {place!r} is not '*', a country like 'US' or a subdivision like 'US-FL'")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise RulesError(f"{where}.source: every rule must cite its source")
    kinds = _kinds(raw.get("kinds"), f"{where}.kinds")
    hours = _week(raw["hours"], f"{where}.hours") if "hours" in raw else None
    cap = _cap(raw["cap"], kinds, source, f"{where}.cap") if "cap" in raw else None
    if hours is None and cap is None:
        raise RulesError(f"{where}: a rule needs hours, a cap, or both")
    return Rule(place, kinds, hours, cap, source)


def _is_place(text: str) -> bool:
    country, _, sub = text.partition("-")
    return len(country) == 2 and country.isalpha() and country.isupper() and (not _ or (0 < len(sub) <= 3 and sub.isalnum()))


def _kinds(raw: object, where: str) -> frozenset[TopicKind]:
    allowed = [k.value for k in TopicKind if k is not TopicKind.COMPLIANCE]
    if not isinstance(raw, list) or not raw or not all(isinstance(k, str) and k in allowed for k in raw):
        raise RulesError(f"{where}: {raw!r} must be a non-empty list of {allowed}")
    return frozenset(TopicKind(k) for k in raw)


def _week(raw: object, where: str) -> Week:
    if not isinstance(raw, dict) or not raw:
        raise RulesError(f"{where}: must be a table such as {{ every_day = \"08:00-21:00\" }}")
    groups = {"every_day": range(7), "weekdays": range(5), "weekend": range(5, 7)}
    groups.update({day: range(i, i + 1) for i, day in enumerate(DAYS)})
    days: list[Window | None] = [None] * 7
    for key, value in raw.items():
        if key not in groups:
            raise RulesError(f"{where}.{key}: unknown day; use every_day, weekdays, weekend or {', '.join(DAYS)}")
        if value == "closed":
            window = None
        else:
            try:
                window = Window.parse(value) if isinstance(value, str) else None
            except ValueError as exc:
                raise RulesError(f"{where}.{key}: {exc}") from None
            if window is None:
                raise RulesError(f"{where}.{key}: {value!r} must be a window like \"08:00-21:00\" or \"closed\"")
        for day in groups[key]:
            days[day] = window
    try:
        return Week(tuple(days))
    except ValueError as exc:
        raise RulesError(f"{where}: {exc}") from None


def _cap(raw: object, kinds: frozenset[TopicKind], source: str, where: str) -> Cap:
    if not isinstance(raw, dict) or set(raw) - {"limit", "period_hours", "same_topic"}:
        raise RulesError(f"{where}: must be {{ limit = N, period_hours = H, same_topic = true|false }}")
    limit, hours, same = raw.get("limit"), raw.get("period_hours"), raw.get("same_topic", False)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise RulesError(f"{where}.limit: {limit!r} must be a whole number of at least 1")
    if not isinstance(hours, int | float) or isinstance(hours, bool) or not 0 < hours <= 24 * 366:
        raise RulesError(f"{where}.period_hours: {hours!r} must be a number of hours above 0 (at most a year)")
    if not isinstance(same, bool):
        raise RulesError(f"{where}.same_topic: {same!r} must be true or false")
    return Cap(limit, timedelta(hours=hours), kinds, same, source)
