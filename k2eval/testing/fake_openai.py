"""A real-HTTP OpenAI-compatible chat server with scripted answers, latency and faults.

Tests and `perf/` use it in place of a provider:

    async with FakeOpenAIServer(lambda req: Reply(text="\\boxed{70}"), latency=0.2) as srv:
        ... srv.base_url ...  # http://127.0.0.1:PORT/v1

`responder(request_body) -> Reply | Fault` decides each answer. Faults: any HTTP status
("429" with Retry-After, "500", "400" with a chosen error body, ...), "hang" (never answers),
"drop" (closes the connection), "malformed" (200 with a body that is not JSON) and "trickle"
(200 whose body arrives one byte every `interval` seconds, complete after `duration`). With
`auth=("user", "password")` every request must carry them as HTTP basic auth (else 401).
Replies can carry reasoning in each of the three forms endpoints use (`Reply.reasoning`,
`reasoning_form`) and reasoning tokens in usage; with `require_reasoning_back=True` the server
acts like a thinking model that needs its reasoning kept across tool calls: a request whose
assistant turn with tool calls lacks the reasoning served with those calls gets a 400.
Malformed tool calls are scripted as they are: arguments given as a string are sent verbatim
(`'{"a": '`), names need not be among the tools offered, and `finish_reason` may disagree with
the calls (`"stop"` with calls, `"tool_calls"` without, `"length"`).
It can also run as its own process
(`python -m k2eval.testing.fake_openai --port N --echo-boxed`) so that benchmarks do not share
a CPU budget with the client they measure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    text: str | None = None
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning: str | None = None
    """A reasoning trace, returned in the form `reasoning_form` names."""
    reasoning_form: str = "reasoning_content"
    """"reasoning_content" or "reasoning" (message fields), or "think-tags" (a `<think>` block
    in front of the content)."""
    reasoning_tokens: int | None = None
    """Reported as `usage.completion_tokens_details.reasoning_tokens` (and within
    completion_tokens) when set."""


@dataclass
class Fault:
    kind: str
    """An HTTP status ("429", "500", "400", "401", ...), "hang", "drop", "malformed" or "trickle"."""
    retry_after: float | None = None
    body: dict[str, Any] | None = None
    """The error body of a status fault (default: {"error": {"message": "injected N", ...}})."""
    interval: float = 2.0
    """"trickle": seconds between bytes."""
    duration: float = 60.0
    """"trickle": seconds until the whole (valid) completion has been sent."""


Responder = Callable[[dict[str, Any]], "Reply | Fault"]


def last_user_text(request: dict[str, Any]) -> str:
    """The content of the last user message (string or text parts)."""
    for msg in reversed(request.get("messages", [])):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))


class FakeOpenAIServer:
    def __init__(self, responder: Responder, *, latency: float = 0.0, host: str = "127.0.0.1",
                 port: int = 0, model_ids: tuple[str, ...] = ("fake-model",),
                 auth: tuple[str, str] | None = None,
                 require_reasoning_back: bool = False) -> None:
        self.responder = responder
        self.require_reasoning_back = require_reasoning_back
        self._reasoning_of_call: dict[str, str] = {}
        self.auth = auth
        self.latency = latency
        self.host = host
        self.port = port
        self.model_ids = model_ids
        self.requests: list[dict[str, Any]] = []
        self._ids = itertools.count()
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._check_auth])
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    @web.middleware
    async def _check_auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.auth is not None:
            want = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
            if request.headers.get("Authorization") != want:
                return web.json_response({"error": {"message": "bad credentials"}}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "k2eval"}
                for m in self.model_ids]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "body is not JSON"}}, status=400)
        self.requests.append(body)
        missing = self._missing_reasoning(body)
        if missing:
            return web.json_response({"error": {
                "message": f"assistant message with tool call {missing} is missing its "
                           "reasoning_content", "type": "invalid_request_error"}}, status=400)
        answer = self.responder(body)
        if self.latency:
            await asyncio.sleep(self.latency)
        if isinstance(answer, Fault) and answer.kind == "trickle":
            return await self._trickle(request, answer, self._completion(body, Reply(text="late")))
        if isinstance(answer, Fault):
            return await self._fault(request, answer)
        return web.json_response(self._completion(body, answer))

    async def _trickle(self, request: web.Request, fault: Fault,
                       completion: dict[str, Any]) -> web.StreamResponse:
        """A 200 whose JSON body is preceded by whitespace sent one byte per `interval`."""
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        deadline = time.monotonic() + fault.duration
        try:
            while time.monotonic() < deadline and not (self._closing and self._closing.is_set()):
                await resp.write(b" ")
                await asyncio.sleep(fault.interval)
            await resp.write(json.dumps(completion).encode())
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client gave up, as it should
        return resp

    async def _fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.kind == "hang":
            assert self._closing is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closing.wait(), 3600)
            return web.Response(status=503)
        if fault.kind == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if fault.kind == "malformed":
            return web.Response(text='{"id": "x", "choices": [', content_type="application/json")
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        status = int(fault.kind)
        err = fault.body or {"error": {"message": f"injected {fault.kind}", "type": "fault",
                                       "code": status}}
        return web.json_response(err, status=status, headers=headers)

    def _missing_reasoning(self, body: dict[str, Any]) -> str | None:
        """The id of a served tool call whose reasoning the request did not send back."""
        if not self.require_reasoning_back:
            return None
        for msg in body.get("messages", []):
            if msg.get("role") != "assistant":
                continue
            sent = msg.get("reasoning_content") or msg.get("reasoning")
            for call in msg.get("tool_calls") or ():
                want = self._reasoning_of_call.get(call.get("id"))
                if want is not None and sent != want:
                    return str(call.get("id"))
        return None

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        content = reply.text
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reply.reasoning is not None:
            if reply.reasoning_form == "think-tags":
                message["content"] = f"<think>{reply.reasoning}</think>{content or ''}"
            else:
                message[reply.reasoning_form] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{next(self._ids)}", "type": "function",
                 "function": {"name": name,
                              "arguments": args if isinstance(args, str) else json.dumps(args)}}
                for name, args in reply.tool_calls]
            if reply.reasoning:
                for call in message["tool_calls"]:
                    self._reasoning_of_call[call["id"]] = reply.reasoning
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        prompt_text = json.dumps(body.get("messages", []))
        prompt_tokens = reply.prompt_tokens or _count_tokens(prompt_text)
        completion_tokens = reply.completion_tokens or _count_tokens(reply.text or "x")
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens,
                                 "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}
        if reply.reasoning_tokens is not None:
            usage["completion_tokens"] = completion_tokens + reply.reasoning_tokens
            usage["total_tokens"] += reply.reasoning_tokens
            usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
        return {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            "usage": usage,
        }

    async def start(self) -> FakeOpenAIServer:
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAIServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[str]:
        """Serve from a background thread (for synchronous code, e.g. CLI subprocess tests)."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        try:
            yield self.base_url
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


def boxed_echo_responder() -> Responder:
    """Deterministic AIME-style answers: \\boxed{N} chosen from a hash of the prompt and seed."""

    def respond(body: dict[str, Any]) -> Reply:
        key = f"{last_user_text(body)}|{body.get('seed')}"
        h = int(hashlib.sha256(key.encode()).hexdigest(), 16)
        return Reply(text=f"Reasoning...\n\\boxed{{{h % 1000}}}")

    return respond


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--answers", help="JSON file: {substring of last user message: reply text}")
    args = parser.parse_args(argv)
    answers: dict[str, str] = {}
    if args.answers:
        with open(args.answers) as fh:
            answers = json.load(fh)
    echo = boxed_echo_responder()

    def respond(body: dict[str, Any]) -> Reply | Fault:
        text = last_user_text(body)
        for needle, reply in answers.items():
            if needle in text:
                return Reply(text=reply)
        return echo(body)

    async def run() -> None:
        server = await FakeOpenAIServer(respond, latency=args.latency, host=args.host,
                                        port=args.port).start()
        print(f"serving {server.base_url}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
