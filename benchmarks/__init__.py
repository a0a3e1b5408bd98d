"""The latency and throughput harness behind ``scalper bench`` and the pytest-benchmark suites.

Top layer beside the CLI: it drives the daemon, the backtest and every stage below them; nothing
of the engine imports it.
"""
