"""Execution report (backtest/execution_report.py): each figure on hand-made fills, worked by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalper.backtest.execution_report import execution_report, markdown_section, write_execution_report
from scalper.exec import passive as px
from scalper.exec.queue import QUEUE_RISK_AVERSE
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE

S = 1_000_000_000
TICK, LOT = 0.5, 0.1
# Mid 100 from 0, 101 from 1 s, 99 from 2 s, 102 from 6 s, 103 from 10 s (the last).
MID_TS = np.array([0, 1 * S, 2 * S, 6 * S, 10 * S], dtype=np.int64)
MID = np.array([100.0, 101.0, 99.0, 102.0, 103.0])


def fills():
    # A maker buy of 2 @99, a maker sell of 1 @102, a taker buy of 1 @103 (orders 0, 1, 2).
    return {
        "ts_exch": np.array([S // 2, 3 * S // 2, 13 * S // 2], dtype=np.int64),
        "ts_post": np.array([S // 10, 1 * S, 13 * S // 2], dtype=np.int64),
        "order_id": np.array([0, 1, 2], dtype=np.int64),
        "side": np.array([1, -1, 1], dtype=np.int64),
        "price_tick": np.array([99, 102, 103], dtype=np.int64),
        "qty": np.array([2, 1, 1], dtype=np.int64),
        "maker": np.array([True, True, False]),
        "queue_at_post": np.array([5.0, 3.0, 0.0]),
        "queue_at_fill": np.array([1.0, 0.0, 0.0]),
        "fee": np.array([-0.1, -0.05, 0.2]),
    }


def report(f=None, posted=5):
    return execution_report(fills() if f is None else f, posted, MID_TS, MID, tick_size=TICK, lot_size=LOT)


def test_shares_ratio_queue_and_time_to_fill():
    r = report()
    assert (r.fills, r.maker_fills, r.taker_fills, r.lots, r.maker_lots) == (3, 2, 1, 4, 3)
    assert r.maker_share == 0.75 and r.taker_share == 0.25
    assert (r.orders_filled, r.posted, r.fill_ratio) == (3, 5, 0.6)
    # Maker fills only: queue at post [5, 3], at fill [1, 0]; waits 0.4 s and 0.5 s.
    assert (r.queue_post_p50, r.queue_post_p90) == pytest.approx((4.0, 4.8))
    assert (r.queue_fill_p50, r.queue_fill_p90) == pytest.approx((0.5, 0.9))
    assert (r.time_to_fill_p50_ns, r.time_to_fill_p90_ns) == pytest.approx((0.45 * S, 0.49 * S))


def test_adverse_selection_is_the_signed_mid_move_after_each_fill():
    r = report()
    # Reference mids (strictly before each fill): 100, 101, 102.
    # 1 s: buy -> 101 (-1), sell -> 99 (-2), buy -> 102 (0); lots 2, 1, 1: -4 / 4.
    # 5 s: buy -> 99 (+1), sell -> 102 (+1); the third fill's 11.5 s is past the series' end.
    assert r.adverse_ticks == pytest.approx({"1s": -1.0, "5s": 1.0})
    assert r.adverse_n == {"1s": 3, "5s": 2}


def test_pnl_splits_into_spread_direction_fees_and_rebates_and_adds_up_to_the_mark():
    r = report()
    # spread: (+1 * 0.2 + 0.1 - 0.1) lot-ticks of base * 0.5 = 0.1; direction (to 103): (0.6 - 0.2 + 0.1) * 0.5.
    assert r.spread == pytest.approx(0.1)
    assert r.direction == pytest.approx(0.25)
    assert (r.fees, r.rebates) == pytest.approx((0.2, 0.15))
    f = fills()
    base = f["qty"] * LOT
    balance = -np.sum(f["side"] * f["price_tick"] * TICK * base)
    mark = np.sum(f["side"] * base) * MID[-1] * TICK
    assert r.pnl == pytest.approx(balance + mark - f["fee"].sum()) and r.pnl == pytest.approx(0.3)


def test_a_fill_before_the_first_mid_counts_wholly_as_direction():
    f = {k: v[:1].copy() for k, v in fills().items()}
    f["ts_exch"][0] = -5
    f["ts_post"][0] = -10
    r = report(f, posted=1)
    assert r.spread == 0.0 and r.direction == pytest.approx((103 - 99) * 0.2 * TICK)
    assert r.adverse_n == {"1s": 0, "5s": 0} and np.isnan(r.adverse_ticks["1s"])


def test_no_fill_gives_counts_and_nan_figures_and_writes_n_a(tmp_path):
    empty = {k: v[:0] for k, v in fills().items()}
    r = report(empty, posted=4)
    assert (r.fills, r.fill_ratio, r.pnl) == (0, 0.0, 0.0)
    assert np.isnan(r.maker_share) and np.isnan(r.queue_post_p50)
    js, md = write_execution_report(r, tmp_path / "run")
    d = json.loads(js.read_text())
    assert d["maker_share"] is None and d["posted"] == 4 and d["adverse_ticks"] == {"1s": None, "5s": None}
    assert "| maker / taker share of lots | n/a / n/a |" in md.read_text()


def test_the_markdown_section_shows_every_figure():
    text = markdown_section(report())
    assert text.startswith("## Execution\n")
    for line in (
        "| fills (maker / taker) | 3 (2 / 1) |",
        "| maker / taker share of lots | 75.0% / 25.0% |",
        "| fill ratio (orders filled / posted) | 60.0% (3 / 5) |",
        "| queue ahead at post, lots (p50 / p90) | 4.00 / 4.80 |",
        "| time to fill, ms (p50 / p90) | 450.0 / 490.0 |",
        "| adverse selection 1s, ticks (+ = against us) | -1.000 (n=3) |",
        "| adverse selection 5s, ticks (+ = against us) | +1.000 (n=2) |",
        "| PnL: fees paid (quote) | -0.200000 |",
        "| PnL at the last mid (quote) | 0.300000 |",
    ):
        assert line in text, line


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"drop": "ts_post"}, r"lacks column\(s\) \['ts_post'\]"),
        ({"short": "fee"}, "differ in length"),
        ({"posted": 2}, r"posted \(2\) is below the number of orders filled \(3\)"),
    ],
)
def test_bad_input_is_refused_naming_it(change, match):
    f = fills()
    if "drop" in change:
        del f[change["drop"]]
    if "short" in change:
        f[change["short"]] = f[change["short"]][:1]
    with pytest.raises(ValueError, match=match):
        report(f, posted=change.get("posted", 5))
    with pytest.raises(ValueError, match="sorted"):
        execution_report(fills(), 5, MID_TS[::-1].copy(), MID, tick_size=TICK, lot_size=LOT)


def test_the_passive_exchanges_fills_table_feeds_it():
    # A bid of 3 lots at 100; our buy of 1 lot joins behind at 1 000 ns, a sell trade of 4 lots fills it.
    ex = px.new_exchange(
        tick_size=TICK,
        lot_size=LOT,
        entry_latency_ns=1_000,
        response_latency_ns=500,
        queue_model=QUEUE_RISK_AVERSE,
        maker_fee_bps=-1.0,
    )
    px.on_event(ex, 0, KIND_BOOK, 1, 100, 0.3)
    px.on_event(ex, 0, KIND_BOOK, -1, 102, 0.3)
    assert px.submit(ex, 0, 1, 100, 1, px.TIF_GTX) == 0
    px.on_event(ex, 5_000, KIND_TRADE, -1, 100, 0.4)
    f = px.fills_table(ex)
    assert f["ts_post"].tolist() == [1_000] and f["ts_local"].tolist() == [5_500]
    mid_ts = np.array([0], dtype=np.int64)
    r = execution_report(f, 1, mid_ts, np.array([101.0]), tick_size=TICK, lot_size=LOT)
    assert (r.maker_fills, r.fill_ratio, r.time_to_fill_p50_ns) == (1, 1.0, 4_000.0)
    assert r.queue_post_p50 == pytest.approx(3.0)  # 0.3 / 0.1 lots
    assert r.spread == pytest.approx(1 * LOT * TICK)  # bought one tick under the mid
    assert r.rebates == pytest.approx(100 * TICK * LOT * 1e-4)
