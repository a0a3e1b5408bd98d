from pathlib import Path

import pytest

from scalper.engine.config import ConfigError, EngineConfig, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_default_toml_spells_out_exactly_the_model_defaults():
    assert load_config(ROOT / "configs" / "default.toml") == EngineConfig()


def test_unknown_key_fails_naming_file_and_key(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[risk]\nkelly_fracton = 0.5\n")
    with pytest.raises(ConfigError, match=r"c\.toml: risk\.kelly_fracton"):
        load_config(p)


def test_out_of_range_value_fails_naming_key(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[features]\ngrid_ms = -5\n")
    with pytest.raises(ConfigError, match=r"features\.grid_ms"):
        load_config(p)


def test_embargo_shorter_than_longest_horizon_is_refused(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[labels]\nhorizons_s = [5.0, 30.0]\nembargo_s = 10.0\n")
    with pytest.raises(ConfigError, match="embargo_s"):
        load_config(p)


def test_bad_toml_is_reported_with_the_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[risk\n")
    with pytest.raises(ConfigError, match="c.toml"):
        load_config(p)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "metrics.example.com"])
def test_a_non_loopback_metrics_host_needs_the_explicit_public_flag(tmp_path, host):
    p = tmp_path / "c.toml"
    p.write_text(f'[daemon]\nmetrics_host = "{host}"\n')
    with pytest.raises(
        ConfigError, match=r"c\.toml: daemon\.metrics_host: .*not a loopback address.*metrics_public = true"
    ):
        load_config(p)
    p.write_text(f'[daemon]\nmetrics_host = "{host}"\nmetrics_public = true\n')
    cfg = load_config(p).daemon
    assert (cfg.metrics_host, cfg.metrics_public) == (host, True)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_a_loopback_metrics_host_needs_no_flag(tmp_path, host):
    p = tmp_path / "c.toml"
    p.write_text(f'[daemon]\nmetrics_host = "{host}"\n')
    assert load_config(p).daemon.metrics_host == host


def test_settings_training_accepts_but_the_engine_cannot_trade_are_refused_by_where():
    v2 = EngineConfig.model_validate({"features": {"set": 2}})
    maker = EngineConfig.model_validate({"strategy": {"mode": "maker"}})
    with pytest.raises(ConfigError, match=r"backtest: \[features\] set = 2 .*\(set = 1\)"):
        v2.check_tradable("backtest")
    with pytest.raises(ConfigError, match=r"daemon: \[strategy\] mode = 'maker' .* mode = 'taker'"):
        maker.check_tradable("daemon")
    maker.check_tradable("backtest")  # the backtest has the passive exchange
    EngineConfig().check_tradable("daemon")


def test_the_daemon_and_the_backtest_refuse_before_touching_models_or_data():
    from scalper.backtest.driver import run_backtest
    from scalper.engine.daemon import Daemon

    with pytest.raises(ConfigError, match="daemon: .strategy. mode = 'maker'"):
        Daemon(EngineConfig.model_validate({"strategy": {"mode": "maker"}}))
    with pytest.raises(ConfigError, match=r"backtest: \[features\] set = 2"):
        run_backtest(None, None, EngineConfig.model_validate({"features": {"set": 2}}))  # type: ignore[arg-type]
