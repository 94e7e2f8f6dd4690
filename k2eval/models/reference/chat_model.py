"""`reference:<checkpoint-dir>`: the local reference MoE behind the `ChatModel` contract."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import torch

from k2eval.errors import ContextOverflow, FatalModelError
from k2eval.models.base import Completion, Message, Sampling, ToolSchema, Usage
from k2eval.models.reference.chat_format import ChatFormatError
from k2eval.models.reference.generation import ContextLengthError
from k2eval.models.reference.runtime import ChatOptions, ReferenceRuntime


class ReferenceChatModel:
    """Loads the checkpoint on first use (or in `preflight`); concurrent `complete` calls
    are batched together."""

    def __init__(self, checkpoint_dir: str, *, dtype: str = "float32", max_batch_size: int = 16,
                 threads: int | None = None, device: str = "cpu", name: str | None = None,
                 **_ignored: Any) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.name = name or f"reference:{checkpoint_dir}"
        self._dtype = dtype
        self._max_batch_size = max_batch_size
        self._threads = threads
        self._device = device
        self._runtime: ReferenceRuntime | None = None
        self._loading: asyncio.Lock | None = None

    async def _ready(self) -> ReferenceRuntime:
        if self._runtime is None:
            if self._loading is None:
                self._loading = asyncio.Lock()
            async with self._loading:
                if self._runtime is None:
                    if self._threads:
                        torch.set_num_threads(self._threads)
                    self._runtime = await asyncio.to_thread(
                        ReferenceRuntime, self.checkpoint_dir, self._dtype, self._max_batch_size,
                        self._device)
        return self._runtime

    async def preflight(self) -> None:
        await self._ready()

    async def runtime(self) -> ReferenceRuntime:
        """The loaded checkpoint (loading it on first use), for callers beyond chat such as
        log-likelihood scoring."""
        return await self._ready()

    async def complete(self, messages: list[Message], tools: list[ToolSchema] | None,
                       sampling: Sampling) -> Completion:
        runtime = await self._ready()
        options = ChatOptions(max_tokens=sampling.max_tokens, temperature=sampling.temperature,
                              top_p=sampling.top_p, seed=sampling.seed, stop=tuple(sampling.stop))
        started = time.monotonic()
        try:
            prompt_tokens, [choice] = await runtime.chat(messages, tools, options)
        except ContextLengthError as e:
            raise ContextOverflow(f"context window exceeded: {self.name}: {e}", status=400) from e
        except (ChatFormatError, ValueError) as e:
            raise FatalModelError(f"{self.name}: {e}", status=400) from e
        parsed = choice.parsed
        return Completion(
            text=parsed.content,
            tool_calls=tuple(parsed.tool_calls),
            finish_reason=choice.finish_reason,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=choice.result.completion_tokens,
                        calls=1),
            latency=time.monotonic() - started,
            raw={"text": choice.result.text, "tool_call_errors": parsed.errors},
            reasoning=parsed.reasoning,
            reasoning_source="think-tags" if parsed.reasoning is not None else None,
        )

    def describe(self) -> dict[str, Any]:
        if self._runtime is not None:
            return self._runtime.describe()
        return {"backend": "reference", "checkpoint": self.checkpoint_dir, "dtype": self._dtype}

    async def aclose(self) -> None:
        if self._runtime is not None:
            await self._runtime.scheduler.aclose()

