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
`<channel>.<writer>.<n>.journal`, a new one past `PART_SIZE` (the two newest are kept).
Nothing is fsynced: the journal survives the process being killed, not the machine losing
power. A last line cut short by a kill is ignored. A writer that cannot append (a full
disk) deletes its parts, oldest first, and goes on without a journal: no H record, so its
texts keep their topic's policy, never a wrong "never written".

A reader trusts a writer's H records only while it holds a shared lock on the writer's
lock file (`finished`), and lists the writer's parts only then: a writer is never read as
finished with a part it began after the listing. Dead writers' files are pruned, when a
writer opens or closes, `KEEP` seconds after their last record, under an exclusive lock
tried without waiting (never while a reader reads them), oldest part first and the lock
file last: whatever a kill or an error leaves is the newest records, never an H record
without the W record that followed it. `flock` has these meanings on a local filesystem
only (on NFS it becomes a POSIX lock, which any `close` of the file by the process drops):
`journal_dir` must be local; `open` warns when it is not.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HANDED, WRITTEN = b"H", b"W"
PART_SIZE = 4 << 20  # bytes; a part holds ~60,000 texts (H and W), far more than are ever in flight
KEEP = 24 * 3600.0  # seconds a dead writer's files stay after their last record
_FILE = re.compile(r"(?P<channel>[A-Za-z0-9_-]+)\.(?P<writer>[0-9]+-[0-9a-f]{12})\.(?:lock|(?P<part>[0-9]{6})\.journal)")
_KEY = re.compile(r"[!-~]+")  # printable ASCII without spaces: a key fits in a record
# Filesystems where flock is not the local kernel's (NFS turns it into POSIX locks)
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre",
                                 "fuse.sshfs", "fuse.glusterfs", "fuse.cephfs"})


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
        """Create the folder, take the writer's lock, open its first part and prune dead
        writers' files; OSError if not. Blocks (on the lock, while a reader holds it): call
        it off the event loop."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if (kind := filesystem(self.folder)) in NETWORK_FILESYSTEMS:
            log.warning("smpp %s: the journal in %s is on %s, where flock is not the local kernel's: a process may be "
                        "read as gone while it still writes, and texts sent twice; put journal_dir on a local "
                        "filesystem", self.channel, self.folder, kind)
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
        prune(self.folder)

    def handed(self, keys: Iterable[str]) -> None:
        self._append(HANDED, keys)

    def written(self, keys: Iterable[str]) -> None:
        """Must return before the bytes of these texts go to the transport (write-ahead)."""
        self._append(WRITTEN, keys)

    def close(self) -> None:
        """Let go of the lock (the files stay, for readers: this writer writes no more) and
        prune dead writers' old files. Call it off the event loop."""
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
        if self._part > 2:  # if this fails, the writer gives up: an older part never outlives a newer one
            self._path(f"{self._part - 2:06d}.journal").unlink(missing_ok=True)

    def _give_up(self, exc: OSError) -> None:
        """An append failed: no part may keep an H record whose W record could not follow."""
        log.error("smpp %s: the journal in %s cannot be written (%s); interrupted hand-offs keep their "
                  "topic's policy until the channel starts again", self.channel, self.folder, exc)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            mine = parts(self.folder, self.channel, self.writer)
        except OSError as unlisted:
            log.critical("smpp %s: the journal in %s cannot be listed (%s): delete the parts of writer %s before the "
                         "next start, or texts they name may be sent twice", self.channel, self.folder, unlisted,
                         self.writer)
            return
        # Oldest first: a kill part-way leaves the newest parts, where each W record follows its H.
        for path in mine:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                try:
                    os.truncate(path, 0)
                except OSError:
                    log.critical("smpp %s: %s can be neither deleted nor emptied: delete it and the newer parts of "
                                 "writer %s before the next start, or texts it names may be sent twice",
                                 self.channel, path, self.writer)
                    return  # a newer part deleted would take W records this one's H records need

    def _path(self, suffix: str) -> Path:
        return self.folder / f"{self.channel}.{self.writer}.{suffix}"


