"""FileJournal: append-only JSON lines, fdatasync before append returns, torn last line, corrupt lines."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

import scalper.exec.journal_file as journal_file
from scalper.exec.journal import (
    IntentRecord,
    JournalCorrupt,
    JournalEntry,
    PositionRecord,
    encode,
)
from scalper.exec.journal_file import FileJournal

T0 = 1_700_000_000_000_000_000  # ns since the epoch


def entries(first: int, last: int) -> list[JournalEntry]:
    return [
        JournalEntry(seq, PositionRecord(T0 + seq, seq * 0.1, 100.0 + seq, 0.5, 0.01)) for seq in range(first, last + 1)
    ]


def run(coro):
    return asyncio.run(coro)


async def _append_and_close(j: FileJournal, *batches):
    for batch in batches:
        await j.append(batch)
    await j.close()


@pytest.fixture
def syncs(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = journal_file._datasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(journal_file, "_datasync", counting)
    return calls


def test_append_then_read_all_returns_records_in_order(tmp_path):
    j = FileJournal(tmp_path / "j.jsonl")
    run(_append_and_close(j, entries(1, 3), entries(4, 5)))
    fresh = FileJournal(tmp_path / "j.jsonl")
    assert run(fresh.read_all()) == entries(1, 5)
    assert run(fresh.last_seq()) == 5
    assert fresh.torn_tail is None


def test_file_is_one_json_line_per_record(tmp_path):
    path = tmp_path / "j.jsonl"
    run(_append_and_close(FileJournal(path), entries(1, 2)))
    assert path.read_bytes() == b"".join(encode(e) + b"\n" for e in entries(1, 2))


def test_every_append_is_fdatasynced_before_it_returns(tmp_path, syncs):
    j = FileJournal(tmp_path / "j.jsonl")

    async def scenario():
        await j.append(entries(1, 1))
        after_first = len(syncs)
        await j.append(entries(2, 3))
        return after_first, len(syncs), j.durable_seq

    after_first, after_second, durable = run(scenario())
    # One sync when the file is created (plus its directory, via os.fsync), then one per append.
    assert after_second == after_first + 1
    assert durable == 3


def test_interval_mode_defers_sync_until_due_or_asked(tmp_path, syncs):
    j = FileJournal(tmp_path / "j.jsonl", fsync_interval_ms=60_000)

    async def scenario():
        await j.sync()  # opens the file; durable point is the empty file
        opened = len(syncs)
        await j.append(entries(1, 2))
        await j.append(entries(3, 3))
        deferred = (len(syncs) - opened, j.durable_seq)
        await j.sync()
        return deferred, (len(syncs) - opened, j.durable_seq)

    deferred, synced = run(scenario())
    assert deferred == (0, 0)
    assert synced == (1, 3)


def test_missing_file_reads_as_empty_journal(tmp_path):
    j = FileJournal(tmp_path / "none.jsonl")
    assert run(j.read_all()) == []
    assert run(j.last_seq()) == 0


def test_truncated_last_line_is_tolerated_reported_and_cut_before_next_append(tmp_path):
    path = tmp_path / "j.jsonl"
    run(_append_and_close(FileJournal(path), entries(1, 3)))
    whole = path.read_bytes()
    torn = encode(entries(4, 4)[0])[:25]
    path.write_bytes(whole + torn)

    j = FileJournal(path)
    assert run(j.read_all()) == entries(1, 3)
    assert j.torn_tail is not None
    assert (j.torn_tail.line_no, j.torn_tail.data) == (4, torn)

    run(_append_and_close(j, entries(4, 5)))
    assert run(FileJournal(path).read_all()) == entries(1, 5)


def test_unreadable_last_line_with_line_end_is_torn_too(tmp_path):
    # A crash can leave a block of NULs that the file system extended the file with.
    path = tmp_path / "j.jsonl"
    run(_append_and_close(FileJournal(path), entries(1, 2)))
    path.write_bytes(path.read_bytes() + b"\x00" * 40 + b"\n")
    j = FileJournal(path)
    assert run(j.last_seq()) == 2
    assert j.torn_tail.line_no == 3


def test_corrupt_middle_line_raises_naming_file_and_line(tmp_path):
    path = tmp_path / "j.jsonl"
    run(_append_and_close(FileJournal(path), entries(1, 4)))
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"seq": 3, "type": "position"\n'
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalCorrupt, match=f"{path}:3") as info:
        run(FileJournal(path).read_all())
    assert info.value.location == f"{path}:3"
    with pytest.raises(JournalCorrupt, match=":3"):
        run(FileJournal(path).append(entries(5, 5)))


def test_seq_not_increasing_in_file_raises_naming_the_line(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"".join(encode(e) + b"\n" for e in entries(1, 2) + entries(2, 2)))
    with pytest.raises(JournalCorrupt, match=f"{path}:3: seq 2 does not follow seq 2"):
        run(FileJournal(path).read_all())


def test_append_of_seq_not_above_last_is_refused(tmp_path):
    j = FileJournal(tmp_path / "j.jsonl")
    run(j.append(entries(1, 2)))
    with pytest.raises(ValueError, match="seq 2 does not follow seq 2"):
        run(j.append(entries(2, 2)))


def test_failed_write_cuts_file_back_to_last_durable_record(tmp_path, monkeypatch):
    path = tmp_path / "j.jsonl"
    j = FileJournal(path)
    run(j.append(entries(1, 2)))
    real_write = os.write

    def half_write(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_write)
    with pytest.raises(OSError, match="No space"):
        run(j.append(entries(3, 5)))
    monkeypatch.setattr(os, "write", real_write)
    assert run(j.last_seq()) == 2
    run(_append_and_close(j, entries(3, 5)))
    assert run(FileJournal(path).read_all()) == entries(1, 5)


def test_failed_sync_drops_unsynced_records_so_they_are_rewritten(tmp_path, monkeypatch):
    path = tmp_path / "j.jsonl"
    j = FileJournal(path)
    run(j.append(entries(1, 1)))

    def failing(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(journal_file, "_datasync", failing)
    with pytest.raises(OSError, match="Input/output"):
        run(j.append(entries(2, 3)))
    assert (run(j.last_seq()), j.durable_seq) == (1, 1)
    assert path.read_bytes() == encode(entries(1, 1)[0]) + b"\n"


def test_record_of_returned_append_survives_process_kill(tmp_path):
    path = tmp_path / "j.jsonl"
    child = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from scalper.exec.journal import IntentRecord
        from scalper.exec.journal_file import FileJournal
        from scalper.exec.journal_writer import JournalWriter

        async def main():
            writer = JournalWriter(FileJournal({str(path)!r}))
            await writer.start()
            for i in range(1, 50):
                writer.put_nowait(IntentRecord(i, i, 1, 1.0, 100.0, "entry", False))
            await writer.append_durable(IntentRecord(50, 50, 1, 1.0, 100.0, "entry", False))
            print("durable", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "durable", proc.stderr
    got = run(FileJournal(path).read_all())
    assert [e.seq for e in got][:50] == list(range(1, 51))
    assert got[49].record == IntentRecord(50, 50, 1, 1.0, 100.0, "entry", False)
