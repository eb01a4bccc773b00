"""A token bucket: how many messages a channel may take now, given its rate per second.

Pure: the caller passes the clock reading, so tests need no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    burst: float  # capacity
    _tokens: float = field(init=False)
    _at: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._tokens = self.burst

    def _refill(self, now: float) -> None:
        if self._at is not None and now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        if self._at is None or now > self._at:
            self._at = now

    def available(self, now: float) -> int:
        self._refill(now)
        return int(self._tokens)

    def take(self, n: int, now: float) -> None:
        self._refill(now)
        self._tokens -= n

    def wait_for(self, n: int, now: float) -> float:
        """Seconds until n tokens are available."""
        self._refill(now)
        missing = n - self._tokens
        return 0.0 if missing <= 0 else missing / self.rate
