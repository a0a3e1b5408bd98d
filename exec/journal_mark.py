"""The highest journal seq this host has seen durable in a Redis stream, kept in a local file.

A Redis restarted without its data is noticed by the running daemon (each append checks the stream's
end, and the store is checked once a second), but a daemon that dies inside that second leaves nobody
who knows: the next start would read the empty stream and recover flat while the venue may still hold
the position. The mark outlives the process: a start whose stream ends before the mark refuses
(:meth:`DurableMark.check`), naming both seqs and what to do.

One line, ``<seq> <store>``, padded to a fixed width and written with one ``pwrite`` at offset 0, so
a reader never sees a torn or shorter line. It is not fsynced: it survives a killed process (the page
cache outlives it), not a host crash. ``<store>`` names the stream (``redis://host:port/db#key``): a
mark of another store says nothing about this one and is ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

from scalper.exec.journal import JournalCorrupt

WIDTH = 512
"""Bytes of the mark's line, newline included."""


class DurableMark:
    """The mark file of one journal store.

    Parameters
    ----------
    path : Path
        The mark file; created (with its directory) on the first :meth:`record`.
    store : str
        Names the store the seqs belong to, e.g. ``redis://127.0.0.1:6379/0#scalper:journal``; no
        whitespace, at most ``WIDTH - 22`` characters.

    Raises
    ------
    ValueError
        If ``store`` is empty, holds whitespace or is too long.
    """

    def __init__(self, path: Path, store: str) -> None:
        if not store or any(c.isspace() for c in store) or len(store) > WIDTH - 22:
            raise ValueError(f"journal mark: store name {store!r} must be 1..{WIDTH - 22} characters, no spaces")
        self.path = Path(path)
        self.store = store
        self.marked = 0
        self._fd: int | None = None

    def read(self) -> int:
        """Return the seq marked for this store; 0 when there is no mark or it names another store.

        Raises
        ------
        JournalCorrupt
            If the file exists but is not a mark (naming the file and what it holds).
        """
        try:
            text = self.path.read_bytes()[:WIDTH].decode("ascii").strip()
        except FileNotFoundError:
            return 0
        except UnicodeDecodeError as exc:
            raise JournalCorrupt(str(self.path), "not a journal mark (not ASCII)") from exc
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise JournalCorrupt(str(self.path), f"not a journal mark ({text[:60]!r}; want '<seq> <store>')")
        return int(parts[0]) if parts[1] == self.store else 0

    def check(self, stream_last_seq: int) -> None:
        """Refuse a store that ends before the mark.

        Raises
        ------
        JournalCorrupt
            If ``stream_last_seq`` is below the marked seq: the store lost records this host saw durable.
        """
        marked = self.read()
        if stream_last_seq < marked:
            raise JournalCorrupt(
                f"mark {self.path}",
                f"the stream ends at seq {stream_last_seq} but seq {marked} was durable in it: it lost"
                " records; once the venue's position is checked, delete the mark to accept the stream as it is",
            )
        self.marked = marked

    def record(self, seq: int) -> None:
        """Mark ``seq`` durable when it is beyond the mark (one ``pwrite``, no fsync).

        Raises
        ------
        OSError
            If the file cannot be created or written.
        """
        if seq <= self.marked:
            return
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        line = f"{seq} {self.store}".ljust(WIDTH - 1) + "\n"
        os.pwrite(self._fd, line.encode("ascii"), 0)
        self.marked = seq

    def close(self) -> None:
        """Close the file (a later :meth:`record` reopens it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
