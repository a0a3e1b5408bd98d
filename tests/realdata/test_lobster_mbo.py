"""The LOBSTER samples imported as market-by-order (schema v2): the L2 events are exactly the plain
import's, and each message's order id sits on the events it causes, read back from the message file
independently (``pl.read_csv``)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from scalper.ingest.lobster import import_lobster
from scalper.ingest.tickfile import COLUMNS, KIND_BOOK, KIND_TRADE, validate

pytestmark = pytest.mark.realdata

STEM = "{symbol}_2012-06-21_34200000_57600000_{kind}_{levels}.csv"
PAIRS = [("GOOG", 10), ("GOOG", 5), ("GOOG", 1), ("AAPL", 1)]


@pytest.mark.parametrize(("symbol", "levels"), PAIRS, ids=[f"{s}_{lv}" for s, lv in PAIRS])
def test_mbo_import_keeps_the_l2_events_and_tags_every_message_order(data_dir, symbol, levels):
    paths = [data_dir / "lobster" / STEM.format(symbol=symbol, kind=k, levels=levels) for k in ("message", "orderbook")]
    for path in paths:
        if not path.is_file():
            pytest.skip(f"LOBSTER sample {path} not found")
    plain = import_lobster(*paths).data
    mbo = import_lobster(*paths, mbo=True).data
    validate(mbo)
    assert mbo.schema_version == 2
    for name in COLUMNS:
        np.testing.assert_array_equal(getattr(mbo, name), getattr(plain, name), err_msg=name)

    schema = {"time": pl.String} | {name: pl.Int64 for name in ("type", "id", "size", "price", "direction")}
    messages = pl.read_csv(paths[0], has_header=False, schema=schema)
    mtype, oid = messages["type"].to_numpy(), messages["id"].to_numpy()
    # Trades: the executed resting order's id, message for message (the samples have no crosses).
    trades = mbo.kind == KIND_TRADE
    np.testing.assert_array_equal(mbo.order_id[trades], oid[np.isin(mtype, (4, 5))])
    # Book events: every type 1-4 message after the first changes its own level (the samples have no
    # deep rows), so its id appears on exactly one book event, in message order; the rest are unknown.
    book = mbo.kind == KIND_BOOK
    tagged = mbo.order_id[book][mbo.order_id[book] >= 0]
    np.testing.assert_array_equal(tagged, oid[1:][mtype[1:] <= 4])
