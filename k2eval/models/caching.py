"""A `ChatModel` wrapper that serves replies from the response cache (`k2eval.store.cache`).

It sits outside the retrying wrapper: a hit costs no request and no retry. A served reply
comes back with `cached=True`, so the attempt's journal line marks it and its tokens are
counted apart from the tokens the endpoint actually spent.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import urlsplit

from k2eval.models.base import ChatModel, Completion, Message, Sampling, ToolCall, ToolSchema, Usage
from k2eval.spec import ModelSpec
from k2eval.store.cache import CacheMode, ResponseCache, cache_key

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def endpoint_identity(spec: ModelSpec) -> dict[str, str]:
    """Who answers: scheme, endpoint (host, port and path; no credentials) and model name."""
    if spec.scheme == "reference":
        return {"scheme": "reference", "endpoint": os.path.abspath(spec.target), "model": ""}
    base = spec.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    parts = urlsplit(base)
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port else ""
    identity = {"scheme": spec.scheme, "endpoint": f"{host}{port}{parts.path.rstrip('/')}",
                "model": spec.target}
    # Request options that change the answer, only when set (keys of plain runs stay as they were).
    if spec.reasoning_effort:
        identity["reasoning_effort"] = spec.reasoning_effort
    if spec.extra_body:
        identity["extra_body"] = json.dumps(spec.extra_body, sort_keys=True)
    return identity


def completion_to_record(completion: Completion) -> dict[str, Any]:
    return {"text": completion.text, "reasoning": completion.reasoning,
            "reasoning_source": completion.reasoning_source,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments}
                           for c in completion.tool_calls],
            "finish_reason": completion.finish_reason,
            "usage": {"prompt_tokens": completion.usage.prompt_tokens,
                      "completion_tokens": completion.usage.completion_tokens,
                      "reasoning_tokens": completion.usage.reasoning_tokens},
            "latency": completion.latency}


def completion_from_record(record: dict[str, Any]) -> Completion:
    usage = record.get("usage") or {}
    return Completion(
        text=record.get("text"),
        tool_calls=tuple(ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"])
                         for c in record.get("tool_calls") or ()),
        finish_reason=record.get("finish_reason") or "stop",
        usage=Usage(prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)), calls=1,
                    reasoning_tokens=int(usage.get("reasoning_tokens", 0))),
        latency=0.0, cached=True, reasoning=record.get("reasoning"),
        reasoning_source=record.get("reasoning_source"))


class CachingChatModel:
    """`inner` behind the response cache, in one of the modes of `k2eval.store.cache`."""

    def __init__(self, inner: ChatModel, cache: ResponseCache, mode: CacheMode,
                 identity: dict[str, str]) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache = cache
        self.mode = mode
        self.identity = identity

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "cache": {"location": self.cache.describe(),
                                                   "mode": self.mode}}

    async def preflight(self) -> None:
        await self.inner.preflight()

    def key(self, messages: list[Message], tools: list[ToolSchema] | None,
            sampling: Sampling) -> str:
        return cache_key(self.identity, messages, tools, sampling.to_dict())

    async def complete(self, messages: list[Message], tools: list[ToolSchema] | None,
                       sampling: Sampling) -> Completion:
        if self.mode == "off":
            return await self.inner.complete(messages, tools, sampling)
        key = self.key(messages, tools, sampling)
        if self.mode in ("read-write", "read-only"):
            hit = await asyncio.to_thread(self.cache.get, key)
            if hit is not None:
                return completion_from_record(hit)
        completion = await self.inner.complete(messages, tools, sampling)
        if self.mode in ("read-write", "refresh") and completion.finish_reason != "error":
            await asyncio.to_thread(self.cache.put, key, endpoint=self.identity["endpoint"],
                                    model=self.identity["model"] or self.name,
                                    response=completion_to_record(completion))
        return completion

    async def aclose(self) -> None:
        await self.inner.aclose()
        self.cache.close()  # the models of a run share one cache: closing it twice is harmless
