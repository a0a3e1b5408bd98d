"""Real Bybit v5 orderbook.500 history file (../shared/data/README.md, section 3c), plain and zipped.

The book after every message is checked against a dict replay of the raw JSON (read with orjson,
independently of the importer) and against the README's figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from scalper.ingest.bybit import import_bybit
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE, KIND_CLEAR, validate
from scalper.lowlevel.book import book_clear, book_set, is_crossed, new_book, side_index

pytestmark = pytest.mark.realdata

PLAIN = "2024-12-01_XRPUSDT_ob500.data"
ZIPPED = "xrpusdt-ob500.data.zip"
TICK = 0.0001


def bybit_path(data_dir: Path, name: str) -> Path:
    return data_dir / "nautilus" / "bybit" / name


def dict_books(path: Path) -> list[dict[tuple[int, int], float]]:
    """Replay the raw messages into a {(side, price tick): size} dict; return the book after each."""
    book: dict[tuple[int, int], float] = {}
    after = []
    for line in path.read_bytes().splitlines():
        msg = orjson.loads(line)
        if msg["type"] == "snapshot":
            book = {}
        for side, key in ((1, "b"), (-1, "a")):
            for price, size in msg["data"][key]:
                tick = round(float(price) / TICK)
                if float(size) == 0:
                    book.pop((side, tick), None)
                else:
                    book[(side, tick)] = float(size)
        after.append(dict(book))
    return after


def as_dict(px, sz, n) -> dict[tuple[int, int], float]:
    return {(1 if s == 0 else -1, int(px[s, j])): float(sz[s, j]) for s in (0, 1) for j in range(int(n[s]))}


@pytest.mark.parametrize("name", [PLAIN, ZIPPED])
def test_xrpusdt_ob500_imports_one_snapshot_and_49_chained_deltas(data_dir, name):
    result = import_bybit(bybit_path(data_dir, name))
    validate(result.data)
    assert (result.lines, result.snapshots, result.deltas, result.gaps, result.dropped_deltas) == (50, 1, 49, 0, 0)
    assert result.skipped == {}
    inst = result.data.instrument
    assert (inst.venue, inst.symbol, inst.tick_size, inst.lot_size) == ("BYBIT", "XRPUSDT", TICK, 1.0)
    assert inst.source == f"bybit:{name}"
    assert int(result.data.ts_event[0]) == 1_733_011_200_589 * 10**6  # the snapshot's cts
    assert int(result.data.ts_recv[0]) == 1_733_011_200_691 * 10**6  # its ts, 00:00:00.691 UTC


def test_plain_and_zipped_files_give_the_same_events(data_dir):
    plain = import_bybit(bybit_path(data_dir, PLAIN)).data
    zipped = import_bybit(bybit_path(data_dir, ZIPPED)).data
    for name, column in plain.columns().items():
        np.testing.assert_array_equal(column, zipped.columns()[name], err_msg=name)


def test_replay_matches_raw_messages_and_is_never_crossed(data_dir):
    path = bybit_path(data_dir, PLAIN)
    data = import_bybit(path).data
    expected = dict_books(path)
    px, sz, n = new_book()
    price_tick = data.price_tick
    books = []
    for i in range(len(data)):
        if data.kind[i] == KIND_CLEAR:
            book_clear(n)
        else:
            book_set(px, sz, n, side_index(int(data.side[i])), int(price_tick[i]), float(data.size[i]))
        if data.flags[i] & FLAG_LAST_IN_MESSAGE:
            assert not is_crossed(px, n), f"crossed after message {len(books) + 1}"
            books.append(as_dict(px, sz, n))
            if len(books) == 1:
                assert (int(n[0]), int(n[1])) == (500, 500)
                assert (px[0, 0] * TICK, px[1, 0] * TICK) == pytest.approx((1.9531, 1.9532), abs=1e-12)
                assert (int(px[0, 0]), int(px[1, 0])) == (19_531, 19_532)
    assert len(books) == 50
    assert books == expected
