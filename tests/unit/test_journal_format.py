"""The journal's record format: encoding, decoding and the checks made when a record is built."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from scalper.exec.journal import (
    FillRecord,
    IntentRecord,
    JournalEntry,
    PositionRecord,
    ReconciledRecord,
    ReconcileOutcome,
    StatusRecord,
    decode,
    encode,
    from_object,
)
from scalper.exec.orders import Fill, Order, OrderStatus
from scalper.risk.accounting import Account
from scalper.risk.intent import OrderIntent

T0 = 1_700_000_000_000_000_000  # ns since the epoch

ONE_OF_EACH = [
    IntentRecord(T0, 7, -1, 0.3, 101.25, "stop_loss", True),
    StatusRecord(T0 + 1, 7, OrderStatus.PARTIALLY_FILLED, 0.1, 101.3),
    FillRecord(T0 + 2, 7, T0 + 1, -1, 0.1, 101.3, 0.000_304, False, "stop_loss"),
    PositionRecord(T0 + 3, -0.1 - 0.2, 101.3, -12.5, 0.1 + 0.2),
    ReconciledRecord(T0 + 4, 7, ReconcileOutcome.NOT_FOUND),
]


@pytest.mark.parametrize("record", ONE_OF_EACH, ids=lambda r: r.TYPE)
def test_record_round_trips_bit_exact(record):
    entry = JournalEntry(42, record)
    assert decode(encode(entry)) == entry


def test_encoded_record_has_seq_ts_type_and_its_fields_with_enum_names():
    obj = orjson.loads(encode(JournalEntry(3, ONE_OF_EACH[1])))
    assert obj == {
        "seq": 3,
        "ts_ns": T0 + 1,
        "type": "order_status",
        "order_id": 7,
        "status": "PARTIALLY_FILLED",
        "filled_qty": 0.1,
        "avg_fill_price": 101.3,
    }
    assert orjson.loads(encode(JournalEntry(4, ONE_OF_EACH[4])))["outcome"] == "NOT_FOUND"


def test_records_made_from_engine_objects_carry_their_fields():
    intent = OrderIntent(T0, 1, 0.5, 100.5, False, "entry")
    assert IntentRecord.from_intent(T0 + 9, 12, intent) == IntentRecord(T0 + 9, 12, 1, 0.5, 100.5, "entry", False)
    order = Order(12, T0, 1, 0.5, 100.5, "entry", False, OrderStatus.FILLED, 0.5, 100.25, 0.01)
    assert StatusRecord.from_order(T0, order) == StatusRecord(T0, 12, OrderStatus.FILLED, 0.5, 100.25)
    fill = Fill(12, T0 + 5, 1, 0.5, 100.25, 0.01, True, "entry")
    assert FillRecord.from_fill(T0 + 6, fill) == FillRecord(T0 + 6, 12, T0 + 5, 1, 0.5, 100.25, 0.01, True, "entry")
    account = Account(1000.0)
    account.on_fill(1, 0.5, 100.25, 0.01)
    assert PositionRecord.from_account(T0, account) == PositionRecord(T0, 0.5, 100.25, 0.0, 0.01)


def test_numpy_scalars_encode_as_plain_numbers():
    record = IntentRecord(T0, 1, 1, np.float64(0.5), np.float64(100.0), "entry", False)
    assert decode(encode(JournalEntry(1, record))).record == record


@pytest.mark.parametrize(
    "make",
    [
        lambda: IntentRecord(T0, 0, 1, 1.0, 100.0, "entry", False),
        lambda: IntentRecord(T0, 1, 0, 1.0, 100.0, "entry", False),
        lambda: IntentRecord(T0, 1, 1, float("nan"), 100.0, "entry", False),
        lambda: IntentRecord(T0, 1, 1, 1.0, float("inf"), "entry", False),
        lambda: StatusRecord(T0, 1, OrderStatus.NEW, -1.0, 0.0),
        lambda: FillRecord(T0, 1, T0, 1, 0.0, 100.0, 0.0, False, "entry"),
        lambda: FillRecord(T0, 1, T0, 1, 1.0, 100.0, float("nan"), False, "entry"),
        lambda: PositionRecord(T0, float("nan"), 0.0, 0.0, 0.0),
    ],
)
def test_record_with_value_that_would_not_round_trip_is_refused_when_made(make):
    # orjson writes NaN/inf as null: refusing them here keeps them out of the journal.
    with pytest.raises(ValueError):
        make()


GOOD = {
    "seq": 1,
    "ts_ns": T0,
    "type": "position",
    "position": 1,
    "avg_entry_price": 2.0,
    "realized_pnl": 0.0,
    "fees_paid": 0.0,
}


def test_integer_float_field_decodes_as_float():
    record = from_object(GOOD).record
    assert record.position == 1.0 and isinstance(record.position, float)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "trade"}, "unknown record type"),
        ({"seq": 0}, "seq=0"),
        ({"seq": True}, "seq=True"),
        ({"seq": "1"}, "seq='1'"),
        ({"ts_ns": 1.5}, "ts_ns=1.5 is not a int"),
        ({"position": None}, "position=None is not a float"),
        ({"position": True}, "position=True"),
        ({"extra": 1}, "unknown ['extra']"),
    ],
)
def test_bad_object_is_refused_saying_why(change, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        from_object({**GOOD, **change})


def test_missing_field_is_refused():
    obj = dict(GOOD)
    del obj["fees_paid"]
    with pytest.raises(ValueError, match="missing \\['fees_paid'\\]"):
        from_object(obj)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"[1]",
        b'{"seq": 1, "type": "order_status", "ts_ns": 1, "order_id": 1,'
        b' "status": "LOST", "filled_qty": 0.0, "avg_fill_price": 0.0}',
    ],
)
def test_undecodable_bytes_raise_value_error(data):
    with pytest.raises(ValueError):
        decode(data)
