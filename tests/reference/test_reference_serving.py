"""The chat path end to end: in process (`reference:<dir>`) and over HTTP (`k2eval serve`),
with k2eval's own `openai:` backend as the client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from k2eval.errors import ContextOverflow
from k2eval.models import parse_model_spec, resolve_model
from k2eval.models.base import ChatModel, Sampling, ToolCall
from k2eval.models.reference.chat_model import ReferenceChatModel
from k2eval.models.reference.runtime import ReferenceRuntime
from k2eval.models.reference.server import running_server

TOOL_CALL_SCRIPT = ('<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0'
                    '<|tool_call_argument_begin|>{"city":"Paris"}<|tool_call_end|><|tool_calls_section_end|>')
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}
MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture(scope="module")
def tool_checkpoint(scripted_checkpoint: Callable[[str], Path]) -> Path:
    return scripted_checkpoint(TOOL_CALL_SCRIPT)


@pytest.fixture(scope="module")
def text_checkpoint(scripted_checkpoint: Callable[[str], Path]) -> Path:
    return scripted_checkpoint("It is sunny, 21C.")


async def test_in_process_model_parses_tool_calls(tool_checkpoint: Path) -> None:
    model = resolve_model(parse_model_spec(f"reference:{tool_checkpoint}"))
    assert isinstance(model, ReferenceChatModel) and isinstance(model, ChatModel)
    await model.preflight()
    completion = await model.complete(MESSAGES, [WEATHER_TOOL], Sampling(max_tokens=64))
    assert completion.tool_calls == (ToolCall("functions.get_weather:0", "get_weather", '{"city":"Paris"}'),)
    assert completion.finish_reason == "tool_calls" and completion.text is None
    assert completion.usage.completion_tokens == len(model._runtime.tokenizer.encode(TOOL_CALL_SCRIPT)) + 1  # type: ignore[union-attr]
    assert completion.usage.prompt_tokens > 20 and completion.usage.calls == 1
    assert model.describe()["model_type"] == "kimi_k2"
    await model.aclose()


async def test_in_process_text_answer_and_limits(text_checkpoint: Path) -> None:
    model = ReferenceChatModel(str(text_checkpoint))
    done = await model.complete(MESSAGES, None, Sampling(max_tokens=64))
    assert (done.text, done.finish_reason, done.tool_calls) == ("It is sunny, 21C.", "stop", ())
    cut = await model.complete(MESSAGES, None, Sampling(max_tokens=3))
    assert cut.finish_reason == "length" and "It is sunny, 21C.".startswith(cut.text or "-")
    stopped = await model.complete(MESSAGES, None, Sampling(max_tokens=64, stop=(",",)))
    assert (stopped.text, stopped.finish_reason) == ("It is sunny", "stop")
    with pytest.raises(ContextOverflow, match="context"):
        await model.complete([{"role": "user", "content": "word " * 140_000}], None, Sampling(max_tokens=4))
    await model.aclose()


async def test_concurrent_calls_are_batched(tiny_checkpoint: Path) -> None:
    model = ReferenceChatModel(str(tiny_checkpoint))
    await model.preflight()
    runtime = model._runtime
    assert runtime is not None
    prompts = [[{"role": "user", "content": f"question {i}"}] for i in range(6)]
    together = await asyncio.gather(*(model.complete(p, None, Sampling(max_tokens=8)) for p in prompts))
    assert max(runtime.scheduler.batch_sizes) == 6
    alone = [await model.complete(p, None, Sampling(max_tokens=8)) for p in prompts]
    assert [c.text for c in together] == [c.text for c in alone]
    await model.aclose()


async def test_short_requests_do_not_wait_for_long_ones(
        scripted_checkpoint: Callable[..., Path]) -> None:
    """Continuous batching: a request arriving while a long one decodes joins the batch and
    returns first; an abandoned request leaves the batch."""
    model = ReferenceChatModel(str(scripted_checkpoint("a b c", endless=True)))
    await model.preflight()
    runtime = model._runtime
    assert runtime is not None
    order: list[str] = []

    async def call(name: str, max_tokens: int) -> None:
        await model.complete([{"role": "user", "content": name}], None, Sampling(max_tokens=max_tokens))
        order.append(name)

    long = asyncio.create_task(call("long", 2000))
    while not runtime.scheduler.batch_sizes:  # the long request is decoding
        await asyncio.sleep(0.01)
    await call("short", 4)
    assert order == ["short"] and not long.done()
    assert max(runtime.scheduler.batch_sizes) == 2
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long
    await call("after", 2)
    runtime = model._runtime
    assert runtime is not None and runtime.scheduler.batch_sizes[-1] == 1  # "long" was dropped
    await model.aclose()


async def test_server_through_the_openai_backend(tool_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    runtime = ReferenceRuntime(tool_checkpoint)
    async with running_server(runtime, "k2-tiny") as base_url:
        client = resolve_model(parse_model_spec("openai:k2-tiny", base_url=base_url))
        await client.preflight()
        completion = await client.complete(MESSAGES, [WEATHER_TOOL], Sampling(max_tokens=64, temperature=0.0))
        assert completion.tool_calls == (ToolCall("functions.get_weather:0", "get_weather", '{"city":"Paris"}'),)
        assert completion.finish_reason == "tool_calls"
        assert completion.usage.prompt_tokens > 20 and completion.usage.completion_tokens > 5
        # Without tools the raw section comes back as text.
        plain = await client.complete(MESSAGES, None, Sampling(max_tokens=64))
        assert plain.text == TOOL_CALL_SCRIPT and plain.finish_reason == "stop"
        await client.aclose()
        # tool_choice "none": tools are declared but the output is not parsed.
        status, body = await post(base_url, {"model": "k2-tiny", "messages": MESSAGES, "max_tokens": 64, "temperature": 0,
                                             "tools": [WEATHER_TOOL], "tool_choice": "none"})
        choice = body["choices"][0]
        assert status == 200 and choice["message"]["content"] == TOOL_CALL_SCRIPT
        assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"


THINKING_SCRIPT = "Guess five</think>OK 4"  # the opening tag was in the prompt


async def test_thinking_output_comes_back_as_reasoning_in_process_and_served(
        scripted_checkpoint: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = scripted_checkpoint(THINKING_SCRIPT)
    model = ReferenceChatModel(str(checkpoint))
    done = await model.complete(MESSAGES, None, Sampling(max_tokens=64))
    assert (done.text, done.reasoning) == ("OK 4", "Guess five")
    assert done.reasoning_source == "think-tags"
    await model.aclose()
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    async with running_server(ReferenceRuntime(checkpoint), "k2-tiny") as base_url:
        status, body = await post(base_url, {"model": "k2-tiny", "messages": MESSAGES,
                                             "max_tokens": 64, "temperature": 0})
        message = body["choices"][0]["message"]
        assert status == 200 and message["content"] == "OK 4"
        assert message["reasoning_content"] == "Guess five"
        client = resolve_model(parse_model_spec("openai:k2-tiny", base_url=base_url))
        served = await client.complete(MESSAGES, None, Sampling(max_tokens=64))
        assert (served.text, served.reasoning, served.reasoning_source) == (
            "OK 4", "Guess five", "reasoning_content")
        await client.aclose()


async def post(base_url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(f"{base_url}/chat/completions", json=body) as r:
        return r.status, await r.json()


async def test_server_protocol_details_and_bad_requests(tiny_checkpoint: Path) -> None:
    runtime = ReferenceRuntime(tiny_checkpoint)
    async with running_server(runtime, "tiny") as base_url:
        async with aiohttp.ClientSession() as session, session.get(f"{base_url}/models") as r:
            assert (await r.json())["data"][0]["id"] == "tiny"
        base = {"model": "tiny", "messages": MESSAGES, "max_tokens": 6}
        status, body = await post(base_url, {**base, "n": 3, "temperature": 1.0, "seed": 5})
        assert status == 200 and len(body["choices"]) == 3
        assert body["usage"]["completion_tokens"] == 18  # random weights never emit <|im_end|> this early
        texts = {c["message"]["content"] for c in body["choices"]}
        status, again = await post(base_url, {**base, "n": 3, "temperature": 1.0, "seed": 5})
        assert {c["message"]["content"] for c in again["choices"]} == texts and len(texts) > 1

        for extra, field in [({"response_format": {"type": "json_object"}}, "response_format"),
                             ({"stream": True}, "stream"), ({"tool_choice": "required"}, "tool_choice"),
                             ({"top_p": 0}, "top_p"), ({"n": 0}, "n"), ({"max_tokens": -1}, "max_tokens"),
                             ({"presence_penalty": 0.5}, "presence_penalty"), ({"stop": [1]}, "stop"),
                             ({"logprobs": True}, "logprobs"), ({"messages": []}, "messages")]:
            status, body = await post(base_url, {**base, **extra})
            assert status == 400, extra
            assert body["error"]["param"] == field and body["error"]["type"] == "invalid_request_error"
        status, body = await post(base_url, {**base, "model": "gpt-4"})
        assert status == 404 and "serves 'tiny'" in body["error"]["message"]
        status, body = await post(base_url, {**base, "messages": [{"role": "user", "content": "w " * 140_000}]})
        assert status == 400 and body["error"]["code"] == "context_length_exceeded"
        async with aiohttp.ClientSession() as session, \
                session.post(f"{base_url}/chat/completions", data=b"{not json") as r:
            assert r.status == 400 and "not valid JSON" in (await r.json())["error"]["message"]


def test_cli_init_and_serve_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from k2eval.cli import main

    assert main(["reference", "init", "--preset", "tiny", "--out", str(tmp_path / "ck"), "--seed", "3"]) == 0
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["model_type"] == "kimi_k2" and config["rope_scaling"]["factor"] == 32.0
    assert (tmp_path / "ck" / "tiktoken.model").exists()
    assert main(["reference", "init", "--preset", "tiny", "--out", str(tmp_path / "ck")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_k2eval_run_with_the_reference_model(tiny_checkpoint: Path, shared_data: Path, tmp_path: Path) -> None:
    """`k2eval run --model reference:<dir>` on real AIME rows: every attempt reaches the model
    and is scored (a random model scores 0, but without errors)."""
    from k2eval.cli import main

    code = main(["run", "--task", "aime2024", "--model", f"reference:{tiny_checkpoint}",
                 "--data", str(shared_data / "aime" / "aime24.jsonl"), "--limit", "2", "--k", "2",
                 "--max-tokens", "8", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    [run] = list(tmp_path.iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["n_attempts"], summary["n_errors"], summary["score"]) == (4, 0, 0.0)
    assert 0 < summary["usage"]["completion_tokens"] <= 4 * 8 and summary["usage"]["prompt_tokens"] > 4 * 50
    attempts = [json.loads(line) for line in (run / "attempts.jsonl").read_text().splitlines()]
    assert all(a["status"] == "ok" and a["messages"][-1]["role"] == "assistant" for a in attempts)


async def test_generation_failure_is_a_500_the_client_may_retry(tiny_checkpoint: Path) -> None:
    runtime = ReferenceRuntime(tiny_checkpoint)

    def out_of_memory(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("out of memory")

    runtime.model.forward = out_of_memory  # type: ignore[method-assign]
    async with running_server(runtime, "tiny") as base_url:
        status, body = await post(base_url, {"model": "tiny", "messages": MESSAGES, "max_tokens": 4})
        assert status == 500 and "out of memory" in body["error"]["message"]
        del runtime.model.forward  # the failure passes; the server keeps serving
        status, body = await post(base_url, {"model": "tiny", "messages": MESSAGES, "max_tokens": 4})
        assert status == 200 and body["usage"]["completion_tokens"] <= 4


@pytest.mark.slow
def test_serve_command_answers_over_http(tiny_checkpoint: Path) -> None:
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "k2eval.cli", "serve", "--model-path", str(tiny_checkpoint),
         "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "tiny", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as r:
                    assert json.load(r)["data"][0]["id"] == "tiny"
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.5)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions", method="POST",
            data=json.dumps({"model": "tiny", "messages": MESSAGES, "max_tokens": 3}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            body = json.load(r)
        assert body["choices"][0]["finish_reason"] in ("length", "stop")
        assert body["usage"]["completion_tokens"] <= 3
    finally:
        server.terminate()
        server.wait(timeout=30)


async def test_preflight_names_a_bad_checkpoint(tmp_path: Path) -> None:
    from k2eval.errors import UserError

    with pytest.raises(UserError, match="not a checkpoint directory"):
        await ReferenceChatModel(str(tmp_path / "absent")).preflight()
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mixtral"}))
    with pytest.raises(UserError, match="'mixtral' is not supported"):
        await ReferenceChatModel(str(tmp_path)).preflight()
