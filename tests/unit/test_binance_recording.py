"""Recording reader: stamp units, chained files, bad lines, gzip and plain text."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from scalper.ingest.binance.recording import LineReason, Recording, RecordingError, TsUnit, stamp_unit

NS = 1_723_161_255_030_314_667  # 2024-08-08, as in the 2024 files
US = 1_680_652_700_423_575  # 2023-04-04, as in the *.dat.gz files


def write(path: Path, lines: list[str], gz: bool = True) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize(
    "stamp, unit",
    [
        (NS, TsUnit.NS),
        (US, TsUnit.US),
        (1_680_652_700_423, TsUnit.MS),
        (10**17, TsUnit.NS),
        (10**17 - 1, TsUnit.US),
        (10**11 - 1, None),
        (2**63, None),
    ],
)
def test_stamp_unit_by_magnitude(stamp, unit):
    assert stamp_unit(stamp) is unit


def test_reads_ns_and_us_files_in_order_as_ns(tmp_path):
    a = write(tmp_path / "a.dat.gz", [f"{US} {{}}", f"{US + 5} [1]"])
    b = write(tmp_path / "b.gz", [f'{NS} {{"x":1}}'], gz=False)
    rec = Recording([a, b])
    lines = list(rec)
    assert [(ln.line_no, ln.path.name, ln.local_ts_ns, ln.raw) for ln in lines] == [
        (1, "a.dat.gz", US * 1000, b"{}"),
        (2, "a.dat.gz", (US + 5) * 1000, b"[1]"),
        (1, "b.gz", NS, b'{"x":1}'),
    ]
    assert rec.units == {a: TsUnit.US, b: TsUnit.NS}


def test_blank_lines_and_crlf_are_tolerated(tmp_path):
    f = write(tmp_path / "f.gz", [f"{NS} {{}}\r", "", f"{NS + 1} {{}}"])
    assert [(ln.line_no, ln.raw) for ln in Recording([f])] == [(1, b"{}"), (3, b"{}")]


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("no-space-here", LineReason.NO_SEPARATOR),
        ("12a4 {}", LineReason.BAD_STAMP),
        ("-5 {}", LineReason.BAD_STAMP),
        (f"{US} {{}}", LineReason.BAD_STAMP),
        ("123 {}", LineReason.BAD_STAMP),
    ],
)
def test_bad_line_raises_with_file_line_and_reason(tmp_path, bad, reason):
    f = write(tmp_path / "f.gz", [f"{NS} {{}}", bad, f"{NS} {{}}"])
    with pytest.raises(RecordingError) as info:
        list(Recording([f]))
    assert info.value.reason is reason and info.value.line_no == 2
    assert str(info.value).startswith(f"{f}:2: {reason.value}")


def test_bad_lines_go_to_callback_when_given(tmp_path):
    f = write(tmp_path / "f.gz", ["junk", f"{NS} {{}}", "1x {}", f"{NS + 1} {{}}"])
    seen = []
    lines = list(Recording([f], on_bad_line=seen.append))
    assert [ln.line_no for ln in lines] == [2, 4]
    assert [(e.line_no, e.reason) for e in seen] == [(1, LineReason.NO_SEPARATOR), (3, LineReason.BAD_STAMP)]


def test_files_out_of_order_are_refused(tmp_path):
    late = write(tmp_path / "late.gz", [f"{NS + 10} {{}}"])
    early = write(tmp_path / "early.gz", [f"{NS} {{}}"])
    with pytest.raises(RecordingError, match="recording order") as info:
        list(Recording([late, early], on_bad_line=lambda e: None))
    assert info.value.reason is LineReason.FILE_ORDER and info.value.path == early


def test_truncated_gzip_is_a_corrupt_file_error(tmp_path):
    full = gzip.compress(("\n".join(f"{NS + k} {{}}" for k in range(5000)) + "\n").encode())
    f = tmp_path / "cut.gz"
    f.write_bytes(full[: len(full) // 2])
    with pytest.raises(RecordingError) as info:
        list(Recording([f]))
    assert info.value.reason is LineReason.CORRUPT_FILE and "unreadable after line" in str(info.value)
