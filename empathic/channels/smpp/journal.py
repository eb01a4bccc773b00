"""The SMPP channel's write-ahead journal: which texts a process handed to its binds, and
which of those it wrote to a connection.

SMPP cannot be asked what an SMSC holds, so after a crash every text left `sending` would
have an unknown outcome, though most were still waiting for a window slot. The journal
tells them apart. Two records, each one line appended by one `os.write` on an `O_APPEND`
descriptor:

    H msg_01J…:1 msg_01J…:1 …     handed: a batch given to `SmppChannel.send`
    W msg_01J…:1 …                written: the texts of one write's submit_sm, appended
                                  BEFORE the bytes go to the transport

Each text is keyed by its id and attempt (`key`), so a record speaks of one claim only (an
earlier claim's H, handed on this host before a retry went out from another, says nothing
of the retry). A key with an H record and no W record, in the journal of a writer that is
finished, was never on the wire: `never_written` says so, and reconcile puts it back in the
queue. A key with no H record anywhere (handed on another host, its journal lost or pruned)
keeps its topic's policy, as does one whose writer may still write: a process paused past
its lease is alive, and would write after the new holder resent.

One writer per channel object and start, in one folder (`journal_dir`, else `smpp-journal`
in the data dir): `<channel>.<writer>.lock`, held with `flock` until the channel stops (the
kernel lets go when the process dies, kill -9 too: no pid to be reused), and parts
`<channel>.<writer>.<n>.journal`, a new one past `PART_SIZE` (the two newest are kept). Nothing is fsynced: the journal survives
the process being killed, not the machine losing power. A last line cut short by a kill
is ignored. A writer that cannot append (a full disk) deletes its parts and goes on
without a journal: no H record, so its texts keep their topic's policy, never a wrong
"never written". Dead writers' files are pruned `KEEP` seconds after their last record.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HANDED, WRITTEN = b"H", b"W"
PART_SIZE = 4 << 20  # bytes; a part holds ~60,000 texts (H and W), far more than are ever in flight
KEEP = 24 * 3600.0  # seconds a dead writer's files stay after their last record
_FILE = re.compile(r"(?P<channel>[A-Za-z0-9_-]+)\.(?P<writer>[0-9]+-[0-9a-f]{12})\.(?:lock|(?P<part>[0-9]{6})\.journal)")
_KEY = re.compile(r"[!-~]+")  # printable ASCII without spaces: a key fits in a record


def key(message_id: str, attempt: int) -> str:
    """What the journal names one claim of a text by."""
    return f"{message_id}:{attempt}"


@dataclass(frozen=True, slots=True)
class WriterFiles:
    """One writer's files in a journal folder."""

    channel: str
    writer: str
    lock: Path | None
    parts: tuple[Path, ...]  # oldest first


