"""The operator's control channel (`scalper control resume`) and the daemon's Redis credentials in config."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from scalper.engine.cli import app
from scalper.engine.config import ConfigError, load_config
from scalper.engine.control import ControlCommand, FileControlChannel
from scalper.risk.intent import TradingState


def _config(tmp_path, extra: str = "") -> str:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[daemon]\njournal = "file"\ncontrol_dir = "{tmp_path / "control"}"\n{extra}')
    return str(cfg)


def test_control_resume_drops_one_command_file_the_daemon_can_read(tmp_path):
    res = CliRunner().invoke(app, ["control", "resume", "-c", _config(tmp_path), "--reason", "drawdown reviewed"])
    assert res.exit_code == 0, res.output
    assert "sent: active via file" in res.output
    taken = FileControlChannel(tmp_path / "control").receive()
    assert len(taken) == 1
    cmd = ControlCommand.decode(taken[0][1])
    assert (cmd.state, cmd.reason) == (TradingState.ACTIVE, "drawdown reviewed") and "@" in cmd.sender
    assert FileControlChannel(tmp_path / "control").receive() == []  # taken once
    assert list((tmp_path / "control").iterdir()) == []


def test_control_resume_refuses_halted_as_a_target(tmp_path):
    res = CliRunner().invoke(app, ["control", "resume", "-c", _config(tmp_path), "--state", "halted"])
    assert res.exit_code == 2 and "use active or reducing_only" in res.output


def test_commands_are_taken_in_the_order_they_were_sent(tmp_path):
    channel = FileControlChannel(tmp_path)
    for i, state in enumerate((TradingState.REDUCING_ONLY, TradingState.ACTIVE, TradingState.REDUCING_ONLY)):
        channel.send(ControlCommand(state, f"step {i}", "op@host"))
    got = [ControlCommand.decode(data).reason for _, data in channel.receive()]
    assert got == ["step 0", "step 1", "step 2"]


@pytest.mark.parametrize(
    "data, why",
    [
        (b"not json", "JSONDecodeError"),
        (orjson.dumps({"state": "PAUSED", "reason": "", "sender": "a"}), "KeyError"),
        (orjson.dumps({"state": "ACTIVE", "reason": 3, "sender": "a"}), "must be strings"),
        (orjson.dumps(["ACTIVE"]), "TypeError"),
    ],
)
def test_a_malformed_command_is_refused_saying_why(data, why):
    with pytest.raises(ValueError, match=why):
        ControlCommand.decode(data)


def test_a_password_in_the_redis_url_is_refused_naming_the_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[daemon]\nredis_url = "redis://scalper:s3cret@127.0.0.1:6379/0"\n')
    with pytest.raises(
        ConfigError, match=r"daemon.redis_url: Value error, holds a password: set SCALPER_REDIS_PASSWORD"
    ):
        load_config(cfg)
