"""What the simulated SMSC took: whole messages counted once each, parts reassembled.

Pure bookkeeping (no I/O), so the figures a benchmark reads are easy to trust: `received`
counts every whole message answered ESME_ROK, `unique` the distinct (source, destination,
text) among them, and `duplicates` the difference. Benchmarks send unique bodies, so any
duplicate is a message the ESME sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from empathic.channels.smpp.coding import Concat

# Parts of long messages still waiting for their siblings, at most; the oldest go first.
MAX_PARTIAL = 100_000


@dataclass
class Ledger:
    submits: int = 0  # submit_sm PDUs read
    received: int = 0  # whole messages answered ESME_ROK (a long message once)
    rejected: int = 0  # submit_sm refused: ESME_RINVDSTADR (reject_share), or not text as it claims
    throttled: int = 0  # submit_sm answered ESME_RTHROTTLED
    receipts_sent: int = 0  # receipts the ESME acknowledged with ESME_ROK
    mo_sent: int = 0  # mobile-originated messages whose every part was acknowledged
    binds: int = 0  # successful binds
    drops: int = 0  # connections the simulator cut (drop_after)
    refused: int = 0  # deliver_sm the ESME refused for good (ESME_RX_P_APPN, ESME_RX_R_APPN)
    queries: int = 0  # query_sm PDUs read
    # hash((source, destination, text)) of each message: 8 bytes a message rather than the
    # text itself; a 64-bit collision in a million messages has odds around 1 in 10^7.
    _seen: set[int] = field(default_factory=set, repr=False)
    _partial: dict[tuple, dict[int, str]] = field(default_factory=dict, repr=False)

    @property
    def unique(self) -> int:
        return len(self._seen)

    def accept(self, system_id: str, source: str, destination: str, text: str, concat: Concat | None) -> bool:
        """Record one accepted part; True when it completed a message (which is then counted)."""
        if concat is None or concat.total <= 1:
            self._count(source, destination, text)
            return True
        key = (system_id, source, destination, concat.ref, concat.total)
        parts = self._partial.get(key)
        if parts is None:
            if len(self._partial) >= MAX_PARTIAL:
                del self._partial[next(iter(self._partial))]
            parts = self._partial[key] = {}
        parts[concat.seq] = text
        if len(parts) < concat.total:
            return False
        del self._partial[key]
        self._count(source, destination, "".join(parts[seq] for seq in sorted(parts)))
        return True

    def _count(self, source: str, destination: str, text: str) -> None:
        self.received += 1
        self._seen.add(hash((source, destination, text)))

    def summary(self) -> dict[str, int]:
        return {
            "received": self.received,
            "unique": self.unique,
            "duplicates": self.received - self.unique,
            "rejected": self.rejected,
            "throttled": self.throttled,
            "receipts_sent": self.receipts_sent,
            "mo_sent": self.mo_sent,
            "binds": self.binds,
            "drops": self.drops,
            "refused": self.refused,
            "queries": self.queries,
            "submits": self.submits,
            "partial": len(self._partial),
        }
