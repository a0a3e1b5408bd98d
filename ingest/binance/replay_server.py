"""A local stand-in for Binance: replays a recording over a real websocket and answers REST depth requests.

What it serves, on one loopback port:

* ``ws://HOST:PORT/stream?streams=a/b/...`` (and ``/ws``): the recorded combined-stream messages
  ``{"stream": ..., "data": ...}``, byte for byte, at the recorded pace divided by ``speed``
  (``speed=0`` sends as fast as the client reads). A ``{"method": "SUBSCRIBE"}`` frame is answered
  with ``{"result": null, "id": ...}`` as Binance does.
* ``GET /api/v3/depth``, ``/fapi/v1/depth`` or ``/dapi/v1/depth?symbol=..&limit=..``: a REST depth
  snapshot of the server's *current* book. The server keeps that book from the recording's own REST
  snapshot plus every diff it has streamed, so ``lastUpdateId`` is the ``u`` of the last diff sent,
  as on the venue: a client that buffers diffs while its request is in flight can place it.

Like the venue, the replay is one shared stream: it starts when the first client connects and keeps
going while clients come and go. Faults for tests: :meth:`ReplayServer.drop_connections` (the
server closes every websocket, as on a venue disconnect) and :meth:`ReplayServer.skip_next_diff`
(one diff changes the server's book but is never sent: a missing-diff gap).
"""

from __future__ import annotations

import asyncio
import http
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import orjson
import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

REST_DEPTH_PATHS = ("/api/v3/depth", "/fapi/v1/depth", "/dapi/v1/depth")


@dataclass
class _Book:
    """The server's own book: price string -> qty string per side, plus the ids of the last diff."""

    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)
    last_update_id: int = 0
    event_time_ms: int | None = None
    transaction_time_ms: int | None = None

    def load_snapshot(self, snap: dict) -> None:
        self.bids = {p: q for p, q in snap["bids"]}
        self.asks = {p: q for p, q in snap["asks"]}
        self.last_update_id = int(snap["lastUpdateId"])
        self.event_time_ms = snap.get("E")
        self.transaction_time_ms = snap.get("T")

    def apply(self, diff: dict) -> None:
        for side, levels in ((self.bids, diff["b"]), (self.asks, diff["a"])):
            for p, q in levels:
                if float(q) == 0.0:
                    side.pop(p, None)
                else:
                    side[p] = q
        self.last_update_id = int(diff["u"])
        self.event_time_ms = diff.get("E")
        self.transaction_time_ms = diff.get("T")

    def snapshot(self, limit: int, futures: bool) -> dict:
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:limit]
        out: dict = {"lastUpdateId": self.last_update_id}
        if futures:
            out["E"] = self.event_time_ms
            out["T"] = self.transaction_time_ms
        out["bids"] = [list(kv) for kv in bids]
        out["asks"] = [list(kv) for kv in asks]
        return out


@dataclass
class ReplayStats:
    """What the server has done so far (tests assert on it)."""

    sent: int = 0
    diffs_sent: int = 0
    diffs_skipped: int = 0
    snapshots_served: int = 0
    connections: int = 0
    drops: int = 0
    finished: bool = False


