"""Journal fault injection against a real redis-server: Redis killed while the daemon journals, Redis
restarted empty, SIGTERM during an outage. Each asserts that no journal record is lost (every one is
in Redis or in the file fallback, in seq order), the trading state after each step, and how long the
daemon took to notice."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import time

import pytest
from test_daemon import _daemon, _daemon_config, _free_port, _read, _replay_server, _scrape

from scalper.engine.config import load_config
from scalper.engine.daemon import Daemon, JournalStartError
from scalper.engine.metrics import snapshot
from scalper.exec.journal import OperatorAction, OperatorRecord, PositionRecord
from scalper.exec.journal_file import FileJournal
from scalper.exec.journal_redis import RedisJournal
from scalper.risk.control import Source
from scalper.risk.intent import TradingState

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

A, R, H = TradingState.ACTIVE, TradingState.REDUCING_ONLY, TradingState.HALTED


class Journaling:
    """An in-process daemon on a Redis journal, its housekeeping running, and a producer queueing a
    record every 2 ms as trading does; ``produced`` keeps every (seq, record) in order."""

    def __init__(self, tmp_path, models, redis_url: str) -> None:
        self.daemon = Daemon(load_config(_daemon_config(tmp_path, models, 0, "redis", redis_url)))
        self.produced: list[tuple[int, object]] = []
        self.producing = True
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        d = self.daemon
        self.daemon.build_core(await d._start_journal())
        self.tasks = [asyncio.create_task(d._housekeeping()), asyncio.create_task(self._produce())]

    async def _produce(self) -> None:
        d = self.daemon
        while not d.stop_event.is_set():
            if self.producing:
                record = PositionRecord.from_account(time.time_ns(), d.risk.account)
                self.produced.append((d.journal.put_nowait(record), record))
            await asyncio.sleep(0.002)

    def gauges(self) -> tuple[TradingState, float, float]:
        m = snapshot(self.daemon.metrics)
        return self.daemon.risk.state, m["scalper_journal_writable"], m["scalper_journal_store_lost"]

    async def until(self, want: tuple, timeout_s: float) -> float:
        """Return the seconds until :meth:`gauges` equals ``want``; fail after ``timeout_s``."""
        t0 = time.monotonic()
        while self.gauges() != want:
            assert time.monotonic() - t0 < timeout_s, f"{self.gauges()} != {want} after {timeout_s} s"
            await asyncio.sleep(0.01)
        return time.monotonic() - t0

    async def stop(self) -> int:
        self.daemon.stop_event.set()
        await asyncio.gather(*self.tasks)
        spilled = await self.daemon.journal.close(timeout_s=1.0)
        await self.daemon.journal.backend.close()
        return spilled


def _stream(url: str):
    return asyncio.run(_read(RedisJournal(url, "test:journal")))


def _start_again(tmp_path, models, redis_url: str) -> None:
    """Start a new daemon's journal on the same config (the next process after a crash)."""

    async def start() -> None:
        daemon = Daemon(load_config(_daemon_config(tmp_path, models, 0, "redis", redis_url)))
        try:
            await daemon._start_journal()
        finally:
            await daemon.journal.backend.close()

    asyncio.run(start())


def _wipe(redis_process) -> None:
    # Kill and restart without the append-only file: Redis comes back empty.
    redis_process.kill()
    shutil.rmtree(redis_process.data_dir / "appendonlydir", ignore_errors=True)
    redis_process.start()


