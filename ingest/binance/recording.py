"""Read hftbacktest-style Binance recordings: ``<local_ts> <raw JSON>`` per line, gzip or plain text.

The collector of the hftbacktest project writes one received websocket frame (or REST reply) per
line, prefixed by its local receive stamp (../shared/data/README.md, section 2). The stamp's unit
is not recorded: it is nanoseconds in the 2024/2025 files and microseconds in the 2023
``*.dat.gz`` files. :func:`stamp_unit` tells them apart by magnitude: any Unix time after
1973-03-03 has at least 19 digits in ns, 16 in us and 13 in ms (until 2286), i.e. the stamp is ns
from 1e17, us from 1e14 and ms from 1e11. The unit is fixed per file by its first line; a later
line whose stamp has another unit is a bad line.

Several files form one recording when each continues the one before (the collector cuts files at
local midnight); their local stamps must not go backwards from one file to the next.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

_GZIP_MAGIC = b"\x1f\x8b"


class TsUnit(StrEnum):
    """Unit of a recording's local stamps, with its factor to ns."""

    NS = "ns"
    US = "us"
    MS = "ms"

    @property
    def to_ns(self) -> int:
        """Return the factor from this unit to ns."""
        return {"ns": 1, "us": 1_000, "ms": 1_000_000}[self.value]


class LineReason(StrEnum):
    """Why a recording line could not be split into stamp and message."""

    NO_SEPARATOR = "no_separator"
    BAD_STAMP = "bad_stamp"
    FILE_ORDER = "file_order"
    CORRUPT_FILE = "corrupt_file"


class RecordingError(ValueError):
    """A recording line (or file order) is malformed; the message names the file and line.

    Attributes
    ----------
    path : Path
    line_no : int
        1-based line number in ``path``.
    reason : LineReason
    """

    def __init__(self, path: Path, line_no: int, reason: LineReason, detail: str) -> None:
        super().__init__(f"{path}:{line_no}: {reason}: {detail}")
        self.path = path
        self.line_no = line_no
        self.reason = reason


class RecordedLine(NamedTuple):
    """One recorded message: where it is, when it was received (ns since the epoch) and its JSON bytes."""

    line_no: int
    path: Path
    local_ts_ns: int
    raw: bytes


_UNIT_RANGE = {TsUnit.NS: (10**17, 2**63), TsUnit.US: (10**14, 10**17), TsUnit.MS: (10**11, 10**14)}


def stamp_unit(stamp: int) -> TsUnit | None:
    """Return the unit of a local stamp by its magnitude (see the module docstring), or None when
    it is below 1e11 or does not fit int64 ns."""
    for unit, (lo, hi) in _UNIT_RANGE.items():
        if lo <= stamp < hi:
            return unit
    return None


class Recording:
    """Iterate the lines of one recording made of ``files`` in order.

    Parameters
    ----------
    files : sequence of path-like
        Gzip or plain-text files (told apart by the gzip magic bytes), earliest first.
    on_bad_line : callable, optional
        Called with the :class:`RecordingError` of each malformed line (no space after the
        stamp, or a stamp that is not a plausible integer in the file's unit), which is then
        skipped. Without it the error is raised. Blank lines are skipped silently; they carry
        no message.

    Attributes
    ----------
    files : list of Path
    units : dict of Path to TsUnit
        The stamp unit found in each file opened so far.

    Raises
    ------
    RecordingError
        While iterating: a malformed line (unless ``on_bad_line``), or a file whose first stamp
        is earlier than the previous file's last (FILE_ORDER), or a gzip stream that is truncated or
        corrupt (CORRUPT_FILE, naming the last good line); these two are always raised.
    """

    def __init__(self, files: Sequence[str | Path], on_bad_line: Callable[[RecordingError], None] | None = None):
        self.files = [Path(f) for f in files]
        self.units: dict[Path, TsUnit] = {}
        self._on_bad_line = on_bad_line

    def __iter__(self) -> Iterator[RecordedLine]:
        last_ts = None
        for path in self.files:
            first_in_file = True
            for line in self._lines(path):
                if first_in_file and last_ts is not None and line.local_ts_ns < last_ts:
                    raise RecordingError(
                        path,
                        line.line_no,
                        LineReason.FILE_ORDER,
                        f"first stamp {line.local_ts_ns} ns is before the previous file's last ({last_ts} ns); "
                        "pass the files in recording order",
                    )
                first_in_file = False
                last_ts = line.local_ts_ns
                yield line

    def _lines(self, path: Path) -> Iterator[RecordedLine]:
        unit = None
        scale = 0
        # Stamps in [lo, hi) are in the file's unit; nothing matches before the first line sets it.
        lo = hi = 0
        line_no = 0
        with _open(path) as fh:
            try:
                for line_no, line in enumerate(fh, start=1):
                    line = line.rstrip(b"\r\n")
                    stamp, sep, raw = line.partition(b" ")
                    if sep and stamp.isdigit():
                        ts = int(stamp)
                        if lo <= ts < hi:
                            yield RecordedLine(line_no, path, ts * scale, raw)
                            continue
                        if unit is None and (unit := stamp_unit(ts)) is not None:
                            self.units[path] = unit
                            scale = unit.to_ns
                            lo, hi = _UNIT_RANGE[unit]
                            yield RecordedLine(line_no, path, ts * scale, raw)
                            continue
                    if not line:
                        continue
                    exc = _line_error(path, line_no, stamp, sep, unit)
                    if self._on_bad_line is None:
                        raise exc
                    self._on_bad_line(exc)
            except (EOFError, OSError, zlib.error) as exc:
                raise RecordingError(
                    path, line_no + 1, LineReason.CORRUPT_FILE, f"unreadable after line {line_no} ({exc})"
                ) from None


def _line_error(path: Path, line_no: int, stamp: bytes, sep: bytes, unit: TsUnit | None) -> RecordingError:
    if not sep:
        return RecordingError(path, line_no, LineReason.NO_SEPARATOR, "no space between stamp and message")
    if not stamp.isdigit():
        return RecordingError(path, line_no, LineReason.BAD_STAMP, f"stamp {stamp[:30]!r} is not an integer")
    return RecordingError(
        path,
        line_no,
        LineReason.BAD_STAMP,
        f"stamp {int(stamp)} is not a Unix time in the file's unit ({unit or 'ns, us or ms'})",
    )


def _open(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic != _GZIP_MAGIC:
        return open(path, "rb")
    # A large buffer lets BufferedReader split lines in C instead of GzipFile.readline.
    return io.BufferedReader(gzip.GzipFile(path, "rb"), buffer_size=1 << 20)
