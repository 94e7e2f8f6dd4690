"""Model calls that cannot succeed, over real HTTP: each is classified once for both clients.

Context overflows, authentication failures, rate limits that never lift, servers that trickle
their answer, and credentials in the base URL; the engine and the `k2eval` command act on each.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_run_cli import KEY, k2eval_cli

import k2eval
from k2eval.adapters.base import (
    Adapter,
    Attempt,
    AttemptContext,
    Item,
    Score,
    ScoreContext,
    SolveResult,
    derived_seed,
)
from k2eval.engine.progress import Progress
from k2eval.engine.retry import RetryingChatModel, RetryPolicy
from k2eval.errors import (
    AuthenticationFailed,
    ContextOverflow,
    EndpointRefused,
    FatalModelError,
    RetryableModelError,
)
from k2eval.models.base import Sampling
from k2eval.models.openai_api import OpenAIChatModel
from k2eval.spec import ModelSpec, RunConfig, TaskSpec
from k2eval.testing.fake_openai import Fault, Reply

CLIENTS = ["sdk", "aiohttp"]
HELLO = [{"role": "user", "content": "hello"}]


def call_once(base_url: str, client: str, *, timeout: float = 30.0) -> Any:
    """One `complete` through the real client; returns the completion or the exception."""

    async def go() -> Any:
        model = OpenAIChatModel(ModelSpec("openai:m", base_url=base_url, http_client=client,
                                          request_timeout_s=timeout))
        try:
            return await model.complete(HELLO, None, Sampling(max_tokens=16))
        except Exception as exc:
            return exc
        finally:
            await model.aclose()

    return asyncio.run(go())


# -- classification: one classifier, both clients --------------------------------------------

OVERFLOW_BODIES = {
    "openai": {"error": {"message": "This model's maximum context length is 8192 tokens. However, "
                                    "your messages resulted in 9001 tokens. Please reduce the "
                                    "length of the messages.", "type": "invalid_request_error",
                         "param": "messages", "code": "context_length_exceeded"}},
    "vllm-flat": {"object": "error", "message": "This model's maximum context length is 4096 "
                  "tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the "
                  "completion).", "type": "BadRequestError", "param": None, "code": 400},
    "vllm-max-tokens": {"error": {"message": "'max_tokens' or 'max_completion_tokens' is too "
                                  "large: 8192. This model's maximum context length is 4096 tokens "
                                  "and your request has 2778 input tokens (8192 > 4096 - 2778).",
                                  "type": "BadRequestError", "param": None, "code": 400}},
    "vllm-decoder": {"error": {"message": "The decoder prompt (length 40000) is longer than the "
                               "maximum model length of 32768. Make sure that `max_model_len` is "
                               "no smaller than the number of text tokens.", "code": 400}},
    "sglang-input": {"object": "error", "message": "The input (40000 tokens) is longer than the "
                     "model's context length (32768 tokens).", "type": "BadRequestError",
                     "code": 400},
    "sglang-requested": {"object": "error", "message": "Requested token count exceeds the model's "
                         "maximum context length of 32768 tokens. You requested a total of 40960 "
                         "tokens: 32768 tokens from the input messages and 8192 tokens for the "
                         "completion.", "code": 400},
    "code-only": {"error": {"message": "Input is over the limit.", "code": "context_length_exceeded"}},
}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("flavour", sorted(OVERFLOW_BODIES))
def test_context_overflow_wordings_are_recognised(fake_openai: Any, client: str, flavour: str) -> None:
    srv = fake_openai(lambda body: Fault("400", body=OVERFLOW_BODIES[flavour]))
    exc = call_once(srv.base_url, client)
    assert isinstance(exc, ContextOverflow), exc
    assert exc.status == 400 and not exc.retryable and "context window exceeded" in str(exc)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("body", [
    {"error": {"message": "tools[0].function.name is required", "code": "invalid_value"}},
    {"detail": "Unknown model 'm'"},
])
def test_other_bad_requests_stay_plain_fatal_errors(fake_openai: Any, client: str, body: dict[str, Any]) -> None:
    srv = fake_openai(lambda _: Fault("400", body=body))
    exc = call_once(srv.base_url, client)
    assert type(exc) is FatalModelError and exc.status == 400, exc


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("status", ["401", "403"])
def test_rejected_credentials_are_run_fatal(fake_openai: Any, client: str, status: str) -> None:
    srv = fake_openai(lambda _: Fault(status))
    exc = call_once(srv.base_url, client)
    assert isinstance(exc, AuthenticationFailed) and exc.status == int(status), exc
    assert srv.base_url in str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_trickling_answer_is_cut_at_the_request_timeout(fake_openai: Any, client: str) -> None:
    # A byte every 0.2 s keeps every read short; only a bound on the whole call stops it.
    srv = fake_openai(lambda _: Fault("trickle", interval=0.2, duration=30.0))
    start = time.monotonic()
    exc = call_once(srv.base_url, client, timeout=1.0)
    elapsed = time.monotonic() - start
    assert isinstance(exc, RetryableModelError) and "timed out after 1 s" in str(exc), exc
    assert elapsed < 15, f"the call ran {elapsed:.0f} s, past its 1 s timeout"


@pytest.mark.parametrize("client", CLIENTS)
def test_a_slow_trickle_that_ends_within_the_timeout_is_an_answer(fake_openai: Any, client: str) -> None:
    srv = fake_openai(lambda _: Fault("trickle", interval=0.1, duration=0.3))
    completion = call_once(srv.base_url, client, timeout=20.0)
    assert not isinstance(completion, Exception), completion
    assert completion.text == "late"


# -- retries: Retry-After capped and announced; a refusing endpoint stops the run -------------

def retrying(base_url: str, notes: list[str], **policy: Any) -> RetryingChatModel:
    inner = OpenAIChatModel(ModelSpec("openai:m", base_url=base_url))
    return RetryingChatModel(inner, RetryPolicy(**policy), notify=notes.append)


def test_retry_after_is_capped_and_the_wait_is_announced(fake_openai: Any) -> None:
    answers = iter([Fault("429", retry_after=3600), Reply(text="fine")])
    srv = fake_openai(lambda _: next(answers))
    notes: list[str] = []

    async def go() -> Any:
        model = retrying(srv.base_url, notes, max_retry_after=0.2)
        try:
            return await model.complete(HELLO, None, Sampling())
        finally:
            await model.aclose()

    start = time.monotonic()
    completion = asyncio.run(go())
    assert completion.text == "fine" and completion.usage.retries == 1
    assert time.monotonic() - start < 30
    assert len(notes) == 1
    assert "HTTP 429" in notes[0] and "Retry-After 3600 s, capped by --max-retry-after 0.2" in notes[0]
    assert "try 2/6 in 0.2 s" in notes[0]


def test_consecutive_refused_calls_stop_the_run_and_only_a_success_resets_the_count(
        fake_openai: Any) -> None:
    # Each call's message names its outcome, which holds for both of its tries. A 500 that
    # runs out of tries is an attempt error but no refusal: it neither counts nor resets.
    script = ["429", "503", "ok", "429", "500", "429", "429"]

    def respond(body: dict[str, Any]) -> Reply | Fault:
        outcome = body["messages"][0]["content"]
        return Reply(text="ok") if outcome == "ok" else Fault(outcome, retry_after=0)

    srv = fake_openai(respond)
    outcomes: list[str] = []

    async def go() -> None:
        model = retrying(srv.base_url, [], max_tries=2, max_refused_calls=3)
        try:
            for outcome in script:
                try:
                    await model.complete([{"role": "user", "content": outcome}], None, Sampling())
                    outcomes.append("ok")
                except EndpointRefused as exc:
                    assert "refused 3 calls in a row, each after 2 tries" in str(exc)
                    outcomes.append("stop")
                except RetryableModelError as exc:
                    assert "gave up after 2 tries" in str(exc)
                    outcomes.append("error")
        finally:
            await model.aclose()

    asyncio.run(go())
    assert outcomes == ["error", "error", "ok", "error", "error", "error", "stop"]
    assert len(srv.requests) == 13  # 6 failed calls x 2 tries + 1 answer


def test_waits_are_printed_at_most_once_per_interval_and_shown_on_the_next_line() -> None:
    out = io.StringIO()
    bar = Progress(2, "aime2025", stream=out, interval_s=3600)
    bar.note("m: HTTP 429: slow down; try 2/6 in 60.0 s")
    bar.note("m: HTTP 429: slow down; try 3/6 in 60.0 s")  # within the interval: not printed
    bar.update()
    bar.update()
    lines = out.getvalue().splitlines()
    assert lines[0] == "[aime2025] waiting: m: HTTP 429: slow down; try 2/6 in 60.0 s"
    assert len(lines) == 2 and lines[1].startswith("[aime2025] 2/2 (100%)")
    assert lines[1].endswith("waiting: m: HTTP 429: slow down; try 3/6 in 60.0 s")


# -- credentials in the base URL ---------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_credentials_in_the_base_url_are_sent_as_basic_auth(fake_openai: Any, client: str) -> None:
    srv = fake_openai(lambda _: Reply(text="in"), auth=("alice", "p@ss:w"))
    url = srv.base_url.replace("http://", "http://alice:p%40ss%3Aw@")
    completion = call_once(url, client)
    assert not isinstance(completion, Exception), completion
    assert completion.text == "in"
    wrong = call_once(srv.base_url.replace("http://", "http://alice:nope@"), client)
    assert isinstance(wrong, AuthenticationFailed)
    assert "nope" not in str(wrong) and "alice:[REDACTED]@" in str(wrong)


def test_the_model_describes_its_endpoint_without_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    model = OpenAIChatModel(ModelSpec("openai:m", base_url="http://bob:pw@127.0.0.1:9/v1"))
    assert model.describe()["base_url"] == "http://bob:[REDACTED]@127.0.0.1:9/v1"
    assert model.base_url == "http://127.0.0.1:9/v1"
    asyncio.run(model.aclose())


# -- the engine: a context overflow mid-conversation is the model's failure --------------------

class ThreeTurns(Adapter):
    """A conversation of three agent calls per item; every finished conversation scores 1."""

    name = "three-turns"

    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        return [Item(str(i), {"q": f"question {i}"}) for i in range(3)]

    async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
        messages: list[dict[str, Any]] = [{"role": "user", "content": item.data["q"]}]
        for turn in range(3):
            completion = await ctx.chat(messages)
            messages += [completion.as_message(), {"role": "user", "content": f"go on {turn}"}]
        return SolveResult(messages, {"text": "done"})

    async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
        return Score(item.id, attempt.index, 1.0, "finished the conversation")


def three_turns_config(base_url: str) -> RunConfig:
    task = TaskSpec(name="three-turns", adapter="three-turns", benchmark="t", group="t",
                    metric="avg@k", k=1, max_output_tokens=64, temperature=0.0)
    return RunConfig(task=task, model=ModelSpec("openai:m", base_url=base_url), concurrency=2)


@pytest.fixture
def three_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    import k2eval.engine.runner as runner

    monkeypatch.setattr(runner, "get_adapter", lambda name: ThreeTurns())


def overflow_on(item_question: str, from_messages: int) -> Any:
    def respond(body: dict[str, Any]) -> Reply | Fault:
        msgs = body["messages"]
        if msgs[0]["content"] == item_question and len(msgs) >= from_messages:
            return Fault("400", body=OVERFLOW_BODIES["vllm-flat"])
        return Reply(text=f"answer {len(msgs)}")

    return respond


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_context_overflow_mid_conversation_is_a_finished_attempt_scored_zero(
        fake_openai: Any, three_turns: None, tmp_path: Path) -> None:
    from k2eval.engine.runner import run_async

    srv = fake_openai(overflow_on("question 1", from_messages=5))  # the third call of item 1
    run = asyncio.run(run_async(three_turns_config(srv.base_url), tmp_path, "r", progress=False))
    s = run.summary
    assert (s["n_attempts"], s["n_errors"], s["complete"]) == (3, 0, True)
    assert s["score"] == pytest.approx(200 / 3)
    attempt = next(a for a in read_jsonl(run.path / "attempts.jsonl") if a["item_id"] == "1")
    assert attempt["status"] == "ok" and attempt["error"] is None
    assert attempt["output"]["ended_by"] == "context_overflow"
    assert attempt["output"]["role"] == "agent"
    assert "maximum context length is 4096" in attempt["output"]["reason"]
    # The transcript so far: exactly the messages of the call that overflowed.
    assert [m["content"] for m in attempt["messages"]] == [
        "question 1", "answer 1", "go on 0", "answer 3", "go on 1"]
    assert len(attempt["calls"]) == 2
    score = next(x for x in read_jsonl(run.path / "scores.jsonl") if x["item_id"] == "1")
    assert score["score"] == 0.0 and score["status"] == "ok"
    assert score["reason"].startswith("context overflow (agent model)")

    before = len(srv.requests)
    resumed = k2eval.resume_run(run.path, progress=False)
    assert len(srv.requests) == before, "resume repeated a finished (overflowed) attempt"
    assert resumed.summary["score"] == pytest.approx(200 / 3)
    rescored = k2eval.rescore_run(run.path, progress=False)
    assert rescored.summary["score"] == pytest.approx(200 / 3)


def test_context_overflow_on_the_first_call_is_an_error_not_a_zero(
        fake_openai: Any, three_turns: None, tmp_path: Path) -> None:
    from k2eval.engine.runner import run_async

    srv = fake_openai(overflow_on("question 2", from_messages=1))
    run = asyncio.run(run_async(three_turns_config(srv.base_url), tmp_path, "r", progress=False))
    s = run.summary
    assert (s["n_errors"], s["complete"], s["score"]) == (1, False, 100.0)
    attempt = next(a for a in read_jsonl(run.path / "attempts.jsonl") if a["item_id"] == "2")
    assert attempt["status"] == "error" and attempt["error"]["type"] == "ContextOverflow"
    assert "serve a longer context or lower --max-tokens" in attempt["error"]["message"]


# -- the command line ----------------------------------------------------------------------------

def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line, after checking there is no traceback and nothing else like it."""
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.fixture
def aime_args(shared_data: Path, tmp_path: Path) -> list[str]:
    return ["--task", "aime2025", "--model", "openai:m", "--data",
            str(shared_data / "aime" / "aime25.jsonl"), "--k", "1", "--out", str(tmp_path)]


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--max-tries", "0", "--max-tries must be >= 1 (got 0)"),
    ("--request-timeout", "-1", "--request-timeout must be a positive number of seconds"),
    ("--request-timeout", "0", "--request-timeout must be a positive number of seconds"),
    ("--request-timeout", "nan", "--request-timeout must be a positive number of seconds"),
    ("--max-retry-after", "-5", "--max-retry-after must be a positive number of seconds"),
])
def test_bad_retry_settings_are_one_line_errors(flag: str, value: str, needle: str) -> None:
    proc = k2eval_cli("run", "--task", "aime2025", "--model", "openai:m", flag, value)
    assert proc.returncode == 2
    assert needle in error_line(proc)


