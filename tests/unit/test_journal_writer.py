"""JournalWriter: ordered background writes, durability waits, outages, backlog and overflow."""

from __future__ import annotations

import asyncio
import random

import pytest

from scalper.exec.journal import (
    JournalBackend,
    JournalEntry,
    JournalOverflow,
    PositionRecord,
)
from scalper.exec.journal_file import FileJournal
from scalper.exec.journal_writer import JournalWriter

T0 = 1_700_000_000_000_000_000  # ns since the epoch


def rec(i: int) -> PositionRecord:
    return PositionRecord(T0 + i, float(i), 100.0, 0.0, 0.0)


class MemoryBackend(JournalBackend):
    """An in-memory backend that can be made to fail, to fail after storing, or to stall."""

    def __init__(self, stored: list[JournalEntry] | None = None) -> None:
        self.stored = list(stored or [])
        self.durable_seq = self.stored[-1].seq if self.stored else 0
        self.down = False
        self.store_then_fail = 0  # appends that land but report an error (a lost reply)
        self.gate = asyncio.Event()
        self.gate.set()
        self.appends = 0

    async def append(self, entries):
        await self.gate.wait()
        if self.down:
            raise ConnectionError("backend down")
        last = self.stored[-1].seq if self.stored else 0
        assert entries[0].seq > last, "writer re-sent a stored record"
        self.appends += 1
        self.stored.extend(entries)
        if self.store_then_fail:
            self.store_then_fail -= 1
            raise TimeoutError("reply lost")
        self.durable_seq = entries[-1].seq

    async def sync(self):
        if self.down:
            raise ConnectionError("backend down")
        self.durable_seq = self.stored[-1].seq if self.stored else 0

    async def last_seq(self):
        if self.down:
            raise ConnectionError("backend down")
        return self.stored[-1].seq if self.stored else 0

    async def read_all(self):
        return list(self.stored)

    async def close(self):
        pass


def run(coro):
    return asyncio.run(coro)


def fast_writer(backend, **kwargs) -> JournalWriter:
    return JournalWriter(backend, retry_initial_s=0.001, retry_max_s=0.01, **kwargs)


async def until(predicate, timeout_s: float = 5.0) -> None:
    async def poll():
        while not predicate():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), timeout_s)


def test_concurrent_puts_are_written_in_seq_order_without_gaps():
    async def scenario():
        backend = MemoryBackend()
        writer = fast_writer(backend, max_batch=7)
        await writer.start()
        given: dict[int, PositionRecord] = {}

        async def producer(k: int):
            for i in range(50):
                record = rec(1000 * k + i)
                given[writer.put_nowait(record)] = record
                if random.random() < 0.3:
                    await asyncio.sleep(0)

        await asyncio.gather(*(producer(k) for k in range(8)))
        await writer.close()
        return backend.stored, given, writer

    stored, given, writer = run(scenario())
    assert [e.seq for e in stored] == list(range(1, 401))
    assert {e.seq: e.record for e in stored} == given
    assert writer.written == 400 and writer.backlog == 0


def test_append_durable_returns_only_once_the_record_is_durable():
    async def scenario():
        backend = MemoryBackend()
        writer = fast_writer(backend)
        await writer.start()
        backend.gate.clear()
        task = asyncio.create_task(writer.append_durable(rec(1)))
        await asyncio.sleep(0.01)
        blocked = not task.done()
        backend.gate.set()
        seq = await task
        return blocked, seq, backend.durable_seq

    blocked, seq, durable = run(scenario())
    assert blocked
    assert seq == 1 and durable >= 1


def test_start_continues_after_the_backends_last_seq():
    async def scenario():
        backend = MemoryBackend([JournalEntry(9, rec(9))])
        writer = fast_writer(backend)
        last = await writer.start()
        seq = await writer.append_durable(rec(10))
        await writer.close()
        return last, seq

    assert run(scenario()) == (9, 10)


def test_outage_buffers_counts_and_recovers_in_order_without_loss_or_duplicates():
    async def scenario():
        backend = MemoryBackend()
        writer = fast_writer(backend)
        await writer.start()
        await writer.append_durable(rec(1))
        backend.down = True
        for i in range(2, 102):
            writer.put_nowait(rec(i))
        await until(lambda: writer.errors >= 3)
        during = (writer.is_writable, writer.backlog, writer.retries > 0)
        backend.down = False
        await asyncio.wait_for(writer.flush(), 5)
        return during, writer.is_writable, writer, backend.stored

    (writable, backlog, retried), writable_after, writer, stored = run(scenario())
    assert not writable
    assert backlog == 100
    assert retried
    assert [e.seq for e in stored] == list(range(1, 102))
    assert [e.record for e in stored] == [rec(i) for i in range(1, 102)]
    assert writable_after
    assert isinstance(writer.last_error, ConnectionError)


