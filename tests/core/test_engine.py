"""The engine over real HTTP: scores, retries and faults, errors, resume, rescore, secrets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import k2eval
from k2eval.adapters.aime import PROMPT_SUFFIX
from k2eval.engine.retry import RetryPolicy
from k2eval.testing.fake_openai import Fault, Reply, last_user_text

KEY = "sk-test-key-0123456789"


def answers(aime: Path) -> dict[str, str]:
    rows = [json.loads(line) for line in aime.read_text().splitlines() if line.strip()]
    return {r["problem"]: r["answer"] for r in rows}


def problem_of(body: dict[str, Any]) -> str:
    return last_user_text(body).removesuffix("\n" + PROMPT_SUFFIX)


def oracle(aime: Path, correct_first: int) -> Any:
    """Right answers for the first `correct_first` problems of the file, wrong for the rest."""
    table = answers(aime)
    order = list(table)

    def respond(body: dict[str, Any]) -> Reply:
        problem = problem_of(body)
        gold = table[problem]
        ok = order.index(problem) < correct_first
        return Reply(text=f"work\n\\boxed{{{gold if ok else int(gold) + 1}}}")

    return respond


@pytest.mark.parametrize("http_client", ["sdk", "aiohttp"])
def test_run_writes_the_run_directory(fake_openai: Any, aime: Path, tmp_path: Path, http_client: str) -> None:
    srv = fake_openai(oracle(aime, 3))
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=3, limit=6,
                          out=tmp_path, http_client=http_client, run_id="r1", concurrency=4)
    s = run.summary
    assert s["score"] == pytest.approx(50.0)
    assert (s["n_items"], s["n_attempts"], s["n_errors"], s["k"]) == (6, 18, 0, 3)
    assert s["metric_label"] == "Avg@3" and s["complete"] is True
    assert s["ci95"][0] < 50.0 < s["ci95"][1]
    assert s["usage"]["calls"] == 18 and s["usage"]["completion_tokens"] > 0
    files = {p.name for p in run.path.iterdir()}
    assert {"manifest.json", "attempts.jsonl", "scores.jsonl", "summary.json"} <= files
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["config"]["task"]["k"] == 3
    assert manifest["config"]["task"]["max_output_tokens"] == 8192
    assert manifest["config"]["task"]["temperature"] == 0.6
    assert manifest["status"] == "finished"
    assert manifest["model"]["api_key_env"] == "OPENAI_API_KEY"
    for path in run.path.iterdir():
        assert KEY not in path.read_text(), f"secret leaked into {path.name}"
    seeds = [r["seed"] for r in srv.requests]
    assert len(set(seeds)) == 18, "each attempt carries its own sampling seed"
    assert all(r["max_tokens"] == 8192 and r["temperature"] == 0.6 for r in srv.requests)


@pytest.mark.parametrize("http_client", ["sdk", "aiohttp"])
def test_transient_faults_are_retried(fake_openai: Any, aime: Path, tmp_path: Path, http_client: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    delay = RetryPolicy.delay  # the policy's own waits, cut short: the test counts tries, not seconds
    monkeypatch.setattr(RetryPolicy, "delay", lambda *args: min(delay(*args), 0.05))
    script = [Fault("429", retry_after=0.2), Fault("500"), Fault("malformed"), Fault("drop")]
    seen: Counter[str] = Counter()
    good = oracle(aime, 30)

    def respond(body: dict[str, Any]) -> Reply | Fault:
        p = problem_of(body)
        seen[p] += 1
        return script[seen[p] - 1] if seen[p] <= len(script) else good(body)

    srv = fake_openai(respond)
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=1, limit=2,
                          out=tmp_path, http_client=http_client, max_tries=6)
    assert run.summary["n_errors"] == 0 and run.summary["score"] == 100.0
    assert run.summary["usage"]["retries"] == 8
    assert len(srv.requests) == 10
    attempts = [json.loads(x) for x in (run.path / "attempts.jsonl").read_text().splitlines()]
    assert [a["calls"][0]["retries"] for a in attempts] == [4, 4]


@pytest.mark.parametrize("http_client", ["sdk", "aiohttp"])
def test_hung_request_times_out_and_is_retried(fake_openai: Any, aime: Path, tmp_path: Path, http_client: str) -> None:
    calls: Counter[str] = Counter()
    good = oracle(aime, 30)

    def respond(body: dict[str, Any]) -> Reply | Fault:
        calls["n"] += 1
        return Fault("hang") if calls["n"] == 1 else good(body)

    srv = fake_openai(respond)
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=1, limit=1,
                          out=tmp_path, http_client=http_client, request_timeout_s=0.5, max_tries=3)
    assert run.summary["score"] == 100.0 and run.summary["usage"]["retries"] == 1


@pytest.mark.parametrize("http_client", ["sdk", "aiohttp"])
def test_persistent_failure_is_an_error_not_a_wrong_answer(fake_openai: Any, aime: Path,
                                                          tmp_path: Path, http_client: str) -> None:
    srv = fake_openai(lambda body: Fault("500"))
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=2, limit=2,
                          out=tmp_path, http_client=http_client, run_id="bad", max_tries=2)
    s = run.summary
    assert (s["n_attempts"], s["n_errors"], s["score"], s["complete"]) == (4, 4, None, False)
    assert len(srv.requests) == 8  # 2 tries each
    assert (run.path / "scores.jsonl").exists() is False or not (run.path / "scores.jsonl").read_text()
    rows = [json.loads(x) for x in (run.path / "attempts.jsonl").read_text().splitlines()]
    assert all(r["status"] == "error" and "HTTP 500" in r["error"]["message"] for r in rows)
    assert json.loads((run.path / "manifest.json").read_text())["status"] == "incomplete"

    # Errored attempts are retried by resume once the endpoint is healthy again.
    srv.responder = oracle(aime, 30)
    resumed = k2eval.resume_run(run.path, progress=False)
    assert resumed.summary["complete"] and resumed.summary["score"] == 100.0
    assert resumed.summary["n_errors"] == 0


@pytest.mark.parametrize("http_client", ["sdk", "aiohttp"])
def test_fatal_status_is_not_retried(fake_openai: Any, aime: Path, tmp_path: Path, http_client: str) -> None:
    srv = fake_openai(lambda body: Fault("400"))
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=1, limit=2,
                          out=tmp_path, http_client=http_client, max_tries=5)
    assert run.summary["n_errors"] == 2 and len(srv.requests) == 2


def test_rescore_makes_no_model_calls(fake_openai: Any, aime: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    srv = fake_openai(oracle(aime, 2))
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=2, limit=4,
                          out=tmp_path)
    before = len(srv.requests)
    (run.path / "scores.jsonl").write_text("")  # grades lost; attempts remain
    monkeypatch.delenv("OPENAI_API_KEY")
    again = k2eval.rescore_run(run.path, progress=False)
    assert len(srv.requests) == before
    assert again.summary["score"] == run.summary["score"] == pytest.approx(50.0)
    assert len((run.path / "scores.jsonl").read_text().splitlines()) == 8


def test_partial_journal_line_is_dropped_and_resumed(fake_openai: Any, aime: Path,
                                                     tmp_path: Path) -> None:
    srv = fake_openai(oracle(aime, 30))
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=1, limit=3,
                          out=tmp_path)
    journal = run.path / "attempts.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])  # a cut-short write
    before = len(srv.requests)
    resumed = k2eval.resume_run(run.path, progress=False)
    assert len(srv.requests) == before + 1
    assert resumed.summary["complete"] and resumed.summary["n_attempts"] == 3
    assert all(json.loads(x) for x in journal.read_text().splitlines())


def test_step_limit_ends_an_attempt(fake_openai: Any) -> None:
    import asyncio

    from k2eval.adapters.base import AttemptContext, Item
    from k2eval.engine.config import build_run_config
    from k2eval.errors import LimitExceeded
    from k2eval.models import resolve_model

    srv = fake_openai(lambda body: Reply(text="ok"))
    config = build_run_config("aime2025", "openai:m", base_url=srv.base_url, max_steps=2)

    async def go() -> int:
        model = resolve_model(config.model)
        ctx = AttemptContext(item=Item("x", {}), index=0, config=config, model=model)
        try:
            for _ in range(5):
                await ctx.chat([{"role": "user", "content": "hi"}])
        except LimitExceeded:
            return ctx.steps
        finally:
            await model.aclose()
        return -1

    assert asyncio.run(go()) == 2


def test_the_journal_keeps_a_long_reply_once(fake_openai: Any, aime: Path, tmp_path: Path) -> None:
    """A reply is stored in the transcript only, not copied into the adapter output."""
    filler = "x" * 200_000
    srv = fake_openai(lambda body: Reply(text=f"{filler}\n\\boxed{{7}}"))
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=1,
                          limit=2, out=tmp_path, run_id="long")
    journal = (run.path / "attempts.jsonl").read_text()
    assert journal.count(filler) == 2  # one per attempt
    assert run.summary["n_attempts"] == 2 and run.summary["complete"]
