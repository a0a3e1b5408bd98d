"""Benchmark fixtures: one trained model set on the real GOOG session, built once per run."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def goog10(goog10_tickfile):
    from scalper.ingest import tickfile

    return tickfile.read(goog10_tickfile)


@pytest.fixture(scope="session")
def goog10_models(goog10_tickfile, tmp_path_factory):
    from scalper.engine.config import EngineConfig
    from scalper.models.inference import load_model_dir
    from scalper.models.train import train_models

    cfg = EngineConfig()
    out = tmp_path_factory.mktemp("bench_models")
    train_models(goog10_tickfile, out, cfg.features, cfg.labels, cfg.train)
    return load_model_dir(out)
