"""One backtest from files to report: read ticks, load models, choose the trading span, replay, report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scalper.backtest.driver import run_backtest
from scalper.backtest.report import write_report
from scalper.engine.config import EngineConfig
from scalper.ingest import tickfile
from scalper.models.inference import load_model_dir
from scalper.models.touchpath import touch_path


def out_of_sample_start(ticks: Path, model_dir: Path) -> int:
    """Return the first test-span time (ns) when the models were trained on this very file, else 0.

    Trading the training span would report in-sample results; the default keeps to the test span.
    """
    models = load_model_dir(model_dir)
    digest = tickfile.file_sha256(ticks)
    starts = [p.card.test_span_ns[0] for p in models.predictors if p.card.data_sha256 == digest]
    return max(starts) if starts else 0


def backtest_file(
    ticks: str | Path,
    model_dir: str | Path,
    cfg: EngineConfig,
    out_dir: str | Path,
    in_sample: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Run a backtest of ``ticks`` with the models of ``model_dir`` and write the report to ``out_dir``.

    Parameters
    ----------
    in_sample : bool
        Trade the whole file even when the models were trained on it.
    on_start, on_progress : callable, optional
        Called with the event count, then with the events done (progress bars).

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.

    Raises
    ------
    tickfile.TickFileError, models.card.ModelCardMismatch
        On a bad tick file, or a model directory that cannot be loaded or was trained on another
        instrument or grid; nothing is written then.
    """
    ticks = Path(ticks)
    data = tickfile.read(ticks)
    models = load_model_dir(model_dir)
    models.check_compatible(cfg.features.grid_ms, data.instrument)
    trade_from = 0 if in_sample else out_of_sample_start(ticks, Path(model_dir))
    if on_start is not None:
        on_start(len(data))
    result = run_backtest(data, models, cfg, trade_from_ns=trade_from, on_progress=on_progress)
    fm = result.features
    assert fm is not None, "run_backtest returns the feature matrix it replayed"
    return write_report(
        out_dir, result, fm, cfg.risk.initial_equity, cfg.backtest.periods_per_year, touch=touch_path(data)
    )
