"""What the HTTP providers (Twilio, Vonage) share: one pooled client, at most `window`
requests at once, one POST per text, and how a failed request is classed.

A request that may have reached the provider before the connection failed (read time-out,
connection reset, a broken answer) is `unknown`: sending it again could double the text.
One that never got through (connect errors) is `connection`, retried by the dispatcher.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any

import httpx

from empathic.channels.base import ChannelError, ChannelSink, ErrorKind, Outbound, SendResult
from empathic.channels.window import PriorityWindow

_MAYBE_TAKEN = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)


class HttpProvider(ABC):
    """A base for provider channels; subclasses set `name`, `settings` (window, timeout,
    base_url), `sender`, `tps`, and write `_send_one`."""

    answers_lookup = False  # no provider here can find a message by our id
    settings: Any
    name: str

    def __init__(self) -> None:
        self._window = PriorityWindow(self.settings.window)
        self._client: httpx.AsyncClient | None = None

    def _client_options(self) -> dict[str, Any]:
        """Extra httpx.AsyncClient arguments (auth)."""
        return {}

    async def start(self, sink: ChannelSink) -> None:
        # Receipts and texts come in through webhook(), which is handed its sink.
        window = self.settings.window
        self._client = httpx.AsyncClient(
            base_url=self.settings.base_url,
            timeout=self.settings.timeout,
            limits=httpx.Limits(max_connections=window, max_keepalive_connections=window),
            headers={"Accept": "application/json"},
            **self._client_options(),
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def lookup(self, message_ids: list[str]) -> dict[str, str]:
        return {}

    async def send(self, batch: list[Outbound]) -> list[SendResult]:
        """One request per text, at most `window` at once; results in batch order."""
        if self._client is None:
            raise RuntimeError(f"channel {self.name} is not started")
        return list(await asyncio.gather(*(self._send_one(out) for out in batch)))

    @abstractmethod
    async def _send_one(self, out: Outbound) -> SendResult:
        """One text: the provider's request, and its answer read into a result."""

    async def _post(self, path: str, form: dict[str, str], priority: int = 0) -> httpx.Response | ChannelError:
        """POST within the window (most urgent first); a transport failure as the error it means."""
        assert self._client is not None
        async with self._window.slot(priority):
            try:
                return await self._client.post(path, data=form)
            except httpx.TransportError as exc:
                kind = ErrorKind.UNKNOWN if isinstance(exc, _MAYBE_TAKEN) else ErrorKind.CONNECTION
                return ChannelError(kind, type(exc).__name__)
