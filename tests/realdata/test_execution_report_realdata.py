"""The execution report (backtest/execution_report.py) of the market maker's fills on real recordings.

The maker of ``backtest/maker_peer.py`` (one lot at the touch, 100 ms re-quote, risk-averse queue) on
the Binance ETHUSDT 2024-07-18 file and the NASDAQ GOOG level-10 session; the mid series is the batch
pass's. The PnL split must add up to the runner's own mark-to-market equity.
"""

from __future__ import annotations

import pytest

from scalper.backtest.execution_report import execution_report, markdown_section
from scalper.backtest.maker_peer import MakerPeerParams, run_maker_peer
from scalper.benchmarks.peer_maker import with_warmup
from scalper.exec.passive import fills_table
from scalper.features.batch import compute_features

pytestmark = pytest.mark.realdata

ETH_0718 = "hftbacktest/binance_usdm/ethusdt_20240718.gz"


def _report(data):
    res = run_maker_peer(data, with_warmup(data, MakerPeerParams()))
    fm = compute_features(data)
    inst = data.instrument
    rep = execution_report(
        fills_table(res.exchange),
        res.submitted,
        fm.mid_ts,
        fm.mid_tick,
        tick_size=inst.tick_size,
        lot_size=inst.lot_size,
    )
    return res, rep


def test_the_makers_execution_report_on_ethusdt(data_dir):
    from scalper.ingest.binance import import_binance

    res, rep = _report(import_binance([data_dir / ETH_0718]).data)
    assert (rep.fills, rep.maker_fills, rep.taker_fills, rep.posted, rep.orders_filled) == (25, 25, 0, 45, 25)
    assert rep.maker_share == 1.0 and rep.fill_ratio == pytest.approx(25 / 45)
    assert rep.fees == 0.0 and rep.rebates == pytest.approx(-res.fee)  # maker -0.5 bps: rebates only
    assert rep.pnl == pytest.approx(res.equity, rel=1e-9, abs=1e-12)
    # A quote at a one-tick touch captures half a tick per fill: 25 * 0.5 * 0.01 USDT * 0.001 ETH.
    assert rep.spread == pytest.approx(25 * 0.5 * 0.01 * 0.001, rel=0.2)
    assert rep.adverse_n == {"1s": 25, "5s": 25}
    assert rep.queue_post_p50 >= rep.queue_fill_p50 >= 0.0 and rep.time_to_fill_p50_ns > 0
    assert "| fill ratio (orders filled / posted) | 55.6% (25 / 45) |" in markdown_section(rep)


def test_the_makers_execution_report_on_goog_level_10(goog10_tickfile):
    from scalper.ingest import tickfile

    res, rep = _report(tickfile.read(goog10_tickfile))
    assert (rep.fills, rep.maker_fills, rep.posted) == (1009, 1009, 8608)
    assert rep.pnl == pytest.approx(res.equity, rel=1e-9)
    # One share per lot, a cent per tick: the split in dollars.
    assert (rep.spread, rep.direction, rep.rebates) == pytest.approx((85.72, -98.53, 28.728694), abs=1e-6)
    assert rep.queue_fill_p90 == 0.0  # on GOOG the queue ahead is always gone when a fill comes
