"""The journal on a Redis Stream, the latest position in a snapshot hash (see :mod:`.journal`).

Credentials never come from the config: :func:`redis_auth_from_env` reads ``SCALPER_REDIS_USERNAME``
and ``SCALPER_REDIS_PASSWORD`` (Redis ACL user and password) for every connection the daemon makes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from scalper.exec.journal import (
    JournalBackend,
    JournalCorrupt,
    JournalEntry,
    JournalStoreLost,
    PositionRecord,
    decode,
    encode,
    from_object,
)

# Appends only where the stream ends at the seq before the batch: after a silent reconnect to a Redis
# that restarted empty (or was rewound), XADD alone would happily start a new history at seq 38.
# KEYS: stream, snapshot hash. ARGV: the seq the stream must end at, n, n (seq, data) pairs, then the
# snapshot's field/value pairs. A script runs (and is persisted) as one unit, like MULTI/EXEC.
_APPEND_LUA = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local at = 0
if #last > 0 then at = tonumber(string.match(last[1][1], '^(%d+)-')) end
if at ~= tonumber(ARGV[1]) then return redis.error_reply('SCALPER_STREAM_ENDS_AT ' .. at) end
local n = tonumber(ARGV[2])
for i = 0, n - 1 do redis.call('XADD', KEYS[1], ARGV[3 + 2 * i] .. '-0', 'r', ARGV[4 + 2 * i]) end
if #ARGV > 2 + 2 * n then redis.call('HSET', KEYS[2], unpack(ARGV, 3 + 2 * n)) end
return n
"""
_ENDS_AT = re.compile(r"SCALPER_STREAM_ENDS_AT (\d+)")


def redis_auth_from_env() -> dict[str, Any]:
    """Return the Redis ACL credentials from the environment as client keyword arguments.

    ``SCALPER_REDIS_USERNAME`` (an ACL user; Redis' ``default`` user when unset) and
    ``SCALPER_REDIS_PASSWORD``; an unset variable is left out. Config files hold no secrets.
    """
    names = {"username": "SCALPER_REDIS_USERNAME", "password": "SCALPER_REDIS_PASSWORD"}
    return {key: os.environ[var] for key, var in names.items() if os.environ.get(var)}


