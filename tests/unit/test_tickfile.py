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


def _mbo(d):
    return replace(d, order_id=np.array([-1, -1, -1, 7, 8], dtype=np.int64))


def test_a_file_without_order_ids_is_written_and_read_as_version_1(tmp_path):
    import pyarrow.parquet as pq

    tickfile.write(tmp_path / "t.parquet", _data())
    assert pq.read_schema(tmp_path / "t.parquet").metadata[b"scalper.schema"] == b"1"
    assert "order_id" not in pq.read_schema(tmp_path / "t.parquet").names
    back = tickfile.read(tmp_path / "t.parquet")
    assert back.order_id is None
    assert back.schema_version == 1
    assert tickfile.read_schema_version(tmp_path / "t.parquet") == 1


def test_version_2_round_trips_order_ids(tmp_path):
    d = _mbo(_data())
    tickfile.write(tmp_path / "t.parquet", d)
    assert tickfile.read_schema_version(tmp_path / "t.parquet") == 2
    back = tickfile.read(tmp_path / "t.parquet")
    assert back.schema_version == 2
    assert back.order_id.dtype == np.int64
    assert back.order_id.tolist() == [-1, -1, -1, 7, 8]
    for name in tickfile.COLUMNS:
        assert np.array_equal(getattr(back, name), getattr(d, name))
    assert list(back.columns()) == [*tickfile.COLUMNS, "order_id"]


def test_a_version_2_file_without_order_ids_is_refused_naming_file_and_reason(tmp_path):
    import pyarrow.parquet as pq

    tickfile.write(tmp_path / "t.parquet", _mbo(_data()))
    table = pq.read_table(tmp_path / "t.parquet")
    v1_columns = table.drop_columns(["order_id"]).replace_schema_metadata(table.schema.metadata)
    pq.write_table(v1_columns, tmp_path / "x.parquet")
    with pytest.raises(TickFileError, match=r"x.parquet: schema version 2 needs column\(s\) order_id, missing"):
        tickfile.read(tmp_path / "x.parquet")


def test_an_unknown_schema_version_is_refused(tmp_path):
    import pyarrow.parquet as pq

    tickfile.write(tmp_path / "t.parquet", _data())
    table = pq.read_table(tmp_path / "t.parquet")
    meta = dict(table.schema.metadata) | {b"scalper.schema": b"3"}
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "x.parquet")
    with pytest.raises(TickFileError, match="x.parquet: metadata scalper.schema='3', need one of 1, 2"):
        tickfile.read(tmp_path / "x.parquet")


@pytest.mark.parametrize(
    ("order_id", "message"),
    [
        (np.array([-1, -1, -1, 7, -2], dtype=np.int64), "row 4: order_id -2 is negative"),
        (np.array([-1, -1, -1, 7, 8], dtype=np.int32), "column 'order_id' has dtype int32, schema v2 needs int64"),
        (np.array([-1, 7], dtype=np.int64), r"column 'order_id' has shape \(2,\), expected \(5,\)"),
    ],
)
def test_validate_checks_order_ids(order_id, message):
    with pytest.raises(TickFileError, match=message):
        tickfile.validate(replace(_data(), order_id=order_id), "x.parquet")
