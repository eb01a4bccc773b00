"""The type of a JSON object as the platform receives and returns it."""

from __future__ import annotations

from typing import Any

# A JSON object: what an API client, a provider's webhook or a project file sent, or a view
# the API returns. Its values are dynamic by nature (any JSON, nested to any depth), so they
# are typed Any and the code that reads one checks each value it uses. Data with fixed
# fields that crosses a module boundary gets a record of its own (a dataclass, a TypedDict).
Json = dict[str, Any]  # values are dynamic: see above
