"""Append-only JSON-lines journal file: one fsync'd line per record (the format is in ``exec/journal.py``)."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from scalper.exec.journal import JournalBackend, JournalCorrupt, JournalEntry, decode, encode

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TornTail:
    """A last line cut by a crash mid-write: never durable, so its action was never taken."""

    line_no: int
    data: bytes
    reason: str


def _datasync(fd: int) -> None:
    # fdatasync is enough for an append (it flushes the new size); macOS only has fsync.
    getattr(os, "fdatasync", os.fsync)(fd)


class FileJournal(JournalBackend):
    """Append-only JSON-lines journal on the local file system.

    Each :meth:`append` writes its records with one ``write`` and, by default, fdatasyncs before it
    returns. With ``fsync_interval_ms`` > 0 it fdatasyncs only when that long has passed since the
    last one (group commit under load); :meth:`sync` forces it and :attr:`durable_seq` tells which
    records are durable. A failed write or sync cuts the file back to its last durable size, so a
    retry never leaves a half line in the middle of the journal.

    A torn last line (see :class:`TornTail`) is reported in :attr:`torn_tail` and logged by
    :meth:`read_all` / :meth:`last_seq`, and cut off before the first append. File work runs in a
    worker thread so the event loop never waits on the disk.

    Parameters
    ----------
    path : str or Path
        The journal file; created (with its directory entry synced) on the first append.
    fsync_interval_ms : float
        0 to fdatasync on every append, else the longest time an appended record may stay
        unsynced while more records keep arriving, ms.

    Raises
    ------
    ValueError
        If ``fsync_interval_ms`` is negative.
    """

    def __init__(self, path: str | os.PathLike, fsync_interval_ms: float = 0.0) -> None:
        if not fsync_interval_ms >= 0.0:
            raise ValueError(f"fsync_interval_ms={fsync_interval_ms!r} must be >= 0")
        self.path = Path(path)
        self.torn_tail: TornTail | None = None
        self.durable_seq = 0
        self._interval_ns = int(fsync_interval_ms * 1e6)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._scanned = False
        self._size = 0  # bytes of whole, valid lines: where the next record goes
        self._last_seq = 0
        self._durable_size = 0
        self._last_sync_ns = 0

    async def append(self, entries: Sequence[JournalEntry]) -> None:
        """Write ``entries`` as lines; fdatasync them unless the interval says not yet.

        Raises
        ------
        ValueError
            If seqs do not increase from :meth:`last_seq`.
        OSError
            If writing or syncing fails; the file is cut back to its last durable size.
        """
        await asyncio.to_thread(self._append, entries)

    async def sync(self) -> None:
        """fdatasync what was appended.

        Raises
        ------
        OSError
            If syncing fails; the file is cut back to its last durable size.
        """
        await asyncio.to_thread(self._sync)

    async def last_seq(self) -> int:
        """Return the last stored seq (scanning and checking the file the first time).

        Raises
        ------
        JournalCorrupt
            If a line other than the last is bad.
        """
        return await asyncio.to_thread(self._last_seq_sync)

    async def read_all(self) -> list[JournalEntry]:
        """Return every record in the file in order, without a torn last line.

        Raises
        ------
        JournalCorrupt
            Naming file and line, if a line other than the last is bad or seqs do not increase.
        """
        return await asyncio.to_thread(self._read_all)

    async def close(self) -> None:
        """fdatasync and close the file."""
        await asyncio.to_thread(self._close)

    # -- worker-thread side ----------------------------------------------------------------
    def _scan(self, collect: bool) -> list[JournalEntry]:
        entries: list[JournalEntry] = []
        size, last_seq, torn = 0, 0, None
        try:
            handle: BinaryIO = self.path.open("rb")
        except FileNotFoundError:
            handle = io.BytesIO()
        with handle:
            line, line_no = handle.readline(), 1
            while line:
                following = handle.readline()
                try:
                    if not line.endswith(b"\n"):
                        raise ValueError("line has no end (cut short)")
                    entry = decode(line)
                except ValueError as exc:
                    if not following:
                        torn = TornTail(line_no, line, str(exc))
                        break
                    raise JournalCorrupt(f"{self.path}:{line_no}", str(exc)) from None
                if entry.seq <= last_seq:
                    raise JournalCorrupt(f"{self.path}:{line_no}", f"seq {entry.seq} does not follow seq {last_seq}")
                if collect:
                    entries.append(entry)
                size, last_seq = size + len(line), entry.seq
                line, line_no = following, line_no + 1
        if torn is not None:
            log.warning(
                "journal %s: torn last line %d (%s) ignored; it was never durable",
                self.path,
                torn.line_no,
                torn.reason,
            )
        self.torn_tail = torn
        if self._fd is None:
            self._size, self._last_seq, self._scanned = size, last_seq, True
        return entries

    def _read_all(self) -> list[JournalEntry]:
        with self._lock:
            return self._scan(collect=True)

    def _last_seq_sync(self) -> int:
        with self._lock:
            if not self._scanned:
                self._scan(collect=False)
            return self._last_seq

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        if not self._scanned:
            self._scan(collect=False)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            if os.fstat(fd).st_size > self._size:
                os.ftruncate(fd, self._size)  # the torn tail, so the next line starts clean
            _datasync(fd)
            if created:
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._durable_size, self.durable_seq = self._size, self._last_seq
        self._last_sync_ns = time.monotonic_ns()
        return fd

    def _append(self, entries: Sequence[JournalEntry]) -> None:
        with self._lock:
            fd = self._open()
            last = self._last_seq
            for entry in entries:
                if entry.seq <= last:
                    raise ValueError(f"seq {entry.seq} does not follow seq {last} in {self.path}")
                last = entry.seq
            data = b"".join([encode(entry) + b"\n" for entry in entries])
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                self._size += len(data)
                self._last_seq = last
                if time.monotonic_ns() - self._last_sync_ns >= self._interval_ns:
                    self._sync_locked(fd)
            except BaseException:
                self._roll_back(fd)
                raise

    def _sync_locked(self, fd: int) -> None:
        _datasync(fd)
        self._last_sync_ns = time.monotonic_ns()
        self._durable_size, self.durable_seq = self._size, self._last_seq

    def _sync(self) -> None:
        with self._lock:
            fd = self._open()
            if self.durable_seq < self._last_seq:
                try:
                    self._sync_locked(fd)
                except BaseException:
                    self._roll_back(fd)
                    raise

    def _roll_back(self, fd: int) -> None:
        # After a failed fsync the kernel may have dropped the dirty pages while marking them clean,
        # so everything past the last durable point is rewritten rather than trusted.
        try:
            os.ftruncate(fd, self._durable_size)
            self._size, self._last_seq = self._durable_size, self.durable_seq
        except OSError:
            os.close(fd)
            self._fd, self._scanned = None, False

    def _close(self) -> None:
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                try:
                    if self.durable_seq < self._last_seq:
                        self._sync_locked(fd)
                finally:
                    os.close(fd)
