"""Fixtures shared by tests/ and benchmarks/: the real market data described in ../shared/data/README.md."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The CI machine has 2 shared cores: a slow example is not a failing one.
settings.register_profile("scalper", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("scalper")

REPO = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Return the real-data folder: ``$SCALPER_DATA_DIR``, else ``<repo>/../shared/data``.

    Skips the requesting test, naming the missing path, when the folder does not exist.
    """
    env = os.environ.get("SCALPER_DATA_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"real data folder {path} not found (set SCALPER_DATA_DIR to point at it)")
    return path


GOOG10 = "GOOG_2012-06-21_34200000_57600000_{}_10.csv"


@pytest.fixture(scope="session")
def goog10_tickfile(data_dir: Path, tmp_path_factory) -> Path:
    """Import the GOOG level-10 LOBSTER session once per test run and return the tick file's path."""
    from scalper.ingest import tickfile
    from scalper.ingest.lobster import import_lobster

    lob = data_dir / "lobster"
    out = tmp_path_factory.mktemp("goog10") / "goog10.parquet"
    res = import_lobster(lob / GOOG10.format("message"), lob / GOOG10.format("orderbook"))
    tickfile.write(out, res.data)
    return out
