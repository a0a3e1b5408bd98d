"""JournalWriter health: an idle store checked every interval, a lost store noticed, a bounded close
that spills what the store could not take to the file fallback."""

from __future__ import annotations

import asyncio
import logging
import time

from test_journal_writer import MemoryBackend, rec, until

from scalper.exec.journal import JournalStoreLost
from scalper.exec.journal_file import FileJournal
from scalper.exec.journal_writer import JournalWriter

HEALTH_S = 0.05


def writer_for(backend, **kwargs) -> JournalWriter:
    kwargs.setdefault("health_interval_s", HEALTH_S)
    return JournalWriter(backend, retry_initial_s=0.001, retry_max_s=0.01, **kwargs)


class ContinuityBackend(MemoryBackend):
    """A store that refuses an append not continuing its last seq, as RedisJournal's script does."""

    async def append(self, entries):
        last = self.stored[-1].seq if self.stored else 0
        if not self.down and entries[0].seq != last + 1:
            raise JournalStoreLost(last, entries[0].seq - 1, "memory store")
        await super().append(entries)


def test_an_idle_writer_notices_a_dead_store_within_the_health_interval():
    flips: list[bool] = []

    async def scenario():
        backend = MemoryBackend()
        writer = writer_for(backend, on_health=lambda: flips.append(writer.is_writable))
        await writer.start()
        await writer.append_durable(rec(1))
        await asyncio.sleep(3 * HEALTH_S)
        healthy = writer.is_writable
        backend.down = True  # nothing is written: only the health check can see it
        t0 = time.monotonic()
        await until(lambda: not writer.is_writable, 2.0)
        noticed_s = time.monotonic() - t0
        backend.down = False
        await until(lambda: writer.is_writable, 2.0)
        await writer.close()
        return healthy, noticed_s, writer.errors

    healthy, noticed_s, errors = asyncio.run(scenario())
    assert healthy and noticed_s < 2.5 * HEALTH_S
    assert errors >= 1
    assert flips[:2] == [False, True]


def test_a_store_restarted_empty_is_noticed_and_nothing_more_is_written_to_it(caplog):
    async def scenario():
        backend = MemoryBackend()
        writer = writer_for(backend)
        await writer.start()
        for i in range(1, 4):
            await writer.append_durable(rec(i))
        backend.stored.clear()  # Redis restarted without its data, between two writes
        await until(lambda: writer.store_lost is not None, 2.0)
        writer.put_nowait(rec(4))
        await asyncio.sleep(3 * HEALTH_S)
        return writer, list(backend.stored)

    with caplog.at_level(logging.ERROR, "scalper.exec.journal_writer"):
        writer, stored = asyncio.run(scenario())
    assert stored == []  # seq 4 never went into the emptied store
    assert not writer.is_writable and writer.backlog == 1
    assert "holds records up to seq 0, but seq 3 was durable" in writer.store_lost
    assert sum("journal store lost records" in r.message for r in caplog.records) == 1


def test_an_append_refused_as_not_continuing_the_store_marks_it_lost():
    async def scenario():
        backend = ContinuityBackend()
        writer = writer_for(backend, health_interval_s=60.0)
        await writer.start()
        await writer.append_durable(rec(1))
        backend.stored.clear()
        backend.durable_seq = 0  # the append itself must notice, not the health check
        writer.put_nowait(rec(2))
        await until(lambda: writer.store_lost is not None, 2.0)
        return writer, list(backend.stored)

    writer, stored = asyncio.run(scenario())
    assert stored == [] and not writer.is_writable


def test_close_during_an_outage_is_bounded_and_spills_the_rest_to_the_fallback_in_order(tmp_path, caplog):
    async def scenario():
        backend = MemoryBackend()
        fallback = FileJournal(tmp_path / "fallback.jsonl")
        writer = writer_for(backend, fallback=fallback)
        await writer.start()
        for i in range(1, 6):
            await writer.append_durable(rec(i))
        backend.down = True
        for i in range(6, 31):
            writer.put_nowait(rec(i))
        t0 = time.monotonic()
        spilled = await writer.close(timeout_s=0.2)
        took = time.monotonic() - t0
        return spilled, took, backend.stored, await FileJournal(tmp_path / "fallback.jsonl").read_all()

    with caplog.at_level(logging.WARNING, "scalper.exec.journal_writer"):
        spilled, took, stored, saved = asyncio.run(scenario())
    assert 0.2 <= took < 0.5
    assert spilled == 25
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
    assert [e.record for e in saved] == [rec(i) for i in range(6, 31)]
    assert any(
        "25 record(s) (seq 6..30) not written to the store; written to" in r.message and "fallback.jsonl" in r.message
        for r in caplog.records
    )


def test_close_with_a_working_store_spills_nothing(tmp_path):
    async def scenario():
        writer = writer_for(MemoryBackend(), fallback=FileJournal(tmp_path / "fallback.jsonl"))
        await writer.start()
        for i in range(1, 11):
            writer.put_nowait(rec(i))
        return await writer.close(timeout_s=1.0)

    assert asyncio.run(scenario()) == 0
    assert not (tmp_path / "fallback.jsonl").exists()
