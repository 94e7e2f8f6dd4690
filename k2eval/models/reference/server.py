"""An OpenAI-compatible server for the reference model: `/v1/models`, `/v1/chat/completions`.

Supported request fields: model, messages, tools, tool_choice ("auto" or "none"),
max_tokens / max_completion_tokens, temperature, top_p, n, seed, stop, stream (false only),
user, parallel_tool_calls; presence/frequency penalties and logprobs only at their defaults.
Anything else is answered with 400 and a message naming the field. Concurrent requests are
batched by the runtime's scheduler.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from k2eval.models.reference.chat_format import ChatFormatError
from k2eval.models.reference.generation import ContextLengthError
from k2eval.models.reference.runtime import ChatOptions, ReferenceRuntime

ACCEPTED_FIELDS = frozenset({
    "model", "messages", "tools", "tool_choice", "max_tokens", "max_completion_tokens",
    "temperature", "top_p", "n", "seed", "stop", "stream", "user", "parallel_tool_calls",
    "presence_penalty", "frequency_penalty", "logprobs",
})
MAX_N = 16
MAX_STOP = 4


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.param, self.status, self.code = param, status, code


def create_app(runtime: ReferenceRuntime, served_name: str) -> web.Application:
    app = web.Application(client_max_size=64 << 20)

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": served_name, "object": "model", "created": 0, "owned_by": "k2eval-reference"}]})

    async def chat_completions(request: web.Request) -> web.Response:
        try:
            try:
                body = await request.json()
            except json.JSONDecodeError as e:
                raise BadRequest(f"the request body is not valid JSON ({e.msg})") from None
            messages, tools, options = parse_request(body, served_name)
            prompt_tokens, choices = await runtime.chat(messages, tools, options)
        except BadRequest as e:
            return _error(e.status, str(e), e.param, e.code)
        except ContextLengthError as e:
            return _error(400, str(e), "messages", "context_length_exceeded")
        except (ChatFormatError, ValueError) as e:
            return _error(400, str(e), None, None)
        except Exception as e:  # a failure inside the model: the client may retry
            return _error(500, f"generation failed: {type(e).__name__}: {e}", None, None)
        out_choices = []
        for i, choice in enumerate(choices):
            message: dict[str, Any] = {"role": "assistant", "content": choice.parsed.content}
            if choice.parsed.reasoning is not None:
                message["reasoning_content"] = choice.parsed.reasoning
            if choice.parsed.tool_calls:
                message["tool_calls"] = [call.to_message() for call in choice.parsed.tool_calls]
            out_choices.append({"index": i, "message": message, "logprobs": None,
                                "finish_reason": choice.finish_reason})
        completion_tokens = sum(c.result.completion_tokens for c in choices)
        return web.json_response({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": served_name, "choices": out_choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat_completions)
    return app


def _error(status: int, message: str, param: str | None, code: str | None) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status)


def parse_request(body: Any, served_name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, ChatOptions]:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    unsupported = sorted(set(body) - ACCEPTED_FIELDS)
    if unsupported:
        raise BadRequest(f"unsupported parameter(s): {', '.join(unsupported)}", unsupported[0])
    if body.get("model") != served_name:
        raise BadRequest(f"model {body.get('model')!r} does not exist; this server serves {served_name!r}",
                         "model", 404, "model_not_found")
    if body.get("stream"):
        raise BadRequest("stream=true is not supported by the reference server", "stream")
    for key in ("presence_penalty", "frequency_penalty"):
        if body.get(key) not in (None, 0, 0.0):
            raise BadRequest(f"{key} is not supported (only 0)", key)
    if body.get("logprobs"):
        raise BadRequest("logprobs are not supported", "logprobs")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise BadRequest("messages must be a non-empty list of message objects", "messages")
    tools = body.get("tools")
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
        raise BadRequest("tools must be a list of tool objects", "tools")
    tool_choice = body.get("tool_choice")
    if tool_choice not in (None, "auto", "none"):
        raise BadRequest("tool_choice supports only 'auto' and 'none'", "tool_choice")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not _is_int(max_tokens) or max_tokens < 1):
        raise BadRequest("max_tokens must be a positive integer", "max_tokens")
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if not _is_number(temperature) or not 0 <= temperature <= 2:
        raise BadRequest("temperature must be a number in [0, 2]", "temperature")
    top_p = body.get("top_p")
    if top_p is not None and (not _is_number(top_p) or not 0 < top_p <= 1):
        raise BadRequest("top_p must be a number in (0, 1]", "top_p")
    n = body.get("n")
    n = 1 if n is None else n
    if not _is_int(n) or not 1 <= n <= MAX_N:
        raise BadRequest(f"n must be an integer in 1..{MAX_N}", "n")
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise BadRequest("seed must be an integer", "seed")
    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if (not isinstance(stop, list | tuple) or len(stop) > MAX_STOP
            or not all(isinstance(s, str) and s for s in stop)):
        raise BadRequest(f"stop must be a string or a list of at most {MAX_STOP} non-empty strings", "stop")
    options = ChatOptions(max_tokens=max_tokens, temperature=float(temperature),
                          top_p=None if top_p is None else float(top_p), seed=seed,
                          stop=tuple(stop), n=n, parse_tool_calls=tool_choice != "none")
    return messages, tools or None, options


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@asynccontextmanager
async def running_server(runtime: ReferenceRuntime, served_name: str, host: str = "127.0.0.1",
                         port: int = 0) -> AsyncIterator[str]:
    """Serve in the current event loop; yields the base URL (`http://host:port/v1`)."""
    runner = web.AppRunner(create_app(runtime, served_name), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://{host}:{bound}/v1"
    finally:
        await runner.cleanup()
        await runtime.scheduler.aclose()
