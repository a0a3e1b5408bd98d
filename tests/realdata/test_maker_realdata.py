"""Maker mode on real sessions (configs/maker.toml, the models `scalper train` makes): posted entries fill
as maker, the stop-loss and time stop cross as taker, and the batched replay trades exactly as the
per-decision one."""

from pathlib import Path

import numpy as np
import pytest

from scalper.backtest.driver import fills_table, run_backtest
from scalper.backtest.session import out_of_sample_start
from scalper.engine.config import load_config
from scalper.ingest import tickfile
from scalper.ingest.binance.importer import import_binance
from scalper.models.inference import load_model_dir
from scalper.models.train import train_models

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

MAKER = load_config(Path(__file__).resolve().parents[2] / "configs" / "maker.toml")
BTC = ("hftbacktest/binance_usdm/btcusdt_20240718.gz", "hftbacktest/binance_usdm/btcusdt_20240719.gz")


@pytest.fixture(scope="module")
def btc_tickfile(data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("btc") / "btc.parquet"
    tickfile.write(out, import_binance([data_dir / f for f in BTC]).data)
    return out


def _trained(ticks: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models")
    train_models(ticks, out, MAKER.features, MAKER.labels, MAKER.train)
    return out


def _check_maker_session(ticks: Path, models: Path) -> None:
    data = tickfile.read(ticks)
    trade_from = out_of_sample_start(ticks, models)
    batch = run_backtest(data, load_model_dir(models), MAKER, trade_from_ns=trade_from, batch_predictions=True)
    live = run_backtest(data, load_model_dir(models), MAKER, trade_from_ns=trade_from, batch_predictions=False)
    fb, fl = fills_table(batch), fills_table(live)
    entries = fb["reason"] == "entry"
    assert entries.sum() > 0 and fb["maker"][entries].all()  # every entry posted and filled as maker
    assert (~fb["maker"]).sum() > 0  # crossing exits (stop-loss, time stop)
    assert set(fb["reason"][~fb["maker"]]) <= {"stop_loss", "time_stop", "take_profit", "end_of_data"}
    assert fb["ts_ns"].min() >= trade_from
    for col in ("ts_ns", "order_id", "side", "qty", "price", "fee", "reason", "maker"):
        assert np.array_equal(fb[col], fl[col]), col
    assert batch.core.risk.reject_counts == live.core.risk.reject_counts
    assert batch.core.risk.approved_count == live.core.risk.approved_count
    for field in ("realized_pnl", "fees_paid", "peak_equity", "max_drawdown", "last_mark"):
        assert getattr(batch.core.risk.account, field) == getattr(live.core.risk.account, field), field
    assert batch.core.risk.account.position == 0.0
    # The venue's record and the core's agree: every fill the engine booked is one the exchange made.
    table = batch.adapter.fills_table()
    assert len(table["qty"]) == len(fb["qty"])
    assert (table["maker"] == fb["maker"]).all()


def test_maker_mode_on_goog_level_10(goog10_tickfile, tmp_path_factory):
    _check_maker_session(goog10_tickfile, _trained(goog10_tickfile, tmp_path_factory))


def test_maker_mode_on_binance_btcusdt(btc_tickfile, tmp_path_factory):
    _check_maker_session(btc_tickfile, _trained(btc_tickfile, tmp_path_factory))
