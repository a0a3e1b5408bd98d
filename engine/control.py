"""The operator's explicit control channel to a running daemon (``scalper control resume``).

Signals only tighten the trading state (SIGUSR1 halted, SIGUSR2 reducing-only), and the Redis halt
key only ever adds its own restriction (see :mod:`scalper.risk.control`). Loosening is a command
sent here, which the daemon picks up in its once-a-second housekeeping, journals as an ``operator``
record and only then applies:

* with ``daemon.journal = "redis"``: an entry pushed on the Redis list ``<halt_key>:control``
  (RPUSH by the sender, LPOP by the daemon), so an operator can reach a daemon on another host;
  who may send is who may RPUSH that key (Redis ACL, see README);
* with ``daemon.journal = "file"``: a file dropped into ``daemon.control_dir`` (written under a
  temporary name, then renamed, so the daemon never reads half a command; deleted once read);
  who may send is who may write that directory.

A command is one JSON object: ``{"state": "ACTIVE", "reason": "...", "sender": "user@host"}``.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from scalper.engine.config import DaemonConfig
from scalper.risk.intent import TradingState


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """Set the operator's trading state to ``state`` and release the automatic latches.

    Attributes
    ----------
    state : TradingState
        The operator slot's new state (``ACTIVE`` to resume trading).
    reason : str
        Why, as the operator wrote it; journaled.
    sender : str
        ``user@host`` of the sender; journaled.
    """

    state: TradingState
    reason: str
    sender: str

    def encode(self) -> bytes:
        """Return the command as one JSON object (UTF-8)."""
        return orjson.dumps({"state": self.state.name, "reason": self.reason, "sender": self.sender})

    @classmethod
    def decode(cls, data: bytes) -> ControlCommand:
        """Return the command in ``data``.

        Raises
        ------
        ValueError
            If ``data`` is not a JSON object with a known ``state`` name and string ``reason`` and
            ``sender``.
        """
        try:
            obj = orjson.loads(data)
            state = TradingState[obj["state"]]
            reason, sender = obj["reason"], obj["sender"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"not a control command ({type(exc).__name__}: {exc}): {data[:80]!r}") from None
        if not (isinstance(reason, str) and isinstance(sender, str)):
            raise ValueError(f"reason and sender must be strings: {data[:80]!r}")
        return cls(state, reason, sender)


def command(state: TradingState, reason: str) -> ControlCommand:
    """Return a command from this process's user and host."""
    return ControlCommand(state, reason, f"{getpass.getuser()}@{socket.gethostname()}")


def control_key(cfg: DaemonConfig) -> str:
    """Return the Redis list the daemon reads commands from."""
    return f"{cfg.halt_key}:control"


class FileControlChannel:
    """Commands as files in one directory, taken in name (= send time) order.

    Parameters
    ----------
    directory : str or Path
        Created on the first :meth:`send`.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def send(self, cmd: ControlCommand) -> Path:
        """Drop ``cmd`` into the directory and return its path.

        Raises
        ------
        OSError
            If the directory cannot be created or written.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}.json"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(cmd.encode())
        return tmp.rename(self.directory / name)

    def receive(self) -> list[tuple[str, bytes]]:
        """Take every command file (oldest first) and return ``(its path, its bytes)``; each file
        is deleted once read. A missing directory holds no commands.

        Raises
        ------
        OSError
            If a file cannot be read or deleted.
        """
        if not self.directory.is_dir():
            return []
        taken = []
        for path in sorted(self.directory.glob("*.json")):
            taken.append((str(path), path.read_bytes()))
            path.unlink()
        return taken


def send_command(cfg: DaemonConfig, cmd: ControlCommand) -> str:
    """Send ``cmd`` to the daemon ``cfg`` configures and return where it went (for the operator).

    Raises
    ------
    OSError
        If the control directory cannot be written.
    redis.exceptions.RedisError
        If Redis cannot be reached or refuses the push (ACL).
    """
    if cfg.journal == "file":
        return f"file {FileControlChannel(cfg.control_dir).send(cmd)}"
    import redis

    from scalper.exec.journal_redis import redis_auth_from_env

    client = redis.Redis.from_url(
        cfg.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0, **redis_auth_from_env()
    )
    try:
        client.rpush(control_key(cfg), cmd.encode())
    finally:
        client.close()
    return f"redis list {control_key(cfg)}"
