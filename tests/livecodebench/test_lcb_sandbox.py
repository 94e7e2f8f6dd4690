"""Grading inside the Docker sandbox, and whole runs through the engine against the scripted
OpenAI-compatible server (real HTTP, real containers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lcb_rows import PROBLEMS, fenced

import k2eval
from k2eval.adapters.base import Attempt, Item, Score, ScoreContext
from k2eval.adapters.livecodebench import LiveCodeBenchAdapter
from k2eval.spec import ModelSpec, RunConfig, load_task
from k2eval.testing.fake_openai import Reply, last_user_text

pytestmark = pytest.mark.docker


@pytest.fixture
def python_image(require_docker: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shipped Python runner image, built when missing (also for the engine's lookups)."""
    from k2eval.sandbox import ensure_image
    from k2eval.sandbox.images import AUTOBUILD_ENV

    monkeypatch.setenv(AUTOBUILD_ENV, "1")
    return ensure_image("python")


def score_context(image: str, timeout_per_test_s: float = 6) -> ScoreContext:
    from k2eval.sandbox import docker_sandbox

    spec = load_task("livecodebench-v6").with_overrides(
        sandbox_image=image, options={"timeout_per_test_s": timeout_per_test_s})

    @contextlib.asynccontextmanager
    async def factory(tag: str | None, **limits: Any) -> AsyncIterator[Any]:
        assert tag == image
        async with docker_sandbox(tag, purpose="lcb-test") as sandbox:
            yield sandbox

    return ScoreContext(config=RunConfig(task=spec, model=ModelSpec("openai:test")),
                        sandbox_factory=factory)


def grade_all(items: dict[str, Item], replies: list[tuple[str, str]], ctx: ScoreContext) -> list[Score]:
    adapter = LiveCodeBenchAdapter()

    async def one(index: int, qid: str, reply: str) -> Score:
        attempt = Attempt(item_id=qid, index=index,
                          messages=[{"role": "assistant", "content": reply}])
        return await adapter.score(items[qid], attempt, ctx)

    async def every() -> list[Score]:
        return list(await asyncio.gather(*(one(i, q, r) for i, (q, r) in enumerate(replies))))

    return asyncio.run(every())


def test_fixture_solutions_in_the_sandbox(lcb_jsonl: Path, python_image: str) -> None:
    items = {it.id: it for it in LiveCodeBenchAdapter().load(load_task("livecodebench-v6"),
                                                             str(lcb_jsonl))}
    replies = [(qid, fenced(PROBLEMS[qid][kind])) for qid in PROBLEMS for kind in ("correct", "wrong")]
    # numpy is there, as in the official grading environment
    numpy_sum = "import numpy as np\ninput()\nprint(int(np.array(input().split(), dtype=np.int64).sum()))\n"
    replies.append(("abc371_a", fenced(numpy_sum)))
    scores = grade_all(items, replies, score_context(python_image))
    assert scores[-1].correct, scores[-1]
    by_key = {(s.item_id, s.index % 2): s for s in scores[:-1]}
    for qid, failing in (("abc371_a", 3), ("3487", 2), ("2042_c", 1), ("3600", 0)):
        right, wrong = by_key[(qid, 0)], by_key[(qid, 1)]
        assert right.correct and right.details["verdict"] == "passed", right
        assert len(right.details["timings"]) == right.details["n_tests"]
        assert not wrong.correct and wrong.status == "ok"
        assert (wrong.details["verdict"], wrong.details["failed_test"]) == ("wrong answer", failing)
        assert wrong.reason == f"wrong answer on test {failing}"


@pytest.mark.slow
def test_hostile_programs_fail_with_a_reason(lcb_jsonl: Path, python_image: str) -> None:
    items = {it.id: it for it in LiveCodeBenchAdapter().load(load_task("livecodebench-v6"),
                                                             str(lcb_jsonl))}
    programs = {
        "no code": "I would loop over the array and add the numbers.",
        "compile": fenced("def main(:\n    pass\n"),
        "hang": fenced("import time\nwhile True:\n    try:\n        time.sleep(10)\n    except BaseException:\n        pass\n"),
        "network": fenced("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\nprint(6)\n"),
        "memory": fenced("x = bytearray(1 << 40)\nprint(6)\n"),
        "flood": fenced("import sys\nfor _ in range(20):\n    sys.stdout.write('y' * 1000000)\n"),
        "past eof": fenced("while True:\n    input()\n"),
        "fork": fenced("import os\nos.fork()\nprint(6)\n"),
    }
    ctx = score_context(python_image, timeout_per_test_s=3)
    scores = grade_all(items, [("abc371_a", reply) for reply in programs.values()], ctx)
    outcome = {name: s for name, s in zip(programs, scores, strict=True)}
    assert all(s.status == "ok" and s.value == 0.0 for s in scores), scores
    assert outcome["no code"].reason == "no code block"
    assert outcome["compile"].details["verdict"] == "compile error"
    # the alarm is swallowed, so the whole program is killed at (3 + 1) * 4 + 5 = 21 s
    assert outcome["hang"].details["verdict"] == "time limit"
    assert "whole program" in outcome["hang"].details["message"]
    assert outcome["network"].details["verdict"] == "runtime error"
    assert outcome["memory"].details["verdict"] == "runtime error"
    assert "MemoryError" in outcome["memory"].details["message"]
    assert outcome["flood"].details["verdict"] == "wrong answer"
    assert outcome["past eof"].details["verdict"] == "runtime error"
    assert "EOFError" in outcome["past eof"].details["message"]
    assert outcome["fork"].details["verdict"] == "runtime error"