class Journal:
    """This process's writer for one channel: `open`, then `handed` and `written` records, `close`."""

    def __init__(self, folder: Path, channel: str) -> None:
        self.folder = folder
        self.channel = channel
        self.writer = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._lock: int | None = None
        self._fd: int | None = None  # the current part; None: not open, or given up
        self._part = 0
        self._size = 0

    def open(self) -> None:
        """Create the folder, take the writer's lock and open its first part; OSError if not."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = os.open(self._path("lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError:
            os.close(lock)
            raise
        self._lock = lock
        try:
            self._next_part()
        except OSError:
            self.close()
            raise

    def handed(self, keys: Iterable[str]) -> None:
        self._append(HANDED, keys)

    def written(self, keys: Iterable[str]) -> None:
        """Must return before the bytes of these texts go to the transport (write-ahead)."""
        self._append(WRITTEN, keys)

    def close(self) -> None:
        """Let go of the lock (the files stay, for readers: this writer writes no more) and
        prune dead writers' old files."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases its flock
            self._lock = None
            prune(self.folder)

    def _append(self, kind: bytes, keys: Iterable[str]) -> None:
        if self._fd is None:
            return
        line = b" ".join([kind, *(k.encode() for k in keys if _KEY.fullmatch(k))]) + b"\n"
        if len(line) == 2:
            return
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view):]
            self._size += len(line)
            if self._size > PART_SIZE:
                self._next_part()
        except OSError as exc:
            self._give_up(exc)

    def _next_part(self) -> None:
        """Open the next part and keep the two newest (an older one speaks of texts long settled)."""
        self._part += 1
        fd = os.open(self._path(f"{self._part:06d}.journal"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._size = fd, 0
        if self._part > 2:
            self._path(f"{self._part - 2:06d}.journal").unlink(missing_ok=True)
            prune(self.folder)

    def _give_up(self, exc: OSError) -> None:
        """An append failed: no part may keep an H record whose W record could not follow."""
        log.error("smpp %s: the journal in %s cannot be written (%s); interrupted hand-offs keep their "
                  "topic's policy until the channel starts again", self.channel, self.folder, exc)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        for path in self.folder.glob(f"{self.channel}.{self.writer}.*.journal"):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                try:
                    os.truncate(path, 0)
                except OSError:
                    log.critical("smpp %s: %s can be neither deleted nor emptied: delete it before the next "
                                 "start, or texts it names may be sent twice", self.channel, path)

    def _path(self, suffix: str) -> Path:
        return self.folder / f"{self.channel}.{self.writer}.{suffix}"


def writers(folder: Path, channel: str | None = None) -> list[WriterFiles]:
    """The writers whose files are in `folder` (of `channel`, if given)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    locks: dict[tuple[str, str], Path] = {}
    parts: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for name in names:
        m = _FILE.fullmatch(name)
        if m is None or (channel is not None and m["channel"] != channel):
            continue
        who = (m["channel"], m["writer"])
        if m["part"] is None:
            locks[who] = folder / name
        else:
            parts.setdefault(who, []).append((int(m["part"]), folder / name))
    return [WriterFiles(c, w, locks.get((c, w)), tuple(path for _, path in sorted(parts.get((c, w), []))))
            for c, w in {*locks, *parts}]


def finished(files: WriterFiles) -> bool:
    """Whether the writer will append no more: its lock is free (it closed, or its process
    died). Unsure (no lock file, or it cannot be tried) counts as still writing."""
    if files.lock is None:
        return False
    try:
        fd = os.open(files.lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            log.warning("journal lock %s cannot be tried (%s)", files.lock, exc)
        return False
    else:
        return True
    finally:
        os.close(fd)


def records(part: Path) -> list[tuple[bytes, list[bytes]]]:
    """A part's records, in order; a last line cut short (the writer was killed mid-write) is left out."""
    try:
        data = part.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]  # what follows the last newline is incomplete
    return [(fields[0], fields[1:]) for fields in (line.split(b" ") for line in lines)
            if fields and fields[0] in (HANDED, WRITTEN)]


def never_written(folder: Path, channel: str, claims: dict[str, int]) -> set[str]:
    """Of `claims` (message id -> attempt), the ids a finished writer of `channel` was
    handed and never wrote to a connection. A W record in any writer's journal (one still
    writing too) counts."""
    wanted = {key(message_id, attempt).encode(): message_id for message_id, attempt in claims.items()}
    handed: set[bytes] = set()
    written: set[bytes] = set()
    for files in writers(folder, channel):
        trusted = finished(files)  # read after the check: a finished writer's files are final
        for part in files.parts:
            for kind, keys in records(part):
                if kind == WRITTEN:
                    written.update(k for k in keys if k in wanted)
                elif trusted:
                    handed.update(k for k in keys if k in wanted)
    return {wanted[k] for k in handed - written}


def prune(folder: Path, keep: float = KEEP, now: float | None = None) -> int:
    """Delete the files of finished writers whose last record is older than `keep` seconds;
    how many writers were pruned."""
    now = time.time() if now is None else now
    pruned = 0
    for files in writers(folder):
        paths = [*files.parts, *([files.lock] if files.lock else [])]
        try:
            newest = max(p.stat().st_mtime for p in paths)
        except (OSError, ValueError):
            continue
        if now - newest < keep or not finished(files):
            continue
        for path in paths:  # the lock last: while it is there, the writer's parts are known to be its
            path.unlink(missing_ok=True)
        pruned += 1
    return pruned