def test_redis_killed_while_journaling_is_noticed_fast_and_loses_nothing(eth_models, tmp_path, redis_process):
    run = Journaling(tmp_path, eth_models, redis_process.url)
    times = {}

    async def scenario():
        await run.start()
        await asyncio.sleep(0.3)
        assert run.gauges() == (A, 1.0, 0.0)
        redis_process.kill()  # while records are being written
        times["busy"] = await run.until((R, 0.0, 0.0), 3.0)
        await asyncio.sleep(0.5)
        backlog = run.daemon.journal.backlog
        await asyncio.to_thread(redis_process.start)
        times["back"] = await run.until((A, 1.0, 0.0), 3.0)  # drained: the journal's reducing-only cleared
        run.producing = False
        await run.daemon.journal.flush()
        await asyncio.sleep(0.2)
        redis_process.kill()  # idle: nothing is written, only the health check can see it
        times["idle"] = await run.until((R, 0.0, 0.0), 3.0)
        await asyncio.to_thread(redis_process.start)
        await run.until((A, 1.0, 0.0), 3.0)
        run.daemon.on_operator_signal(H)  # an operator halt is not cleared by the journal's recovery
        await asyncio.sleep(1.2)
        assert run.gauges() == (H, 1.0, 0.0)
        assert await run.stop() == 0
        return backlog

    backlog = asyncio.run(scenario())
    stream = _stream(redis_process.url)
    produced = [*run.produced]
    assert backlog > 50  # records kept coming while Redis was down
    assert [(e.seq, e.record) for e in stream][: len(produced)] == produced
    assert [e.seq for e in stream] == list(range(1, len(stream) + 1))
    assert isinstance(stream[-1].record, OperatorRecord) and stream[-1].record.state == H
    assert times["busy"] < 1.2 and times["idle"] < 2.2 and times["back"] < 2.2, times
    print(
        f"journal faults: detection busy {times['busy']:.3f} s, idle {times['idle']:.3f} s; "
        f"ACTIVE again {times['back']:.3f} s after restart, {backlog} records buffered"
    )


def test_redis_restarted_empty_is_noticed_stays_reducing_only_and_start_refuses(eth_models, tmp_path, redis_process):
    run = Journaling(tmp_path, eth_models, redis_process.url)
    times = {}

    async def scenario():
        await run.start()
        await asyncio.sleep(0.3)
        run.producing = False
        await run.daemon.journal.flush()
        durable = run.daemon.journal.durable_seq
        await asyncio.to_thread(_wipe, redis_process)
        run.producing = True
        times["lost"] = await run.until((R, 0.0, 1.0), 3.0)
        await asyncio.sleep(1.5)
        assert run.gauges() == (R, 0.0, 1.0)  # never clears by itself
        assert run.daemon.risk.control.slot(Source.JOURNAL) == R
        return durable, await run.stop()

    durable, spilled = asyncio.run(scenario())
    assert _stream(redis_process.url) == []  # nothing written into the emptied stream
    saved = asyncio.run(_read(FileJournal(tmp_path / "fallback.jsonl")))
    by_seq = dict(run.produced)
    assert spilled == len(saved) > 1
    assert [e.seq for e in saved] == list(range(durable + 1, saved[-1].seq + 1))  # everything after the loss, in order
    assert all(by_seq[e.seq] == e.record for e in saved if e.seq in by_seq)
    marker = [e for e in saved if e.seq not in by_seq]  # the account the daemon queued when it saw the loss
    assert len(marker) == 1 and isinstance(marker[0].record, PositionRecord)
    assert set(by_seq) - {e.seq for e in saved} == set(range(1, durable + 1))  # only what the store itself lost
    assert times["lost"] < 2.2, times

    with pytest.raises(JournalStartError, match=rf"seqs 1\.\.{durable} are missing .* restore it"):
        _start_again(tmp_path, eth_models, redis_process.url)
    print(f"journal faults: empty restart noticed in {times['lost']:.3f} s; {spilled} records in the fallback")


