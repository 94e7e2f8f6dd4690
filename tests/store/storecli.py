"""The CLI as a real process, and a run directory left with work to do (see conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k2eval.store.runlog import DatasetRecord, ModelRecord, RunManifest

KEY = "sk-test-key-0123456789"


def bare_manifest(run_id: str = "r", **fields: Any) -> RunManifest:
    """The least a manifest holds (no real config: for tests of the files, not of runs)."""
    return RunManifest(run_id=run_id, config={}, model=ModelRecord(label="openai:m"),
                       dataset=DatasetRecord(fingerprint="f" * 16, n_items=0), **fields)


def cli_env() -> dict[str, str]:
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    env.pop("OPENAI_BASE_URL", None)
    return env


def k2eval_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k2eval.cli", *args], capture_output=True,
                          text=True, env=cli_env(), timeout=timeout)


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "k2eval.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env())


@dataclass
class PendingRun:
    """A run directory whose every attempt failed (HTTP 401), and a server that now answers."""

    path: Path
    server: Any
    n_pending: int
    state: dict[str, bool]