class ReplayServer:
    """Serve a Binance recording over websocket + REST on loopback.

    Parameters
    ----------
    lines : iterable of (int, bytes)
        ``(local_ts_ns, raw_json)`` of the recording in order; it must hold one REST snapshot line
        (no ``stream`` key). Lines before the snapshot are skipped: the server's book starts there.
    speed : float
        Replay speed: 1.0 = recorded pace, 10.0 = ten times faster, 0 = no pacing.
    host, port : str, int
        Where to listen; port 0 picks a free port (read :attr:`port` after :meth:`start`).
    accept_delay_s : float
        Time between a client's websocket handshake and the first frame sent to it, s: a venue
        subscribes a new connection to its streams some time after the handshake, and REST requests
        are answered meanwhile.

    Raises
    ------
    ValueError
        If the recording holds no REST snapshot line.
    """

    def __init__(
        self,
        lines: Iterable[tuple[int, bytes]],
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        accept_delay_s: float = 0.0,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.speed = speed
        self.accept_delay_s = accept_delay_s
        self.host = host
        self.port = port
        self.book = _Book()
        self.futures = False
        self.stats = ReplayStats()
        self._messages: list[tuple[int, str, str, dict | None]] = []
        self._load(lines)
        # Each client and the streams it asked for (lower-case Binance stream names).
        self._clients: dict[ServerConnection, set[str]] = {}
        self._started = asyncio.Event()
        self._skip_next_diff = False
        self._diff_fault: str | None = None
        self._fault_price: str | None = None
        self._held: str | None = None
        self._server: Server | None = None
        self._producer: asyncio.Task | None = None
        self.finished = asyncio.Event()

    def _load(self, lines: Iterable[tuple[int, bytes]]) -> None:
        seen_snapshot = False
        for ts, raw in lines:
            msg = orjson.loads(raw)
            if "stream" not in msg:
                if "lastUpdateId" in msg and not seen_snapshot:
                    self.book.load_snapshot(msg)
                    self.futures = "E" in msg or "T" in msg
                    seen_snapshot = True
                continue
            if not seen_snapshot:
                continue
            data = msg["data"]
            diff = data if isinstance(data, dict) and data.get("e") == "depthUpdate" else None
            self._messages.append((ts, raw.decode(), msg["stream"], diff))
        if not seen_snapshot:
            raise ValueError("the recording holds no REST depth snapshot line; the server cannot build its book")

    # -- faults -----------------------------------------------------------------------------
    def skip_next_diff(self) -> None:
        """Apply the next depthUpdate to the server's book but never send it (a missing-diff gap)."""
        self._skip_next_diff = True

    def fault_next_diff(self, kind: str, price: str | None = None) -> None:
        """Damage the next depthUpdate on the wire: ``"duplicate"`` sends it twice, ``"swap"`` sends it
        after the one that follows, ``"corrupt"`` cuts its JSON short, ``"cross"`` adds a bid at the
        server's best ask (a crossed book), ``"bid"`` adds a bid at ``price`` (a decimal string as sent,
        e.g. ``"1e300"``). The server's book is unaffected.

        Raises
        ------
        ValueError
            For an unknown ``kind``, or ``"bid"`` without ``price``.
        """
        if kind not in ("duplicate", "swap", "corrupt", "cross", "bid"):
            raise ValueError(f"unknown fault {kind!r}")
        if kind == "bid" and price is None:
            raise ValueError("the 'bid' fault needs the price string to send")
        self._diff_fault = kind
        self._fault_price = price

    def inject(self, frame: str) -> None:
        """Send ``frame`` as is to every client now (malformed-message tests)."""
        websockets.broadcast(list(self._clients), frame)

    async def drop_connections(self) -> None:
        """Close every client websocket abruptly, as a venue disconnect would."""
        self.stats.drops += 1
        for ws in list(self._clients):
            ws.transport.abort()

    # -- serving ----------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path in REST_DEPTH_PATHS:
            query = parse_qs(url.query)
            limit = int(query.get("limit", ["1000"])[0])
            self.stats.snapshots_served += 1
            body = orjson.dumps(self.book.snapshot(limit, self.futures)).decode()
            response = connection.respond(http.HTTPStatus.OK, body)
            response.headers["Content-Type"] = "application/json"
            return response
        if url.path not in ("/stream", "/ws") and not url.path.startswith("/ws/"):
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"no route {url.path}\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None  # websockets calls the handler after the opening handshake
        url = urlsplit(ws.request.path)
        streams = set(parse_qs(url.query).get("streams", [""])[0].split("/")) - {""}
        if url.path.startswith("/ws/"):
            streams |= set(url.path[len("/ws/") :].split("/")) - {""}
        if self.accept_delay_s > 0:
            await asyncio.sleep(self.accept_delay_s)
        self._clients[ws] = streams
        self.stats.connections += 1
        self._started.set()
        try:
            async for frame in ws:
                try:
                    req = orjson.loads(frame)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(req, dict) and req.get("method") in ("SUBSCRIBE", "UNSUBSCRIBE"):
                    names = {str(p) for p in req.get("params") or []}
                    if req["method"] == "SUBSCRIBE":
                        streams |= names
                    else:
                        streams -= names
                    await ws.send(orjson.dumps({"result": None, "id": req.get("id")}).decode())
        except websockets.ConnectionClosed:
            pass
        finally:
            self._clients.pop(ws, None)

    async def _produce(self) -> None:
        await self._started.wait()
        t0_wall = time.monotonic()
        t0_rec = self._messages[0][0] if self._messages else 0
        for ts, raw, stream, diff in self._messages:
            if self.speed > 0:
                due = (ts - t0_rec) / 1e9 / self.speed - (time.monotonic() - t0_wall)
                if due > 0.001:
                    await asyncio.sleep(due)
            frames = [raw]
            if diff is not None:
                self.book.apply(diff)
                if self._skip_next_diff:
                    self._skip_next_diff = False
                    self.stats.diffs_skipped += 1
                    continue
                self.stats.diffs_sent += 1
                frames = self._damage(raw)
            targets = [ws for ws, wanted in self._clients.items() if stream in wanted]
            for frame in frames:
                self.stats.sent += 1
                websockets.broadcast(targets, frame)
            if self.speed == 0:
                # Yield so clients and REST requests are served between messages.
                await asyncio.sleep(0)
        self.stats.finished = True
        self.finished.set()

    def _damage(self, raw: str) -> list[str]:
        # Frames to send for this diff under the pending fault (a held diff goes out after the next one).
        if self._held is not None:
            held, self._held = self._held, None
            return [raw, held]
        fault, self._diff_fault = self._diff_fault, None
        if fault == "duplicate":
            return [raw, raw]
        if fault == "swap":
            self._held = raw
            return []
        if fault == "corrupt":
            return [raw[: len(raw) // 2]]
        if fault == "cross":
            return [self._with_bid(raw, min(self.book.asks, key=float))]
        if fault == "bid":
            assert self._fault_price is not None  # set together with the "bid" fault
            return [self._with_bid(raw, self._fault_price)]
        return [raw]

    @staticmethod
    def _with_bid(raw: str, price: str) -> str:
        # The frame with one more bid level, first, at `price` (a string sent as is).
        msg = orjson.loads(raw)
        msg["data"]["b"] = [[price, "1.000"], *msg["data"]["b"]]
        return orjson.dumps(msg).decode()

    async def start(self) -> ReplayServer:
        """Start listening; the replay itself begins when the first client connects."""
        self._server = await serve(
            self._handler, self.host, self.port, process_request=self._process_request, compression=None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._producer = asyncio.create_task(self._produce())
        return self

    async def close(self) -> None:
        """Stop the replay and close the listening socket and every connection."""
        if self._producer is not None:
            self._producer.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"
