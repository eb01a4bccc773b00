"""The SMPP write-ahead journal: records read back across writers and parts, a last line cut
short, rotation, pruning, a writer killed -9, a writer that cannot append; and the session
handing a write's tags to the journal before its bytes go."""

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

from empathic.channels.base import Inbound, Receipt
from empathic.channels.smpp import journal
from empathic.channels.smpp import pdu as p
from empathic.channels.smpp.channel import SmppChannel, SmppSettings
from empathic.channels.smpp.journal import Journal, key, never_written
from empathic.channels.smpp.session import Session, SessionSettings
from empathic.core.clock import SystemClock
from empathic.smsc.server import Smsc, SmscSettings


class Sink:
    async def on_receipts(self, batch: list[Receipt]) -> None: ...

    async def on_inbound(self, inbound: Inbound) -> str:
        return "msg_x"


def opened(folder: Path, channel: str = "c") -> Journal:
    writer = Journal(folder, channel)
    writer.open()
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


async def test_a_journal_folder_that_cannot_be_used_leaves_every_text_to_its_topic(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a folder")
    settings = SmppSettings.from_config("c", {"host": "127.0.0.1", "port": 1, "system_id": "s", "password": "p",
                                             "journal_dir": str(taken)})
    channel = SmppChannel("c", settings, SystemClock())
    await channel.start(Sink())  # binds in the background (to nothing); the journal cannot be opened
    try:
        assert channel._journal is None  # noqa: SLF001
        assert await channel.never_written({"m": 1}) == set()
    finally:
        await channel.stop()


def test_journal_dir_is_checked() -> None:
    with pytest.raises(ValueError, match="journal_dir"):
        SmppSettings.from_config("c", {"host": "h", "port": 1, "system_id": "s", "password": "p", "journal_dir": 3})
