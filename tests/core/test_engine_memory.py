"""The engine keeps a bounded number of transcripts in memory, whatever the number of attempts.

Peak RSS for 20,000 and 100,000 attempts is measured by perf/engine_throughput.py; these tests
pin the mechanism: transcripts leave memory once journaled and graded, the summary reads only
status, usage and scores, and a grader that fails cannot leave solvers waiting forever on the
bounded grading queue.
"""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path
from typing import Any

import pytest

import k2eval
from k2eval.adapters.aime import AimeAdapter
from k2eval.engine import runner
from k2eval.engine.config import build_run_config
from k2eval.errors import ConfigError
from k2eval.records import Attempt, Score
from k2eval.testing.fake_openai import Reply


@pytest.fixture
def aime(shared_data: Path) -> Path:
    return shared_data / "aime" / "aime25.jsonl"


def test_transcripts_are_not_kept_in_memory_once_journaled_and_graded(
        fake_openai: Any, aime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = fake_openai(lambda body: Reply(text="so \\boxed{70}", completion_tokens=7))
    alive: list[int] = []
    finish = runner.Engine._finish

    def counting_finish(self: runner.Engine, *args: Any) -> dict[str, Any]:
        gc.collect()
        alive.append(sum(isinstance(o, Attempt) for o in gc.get_objects()))
        return finish(self, *args)

    monkeypatch.setattr(runner.Engine, "_finish", counting_finish)
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=12,
                          concurrency=4, out=tmp_path, run_id="many")
    s = run.summary
    assert (s["n_attempts"], s["n_errors"], s["complete"]) == (360, 0, True)
    assert s["usage"]["calls"] == 360 and s["usage"]["completion_tokens"] == 7 * 360
    assert s["score"] == pytest.approx(100 / 30, abs=1e-3)  # only problem 1 has the answer 70
    lines = (run.path / "attempts.jsonl").read_text().splitlines()
    assert len(lines) == 360 and "boxed{70}" in json.loads(lines[0])["messages"][-1]["content"]
    assert alive and alive[0] <= 16, f"{alive[0]} attempts with transcripts still in memory"


def test_summary_scores_keep_details_only_for_adapters_whose_summary_reads_them() -> None:
    score = Score("7", 3, 1.0, reason="correct", details={"extracted": "70", "gold": "70"})
    light = runner.summary_score(score, AimeAdapter())
    assert (light.item_id, light.index, light.value, light.status) == ("7", 3, 1.0, "ok")
    assert light.reason == "" and light.details == {}

    class Reads(AimeAdapter):
        summary_reads_details = True

    assert runner.summary_score(score, Reads()) is score


def test_a_grader_that_raises_stops_the_run_instead_of_hanging_the_solvers(
        fake_openai: Any, aime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = fake_openai(lambda body: Reply(text="\\boxed{1}"))

    async def broken(self: AimeAdapter, item: Any, attempt: Any, ctx: Any) -> Score:
        raise ConfigError("grader misconfigured")

    monkeypatch.setattr(AimeAdapter, "score", broken)
    config = build_run_config("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=8,
                              concurrency=2)

    async def go() -> None:
        await asyncio.wait_for(runner.run_async(config, tmp_path, "broken", progress=False), 60)

    with pytest.raises(ConfigError, match="grader misconfigured"):
        asyncio.run(go())
    assert len(srv.requests) < 240, "the solvers went on after the grader failed"
