"""The local mark of the highest journal seq seen durable in the store (exec/journal_mark.py)."""

from __future__ import annotations

import asyncio

import pytest

from scalper.exec.journal import JournalCorrupt, PositionRecord
from scalper.exec.journal_file import FileJournal
from scalper.exec.journal_mark import WIDTH, DurableMark
from scalper.exec.journal_writer import JournalWriter

STORE = "redis://127.0.0.1:6379/0#scalper:journal"


def test_a_mark_reads_back_the_highest_seq_recorded_for_its_store(tmp_path):
    mark = DurableMark(tmp_path / "state" / "m", STORE)
    assert mark.read() == 0  # no file yet
    for seq in (3, 7, 5):  # never goes back
        mark.record(seq)
    mark.close()
    assert DurableMark(tmp_path / "state" / "m", STORE).read() == 7
    assert (tmp_path / "state" / "m").stat().st_size == WIDTH  # fixed width: a shorter seq leaves no tail
    assert DurableMark(tmp_path / "state" / "m", "redis://other:6379/0#scalper:journal").read() == 0


def test_a_store_that_ends_before_the_mark_is_refused_naming_both_seqs(tmp_path):
    mark = DurableMark(tmp_path / "m", STORE)
    mark.record(37)
    mark.close()
    fresh = DurableMark(tmp_path / "m", STORE)
    fresh.check(37)
    fresh.check(40)
    with pytest.raises(JournalCorrupt, match=r"at mark .*m: the stream ends at seq 0 but seq 37 was durable in it"):
        fresh.check(0)


def test_a_file_that_is_not_a_mark_is_refused_naming_it(tmp_path):
    (tmp_path / "m").write_text("hello\n")
    with pytest.raises(JournalCorrupt, match=r"m: not a journal mark \('hello'"):
        DurableMark(tmp_path / "m", STORE).read()
    with pytest.raises(ValueError, match="no spaces"):
        DurableMark(tmp_path / "m", "redis://h #k")


def test_the_writer_keeps_the_mark_at_the_backends_durable_seq(tmp_path):
    async def scenario():
        backend = FileJournal(tmp_path / "j.jsonl")
        mark = DurableMark(tmp_path / "m", STORE)
        writer = JournalWriter(backend, retry_initial_s=0.001, retry_max_s=0.01, mark=mark)
        await writer.start()
        for i in range(1, 26):
            writer.put_nowait(PositionRecord(1_700_000_000_000_000_000 + i, float(i), 100.0, 0.0, 0.0))
        await writer.flush()
        durable = backend.durable_seq
        await writer.close()
        await backend.close()
        mark.close()
        return durable

    durable = asyncio.run(scenario())
    assert durable == 25
    assert DurableMark(tmp_path / "m", STORE).read() == 25