def test_an_endpoint_that_keeps_refusing_stops_the_run_and_resume_finishes_it(
        fake_openai: Any, aime_args: list[str], tmp_path: Path) -> None:
    good = {"n": 2}

    def respond(body: dict[str, Any]) -> Reply | Fault:
        if good["n"] > 0:
            good["n"] -= 1
            return Reply(text="\\boxed{1}")
        return Fault("429", retry_after=3600)

    srv = fake_openai(respond)
    proc = k2eval_cli("run", *aime_args, "--base-url", srv.base_url, "--limit", "10",
                      "--concurrency", "1", "--max-tries", "2", "--max-retry-after", "0.05",
                      "--run-id", "refused")
    run_dir = tmp_path / "refused"
    assert proc.returncode == 4, proc.stderr
    line = error_line(proc)
    assert "refused 5 calls in a row, each after 2 tries" in line and "HTTP 429" in line
    assert f"k2eval resume {run_dir}" in line
    assert "waiting: m: HTTP 429" in proc.stderr
    assert "Retry-After 3600 s, capped by --max-retry-after 0.05" in proc.stderr
    assert len(srv.requests) == 2 + 5 * 2
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "stopped" and "refused 5 calls" in manifest["error"]
    journal = read_jsonl(run_dir / "attempts.jsonl")
    assert [a["status"] for a in journal] == ["ok", "ok", "error", "error", "error", "error"]

    srv.responder = lambda body: Reply(text="\\boxed{1}")
    before = len(srv.requests)
    resumed = k2eval_cli("resume", str(run_dir), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert len(srv.requests) - before == 8, "resume repeated an attempt that had finished"


def test_rejected_credentials_after_the_preflight_stop_the_run_at_once(
        fake_openai: Any, aime_args: list[str], tmp_path: Path) -> None:
    srv = fake_openai(lambda body: Fault("401"))
    proc = k2eval_cli("run", *aime_args, "--base-url", srv.base_url, "--concurrency", "2",
                      "--run-id", "denied", "--no-progress")
    assert proc.returncode == 4, proc.stderr
    line = error_line(proc)
    assert f"{srv.base_url} rejected the credentials (HTTP 401" in line
    assert len(srv.requests) <= 2, "attempts kept being sent after a 401"
    manifest = json.loads((tmp_path / "denied" / "manifest.json").read_text())
    assert manifest["status"] == "stopped"


@pytest.mark.parametrize("client", CLIENTS)
def test_credentials_in_the_base_url_work_and_never_reach_the_run_directory(
        fake_openai: Any, aime_args: list[str], tmp_path: Path, client: str) -> None:
    password = "hunter2-Secret"
    flaky_seed, failed = derived_seed(0, "1", 0) % (2**31), []

    def respond(body: dict[str, Any]) -> Reply | Fault:
        if body["seed"] == flaky_seed and not failed:
            failed.append(body["seed"])
            return Fault("500")
        return Reply(text="\\boxed{1}")

    srv = fake_openai(respond, auth=("carol", password))
    url = srv.base_url.replace("http://", f"http://carol:{password}@")
    proc = k2eval_cli("run", *aime_args, "--base-url", url, "--limit", "3", "--max-tries", "1",
                      "--http-client", client, "--run-id", "creds")
    run_dir = tmp_path / "creds"
    assert proc.returncode == 3, proc.stderr  # one attempt failed (HTTP 500): resume finishes it
    manifest = json.loads((run_dir / "manifest.json").read_text())
    shown = srv.base_url.replace("http://", "http://carol:[REDACTED]@")
    assert manifest["model"]["base_url"] == shown
    assert manifest["config"]["model"]["base_url"] == shown
    assert shown in manifest["command"]
    for text in [proc.stdout, proc.stderr, *(p.read_text() for p in run_dir.iterdir())]:
        assert password not in text

    missing = k2eval_cli("resume", str(run_dir), "--no-progress")
    assert missing.returncode == 2
    assert "password of" in error_line(missing) and "--base-url" in error_line(missing)
    elsewhere = k2eval_cli("resume", str(run_dir), "--base-url",
                           f"http://carol:{password}@127.0.0.1:9/v1")
    assert elsewhere.returncode == 2 and "is not this run's endpoint" in error_line(elsewhere)
    assert password not in elsewhere.stderr

    resumed = k2eval_cli("resume", str(run_dir), "--no-progress", "--base-url", url)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "summary.json").read_text())["complete"] is True
    for path in run_dir.iterdir():
        assert password not in path.read_text(), path.name