def test_sigterm_during_an_outage_is_bounded_and_the_next_start_replays_the_fallback(
    data_dir, eth_models, tmp_path, redis_process
):
    srv, port = _replay_server(data_dir, tmp_path, speed=5)
    metrics_port = _free_port()
    cfg = _daemon_config(tmp_path, eth_models, metrics_port, "redis", redis_process.url)
    cfg.write_text(cfg.read_text().replace("[risk]", "shutdown_timeout_s = 2.0\n\n[risk]"))
    try:
        first = _daemon(tmp_path, cfg, port, "first")
        first.p.send_signal(signal.SIGUSR2)  # journaled: durable in Redis
        first.wait_for("operator signal: REDUCING_ONLY")
        t0 = time.monotonic()
        while not any(isinstance(e.record, OperatorRecord) for e in _stream(redis_process.url)):
            assert time.monotonic() - t0 < 5.0, "the operator record never became durable"
            time.sleep(0.05)
        durable = [e.seq for e in _stream(redis_process.url)]
        assert _scrape(metrics_port)["scalper_journal_writable"] == 1.0
        redis_process.kill()
        t0 = time.monotonic()
        while _scrape(metrics_port)["scalper_journal_writable"] != 0.0:
            assert time.monotonic() - t0 < 5.0
            time.sleep(0.05)
        detected_s = time.monotonic() - t0
        first.p.send_signal(signal.SIGUSR1)  # journaled: buffered, Redis is down
        first.wait_for("operator signal: HALTED")
        t0 = time.monotonic()
        assert first.stop(signal.SIGTERM, timeout_s=15) == 0, first.text()
        stop_s = time.monotonic() - t0
        spill = re.search(
            r"(\d+) record\(s\) \(seq (\d+)\.\.(\d+)\) not written to the store; written to (\S+)", first.text()
        )
        assert spill, first.text()
        saved = asyncio.run(_read(FileJournal(tmp_path / "fallback.jsonl")))
        assert [e.seq for e in saved] == list(range(int(spill.group(2)), int(spill.group(3)) + 1))
        assert durable and saved[0].seq > durable[-1]
        assert any(isinstance(e.record, OperatorRecord) and e.record.state == H for e in saved)

        redis_process.start()
        second = _daemon(tmp_path, cfg, port, "second")
        second.wait_for(rf"replayed {len(saved)} record\(s\) from the fallback")
        second.wait_for("operator state HALTED restored from the journal")
        t0 = time.monotonic()
        while _scrape(metrics_port)["scalper_trading_state"] != 2.0:  # exported once a second
            assert time.monotonic() - t0 < 3.0
            time.sleep(0.1)
        assert second.stop() == 0, second.text()
    finally:
        srv.stop()
    stream = _stream(redis_process.url)
    assert [e.seq for e in stream] == list(range(1, len(stream) + 1))
    ops = [(e.record.action, e.record.state) for e in stream if isinstance(e.record, OperatorRecord)]
    assert ops == [(OperatorAction.TIGHTEN, R), (OperatorAction.TIGHTEN, H)]
    # Health check and gauge export run once a second each: 2 s at worst, plus scheduling slack on a
    # loaded 2-core CI machine.
    assert detected_s < 3.0 and stop_s < 2.0 + 4.0, (detected_s, stop_s)
    print(
        f"journal faults: SIGTERM during outage exited in {stop_s:.2f} s (budget 2 s)"
        f", outage seen in {detected_s:.2f} s"
    )


def test_a_daemon_killed_before_it_noticed_an_empty_restart_leaves_a_mark_the_next_start_refuses(
    eth_models, tmp_path, redis_process
):
    # The running daemon notices a Redis restarted empty within a second; one killed inside that second
    # leaves only its durable mark, which is what stops the next start from recovering flat.
    run = Journaling(tmp_path, eth_models, redis_process.url)

    async def killed():
        await run.start()
        await asyncio.sleep(0.2)
        run.producing = False
        await run.daemon.journal.flush()
        return run.daemon.journal.durable_seq  # then the process dies: no stop, no close, no spill

    durable = asyncio.run(killed())
    assert durable > 10 and not (tmp_path / "fallback.jsonl").exists()
    _wipe(redis_process)
    with pytest.raises(JournalStartError, match=rf"ends at seq 0 but seq {durable} was durable in it"):
        _start_again(tmp_path, eth_models, redis_process.url)
    assert _stream(redis_process.url) == []  # nothing was written into the empty stream


def test_redis_restarted_empty_while_idle_is_noticed_by_the_health_check_and_start_refuses(
    eth_models, tmp_path, redis_process
):
    # Nothing is written after the loss: the health check finds it, and the record the daemon queues
    # then is what tells the next start (through the fallback) that the stream lost its history.
    run = Journaling(tmp_path, eth_models, redis_process.url)
    times = {}

    async def scenario():
        await run.start()
        await asyncio.sleep(0.2)
        run.producing = False
        await run.daemon.journal.flush()
        durable = run.daemon.journal.durable_seq
        await asyncio.to_thread(_wipe, redis_process)
        times["lost"] = await run.until((R, 0.0, 1.0), 3.0)
        return durable, await run.stop()

    durable, spilled = asyncio.run(scenario())
    saved = asyncio.run(_read(FileJournal(tmp_path / "fallback.jsonl")))
    assert spilled == 1 and [e.seq for e in saved] == [durable + 1] and isinstance(saved[0].record, PositionRecord)
    assert _stream(redis_process.url) == []
    assert times["lost"] < 2.2, times

    with pytest.raises(JournalStartError, match=rf"seqs 1\.\.{durable} are missing"):
        _start_again(tmp_path, eth_models, redis_process.url)
    print(f"journal faults: empty restart while idle noticed in {times['lost']:.3f} s")