def scripted_model(kinds: dict[str, list[str]]) -> Any:
    """Answer each problem with its scripted solutions in turn (matched on the question)."""
    served: Counter[str] = Counter()
    lock = threading.Lock()

    def respond(request: dict[str, Any]) -> Reply:
        prompt = last_user_text(request)
        qid = next(q for q, p in PROBLEMS.items() if p["question_content"] in prompt)
        with lock:
            kind = kinds[qid][served[qid] % len(kinds[qid])]
            served[qid] += 1
        text = "Sorry, I cannot help." if kind == "none" else fenced(PROBLEMS[qid][kind])
        return Reply(text=text, completion_tokens=50)

    return respond


def test_end_to_end_run_pass_at_1_with_two_samples(lcb_jsonl: Path, python_image: str,
                                                   fake_openai: Any, tmp_path: Path) -> None:
    server = fake_openai(scripted_model({"abc371_a": ["correct", "correct"],
                                         "3487": ["correct", "wrong"],
                                         "2042_c": ["wrong", "none"],
                                         "3600": ["none", "correct"]}))
    run = k2eval.evaluate("livecodebench-v6", "openai:kimi-k2", base_url=server.base_url,
                          data=lcb_jsonl, k=2, out=tmp_path, sandboxes=4, concurrency=8)
    summary = run.summary
    # per problem c/n: 2/2, 1/2, 0/2, 1/2 -> pass@1 = 50%
    assert summary["score"] == pytest.approx(50.0)
    assert summary["metric_label"] == "Pass@1"
    assert summary["n_items"] == 4 and summary["n_attempts"] == 8 and summary["n_errors"] == 0
    assert summary["breakdowns"]["platform"]["atcoder"]["score"] == pytest.approx(100.0)
    assert summary["breakdowns"]["platform"]["leetcode"]["score"] == pytest.approx(50.0)
    assert summary["breakdowns"]["difficulty"]["hard"]["score"] == pytest.approx(0.0)
    requests = server.requests
    assert len(requests) == 8
    assert requests[0]["messages"][0]["content"].startswith("You are an expert Python programmer.")
    assert all(r["max_tokens"] == 8192 and r["temperature"] == 0.6 for r in requests)
    rows = [json.loads(line) for line in (run.path / "scores.jsonl").read_text().splitlines()]
    reasons = Counter(r["reason"] for r in rows)
    assert reasons["passed"] == 4 and reasons["no code block"] == 2
    assert {r["details"].get("verdict") for r in rows} == {"passed", "wrong answer", "no code block"}


def test_pass_at_5_is_reported_when_there_are_five_samples(lcb_jsonl: Path, python_image: str,
                                                           fake_openai: Any, tmp_path: Path) -> None:
    server = fake_openai(scripted_model({"abc371_a": ["correct", "wrong", "wrong", "wrong", "wrong"],
                                         "3487": ["wrong"], "2042_c": ["none"], "3600": ["correct"]}))
    run = k2eval.evaluate("livecodebench-v6", "openai:kimi-k2", base_url=server.base_url,
                          data=lcb_jsonl, k=5, out=tmp_path, sandboxes=4, concurrency=8,
                          item_ids=["abc371_a", "3487", "3600"])
    summary = run.summary
    # pass@1: (1/5 + 0 + 1) / 3; pass@5: (1 + 0 + 1) / 3
    assert summary["score"] == pytest.approx(100 * (0.2 + 1) / 3, abs=1e-3)
    assert summary["pass_at_k"]["pass@5"] == pytest.approx(100 * 2 / 3, abs=1e-3)
