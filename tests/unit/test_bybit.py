"""Bybit v5 orderbook importer on tiny literal JSON lines: exact events, resets, u chain, errors with file and line."""

from __future__ import annotations

import zipfile
from pathlib import Path

import orjson
import pytest

from scalper.ingest import bybit
from scalper.ingest.bybit import BybitBookSync, BybitFormatError, SyncAction, import_bybit
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE as LAST
from scalper.ingest.tickfile import FLAG_SNAPSHOT as SNAP
from scalper.ingest.tickfile import KIND_BOOK as BOOK
from scalper.ingest.tickfile import KIND_CLEAR as CLEAR
from scalper.ingest.tickfile import validate

MS = 1_000_000
T0 = 1_733_011_200_000  # 2024-12-01 00:00 UTC in ms


def message(kind: str, u: int, b=(), a=(), ts: int = T0, cts: int | None = None, symbol: str = "XRPUSDT") -> bytes:
    obj = {
        "topic": f"orderbook.50.{symbol}",
        "type": kind,
        "ts": ts,
        "data": {"s": symbol, "b": [list(x) for x in b], "a": [list(x) for x in a], "u": u, "seq": 7 * u},
    }
    if cts is not None:
        obj["cts"] = cts
    return orjson.dumps(obj)


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


LINES = [
    message("snapshot", 100, b=[("1.0002", "5"), ("1.0001", "7.5")], a=[("1.0004", "3")], ts=T0 + 10, cts=T0),
    message("delta", 101, b=[("1.0002", "0")], a=[("1.0003", "2")], ts=T0 + 110, cts=T0 + 100),
    message("delta", 102, ts=T0 + 210, cts=T0 + 200),  # nothing changed: no events
    message("delta", 1, b=[("1.0001", "1")], a=[("1.0005", "1")], ts=T0 + 310, cts=T0 + 300),  # service restart
    message("delta", 2, a=[("1.0005", "0")], ts=T0 + 400),  # no cts: ts is the event time
]
EXPECTED = [
    # ts_event, ts_recv, kind, side, price, size, flags
    ((T0) * MS, (T0 + 10) * MS, CLEAR, 0, 0.0, 0.0, SNAP),
    ((T0) * MS, (T0 + 10) * MS, BOOK, 1, 1.0002, 5.0, SNAP),
    ((T0) * MS, (T0 + 10) * MS, BOOK, 1, 1.0001, 7.5, SNAP),
    ((T0) * MS, (T0 + 10) * MS, BOOK, -1, 1.0004, 3.0, SNAP | LAST),
    ((T0 + 100) * MS, (T0 + 110) * MS, BOOK, 1, 1.0002, 0.0, 0),
    ((T0 + 100) * MS, (T0 + 110) * MS, BOOK, -1, 1.0003, 2.0, LAST),
    ((T0 + 300) * MS, (T0 + 310) * MS, CLEAR, 0, 0.0, 0.0, SNAP),
    ((T0 + 300) * MS, (T0 + 310) * MS, BOOK, 1, 1.0001, 1.0, SNAP),
    ((T0 + 300) * MS, (T0 + 310) * MS, BOOK, -1, 1.0005, 1.0, SNAP | LAST),
    ((T0 + 400) * MS, (T0 + 400) * MS, BOOK, -1, 1.0005, 0.0, LAST),
]


def event_rows(data) -> list[tuple]:
    return [
        (int(t), int(r), int(k), int(s), float(p), float(q), int(f))
        for t, r, k, s, p, q, f in zip(
            data.ts_event, data.ts_recv, data.kind, data.side, data.price, data.size, data.flags, strict=True
        )
    ]


def test_import_gives_exact_events_and_counts(tmp_path):
    result = import_bybit(write_lines(tmp_path / "ob.data", LINES))
    assert event_rows(result.data) == EXPECTED
    assert (result.lines, result.snapshots, result.deltas, result.gaps, result.dropped_deltas) == (5, 2, 3, 0, 0)
    assert result.skipped == {}
    validate(result.data)