def test_write_that_landed_but_reported_failure_is_not_written_twice():
    async def scenario():
        backend = MemoryBackend()
        backend.store_then_fail = 2
        writer = fast_writer(backend)
        await writer.start()
        for i in range(1, 21):
            writer.put_nowait(rec(i))
            await asyncio.sleep(0)
        await asyncio.wait_for(writer.flush(), 5)
        return writer, backend.stored

    writer, stored = run(scenario())
    assert writer.errors == 2
    assert [e.seq for e in stored] == list(range(1, 21))


def test_backend_that_lost_durable_records_keeps_writer_unwritable():
    async def scenario():
        backend = MemoryBackend()
        writer = fast_writer(backend)
        await writer.start()
        await writer.append_durable(rec(1))
        backend.down = True
        writer.put_nowait(rec(2))
        await until(lambda: writer.errors >= 1)
        backend.stored.clear()  # came back empty: a Redis restarted without persistence
        backend.down = False
        await until(lambda: writer.store_lost is not None)
        await asyncio.sleep(0.05)  # no retry writes into the emptied store
        return writer.is_writable, str(writer.last_error), backend.stored, backend.appends

    writable, error, stored, appends = run(scenario())
    assert not writable
    assert "holds records up to seq 0, but seq 1 was durable" in error
    assert stored == [] and appends == 1


def test_backlog_above_threshold_makes_writer_unwritable_until_drained():
    async def scenario():
        backend = MemoryBackend()
        writer = fast_writer(backend, max_backlog=10)
        await writer.start()
        backend.gate.clear()
        for i in range(1, 11):
            writer.put_nowait(rec(i))
        at_threshold = writer.is_writable
        writer.put_nowait(rec(11))
        above = writer.is_writable
        backend.gate.set()
        await writer.flush()
        return at_threshold, above, writer.is_writable

    assert run(scenario()) == (True, False, True)


def test_full_buffer_refuses_record_loudly_and_counts_it():
    async def scenario():
        backend = MemoryBackend()
        writer = fast_writer(backend, max_backlog=3, max_buffered=5)
        await writer.start()
        backend.gate.clear()
        for i in range(1, 6):
            writer.put_nowait(rec(i))
        with pytest.raises(JournalOverflow):
            writer.put_nowait(rec(6))
        with pytest.raises(JournalOverflow):
            writer.put_nowait(rec(7))
        full = (writer.is_writable, writer.overflow, writer.last_seq)
        backend.gate.set()
        await writer.flush()
        return full, backend.stored

    (writable, overflow, last_seq), stored = run(scenario())
    assert (writable, overflow, last_seq) == (False, 2, 5)
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]  # refused records take no seq


def test_on_write_gets_each_write_duration_in_seconds():
    samples: list[float] = []

    async def scenario():
        writer = fast_writer(MemoryBackend(), on_write=samples.append)
        await writer.start()
        for i in range(1, 4):
            await writer.append_durable(rec(i))
        await writer.close()

    run(scenario())
    assert len(samples) == 3
    assert all(0.0 <= s < 1.0 for s in samples)


def test_put_before_start_or_after_close_raises():
    async def scenario():
        writer = fast_writer(MemoryBackend())
        with pytest.raises(RuntimeError, match="not accepting"):
            writer.put_nowait(rec(1))
        await writer.start()
        await writer.close()
        with pytest.raises(RuntimeError, match="not accepting"):
            writer.put_nowait(rec(1))
        assert not writer.is_writable

    run(scenario())


def test_killed_writer_fails_waiters_instead_of_hanging():
    async def scenario():
        backend = MemoryBackend()
        writer = fast_writer(backend)
        await writer.start()
        backend.gate.clear()
        waiting = asyncio.create_task(writer.append_durable(rec(1)))
        await asyncio.sleep(0.01)
        writer._task.cancel()
        with pytest.raises(RuntimeError, match="stopped before the record was durable"):
            await asyncio.wait_for(waiting, 1)
        with pytest.raises(RuntimeError, match="not accepting"):
            writer.put_nowait(rec(2))
        assert not writer.is_writable

    run(scenario())


def test_interval_synced_file_is_durable_after_flush(tmp_path):
    async def scenario():
        backend = FileJournal(tmp_path / "j.jsonl", fsync_interval_ms=60_000)
        writer = fast_writer(backend)
        await writer.start()
        for i in range(1, 31):
            writer.put_nowait(rec(i))
        await writer.flush()
        durable = backend.durable_seq
        await writer.close()
        await backend.close()
        return durable, await FileJournal(tmp_path / "j.jsonl").read_all()

    durable, stored = run(scenario())
    assert durable == 30
    assert [e.record for e in stored] == [rec(i) for i in range(1, 31)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_batch": 0},
        {"max_backlog": 0},
        {"max_backlog": 10, "max_buffered": 5},
        {"retry_initial_s": 0.0},
        {"retry_initial_s": 2.0, "retry_max_s": 1.0},
    ],
)
def test_bad_writer_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        JournalWriter(MemoryBackend(), **kwargs)
