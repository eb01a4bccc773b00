"""The SMPP write-ahead journal: records read back across writers and parts, a last line cut
short, rotation, pruning, a writer killed -9 (or dying between a reader's listing and its
lock check), a writer that cannot append, parts deleted as they are read; the session
handing a write's tags to the journal before its bytes go; the channel's writer per start."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empathic.channels.base import Inbound, Outbound, Receipt
from empathic.channels.smpp import journal
from empathic.channels.smpp import pdu as p
from empathic.channels.smpp.channel import SmppChannel, SmppSettings
from empathic.channels.smpp.journal import Journal, key, never_written
from empathic.channels.smpp.session import Session, SessionSettings
from empathic.core.clock import SystemClock
from empathic.smsc.server import Smsc, SmscSettings


class Sink:
    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir

    async def on_receipts(self, batch: list[Receipt]) -> None: ...

    async def on_inbound(self, inbound: Inbound) -> str:
        return "msg_x"


def opened(folder: Path, channel: str = "c") -> Journal:
    writer = Journal(folder, channel)
    writer.open()
    return writer


def die(writer: Journal) -> None:
    """As kill -9 leaves a writer: its descriptors closed by the kernel (the lock with them), nothing else done."""
    for fd in (writer._fd, writer._lock):  # noqa: SLF001
        if fd is not None:
            os.close(fd)
    writer._fd = writer._lock = None  # noqa: SLF001


def in_two_parts(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Journal:
    """A writer whose H record of x is in its first part and the W record in its second."""
    monkeypatch.setattr(journal, "PART_SIZE", 40)
    writer = opened(folder)
    writer.handed([key("x", 1)])
    writer.handed([key(f"f{i}", 1) for i in range(10)])  # past PART_SIZE: the next record goes to a new part
    writer.written([key("x", 1)])
    assert sorted(path.name.split(".", 2)[2] for path in folder.glob(f"c.{writer.writer}.*")) == [
        "000001.journal", "000002.journal", "lock"]
    return writer


def test_handed_and_never_written_by_a_finished_writer(tmp_path: Path) -> None:
    writer = opened(tmp_path)
    writer.handed([key("m1", 1), key("m2", 1), key("m3", 1)])
    writer.written([key("m1", 1)])
    claims = {"m1": 1, "m2": 1, "m3": 1}
    assert never_written(tmp_path, "c", claims) == set()  # still writing: nothing is sure yet
    writer.close()
    assert never_written(tmp_path, "c", claims) == {"m2", "m3"}
    assert never_written(tmp_path, "c", {"m2": 2}) == set()  # another claim of m2: not this journal's
    assert never_written(tmp_path, "other", claims) == set()  # another channel's journal
    assert never_written(tmp_path / "absent", "c", claims) == set()


def test_records_are_read_across_writers_and_a_write_anywhere_counts(tmp_path: Path) -> None:
    first, second, live = opened(tmp_path), opened(tmp_path), opened(tmp_path)
    first.handed([key("a", 1), key("b", 1)])
    second.handed([key("c", 3)])
    live.handed([key("d", 1)])
    live.written([key("b", 1)])  # a write for b (a stale send after a restart): b may be at the SMSC
    first.close()
    second.close()
    assert never_written(tmp_path, "c", {"a": 1, "b": 1, "c": 3, "d": 1}) == {"a", "c"}
    live.close()
    assert never_written(tmp_path, "c", {"a": 1, "b": 1, "c": 3, "d": 1}) == {"a", "c", "d"}


def test_a_last_line_cut_short_is_ignored(tmp_path: Path) -> None:
    writer = opened(tmp_path)
    writer.handed([key("a", 1), key("b", 1)])
    writer.close()
    (part,) = tmp_path.glob("*.journal")
    with part.open("ab") as f:
        f.write(b"W a:1 b:")  # killed mid-write: the bytes that went had no newline
    assert never_written(tmp_path, "c", {"a": 1, "b": 1}) == {"a", "b"}
    part.write_bytes(b"H a:1 b:1\nH c:")  # a cut H record hands nothing
    assert never_written(tmp_path, "c", {"a": 1, "b": 1, "c": 1}) == {"a", "b"}


def test_keys_that_do_not_fit_a_record_are_left_out(tmp_path: Path) -> None:
    writer = opened(tmp_path)
    writer.handed([key("a b", 1), key("x\ny", 1), key("ok", 1)])
    writer.close()
    assert never_written(tmp_path, "c", {"a b": 1, "x\ny": 1, "ok": 1}) == {"ok"}


def test_parts_rotate_and_the_two_newest_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "PART_SIZE", 200)
    writer = opened(tmp_path)
    for i in range(100):
        writer.handed([key(f"msg{i:03d}", 1)])
        if i % 2:
            writer.written([key(f"msg{i:03d}", 1)])
    parts = sorted(tmp_path.glob("*.journal"))
    assert len(parts) == 2 and not parts[0].name.endswith(".000001.journal")
    writer.close()
    claims = {f"msg{i:03d}": 1 for i in range(100)}
    found = never_written(tmp_path, "c", claims)
    # the newest records are read back; the oldest went with their part (their texts' own policy then)
    assert {"msg098", "msg096"} <= found and "msg000" not in found
    assert all(int(m[3:]) % 2 == 0 for m in found)


def test_finished_writers_are_pruned_after_keep_and_live_ones_never(tmp_path: Path) -> None:
    old, recent, live = opened(tmp_path), opened(tmp_path), opened(tmp_path, "other")
    for writer in (old, recent, live):
        writer.handed([key("m", 1)])
    old.close()
    recent.close()
    day_ago = time.time() - 2 * journal.KEEP
    for path in [*tmp_path.glob(f"*{old.writer}*"), *tmp_path.glob(f"*{live.writer}*")]:
        os.utime(path, (day_ago, day_ago))
    assert journal.prune(tmp_path) == 1
    left = {files.writer for files in journal.writers(tmp_path)}
    assert left == {recent.writer, live.writer}
    live.close()  # closing prunes too: `live` is finished now and old
    assert {files.writer for files in journal.writers(tmp_path)} == {recent.writer}


def test_a_writer_killed_9_is_finished_and_its_records_count(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from empathic.channels.smpp.journal import Journal, key\n"
        "w = Journal(Path(sys.argv[1]), 'c'); w.open()\n"
        "w.handed([key('a', 1), key('b', 1)]); w.written([key('a', 1)])\n"
        "print('ready', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        assert never_written(tmp_path, "c", {"a": 1, "b": 1}) == set()  # alive: it may still write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert never_written(tmp_path, "c", {"a": 1, "b": 1}) == {"b"}


def test_a_writer_that_cannot_append_deletes_its_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = opened(tmp_path)
    writer.handed([key("a", 1)])

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal.os, "write", full)
    writer.written([key("a", 1)])  # lost: so the H record must not stay to say "never written"
    monkeypatch.undo()
    writer.handed([key("b", 1)])  # given up: nothing more is recorded
    writer.close()
    assert list(tmp_path.glob("*.journal")) == []
    assert never_written(tmp_path, "c", {"a": 1, "b": 1}) == set()


def test_a_writer_that_rotates_and_dies_after_the_folder_was_listed_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "PART_SIZE", 40)
    writer = opened(tmp_path)
    writer.handed([key("x", 1)])
    check = journal.finished

    def rotate_write_and_die(files: journal.WriterFiles) -> object:
        # between the reader's listing of the folder and its look at the lock
        if files.writer == writer.writer and writer._lock is not None:  # noqa: SLF001
            writer.handed([key(f"f{i}", 1) for i in range(10)])  # a new part
            writer.written([key("x", 1)])  # in the part the listing did not see
            die(writer)
        return check(files)

    monkeypatch.setattr(journal, "finished", rotate_write_and_die)
    assert never_written(tmp_path, "c", {"x": 1}) == set()


def test_a_part_deleted_as_it_is_read_leaves_its_writers_handed_records_untrusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = opened(tmp_path)
    other.handed([key("y", 1)])
    other.close()
    in_two_parts(tmp_path, monkeypatch).close()
    read = journal.records

    def pruned_as_read(part: Path) -> list[tuple[bytes, list[bytes]]]:
        if part.name.endswith(".000002.journal"):  # by a process that does not take the lock
            part.unlink()
        return read(part)

    monkeypatch.setattr(journal, "records", pruned_as_read)
    assert never_written(tmp_path, "c", {"x": 1, "y": 1}) == {"y"}  # the other writer's are still whole


def test_prune_passes_by_a_writer_being_read(tmp_path: Path) -> None:
    writer = opened(tmp_path)
    writer.handed([key("a", 1)])
    writer.close()
    (files,) = journal.writers(tmp_path)
    with journal.finished(files) as free:
        assert free
        assert journal.prune(tmp_path, keep=0) == 0
        assert journal.writers(tmp_path) == [files]
    assert journal.prune(tmp_path, keep=0) == 1
    assert journal.writers(tmp_path) == []


def test_a_file_prune_cannot_delete_is_logged_and_its_writers_newer_files_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dead = in_two_parts(tmp_path, monkeypatch)
    die(dead)
    (files,) = journal.writers(tmp_path)
    delete = Path.unlink

    def unlink(path: Path, missing_ok: bool = False) -> None:
        if path == files.parts[0]:  # another user's file
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        delete(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    assert journal.prune(tmp_path, keep=0) == 0
    assert journal.writers(tmp_path) == [files]  # the newer part and the lock too
    assert "cannot be deleted" in caplog.text
    monkeypatch.setattr(journal, "KEEP", 0.0)
    caplog.clear()
    live = opened(tmp_path)  # opening prunes, and closing: neither fails
    live.handed([key(f"g{i}", 1) for i in range(10)])  # and rotating
    live.written([key("g0", 1)])
    assert live._fd is not None  # noqa: SLF001 - still journaling
    assert journal.records(journal.parts(tmp_path, "c", live.writer)[-1]) == [(b"W", [b"g0:1"])]
    live.close()  # and pruned by its own close (KEEP 0), the dead writer's files still not
    assert caplog.text.count("cannot be deleted") == 2  # tried at open and at close
    assert journal.writers(tmp_path) == [files]


def test_a_writer_that_gives_up_deletes_its_oldest_part_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = in_two_parts(tmp_path, monkeypatch)

    class Killed(BaseException):
        pass

    listdir, delete = os.listdir, Path.unlink
    deleted: list[Path] = []

    def newest_first(folder: str | Path) -> list[str]:  # a directory lists in any order: here the worst
        return sorted(listdir(folder), reverse=True)

    def unlink(path: Path, missing_ok: bool = False) -> None:
        if deleted:
            raise Killed  # kill -9 after the first file went
        deleted.append(path)
        delete(path, missing_ok=missing_ok)

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "listdir", newest_first)
    monkeypatch.setattr(Path, "glob", lambda folder, pattern: iter(sorted(Path.rglob(folder, pattern), reverse=True)))  # the same
    monkeypatch.setattr(Path, "unlink", unlink)
    monkeypatch.setattr(journal.os, "write", full)
    with pytest.raises(Killed):
        writer.handed([key("y", 1)])
    monkeypatch.undo()
    die(writer)
    assert never_written(tmp_path, "c", {"x": 1}) == set()  # its W record, in the newer part, is still read


def test_a_journal_on_a_network_filesystem_is_warned_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert journal.filesystem(tmp_path) is not None  # Linux: /proc/self/mounts names it
    assert journal.filesystem(tmp_path) not in journal.NETWORK_FILESYSTEMS
    opened(tmp_path).close()
    assert "local filesystem" not in caplog.text
    monkeypatch.setattr(journal, "filesystem", lambda folder: "nfs4")
    opened(tmp_path).close()  # a warning, not a failure
    assert "is on nfs4" in caplog.text and "local filesystem" in caplog.text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from("HW"), st.lists(st.integers(0, 7), max_size=5)),
                max_size=30))
def test_any_interleaving_of_records_gives_handed_minus_written(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, str, list[int]]]
) -> None:
    folder = tmp_path_factory.mktemp("journal")
    writers = [opened(folder) for _ in range(3)]
    handed: set[str] = set()
    written: set[str] = set()
    for who, kind, texts in steps:
        ids = [f"m{t}" for t in texts]
        if kind == "H":
            writers[who].handed([key(i, 1) for i in ids])
            handed.update(ids)
        else:
            writers[who].written([key(i, 1) for i in ids])
            written.update(ids)
    for writer in writers:
        writer.close()
    assert never_written(folder, "c", {f"m{t}": 1 for t in range(8)}) == handed - written


async def test_a_session_gives_the_tags_of_a_write_to_the_journal_before_its_bytes_go() -> None:
    async with Smsc(SmscSettings(port=0)) as smsc:
        events: list[tuple[str, list[str] | int]] = []
        session = Session(SessionSettings("127.0.0.1", smsc.port, "acme", "pw", window=10),
                          on_write=lambda tags: events.append(("journal", tags)))
        await session.open()
        try:
            assert session._writer is not None  # noqa: SLF001
            write = session._writer.write  # noqa: SLF001

            def spy(data: bytes) -> None:
                events.append(("write", len(data)))
                write(data)

            session._writer.write = spy  # type: ignore[method-assign]  # noqa: SLF001
            submit = [p.SubmitSm(source_addr="1", destination_addr="14155550100", short_message=b"hi")]
            futures = await session.write_parts(submit * 2, tag="m1:1")
            futures += await session.write_parts(submit, tag="m2:1")
            await session.request(p.EnquireLink())  # untagged: no record
            for future in futures:
                await session.answer(future)
        finally:
            await session.close()
    # each write of submit_sm is announced just before it, its tags once each; others are not
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "journal" and "journal" not in kinds[-1:]
    assert all(kinds[i + 1] == "write" for i, kind in enumerate(kinds) if kind == "journal")
    assert [tag for kind, tags in events if kind == "journal" for tag in tags] == ["m1:1", "m2:1"]
    assert kinds.count("write") > kinds.count("journal")  # the bind and enquire_link went unannounced


async def test_a_journal_folder_that_cannot_be_used_leaves_every_text_to_its_topic(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a folder")
    async with Smsc(SmscSettings(port=0, receipts=False)) as smsc:
        settings = SmppSettings.from_config("c", {"host": "127.0.0.1", "port": smsc.port, "system_id": "s",
                                                 "password": "p", "journal_dir": str(taken)})
        channel = SmppChannel("c", settings, SystemClock())
        await channel.start(Sink(tmp_path / "data"))  # the journal cannot be opened
        try:
            assert channel._journal is None  # noqa: SLF001
            assert "no journal in" in caplog.text
            assert await channel.wait_up(5)
            (result,) = await channel.send([Outbound("m", "+14155550100", "+18005550100", "hi", attempt=1)])
            assert result.error is None and result.carrier_id  # sent, with no journal
        finally:
            await channel.stop()
    # no record anywhere (not in the data dir either): no text of this channel is ever "never written"
    assert [path.name for path in tmp_path.rglob("*")] == ["a-file"]


async def test_a_second_start_keeps_one_writer_and_stop_lets_it_go(tmp_path: Path) -> None:
    settings = SmppSettings.from_config("c", {"host": "127.0.0.1", "port": 1, "system_id": "s", "password": "p"})
    channel = SmppChannel("c", settings, SystemClock())
    sink = Sink(tmp_path)
    await channel.start(sink)  # binds in the background (to nothing)
    try:
        await channel.start(sink)
        (files,) = journal.writers(tmp_path / "smpp-journal")
        with journal.finished(files) as free:
            assert not free
    finally:
        await channel.stop()
    with journal.finished(files) as free:
        assert free
    await channel.start(sink)  # started again after a stop: a new writer
    try:
        assert len(journal.writers(tmp_path / "smpp-journal")) == 2
    finally:
        await channel.stop()


def test_journal_dir_is_checked() -> None:
    with pytest.raises(ValueError, match="journal_dir"):
        SmppSettings.from_config("c", {"host": "h", "port": 1, "system_id": "s", "password": "p", "journal_dir": 3})
