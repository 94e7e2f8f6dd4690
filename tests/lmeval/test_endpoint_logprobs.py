"""An endpoint's `/v1/completions` as vLLM serves it, scripted: prompt log-probabilities
(`echo` and `logprobs`) for log-likelihoods, and raw-prompt generation (`api=completions`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from lm_eval import simple_evaluate
from lm_eval.api.instance import Instance
from lm_eval.tasks import TaskManager

import k2eval
from k2eval.lmeval.model import K2EvalLM
from k2eval.testing.fake_openai import FakeOpenAIServer, Reply

LIKED = {"dog", "ice", "apple", "honey", "Earth", "cold", "blue", "four", "8"}
"""Words this scripted model finds likely (log-prob -0.5, its top choice); others get -3."""


def logprob(token: str) -> float:
    return -0.5 if token.strip() in LIKED else -3.0


class EchoLogprobServer(FakeOpenAIServer):
    """Words (with their leading whitespace) are tokens; the prompt comes back with its
    per-token log-probabilities and one generated token, as vLLM answers."""

    def _app(self) -> web.Application:
        app = super()._app()
        app.router.add_post("/v1/completions", self._completions)
        return app

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        prompt = body["prompt"]
        if not body.get("echo"):  # plain generation: sums, then rambling on past the stop string
            a, b = map(int, re.findall(r"What is (\d+) plus (\d+)\?", prompt)[-1])
            return web.json_response({
                "id": "cmpl-2", "object": "text_completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "text": f" {a + b}\nQ: more", "finish_reason": "stop", "logprobs": None}]})
        assert body["logprobs"] == 1
        tokens = [*re.findall(r"\s*\S+", prompt), " the"]
        offsets, at = [], 0
        for t in tokens:
            offsets.append(at)
            at += len(t)
        logprobs = [None] + [logprob(t) for t in tokens[1:]]
        tops = [None] + [{" the": -0.5, t: logprob(t)} for t in tokens[1:]]
        return web.json_response({
            "id": "cmpl-1", "object": "text_completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "text": prompt + " the", "finish_reason": "length",
                         "logprobs": {"tokens": tokens, "token_logprobs": logprobs,
                                      "top_logprobs": tops, "text_offset": offsets}}],
            "usage": {"prompt_tokens": len(tokens) - 1, "completion_tokens": 1, "total_tokens": len(tokens)}})


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[EchoLogprobServer]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0123456789")
    server = EchoLogprobServer(lambda body: Reply(text="unused"))
    with server.in_thread():
        yield server


def lm_eval_results(endpoint: EchoLogprobServer, toy_tasks: Path, task: str, **model: Any) -> dict[str, Any]:
    """lm-eval's own `simple_evaluate` of `task` with the `k2eval` model type on the endpoint."""
    lm = K2EvalLM(model="openai:toy", base_url=endpoint.base_url, **model)
    try:
        theirs = simple_evaluate(model=lm, tasks=[task],
                                 task_manager=TaskManager(include_path=str(toy_tasks), include_defaults=False))
    finally:
        lm.close()
    assert theirs is not None
    return theirs["results"][task]


@pytest.mark.parametrize(("context", "continuation", "expected"), [
    ("Question: Which animal barks?\nAnswer:", " dog", (-0.5, True)),
    ("Question: Which animal barks?\nAnswer:", " fish", (-3.0, False)),
    ("The sky is", " blue and dog", (-4.0, False)),
    ("Two plus two is ", "four", (-0.5, True)),
    ("Two plus two is fo", "ur", (-0.5, True)),
])
def test_continuation_log_likelihoods_come_from_the_echoed_prompt(
        endpoint: EchoLogprobServer, context: str, continuation: str, expected: tuple[float, bool]) -> None:
    lm = K2EvalLM(model="openai:toy", base_url=endpoint.base_url)
    [got] = lm.loglikelihood([Instance("loglikelihood", {}, (context, continuation), 0)])
    lm.close()
    assert got == pytest.approx(expected)
    assert endpoint.requests[-1]["prompt"] == context + continuation
    assert endpoint.requests[-1]["model"] == "toy"


def test_multiple_choice_on_an_endpoint_agrees_with_lm_eval(endpoint: EchoLogprobServer, toy_tasks: Path,
                                                            tmp_path: Path) -> None:
    run = k2eval.evaluate("lm-eval:k2eval_toy_mc", "openai:toy", base_url=endpoint.base_url,
                          data=str(toy_tasks), out=tmp_path)
    assert lm_eval_results(endpoint, toy_tasks, "k2eval_toy_mc")["acc,none"] == pytest.approx(1.0)
    assert run.summary["score"] == pytest.approx(100.0)
    lines = [json.loads(x) for x in (run.path / "attempts.jsonl").read_text().splitlines()]
    first = [a for a in lines if a["item_id"] == "k2eval_toy_mc/0"]  # journal order varies
    assert first[0]["messages"][0]["content"].endswith("Which animal barks?\nAnswer:")
    assert [a["messages"][1]["content"] for a in first] == [" dog"]


def test_rolling_log_likelihood_sums_every_token_after_the_first(endpoint: EchoLogprobServer) -> None:
    lm = K2EvalLM(model="openai:toy", base_url=endpoint.base_url)
    [got] = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, ("The sky is blue",), 0)])
    lm.close()
    assert got == pytest.approx(-3.0 - 3.0 - 0.5)  # " sky", " is", " blue"; "The" has no context


def test_raw_prompt_generation_through_completions_agrees_with_lm_eval(endpoint: EchoLogprobServer,
                                                                     toy_tasks: Path, tmp_path: Path) -> None:
    run = k2eval.evaluate("lm-eval:k2eval_toy_gen", "openai:toy", base_url=endpoint.base_url,
                          data=str(toy_tasks), out=tmp_path, options={"api": "completions"})
    theirs = lm_eval_results(endpoint, toy_tasks, "k2eval_toy_gen", api="completions")
    assert theirs["exact_match,strict-match"] == pytest.approx(1.0)
    assert run.summary["score"] == pytest.approx(100.0)
    sent = endpoint.requests[0]
    assert sent["prompt"].startswith("Q: What is") and sent["prompt"].endswith("\nA:")
    assert sent["stop"] == ["\n", "Q:"] and sent["max_tokens"] == 6 and "messages" not in sent