class RedisJournal(JournalBackend):
    """Journal records as entries of the Redis Stream ``stream_key``.

    Entry ids are ``<seq>-0``: Redis refuses an XADD whose id is not above the stream's last one, so
    a retried write can never duplicate or reorder records, whatever happened to the first try.
    Each append runs as one Lua script that first checks the stream still ends at the seq before the
    batch: a stream that lost records (Redis restarted empty) raises
    :class:`~scalper.exec.journal.JournalStoreLost` instead of starting a second history.
    Each entry has one field, ``r``, the record's JSON bytes. No MAXLEN: nothing is trimmed.
    ``<stream_key>:snapshot`` is a hash holding the latest ``position`` record (field -> JSON text
    of its value), written in the same MULTI/EXEC as the XADDs, so it never disagrees with the stream.

    An append is durable once Redis has acknowledged it; whether that survives a crash of the Redis
    server itself depends on the server's persistence (``appendonly yes`` and ``appendfsync always``
    for no loss, ``everysec`` for at most about a second). The client does not retry on its own:
    :class:`~scalper.exec.journal.JournalWriter` owns the retry policy.

    Parameters
    ----------
    url : str
        Redis URL, e.g. ``redis://127.0.0.1:6379/0``.
    stream_key : str
        Key of the stream.
    socket_timeout_s : float
        Connect and command timeout, seconds: how long a hung server may stall one write.
    page_size : int
        Entries per XRANGE call in :meth:`read_all`.
    """

    def __init__(self, url: str, stream_key: str, socket_timeout_s: float = 1.0, page_size: int = 1000) -> None:
        self.stream_key = stream_key
        self.snapshot_key = f"{stream_key}:snapshot"
        self.durable_seq = 0
        self.page_size = page_size
        # Any: redis's stubs type every reply as bytes | str | None whatever decode_responses is; this
        # client never decodes (replies are bytes) and raises rather than returning None.
        self._client: Any = redis.Redis.from_url(
            url,
            **redis_auth_from_env(),
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._append = self._client.register_script(_APPEND_LUA)

    async def append(self, entries: Sequence[JournalEntry]) -> None:
        """XADD ``entries`` (seqs contiguous) and update the snapshot, in one script, if the stream
        ends at the seq before the first of them.

        Raises
        ------
        JournalStoreLost
            If the stream ends below that seq: it lost records; nothing was written.
        redis.exceptions.RedisError
            If Redis cannot be reached or times out, or the stream ends above that seq (another
            writer, or a retry of a batch that landed).
        """
        args: list = [entries[0].seq - 1, len(entries)]
        snapshot = None
        for entry in entries:
            data = encode(entry)
            args += [entry.seq, data]
            if isinstance(entry.record, PositionRecord):
                snapshot = data
        if snapshot is not None:
            for k, v in orjson.loads(snapshot).items():
                args += [k, orjson.dumps(v)]
        try:
            await self._append(keys=[self.stream_key, self.snapshot_key], args=args)
        except redis.ResponseError as exc:
            ends_at = _ENDS_AT.search(str(exc))
            if ends_at is not None and int(ends_at[1]) < entries[0].seq - 1:
                raise JournalStoreLost(int(ends_at[1]), entries[0].seq - 1, f"redis stream {self.stream_key}") from None
            raise
        self.durable_seq = entries[-1].seq

    async def sync(self) -> None:
        """Do nothing: an acknowledged append is already as durable as the server makes it."""

    async def last_seq(self) -> int:
        """Return the seq of the stream's last entry (0 when empty or missing).

        Raises
        ------
        redis.exceptions.RedisError
            If Redis cannot be reached.
        """
        last = await self._client.xrevrange(self.stream_key, "+", "-", count=1)
        seq = int(last[0][0].split(b"-")[0]) if last else 0
        self.durable_seq = max(self.durable_seq, seq)
        return seq

    async def read_all(self) -> list[JournalEntry]:
        """Return every entry of the stream in order.

        Raises
        ------
        JournalCorrupt
            Naming the stream and entry id, if an entry is not a valid record or its id is not
            ``<seq>-0``.
        redis.exceptions.RedisError
            If Redis cannot be reached.
        """
        entries: list[JournalEntry] = []
        low: bytes | str = "-"
        while True:
            page = await self._client.xrange(self.stream_key, low, "+", count=self.page_size)
            for entry_id, entry_fields in page:
                entries.append(self._decode(entry_id, entry_fields))
            if len(page) < self.page_size:
                return entries
            low = b"(" + page[-1][0]

    async def snapshot(self) -> JournalEntry | None:
        """Return the latest position record from the snapshot hash, or None if there is none.

        Raises
        ------
        JournalCorrupt
            If the hash does not hold a valid position record.
        """
        stored = await self._client.hgetall(self.snapshot_key)
        if not stored:
            return None
        try:
            entry = from_object({k.decode(): orjson.loads(v) for k, v in stored.items()})
        except ValueError as exc:
            raise JournalCorrupt(f"redis hash {self.snapshot_key}", str(exc)) from None
        if not isinstance(entry.record, PositionRecord):
            raise JournalCorrupt(f"redis hash {self.snapshot_key}", "not a position record")
        return entry

    async def close(self) -> None:
        """Close the connections."""
        await self._client.aclose()

    def _decode(self, entry_id: bytes, entry_fields: dict) -> JournalEntry:
        where = f"redis stream {self.stream_key} entry {entry_id.decode()}"
        try:
            entry = decode(entry_fields[b"r"])
        except KeyError:
            raise JournalCorrupt(where, "no field 'r'") from None
        except ValueError as exc:
            raise JournalCorrupt(where, str(exc)) from None
        if entry_id != f"{entry.seq}-0".encode():
            raise JournalCorrupt(where, f"id does not match seq {entry.seq}")
        return entry
