"""Fixtures for the tests that read the real market data described in ../shared/data/README.md."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


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
