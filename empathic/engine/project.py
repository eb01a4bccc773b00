"""The project folder: `empathic.toml` (sender, topics, fallback, channels, simulator,
triggers) and `templates/` (`<name>.txt`, and its email variant `<name>.email.toml`).

Files are the source of a workspace's defaults; the API can add or override templates and
triggers per workspace (stored in the database, see engine.catalog). A project that does not
load is refused at start-up with the file and the reason, never half-loaded.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empathic.channels import registry
from empathic.core.json import Json
from empathic.core.phones import NUMBER_TYPES
from empathic.core.routing import Destination, Reach, Route, candidates
from empathic.core.templates import EmailTemplate, Template, TemplateError, compile_email, compile_template
from empathic.core import regulations as regulations_mod
from empathic.core.regulations import Regulations
from empathic.core.topics import DEFAULT_TOPICS, MAX_RESENDS, OnUnknown, TopicKind, Topics, UnknownPolicy
from empathic.flows import loader as flow_loader
from empathic.flows.model import Flow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "acme"


class ProjectError(ValueError):
    pass


@dataclass(frozen=True)
class SenderSettings:
    name: str = "Empathic"
    number: str = "+18005550100"
    help_text: str = "Empathic: automated texts. Reply STOP to opt out. Msg&data rates may apply."
    opt_out_text: str = "You're unsubscribed and will receive no more messages. Reply START to resubscribe."
    opt_in_text: str = "You're subscribed again. Reply HELP for help, STOP to opt out."
    # For "STOP DEALS": {topic} is the topic's name as configured.
    topic_opt_out_text: str = "You won't get {topic} texts anymore. Other texts continue; reply STOP to end all."
    # Double opt-in for marketing topics subscribed by keyword or API: the request, and the
    # confirmation once the person says yes (in their own words). {sender}, {topic}.
    double_opt_in: bool = True
    subscribe_request_text: str = (
        "{sender}: reply YES to get {topic} texts (offers, recurring). Msg&data rates may apply. Reply STOP to opt out."
    )
    subscribed_text: str = "{sender}: you're subscribed to {topic} texts. Reply STOP {topic} to leave them, STOP to end all."


@dataclass(frozen=True)
class Trigger:
    name: str
    event: str
    template: str
    topic: str = "transactional"


@dataclass(frozen=True)
class ChannelEntry:
    """One `[[channels]]` entry: where it is used (`route`) and its checked settings."""

    name: str
    type: str
    route: Route
    settings: Any  # its type's own settings class, which channels.registry loads by name
    shards: int = 1  # dispatchers sending its queue, each with connections of its own
    # Seconds its texts may stay `sent` without a receipt before they are `expired`; None:
    # the engine's default (DispatchSettings.receipt_timeout, 72 h).
    receipt_timeout: float | None = None


@dataclass(frozen=True)
class Project:
    root: Path | None
    sender: SenderSettings = field(default_factory=SenderSettings)
    topics: Topics = field(default_factory=lambda: Topics(dict(DEFAULT_TOPICS)))
    simulator: Mapping[str, Any] = field(default_factory=dict)
    triggers: Mapping[str, Trigger] = field(default_factory=dict)
    templates: Mapping[str, Template] = field(default_factory=dict)
    # templates/<name>.email.toml: the email variant (subject, HTML) of template <name>
    emails: Mapping[str, EmailTemplate] = field(default_factory=dict)
    # `[fallback]`: topics whose texts go by email when they fail for good (or cannot be sent)
    fallback: frozenset[str] = frozenset()
    # The shipped sending rules tightened by the project's own `regulations.toml`, if any.
    regulations: Regulations = field(default_factory=regulations_mod.shipped)
    # flows/<name>.yaml: name -> (source, checked flow)
    flows: Mapping[str, tuple[str, Flow]] = field(default_factory=dict)
    # `[[channels]]` in declaration order; without any, the built-in simulator alone.
    channels: tuple[ChannelEntry, ...] = ()


def load_project(root: Path, *, with_flows: bool = True) -> Project:
    """Load and check the project folder; `with_flows=False` leaves flows/ unread (for
    `empathic flows check`, which reports on each file itself)."""
    config_path = root / "empathic.toml"
    if not root.is_dir():
        raise ProjectError(f"project folder {root} does not exist")
    config: Json = {}
    if config_path.exists():
        try:
            config = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ProjectError(f"{config_path}: {exc}") from exc

    sender_cfg = config.get("sender", {})
    unknown = set(sender_cfg) - set(SenderSettings.__dataclass_fields__)
    if unknown:
        raise ProjectError(f"{config_path}: unknown [sender] keys: {', '.join(sorted(unknown))}")
    sender = SenderSettings(**sender_cfg)

    topics = _topics(config.get("topics", {}), config_path)
    kinds = dict(topics.kinds)

    templates: dict[str, Template] = {}
    template_dir = root / "templates"
    if template_dir.is_dir():
        for path in sorted(template_dir.glob("*.txt")):
            try:
                templates[path.stem] = compile_template(path.stem, path.read_text(encoding="utf-8"))
            except TemplateError as exc:
                raise ProjectError(f"{path}: {exc}") from exc
    emails = _emails(template_dir, templates)

    triggers: dict[str, Trigger] = {}
    for i, raw in enumerate(config.get("triggers", [])):
        where = f"{config_path}: triggers[{i}]"
        missing = {"name", "event", "template"} - set(raw)
        if missing:
            raise ProjectError(f"{where} lacks {', '.join(sorted(missing))}")
        trigger = Trigger(
            name=raw["name"], event=raw["event"], template=raw["template"], topic=raw.get("topic", "transactional")
        )
        if trigger.template not in templates:
            raise ProjectError(f"{where} uses template {trigger.template!r}, not found in {template_dir}")
        if trigger.topic not in kinds:
            raise ProjectError(f"{where} uses unknown topic {trigger.topic!r}")
        if trigger.name in triggers:
            raise ProjectError(f"{where}: trigger name {trigger.name!r} is used twice")
        triggers[trigger.name] = trigger

    simulator = config.get("simulator", {})
    channels = _channels(config.get("channels", []), simulator, topics, config_path)
    known = flow_loader.Known(frozenset(kinds), frozenset(templates), frozenset(emails))
    return Project(
        root=root,
        channels=channels,
        sender=sender,
        topics=topics,
        simulator=simulator,
        triggers=triggers,
        templates=templates,
        emails=emails,
        fallback=_fallback(config.get("fallback", {}), topics, channels, config_path),
        regulations=_regulations(root / "regulations.toml"),
        flows=load_flows(root / "flows", known) if with_flows else {},
    )


_TOPIC_KEYS = {"kind", "on_unknown", "resends"}


def _topics(raw: object, config_path: Path) -> Topics:
    """`[topics]`: name = "kind", or name = { kind = "...", on_unknown = "resend" | "hold",
    resends = N } to choose what becomes of its texts whose outcome is unknown."""
    if not isinstance(raw, dict):
        raise ProjectError(f'{config_path}: [topics] must be a table of name = "kind"')
    kinds = dict(DEFAULT_TOPICS)
    unknown: dict[str, UnknownPolicy] = {}
    values = [k.value for k in TopicKind]
    valid = ", ".join(values)
    for name, value in raw.items():
        where = f"{config_path}: topic {name!r}"
        entry = value if isinstance(value, dict) else {"kind": value}
        extra = set(entry) - _TOPIC_KEYS
        if extra:
            keys = ", ".join(sorted(_TOPIC_KEYS))
            raise ProjectError(f"{where}: unknown keys {', '.join(sorted(extra))}; a topic has {keys}")
        kind = entry.get("kind")
        if not isinstance(kind, str) or kind not in values:
            raise ProjectError(f"{where} has unknown kind {kind!r}; kinds: {valid}")
        kinds[name] = TopicKind(kind)
        if "on_unknown" not in entry:
            if "resends" in entry:
                raise ProjectError(f'{where}: resends goes with on_unknown = "resend"')
            continue
        try:
            action = OnUnknown(entry["on_unknown"])
        except ValueError:
            raise ProjectError(f"{where}: on_unknown must be resend or hold, not {entry['on_unknown']!r}") from None
        resends = entry.get("resends", 1 if action is OnUnknown.RESEND else 0)
        if action is OnUnknown.HOLD and "resends" in entry:
            raise ProjectError(f'{where}: resends goes with on_unknown = "resend"')
        if action is OnUnknown.RESEND and (
            not isinstance(resends, int) or isinstance(resends, bool) or not 1 <= resends <= MAX_RESENDS
        ):
            raise ProjectError(f"{where}: resends must be a whole number from 1 to {MAX_RESENDS}")
        unknown[name] = UnknownPolicy(action, resends)
    return Topics(kinds, unknown)


_EMAIL_KEYS = {"subject", "text", "html"}


def _emails(folder: Path, templates: Mapping[str, Template]) -> dict[str, EmailTemplate]:
    """templates/<name>.email.toml: `subject` (required), `html` and `text` (optional; the
    plain part, else <name>.txt's text), all Jinja like the text."""
    found: dict[str, EmailTemplate] = {}
    for path in sorted(folder.glob("*.email.toml")) if folder.is_dir() else ():
        name = path.name.removesuffix(".email.toml")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ProjectError(f"{path}: {exc}") from exc
        if name not in templates:
            raise ProjectError(f"{path}: the email variant of template {name!r}, but there is no {name}.txt beside it")
        unknown = set(raw) - _EMAIL_KEYS
        if unknown:
            raise ProjectError(f"{path}: unknown keys {', '.join(sorted(unknown))}; an email variant has subject, html and text")
        if "subject" not in raw:
            raise ProjectError(f"{path}: an email needs a subject (subject = \"...\")")
        wrong = sorted(k for k, v in raw.items() if not isinstance(v, str) or not v.strip())
        if wrong:
            raise ProjectError(f"{path}: {', '.join(wrong)} must be text, not empty")
        try:
            found[name] = compile_email(name, raw["subject"], raw.get("text"), raw.get("html"))
        except TemplateError as exc:
            raise ProjectError(f"{path}: {exc}") from exc
    return found


def _fallback(raw: object, topics: Topics, channels: tuple[ChannelEntry, ...], config_path: Path) -> frozenset[str]:
    """`[fallback]`: topic name = "email". Each topic must exist, not be the compliance
    replies, and have an email channel to go to."""
    if not isinstance(raw, dict):
        raise ProjectError(f'{config_path}: [fallback] must be a table of topic = "email"')
    routes = [e.route for e in channels]
    for topic, value in raw.items():
        where = f"{config_path}: [fallback] {topic}"
        kind = topics.kinds.get(topic)
        if kind is None:
            raise ProjectError(f"{where}: unknown topic; topics: {', '.join(sorted(topics.kinds))}")
        if kind is TopicKind.COMPLIANCE:
            raise ProjectError(f"{where}: compliance replies go where the person wrote; they never fall back")
        if value != "email":
            raise ProjectError(f'{where} = {value!r}: the only fallback is "email"')
        if not candidates(routes, Destination(Reach.EMAIL, None, None, topic, kind.value)):
            raise ProjectError(
                f'{where} = "email": no email channel serves this topic; declare one ([[channels]] type = "smtp")'
            )
    return frozenset(raw)


def _channels(raw: object, simulator: Mapping[str, Any], topics: Topics, config_path: Path) -> tuple[ChannelEntry, ...]:
    """The declared channels, each checked by its own type; none declared is the simulator."""
    if not isinstance(raw, list):
        raise ProjectError(f"{config_path}: channels must be an array of tables ([[channels]])")
    if not raw:
        raw = [{"type": "simulator", "name": "simulator"}]
    entries: list[ChannelEntry] = []
    for i, item in enumerate(raw):
        where = f"{config_path}: channels[{i}]"
        if not isinstance(item, dict):
            raise ProjectError(f"{where} must be a table")
        missing = {"type", "name"} - set(item)
        if missing:
            raise ProjectError(f"{where} lacks {', '.join(sorted(missing))}")
        name, type_name = item["name"], item["type"]
        if not isinstance(name, str) or not _CHANNEL_NAME.fullmatch(name):
            raise ProjectError(f"{where}: name must be 1-64 letters, digits, '-' or '_'")
        where = f"{config_path}: channel {name!r}"
        if any(e.name == name for e in entries):
            raise ProjectError(f"{where} is declared twice")
        if type_name == "simulator":
            if any(e.type == "simulator" for e in entries):
                raise ProjectError(f"{where}: only one simulator channel is allowed")
            item = {**simulator, **item}
        try:
            settings = registry.settings_for(type_name, name, item)
            route = Route(
                channel=name,
                reach=registry.TYPES[type_name].reach,
                countries=frozenset(c.upper() for c in _strings(item, "countries")),
                number_types=frozenset(_strings(item, "number_types")),
                topics=frozenset(_strings(item, "topics")),
                priority=int(item.get("priority", 0)),
            )
        except (ValueError, TypeError) as exc:
            raise ProjectError(f"{where}: {exc}") from None
        unknown_types = route.number_types - NUMBER_TYPES
        if unknown_types:
            raise ProjectError(f"{where}: unknown number_types {sorted(unknown_types)}; known: {sorted(NUMBER_TYPES)}")
        unknown_topics = {t for t in route.topics if t not in topics.kinds and t not in {k.value for k in TopicKind}}
        if unknown_topics:
            raise ProjectError(f"{where}: unknown topics {sorted(unknown_topics)} (topic names or kinds)")
        shards = item.get("shards", 1)
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= registry.MAX_SHARDS:
            raise ProjectError(f"{where}: shards must be a whole number from 1 to {registry.MAX_SHARDS}")
        if shards > 1 and type_name == "simulator":  # its receipts are sent by the one that holds it
            raise ProjectError(f"{where}: shards: the simulator has one shard")
        receipt_timeout = item.get("receipt_timeout")
        if receipt_timeout is not None and (
            isinstance(receipt_timeout, bool) or not isinstance(receipt_timeout, int | float)
            or not 0 < receipt_timeout <= MAX_RECEIPT_TIMEOUT
        ):
            raise ProjectError(f"{where}: receipt_timeout must be seconds above 0, at most {MAX_RECEIPT_TIMEOUT} (7 days)")
        entries.append(ChannelEntry(name, type_name, route, settings, shards,
                                    None if receipt_timeout is None else float(receipt_timeout)))
    if not any(e.route.reach is Reach.SMS for e in entries):
        raise ProjectError(f"{config_path}: no channel sends SMS; declare one (type smpp, twilio, vonage or simulator)")
    return tuple(entries)


MAX_RECEIPT_TIMEOUT = 7 * 24 * 3600  # a receipt later than a week is no news anyone waits for
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _strings(item: Mapping[str, Any], key: str) -> list[str]:
    value = item.get(key, [])
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return value


def flow_files(folder: Path) -> list[Path]:
    """The flow files of a folder: `*.yaml`, not their transcript tests (`*.test.yaml`)."""
    return sorted(p for p in folder.glob("*.yaml") if not p.name.endswith(".test.yaml"))


def load_flows(folder: Path, known: flow_loader.Known) -> dict[str, tuple[str, Flow]]:
    """Every flow file checked, alone and together; all problems of all files, or the flows."""
    if not folder.is_dir():
        return {}
    found: dict[str, tuple[str, Flow]] = {}
    problems: list[flow_loader.Problem] = []
    files: dict[str, str] = {}
    for path in flow_files(folder):
        source = path.read_text(encoding="utf-8")
        try:
            flow = flow_loader.parse(source, file=str(path), known=known)
        except flow_loader.FlowError as exc:
            problems.extend(exc.problems)
            continue
        if flow.name in found:
            problems.append(flow_loader.Problem(1, "flow", f"flow {flow.name!r} is also defined in {files[flow.name]}", str(path)))
            continue
        if path.stem != flow.name:
            problems.append(flow_loader.Problem(1, "flow", f"the file of flow {flow.name!r} must be named {flow.name}.yaml", str(path)))
            continue
        found[flow.name] = (source, flow)
        files[flow.name] = str(path)
    problems.extend(flow_loader.FlowSet({n: f for n, (_, f) in found.items()}, files).check())
    if problems:
        raise ProjectError("\n".join(str(p) for p in sorted(problems, key=lambda p: (p.file, p.line))))
    return found


def _regulations(path: Path) -> Regulations:
    """Shipped rules plus the project's (which can only tighten them); checked for every
    place they name, so rules that would leave no sending hour fail at start, not at 3 a.m."""
    rules = regulations_mod.shipped()
    if not path.exists():
        return rules
    try:
        rules = rules.tightened_by(regulations_mod.parse(path.read_text(encoding="utf-8"), str(path)))
        rules.check()
    except regulations_mod.RulesError as exc:
        message = str(exc)
        raise ProjectError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    return rules
