"""Fixtures for the run-directory tests: a run left with work to do, and a server to do it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

# The test modules import the CLI helpers from `storecli` under any import mode.
sys.path.insert(0, str(Path(__file__).parent))

from storecli import PendingRun

from k2eval.engine.config import build_run_config
from k2eval.engine.runner import run_async
from k2eval.testing.fake_openai import Fault, Reply


@pytest.fixture
def pending_run(fake_openai: Any, shared_data: Path, tmp_path: Path) -> PendingRun:
    state = {"fail": True}

    def respond(body: dict[str, Any]) -> Reply | Fault:
        return Fault("400") if state["fail"] else Reply(text="\\boxed{70}")

    srv = fake_openai(respond)  # tests set srv.latency to hold the lock long enough
    config = build_run_config("aime2025", "openai:m", base_url=srv.base_url,
                              data=shared_data / "aime" / "aime25.jsonl", limit=6, k=2,
                              concurrency=2)
    run = asyncio.run(run_async(config, tmp_path / "runs", "pending", progress=False))
    assert run.summary["n_errors"] == 12
    state["fail"] = False
    srv.requests.clear()
    return PendingRun(run.path, srv, 12, state)
