"""RedisJournal and JournalWriter against a real redis-server: order, snapshot, outages and crashes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest
import redis

from scalper.exec.journal import (
    FillRecord,
    IntentRecord,
    JournalCorrupt,
    JournalEntry,
    PositionRecord,
    StatusRecord,
)
from scalper.exec.journal_redis import RedisJournal
from scalper.exec.journal_writer import JournalWriter
from scalper.exec.orders import OrderStatus
from scalper.exec.recovery import recover

T0 = 1_700_000_000_000_000_000  # ns since the epoch
KEY = "scalper:journal:test"


def intent(i: int) -> IntentRecord:
    return IntentRecord(T0 + i, i, 1 if i % 2 else -1, 0.01 * i, 100.0 + 0.01 * i, "entry", False)


def position(i: int) -> PositionRecord:
    return PositionRecord(T0 + i, 0.1 * i, 100.0 + i, -0.5 * i, 0.01 * i)


def entries(first: int, last: int, make=intent) -> list[JournalEntry]:
    return [JournalEntry(seq, make(seq)) for seq in range(first, last + 1)]


def stream_ids(url: str) -> list[bytes]:
    client = redis.Redis.from_url(url)
    try:
        return [entry_id for entry_id, _ in client.xrange(KEY)]
    finally:
        client.close()


async def until(predicate, timeout_s: float = 10.0) -> None:
    async def poll():
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout_s)


def test_append_then_read_all_returns_records_in_order_with_seq_ids(redis_server):
    async def scenario():
        journal = RedisJournal(redis_server, KEY, page_size=7)
        await journal.append(entries(1, 10))
        await journal.append(entries(11, 30, position))
        got = await journal.read_all()
        last = await journal.last_seq()
        await journal.close()
        return got, last

    got, last = asyncio.run(scenario())
    assert got == entries(1, 10) + entries(11, 30, position)
    assert last == 30
    assert stream_ids(redis_server) == [f"{seq}-0".encode() for seq in range(1, 31)]


def test_snapshot_hash_equals_last_position_record(redis_server):
    async def scenario():
        journal = RedisJournal(redis_server, KEY)
        before = await journal.snapshot()
        await journal.append([*entries(1, 2), *entries(3, 5, position), *entries(6, 7)])
        after_batch = await journal.snapshot()
        await journal.append(entries(8, 9))  # no position record: snapshot unchanged
        unchanged = await journal.snapshot()
        await journal.close()
        return before, after_batch, unchanged

    before, after_batch, unchanged = asyncio.run(scenario())
    assert before is None
    assert after_batch == JournalEntry(5, position(5))
    assert unchanged == after_batch
    raw = redis.Redis.from_url(redis_server).hgetall(f"{KEY}:snapshot")
    assert raw[b"type"] == b'"position"' and raw[b"seq"] == b"5"


def test_redis_refuses_a_seq_not_above_the_last(redis_server):
    async def scenario():
        journal = RedisJournal(redis_server, KEY)
        await journal.append(entries(1, 3))
        with pytest.raises(redis.exceptions.ResponseError):
            await journal.append(entries(3, 3))
        got = await journal.read_all()
        await journal.close()
        return got

    assert asyncio.run(scenario()) == entries(1, 3)


def test_undecodable_stream_entry_is_corrupt_naming_stream_and_id(redis_server):
    client = redis.Redis.from_url(redis_server)
    client.xadd(KEY, {"r": b'{"seq": 1, "type": "nope"}'}, id="1-0")

    async def scenario():
        journal = RedisJournal(redis_server, KEY)
        try:
            await journal.read_all()
        finally:
            await journal.close()

    with pytest.raises(JournalCorrupt, match=f"redis stream {KEY} entry 1-0: unknown record type"):
        asyncio.run(scenario())


def test_writer_keeps_order_under_concurrent_puts(redis_server):
    async def scenario():
        journal = RedisJournal(redis_server, KEY)
        writer = JournalWriter(journal, max_batch=16)
        await writer.start()
        given: dict[int, IntentRecord] = {}

        async def producer(k: int):
            for i in range(100):
                record = intent(1 + k * 1000 + i)
                given[writer.put_nowait(record)] = record
                await asyncio.sleep(0)

        await asyncio.gather(*(producer(k) for k in range(6)))
        await writer.close()
        got = await journal.read_all()
        await journal.close()
        return got, given

    got, given = asyncio.run(scenario())
    assert [e.seq for e in got] == list(range(1, 601))
    assert {e.seq: e.record for e in got} == given


def test_outage_buffers_then_writes_everything_in_order_once(redis_process):
    total, kill_after = 400, 100

    async def scenario():
        journal = RedisJournal(redis_process.url, KEY, socket_timeout_s=0.2)
        writer = JournalWriter(journal, max_backlog=50, retry_initial_s=0.01, retry_max_s=0.1)
        await writer.start()

        async def producer():
            for i in range(1, total + 1):
                writer.put_nowait(intent(i))
                await asyncio.sleep(0.001)

        producing = asyncio.create_task(producer())
        await until(lambda: writer.last_seq >= kill_after)
        redis_process.kill()
        await producing
        await until(lambda: writer.errors >= 2)
        during = (writer.is_writable, writer.backlog, writer.errors, writer.retries)
        await asyncio.to_thread(redis_process.start)
        await asyncio.wait_for(writer.flush(), 20)
        writable_after = writer.is_writable
        await writer.close()
        got = await journal.read_all()
        await journal.close()
        return during, writable_after, got

    (writable, backlog, errors, retries), writable_after, got = asyncio.run(scenario())
    assert not writable
    assert 0 < backlog <= total - kill_after + 10  # held; a few may have landed before the kill
    assert errors >= 2 and retries >= 1
    assert writable_after
    assert [e.seq for e in got] == list(range(1, total + 1))
    assert [e.record for e in got] == [intent(i) for i in range(1, total + 1)]
    assert stream_ids(redis_process.url) == [f"{seq}-0".encode() for seq in range(1, total + 1)]


def test_timeouts_while_redis_is_paused_never_duplicate(redis_server):
    # A write stuck behind CLIENT PAUSE times out on our side but may still run on the server: the
    # ambiguous case. The retry must neither lose nor repeat a record.
    async def scenario():
        journal = RedisJournal(redis_server, KEY, socket_timeout_s=0.05)
        writer = JournalWriter(journal, retry_initial_s=0.01, retry_max_s=0.05)
        await writer.start()
        admin = redis.asyncio.Redis.from_url(redis_server)
        await admin.execute_command("CLIENT", "PAUSE", 400, "WRITE")
        for i in range(1, 201):
            writer.put_nowait(intent(i))
            await asyncio.sleep(0.002)
        await asyncio.wait_for(writer.flush(), 20)
        await writer.close()
        got = await journal.read_all()
        await journal.close()
        await admin.aclose()
        return writer.errors, got

    errors, got = asyncio.run(scenario())
    assert errors >= 1
    assert [e.seq for e in got] == list(range(1, 201))
    assert [e.record for e in got] == [intent(i) for i in range(1, 201)]


def test_record_of_returned_append_durable_survives_writer_process_kill(redis_server):
    child = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from scalper.exec.journal import IntentRecord
        from scalper.exec.journal_writer import JournalWriter
        from scalper.exec.journal_redis import RedisJournal

        async def main():
            writer = JournalWriter(RedisJournal({redis_server!r}, {KEY!r}))
            await writer.start()
            for i in range(1, 50):
                writer.put_nowait(IntentRecord(i, i, 1, 1.0, 100.0, "entry", False))
            await writer.append_durable(IntentRecord(50, 50, 1, 1.0, 100.0, "entry", False))
            print("durable", flush=True)
            for i in range(51, 500):  # queued, maybe never written: the kill comes first
                writer.put_nowait(IntentRecord(i, i, 1, 1.0, 100.0, "entry", False))
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "durable", proc.stderr

    async def read():
        journal = RedisJournal(redis_server, KEY)
        try:
            return await journal.read_all()
        finally:
            await journal.close()

    got = asyncio.run(read())
    assert [e.seq for e in got][:50] == list(range(1, 51))
    assert got[49].record == IntentRecord(50, 50, 1, 1.0, 100.0, "entry", False)


def test_cancelled_writer_task_loses_no_durable_record(redis_server):
    async def scenario():
        journal = RedisJournal(redis_server, KEY)
        writer = JournalWriter(journal)
        await writer.start()
        seq = await writer.append_durable(intent(1))
        writer._task.cancel()  # a crash of the writer, without close()
        await asyncio.sleep(0.01)
        del writer
        await journal.close()
        fresh = RedisJournal(redis_server, KEY)
        got = await fresh.read_all()
        await fresh.close()
        return seq, got

    seq, got = asyncio.run(scenario())
    assert got[:1] == [JournalEntry(seq, intent(1))]


def test_restart_recovers_position_and_in_flight_order_from_redis(redis_server):
    records = [
        IntentRecord(T0, 1, 1, 1.0, 101.0, "entry", False),
        StatusRecord(T0 + 1, 1, OrderStatus.ACCEPTED, 0.0, 0.0),
        FillRecord(T0 + 2, 1, T0 + 2, 1, 1.0, 100.5, 0.05, False, "entry"),
        PositionRecord(T0 + 3, 1.0, 100.5, 0.0, 0.05),
        StatusRecord(T0 + 4, 1, OrderStatus.FILLED, 1.0, 100.5),
        IntentRecord(T0 + 5, 2, -1, 1.0, 101.0, "take_profit", True),
    ]

    async def scenario():
        journal = RedisJournal(redis_server, KEY)
        writer = JournalWriter(journal)
        await writer.start()
        for record in records:
            await writer.append_durable(record)
        await writer.close()
        await journal.close()
        restarted = RedisJournal(redis_server, KEY)
        state = recover(await restarted.read_all())
        resumed = JournalWriter(restarted)
        last = await resumed.start()
        next_seq = await resumed.append_durable(PositionRecord(T0 + 9, 1.0, 100.5, 0.0, 0.05))
        await resumed.close()
        await restarted.close()
        return state, last, next_seq

    state, last, next_seq = asyncio.run(scenario())
    assert (state.position, state.avg_entry_price, state.fees_paid) == (1.0, 100.5, 0.05)
    assert [o.order_id for o in state.open_orders] == [2]
    assert (state.next_order_id, state.last_seq) == (3, 6)
    assert (last, next_seq) == (6, 7)


def test_an_append_to_a_stream_emptied_under_it_is_refused_as_store_lost(redis_process):
    # Redis restarted without its data between two writes: the client reconnects silently, so only
    # the append's own check can see that the stream no longer ends where this journal left it.
    from scalper.exec.journal import JournalStoreLost

    async def scenario():
        journal = RedisJournal(redis_process.url, KEY)
        await journal.append(entries(1, 3))
        redis_process.kill()
        for name in ("appendonlydir", "appendonly.aof"):
            target = redis_process.data_dir / name
            if target.is_dir():
                import shutil

                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        await asyncio.to_thread(redis_process.start)
        with pytest.raises(JournalStoreLost, match="holds records up to seq 0, but seq 3 was durable"):
            await journal.append(entries(4, 5))
        got = await journal.read_all()
        await journal.close()
        return got

    assert asyncio.run(scenario()) == []


def test_snapshot_is_written_by_the_checked_append_too(redis_server):
    async def scenario():
        journal = RedisJournal(redis_server, KEY)
        await journal.append([*entries(1, 2), *entries(3, 4, position)])
        snap = await journal.snapshot()
        await journal.close()
        return snap

    assert asyncio.run(scenario()) == JournalEntry(4, position(4))


def test_redis_credentials_come_from_the_environment_only(monkeypatch):
    from scalper.exec.journal_redis import redis_auth_from_env

    monkeypatch.delenv("SCALPER_REDIS_USERNAME", raising=False)
    monkeypatch.delenv("SCALPER_REDIS_PASSWORD", raising=False)
    assert redis_auth_from_env() == {}
    monkeypatch.setenv("SCALPER_REDIS_USERNAME", "scalper")
    monkeypatch.setenv("SCALPER_REDIS_PASSWORD", "s3cret")
    assert redis_auth_from_env() == {"username": "scalper", "password": "s3cret"}


def test_the_journal_authenticates_with_the_password_from_the_environment(redis_server, monkeypatch):
    admin = redis.Redis.from_url(redis_server)
    admin.execute_command("ACL", "SETUSER", "journal", "on", ">pw-from-env", "~scalper:*", "+@all")
    admin.close()

    async def append_as(password: str | None):
        if password is None:
            monkeypatch.delenv("SCALPER_REDIS_PASSWORD", raising=False)
        else:
            monkeypatch.setenv("SCALPER_REDIS_PASSWORD", password)
        monkeypatch.setenv("SCALPER_REDIS_USERNAME", "journal")
        journal = RedisJournal(redis_server, KEY)
        try:
            await journal.append(entries(1, 1))
            return await journal.last_seq()
        finally:
            await journal.close()

    with pytest.raises(redis.exceptions.AuthenticationError):
        asyncio.run(append_as("wrong"))
    assert asyncio.run(append_as("pw-from-env")) == 1
