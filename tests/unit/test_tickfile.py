from dataclasses import replace

import numpy as np
import pytest
from builders import T0, TickBuilder

from scalper.ingest import tickfile
from scalper.ingest.tickfile import TickFileError


def _data():
    b = TickBuilder().snapshot(T0, [(100, 5.0)], [(102, 5.0)])
    b.trade(T0 + 10, 1, 102, 1.0)
    b.level(T0 + 20, -1, 103, 2.0)
    return b.build()


def test_write_then_read_round_trips_columns_and_metadata(tmp_path):
    d = _data()
    tickfile.write(tmp_path / "t.parquet", d)
    back = tickfile.read(tmp_path / "t.parquet")
    assert back.instrument == d.instrument
    for name in tickfile.COLUMNS:
        assert np.array_equal(getattr(back, name), getattr(d, name))
        assert getattr(back, name).dtype == tickfile.COLUMNS[name]


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        ("ts_event", 4, T0 - 1, "row 4: ts_event goes backwards"),
        ("kind", 1, 7, "row 1: unknown kind 7"),
        ("side", 1, 0, "row 1: book event needs side"),
        ("size", 1, -1.0, "row 1: price 1.0 / size -1.0 must be finite, size >= 0"),
        ("price", 1, 1.005, "row 1: book price 1.005 is not a multiple of tick size 0.01"),
        ("side", 3, 2, "row 3: trade needs side"),
        ("size", 3, 0.0, "row 3: trade needs side -1, 0 or \\+1 and size > 0"),
        ("flags", 1, 8, "row 1: unknown flag bits"),
    ],
)
def test_validate_names_the_row_and_reason(column, row, value, message):
    d = _data()
    col = getattr(d, column).copy()
    col[row] = value
    with pytest.raises(TickFileError, match=message):
        tickfile.validate(replace(d, **{column: col}), "x.parquet")


def test_trades_may_print_between_ticks():
    d = _data()
    price = d.price.copy()
    price[3] = 1.015  # a midpoint execution
    tickfile.validate(replace(d, price=price))


def test_read_refuses_a_parquet_file_without_scalper_metadata(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1]}), tmp_path / "other.parquet")
    with pytest.raises(TickFileError, match="other.parquet: metadata scalper.schema"):
        tickfile.read(tmp_path / "other.parquet")