def test_import_infers_tick_and_lot_from_first_snapshot_decimals(tmp_path):
    inst = import_bybit(write_lines(tmp_path / "ob.data", LINES)).data.instrument
    assert (inst.venue, inst.symbol, inst.tick_size, inst.lot_size) == ("BYBIT", "XRPUSDT", 0.0001, 0.1)
    assert inst.source == "bybit:ob.data"


def test_import_keeps_given_tick_and_lot(tmp_path):
    inst = import_bybit(write_lines(tmp_path / "ob.data", LINES), tick_size=0.0001, lot_size=1.0).data.instrument
    assert (inst.tick_size, inst.lot_size) == (0.0001, 1.0)


def test_inference_counts_trailing_zeros_and_integers(tmp_path):
    lines = [message("snapshot", 5, b=[("17440.50", "40")], a=[("17441.00", "8")])]
    inst = import_bybit(write_lines(tmp_path / "ob.data", lines)).data.instrument
    assert (inst.tick_size, inst.lot_size) == (0.01, 1.0)


def test_import_reads_the_single_member_of_a_zip(tmp_path):
    plain = write_lines(tmp_path / "ob.data", LINES)
    archive = tmp_path / "ob.data.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(plain, "2024-12-01_XRPUSDT_ob50.data")
    result = import_bybit(archive)
    assert event_rows(result.data) == EXPECTED
    assert result.data.instrument.source == "bybit:ob.data.zip"


def test_zip_with_two_members_or_garbage_raises(tmp_path):
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.data", LINES[0])
        zf.writestr("b.data", LINES[1])
    with pytest.raises(BybitFormatError, match="zip holds 2 files, expected exactly one"):
        import_bybit(archive)
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(BybitFormatError, match=f"{garbage}: not a readable zip file"):
        import_bybit(garbage)


def test_bad_line_inside_zip_names_archive_and_member(tmp_path):
    archive = tmp_path / "ob.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inner.data", LINES[0] + b"\n{oops\n")
    with pytest.raises(BybitFormatError, match=f"{archive}!inner.data: line 2: not valid JSON"):
        import_bybit(archive)


def test_empty_file_raises(tmp_path):
    with pytest.raises(BybitFormatError, match="empty file"):
        import_bybit(write_lines(tmp_path / "ob.data", []))


def test_bad_steps_raise_value_error(tmp_path):
    path = write_lines(tmp_path / "ob.data", LINES)
    for kwargs in [{"tick_size": 0.0}, {"lot_size": float("inf")}, {"tick_size": "0.1"}]:
        with pytest.raises(ValueError, match="positive finite"):
            import_bybit(path, **kwargs)


GAP_LINES = [
    message("snapshot", 10, b=[("2.0", "1")], a=[("2.1", "1")], ts=T0),
    message("delta", 11, b=[("2.0", "2")], ts=T0 + 1),
    message("delta", 13, b=[("2.0", "3")], ts=T0 + 2),  # u=12 lost
    message("delta", 14, b=[("2.0", "4")], ts=T0 + 3),
    message("snapshot", 20, b=[("1.9", "5")], a=[("2.1", "5")], ts=T0 + 4),
    message("delta", 21, a=[("2.1", "6")], ts=T0 + 5),
]


def test_u_gap_raises_naming_line_and_both_ids(tmp_path):
    path = write_lines(tmp_path / "ob.data", GAP_LINES)
    with pytest.raises(BybitFormatError, match=r"line 3: update id u=13 does not follow u=11 \(expected 12\)") as err:
        import_bybit(path)
    assert str(err.value).startswith(f"{path}: ")


