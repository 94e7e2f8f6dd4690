"""Fixtures for the run-directory tests: the CLI as a real process, and a run left with work to do."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from k2eval.engine.config import build_run_config
from k2eval.engine.runner import run_async
from k2eval.testing.fake_openai import Fault, Reply

KEY = "sk-test-key-0123456789"


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


@pytest.fixture
def pending_run(fake_openai: Any, shared_data: Path, tmp_path: Path) -> PendingRun:
    state = {"fail": True}

    def respond(body: dict[str, Any]) -> Reply | Fault:
        return Fault("401") if state["fail"] else Reply(text="\\boxed{70}")

    srv = fake_openai(respond)  # tests set srv.latency to hold the lock long enough
    config = build_run_config("aime2025", "openai:m", base_url=srv.base_url,
                              data=shared_data / "aime" / "aime25.jsonl", limit=6, k=2,
                              concurrency=2)
    run = asyncio.run(run_async(config, tmp_path / "runs", "pending", progress=False))
    assert run.summary["n_errors"] == 12
    state["fail"] = False
    srv.requests.clear()
    return PendingRun(run.path, srv, 12, state)