def test_ctrl_c_names_the_real_run_directory(fake_openai: Any, aime_args: list[str], tmp_path: Path) -> None:
    srv = fake_openai(lambda body: Fault("hang"))
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-m", "k2eval.cli", "run", *aime_args, "--base-url",
                             srv.base_url, "--run-id", "stopped-here", "--no-progress"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not srv.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"continue with `k2eval resume {tmp_path / 'stopped-here'}`" in stderr
    assert "RUN_DIR" not in stderr


def test_a_tau2_conversation_that_outgrows_the_context_keeps_its_transcript_and_scores_zero(
        fake_openai: Any, shared_data: Path, tmp_path: Path) -> None:
    def respond(body: dict[str, Any]) -> Reply | Fault:
        msgs = body["messages"]
        if "<policy>" not in str(msgs[0].get("content")):
            return Reply(text="Please help me with my request.")  # the user simulator
        if sum(1 for m in msgs if m["role"] == "assistant") >= 2:
            return Fault("400", body=OVERFLOW_BODIES["openai"])
        return Reply(text="How can I help you today?")

    srv = fake_openai(respond)
    run = k2eval.evaluate("tau2-retail", "openai:agent", base_url=srv.base_url,
                          user_model=ModelSpec("openai:user", base_url=srv.base_url),
                          data=str(shared_data / "tau2"), item_ids=["0"], k=1, out=tmp_path,
                          run_id="tau2")
    assert (run.summary["n_errors"], run.summary["complete"], run.summary["score"]) == (0, True, 0.0)
    [attempt] = read_jsonl(run.path / "attempts.jsonl")
    assert attempt["output"]["ended_by"] == "context_overflow"
    roles = [m["role"] for m in attempt["messages"]]
    assert roles[0] == "system" and roles.count("assistant") == 2 and roles[-1] == "user"
    [score] = read_jsonl(run.path / "scores.jsonl")
    assert score["score"] == 0.0 and "maximum context length is 8192" in score["reason"]
    before = len(srv.requests)
    k2eval.resume_run(run.path, progress=False)
    assert len(srv.requests) == before