def test_u_gap_with_skip_bad_stops_book_events_until_the_next_snapshot(tmp_path):
    result = import_bybit(write_lines(tmp_path / "ob.data", GAP_LINES), skip_bad=True)
    assert (result.snapshots, result.deltas, result.gaps, result.dropped_deltas) == (2, 2, 1, 2)
    sizes = [(int(ts // MS) - T0, float(q)) for ts, q in zip(result.data.ts_event, result.data.size, strict=True)]
    assert sizes == [(0, 0.0), (0, 1.0), (0, 1.0), (1, 2.0), (4, 0.0), (4, 5.0), (4, 5.0), (5, 6.0)]


def test_repeated_u_is_a_gap(tmp_path):
    lines = [GAP_LINES[0], GAP_LINES[1], GAP_LINES[1]]
    with pytest.raises(BybitFormatError, match="line 3: update id u=11 does not follow u=11"):
        import_bybit(write_lines(tmp_path / "ob.data", lines), tick_size=0.1)


def test_delta_before_the_first_snapshot_raises_or_is_dropped(tmp_path):
    path = write_lines(tmp_path / "ob.data", [message("delta", 9, b=[("2.0", "9")], ts=T0 - 5), *GAP_LINES[:2]])
    with pytest.raises(BybitFormatError, match=f"{path}: line 1: delta \\(u=9\\) before the first snapshot"):
        import_bybit(path)
    result = import_bybit(path, skip_bad=True)
    assert (result.snapshots, result.deltas, result.gaps, result.dropped_deltas) == (1, 1, 0, 1)
    assert int(result.data.ts_event[0]) == T0 * MS


def test_only_deltas_with_skip_bad_cannot_infer_tick(tmp_path):
    path = write_lines(tmp_path / "ob.data", GAP_LINES[1:4])
    with pytest.raises(BybitFormatError, match="no snapshot to infer tick_size and lot_size"):
        import_bybit(path, skip_bad=True)
    assert len(import_bybit(path, tick_size=0.1, lot_size=1.0, skip_bad=True).data) == 0


def test_empty_first_snapshot_needs_explicit_steps(tmp_path):
    path = write_lines(tmp_path / "ob.data", [message("snapshot", 1), message("delta", 2, b=[("2.0", "1")])])
    with pytest.raises(BybitFormatError, match="line 1: the first snapshot has no levels"):
        import_bybit(path)
    result = import_bybit(path, tick_size=0.1, lot_size=1.0)
    assert event_rows(result.data)[0] == (T0 * MS, T0 * MS, CLEAR, 0, 0.0, 0.0, SNAP | LAST)


def good(**changes) -> dict:
    obj = orjson.loads(message("delta", 101, b=[("1.0002", "1")], ts=T0 + 50, cts=T0 + 50))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = obj
        for p in parents:
            node = node[p]
        if value is DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return obj


DELETE = object()
BAD_LINES = [
    # line 2 content, reason pattern, skip key
    (b"{oops", "not valid JSON", bybit.BAD_JSON),
    (b"", "not valid JSON", bybit.BAD_JSON),
    (b"[1, 2]", "not a JSON object", bybit.BAD_JSON),
    (good(type=DELETE), "missing field type", bybit.MISSING_FIELD),
    (good(ts=DELETE), "missing field ts", bybit.MISSING_FIELD),
    (good(data=DELETE), "missing field data", bybit.MISSING_FIELD),
    (good(data__s=DELETE), "missing field data.s", bybit.MISSING_FIELD),
    (good(data__u=DELETE), "missing field data.u", bybit.MISSING_FIELD),
    (good(data__b=DELETE), "missing field data.b", bybit.MISSING_FIELD),
    (good(type="partial"), "field type 'partial' is not 'snapshot' or 'delta'", bybit.BAD_FIELD),
    (good(ts="1733011200050"), "field ts '1733011200050' is not a JSON integer", bybit.BAD_FIELD),
    (good(cts=-5), "field cts -5 is not a time in ms", bybit.BAD_FIELD),
    (good(cts=1.5e12), "field cts .* is not a JSON integer", bybit.BAD_FIELD),
    (good(data=[]), "field data .* is not a JSON object", bybit.BAD_FIELD),
    (good(data__u=0), "field data.u 0 is not a positive update id", bybit.BAD_FIELD),
    (good(data__u=True), "field data.u True is not a JSON integer", bybit.BAD_FIELD),
    (good(data__a={"1.0": "2"}), "field data.a .* is not a JSON array", bybit.BAD_FIELD),
    (good(data__b=[["1.0002", "1", "9"]]), r"data.b\[0\] .* is not a \[price, size\] pair", bybit.BAD_LEVEL),
    (good(data__b=[["1.0002", "1"], ["1.0001"]]), r"data.b\[1\] \['1.0001'\]", bybit.BAD_LEVEL),
    (good(data__a=[["abc", "1"]]), r"data.a\[0\] \['abc', '1'\] is not", bybit.BAD_LEVEL),
    (good(data__a=[[1.0004, 1]]), r"data.a\[0\] \[1.0004, 1\] is not", bybit.BAD_LEVEL),
    (good(data__a=[["1.0004", "-1"]]), r"data.a\[0\] .* needs a finite price > 0 and size >= 0", bybit.BAD_LEVEL),
    (good(data__a=[["0", "1"]]), "needs a finite price > 0", bybit.BAD_LEVEL),
    (good(data__a=[["nan", "1"]]), "needs a finite price > 0", bybit.BAD_LEVEL),
    (
        good(data__a=[["1.00045", "1"]]),
        r"data.a\[0\] \[1.00045, 1.0\] price is not a multiple of tick_size 0.0001",
        bybit.OFF_TICK_GRID,
    ),
    (good(data__s="BTCUSDT"), "symbol 'BTCUSDT' differs from 'XRPUSDT'", bybit.MIXED_SYMBOLS),
    (good(cts=T0 - 1), rf"cts {T0 - 1} ms goes backwards \(line 1 has {T0} ms\)", bybit.TIME_BACKWARDS),
]
FIRST = message("snapshot", 100, b=[("1.0002", "5")], a=[("1.0004", "3")], ts=T0 + 10, cts=T0)
LAST_LINE = message("snapshot", 200, b=[("1.0001", "5")], a=[("1.0004", "3")], ts=T0 + 90, cts=T0 + 90)


def line_bytes(content) -> bytes:
    return content if isinstance(content, bytes) else orjson.dumps(content)


@pytest.mark.parametrize(("content", "reason", "key"), BAD_LINES)
def test_bad_line_raises_naming_file_line_and_reason(tmp_path, content, reason, key):
    path = write_lines(tmp_path / "ob.data", [FIRST, line_bytes(content), LAST_LINE])
    with pytest.raises(BybitFormatError, match=reason) as err:
        import_bybit(path)
    assert str(err.value).startswith(f"{path}: line 2: ")


@pytest.mark.parametrize(("content", "reason", "key"), BAD_LINES)
def test_bad_line_with_skip_bad_is_counted_and_skipped(tmp_path, content, reason, key):
    result = import_bybit(write_lines(tmp_path / "ob.data", [FIRST, line_bytes(content), LAST_LINE]), skip_bad=True)
    assert result.skipped == {key: 1}
    assert (result.snapshots, result.deltas, result.gaps) == (2, 0, 0)


def test_skipped_delta_breaks_the_u_chain(tmp_path):
    lines = [GAP_LINES[0], b"{oops", message("delta", 12, ts=T0 + 2)]
    result = import_bybit(write_lines(tmp_path / "ob.data", lines), skip_bad=True)
    assert (result.skipped, result.gaps, result.dropped_deltas) == ({bybit.BAD_JSON: 1}, 1, 1)


def test_book_sync_follows_bybit_rules():
    sync = BybitBookSync()
    steps = [("delta", 5), ("snapshot", 7), ("delta", 8), ("delta", 10), ("delta", 11), ("delta", 1), ("delta", 2)]
    actions = [sync.on_message(kind, u) for kind, u in steps]
    A = SyncAction
    assert actions == [A.WAIT, A.RESET, A.APPLY, A.GAP, A.WAIT, A.RESET, A.APPLY]
    assert sync.last_u == 2
