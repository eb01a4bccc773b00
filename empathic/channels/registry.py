"""The channel types a project can declare (`[[channels]]` in `empathic.toml`).

Each entry names its `type`; the keys that choose where it is used (`countries`,
`number_types`, `topics`, `priority`) belong to routing, the rest to the channel's own
settings (`from_config(name, raw)`, which rejects what it does not know). Channel modules
are imported only when a project uses them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from empathic.core.routing import Reach

# Keys the engine reads itself (routing; `shards`: how many dispatchers, each with its own
# connections, send the channel's queue, spread over the workers; `receipt_timeout`: how
# long its texts wait in `sent` for a receipt); the rest are the channel's own settings.
ROUTING_KEYS = frozenset(
    {"type", "name", "countries", "number_types", "topics", "priority", "shards", "receipt_timeout"}
)
MAX_SHARDS = 32


@dataclass(frozen=True)
class ChannelType:
    module: str
    settings: str  # the settings class in that module, with from_config(name, raw)
    channel: str  # the channel class, built as Channel(name, settings, clock)
    reach: Reach


TYPES: dict[str, ChannelType] = {
    "simulator": ChannelType("empathic.channels.simulator", "SimulatorSettings", "Simulator", Reach.SMS),
    "smpp": ChannelType("empathic.channels.smpp.channel", "SmppSettings", "SmppChannel", Reach.SMS),
    "twilio": ChannelType("empathic.channels.twilio", "TwilioSettings", "Twilio", Reach.SMS),
    "vonage": ChannelType("empathic.channels.vonage", "VonageSettings", "Vonage", Reach.SMS),
    "smtp": ChannelType("empathic.channels.smtp", "SmtpSettings", "Smtp", Reach.EMAIL),
}


def channel_class(type_name: str) -> Any:
    kind = TYPES[type_name]
    return getattr(importlib.import_module(kind.module), kind.channel)


def settings_for(type_name: str, name: str, raw: dict[str, Any]) -> Any:
    """The channel's checked settings; ValueError naming the bad key."""
    kind = TYPES.get(type_name)
    if kind is None:
        raise ValueError(f"type {type_name!r} is not one of {', '.join(TYPES)}")
    module = importlib.import_module(kind.module)
    own = {k: v for k, v in raw.items() if k not in ROUTING_KEYS}
    return getattr(module, kind.settings).from_config(name, own)
