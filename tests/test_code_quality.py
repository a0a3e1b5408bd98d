"""The tree keeps its shape: the import layers (import-linter), lint and format (ruff) and types (mypy), each
run from the repository root with the configuration in pyproject.toml, as CI runs the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CHECKS = {
    "lint-imports": ["lint-imports"],
    "ruff check": ["ruff", "check", "."],
    "ruff format": ["ruff", "format", "--check", "."],
    "mypy": ["mypy"],
}


def _tool(name: str) -> str:
    # The console script installed beside this interpreter (the dev extra), else the one on PATH.
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: python3 -m pip install -e '.[dev]'")
    return found


@pytest.mark.parametrize("check", list(CHECKS), ids=list(CHECKS))
def test_the_tree_passes(check):
    cmd = CHECKS[check]
    proc = subprocess.run([_tool(cmd[0]), *cmd[1:]], cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