def writers(folder: Path, channel: str | None = None) -> list[WriterFiles]:
    """The writers whose files are in `folder` (of `channel`, if given)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    locks: dict[tuple[str, str], Path] = {}
    found: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for name in names:
        m = _FILE.fullmatch(name)
        if m is None or (channel is not None and m["channel"] != channel):
            continue
        who = (m["channel"], m["writer"])
        if m["part"] is None:
            locks[who] = folder / name
        else:
            found.setdefault(who, []).append((int(m["part"]), folder / name))
    return [WriterFiles(c, w, locks.get((c, w)), tuple(path for _, path in sorted(found.get((c, w), []))))
            for c, w in {*locks, *found}]


def parts(folder: Path, channel: str, writer: str) -> tuple[Path, ...]:
    """One writer's parts as they are now, oldest first."""
    found = [m for name in os.listdir(folder) if (m := _FILE.fullmatch(name)) and m["part"] is not None
             and m["channel"] == channel and m["writer"] == writer]
    return tuple(folder / m[0] for m in sorted(found, key=lambda m: int(m["part"])))


@contextmanager
def finished(files: WriterFiles) -> Iterator[bool]:
    """Whether the writer will append no more: its lock is free (it closed, or its process
    died). While true, a shared lock on it is held until the `with` ends: the writer's files
    stay as they are (a writer still opening waits, prune passes them by). Unsure (no lock
    file, or it cannot be tried) counts as still writing."""
    with _locked(files, fcntl.LOCK_SH) as free:
        yield free


@contextmanager
def _locked(files: WriterFiles, how: int) -> Iterator[bool]:
    """Try `how` (LOCK_SH, LOCK_EX) on the writer's lock file without waiting; whether it was
    taken (it is held until the `with` ends)."""
    try:
        fd = os.open(files.lock, os.O_RDONLY) if files.lock is not None else None
    except OSError:
        fd = None
    taken = False
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, how | fcntl.LOCK_NB)
                taken = True
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    log.warning("journal lock %s cannot be tried (%s)", files.lock, exc)
        yield taken
    finally:
        if fd is not None:
            os.close(fd)  # and its lock with it


def records(part: Path) -> list[tuple[bytes, list[bytes]]]:
    """A part's records, in order; a last line cut short (the writer was killed mid-write) is
    left out. FileNotFoundError if the part is gone."""
    lines = part.read_bytes().split(b"\n")[:-1]  # what follows the last newline is incomplete
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
        with finished(files) as trusted:
            # Listed now, not with `writers`: the parts of a writer that rotated and died in
            # between are all read, its last W records too.
            its_handed: set[bytes] = set()
            whole = True
            for part in parts(folder, channel, files.writer):
                try:
                    found = records(part)
                except FileNotFoundError:  # deleted as it was read: a W record may have gone with it
                    whole = False
                    continue
                for kind, keys in found:
                    if kind == WRITTEN:
                        written.update(k for k in keys if k in wanted)
                    else:
                        its_handed.update(k for k in keys if k in wanted)
            if trusted and whole:
                handed |= its_handed
    return {wanted[k] for k in handed - written}


def prune(folder: Path, keep: float | None = None, now: float | None = None) -> int:
    """Delete the files of finished writers whose last record is older than `keep` seconds
    (`KEEP`); how many writers were pruned. A file that cannot be deleted is logged, and its
    writer's newer files are kept."""
    keep = KEEP if keep is None else keep
    now = time.time() if now is None else now
    pruned = 0
    for files in writers(folder):
        try:
            newest = max(p.stat().st_mtime for p in [*files.parts, *([files.lock] if files.lock else [])])
        except (OSError, ValueError):
            continue
        if now - newest < keep:
            continue
        with _locked(files, fcntl.LOCK_EX) as free:  # not while the writer writes or a reader reads
            if not free or files.lock is None:
                continue
            try:
                found = parts(folder, files.channel, files.writer)
            except OSError as exc:
                log.warning("journal folder %s cannot be listed (%s)", folder, exc)
                return pruned
            # oldest first and the lock last: what a failure leaves is the newest records, still the writer's
            for path in [*found, files.lock]:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:
                    log.warning("journal file %s cannot be deleted (%s)", path, exc)
                    break
            else:
                pruned += 1
    return pruned


def filesystem(folder: Path) -> str | None:
    """The type of the filesystem `folder` is on (Linux's /proc/self/mounts); None if unknown."""
    try:
        mounts = Path("/proc/self/mounts").read_text()
    except OSError:
        return None
    where = os.path.realpath(folder)
    best, kind = "", None
    for line in mounts.splitlines():
        fields = line.split(" ")
        if len(fields) < 3:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[1])  # "\040" is a space
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind
