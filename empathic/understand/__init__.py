"""Reply understanding: compliance keywords (`keywords`) and what a reply means (`understand`).

    >>> from datetime import datetime
    >>> from empathic.understand import understand
    >>> understand("tomorrow after 5?", now=datetime.fromisoformat("2026-11-23T10:00-05:00"),
    ...            timezone="America/New_York").when.isoformat()
    '2026-11-24T17:00:00-05:00'
"""

from __future__ import annotations

from empathic.understand.intents import Intent
from empathic.understand.understanding import Understanding, understand

__all__ = ["Intent", "Understanding", "understand"]
