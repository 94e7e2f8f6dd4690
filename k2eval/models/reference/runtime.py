"""A loaded checkpoint ready to chat: model, tokenizer, generator and the batching queue.

`BatchScheduler` decodes the requests that arrive concurrently (from the engine's parallel
attempts or from the HTTP server's clients) together, in a worker thread so that the event
loop stays responsive; requests join and leave the running batch between decode steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from k2eval.errors import ConfigError
from k2eval.models.base import Message, ToolSchema
from k2eval.models.reference.chat_format import ParsedOutput, parse_assistant_output, render_chat
from k2eval.models.reference.config import ReferenceConfig
from k2eval.models.reference.generation import (
    DecodeBatch,
    GenerationRequest,
    GenerationResult,
    Generator,
)
from k2eval.models.reference.loading import load_model
from k2eval.models.reference.tokenizer import load_tokenizer

CHAT_TOKENS = ("<|im_system|>", "<|im_user|>", "<|im_assistant|>", "<|im_middle|>", "<|im_end|>")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

_Pending = tuple[GenerationRequest, "asyncio.Future[GenerationResult]"]


class BatchScheduler:
    """Continuous batching: requests join the running batch between decode steps (up to the
    generator's `max_batch_size`) and leave it as soon as they finish."""

    STEPS_PER_HOP = 4
    """Decode steps per trip to the worker thread (bounds how long a newcomer waits)."""

    def __init__(self, generator: Generator, max_wait_s: float = 0.005) -> None:
        self.generator = generator
        self.max_wait_s = max_wait_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="k2eval-reference")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.batch_sizes: list[int] = []
        """Rows decoded together at each hop (for tests and diagnostics)."""

    async def submit(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Results in request order; raises (before queueing) on requests that cannot run."""
        for request in requests:
            self.generator.check(request)
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue))
        futures = [loop.create_future() for _ in requests]
        for request, future in zip(requests, futures, strict=True):
            self._queue.put_nowait((request, future))  # type: ignore[union-attr]
        return list(await asyncio.gather(*futures))

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        batch = DecodeBatch(self.generator)
        while True:
            newcomers: list[_Pending] = []
            if not batch.rows:
                newcomers.append(await queue.get())  # sleep until work arrives
                await asyncio.sleep(self.max_wait_s)  # let concurrent requests gather
            while not queue.empty() and len(batch.rows) + len(newcomers) < self.generator.max_batch_size:
                request, future = queue.get_nowait()
                if not future.done():
                    newcomers.append((request, future))
            batch.drop(lambda key: isinstance(key, asyncio.Future) and key.done())  # cancelled
            try:
                newcomers = [(r, f) for r, f in newcomers if not f.done()]
                if newcomers:
                    keys: list[object] = [f for _, f in newcomers]
                    await loop.run_in_executor(self._executor, batch.admit,
                                               [r for r, _ in newcomers], keys)
                self.batch_sizes.append(len(batch.rows))
                finished = await loop.run_in_executor(self._executor, self._advance, batch)
            except Exception as e:
                for row in batch.rows:
                    _settle(row.key, exception=e)
                for _, future in newcomers:
                    _settle(future, exception=e)
                batch = DecodeBatch(self.generator)
                continue
            for key, result in finished:
                _settle(key, result=result)

    def _advance(self, batch: DecodeBatch) -> list[tuple[object, GenerationResult]]:
        finished: list[tuple[object, GenerationResult]] = []
        for _ in range(self.STEPS_PER_HOP):
            finished += batch.step()
            if not batch.rows:
                break
        return finished

    async def aclose(self) -> None:
        if self._worker is not None and self._loop is asyncio.get_running_loop():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = None
        self._executor.shutdown(wait=False)


def _settle(future: object, result: GenerationResult | None = None,
            exception: BaseException | None = None) -> None:
    assert isinstance(future, asyncio.Future)
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)


@dataclasses.dataclass(frozen=True)
class ChatOptions:
    max_tokens: int | None = None
    """None: up to the end of the context."""
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    n: int = 1
    parse_tool_calls: bool = True


@dataclasses.dataclass
class ChatChoice:
    result: GenerationResult
    parsed: ParsedOutput

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.parsed.tool_calls else self.result.finish_reason


class ReferenceRuntime:
    def __init__(self, checkpoint: str | Path, dtype: str = "float32", max_batch_size: int = 16,
                 device: str = "cpu") -> None:
        if dtype not in DTYPES:
            raise ConfigError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        self.checkpoint = Path(checkpoint)
        if not self.checkpoint.is_dir():
            raise ConfigError(f"{self.checkpoint}: not a checkpoint directory (create one with "
                              "`k2eval reference init --preset tiny --out DIR`)")
        ReferenceConfig.from_file(self.checkpoint / "config.json")  # cheap checks first
        self.tokenizer = load_tokenizer(self.checkpoint)
        try:
            self.model = load_model(self.checkpoint, DTYPES[dtype]).to(device)
        except RuntimeError as e:  # e.g. CUDA requested but unavailable
            raise ConfigError(f"cannot place the model on device {device!r}: {e}") from None
        missing = [t for t in CHAT_TOKENS if self.tokenizer.token_id(t) is None]
        if missing:
            raise ConfigError(f"{self.checkpoint}: the tokenizer lacks Kimi K2's chat tokens "
                              f"({', '.join(missing)}); the reference chat path speaks K2's format")
        self.generator = Generator(self.model, self.tokenizer, max_batch_size=max_batch_size)
        self.scheduler = BatchScheduler(self.generator)
        self.dtype = dtype

    def prompt_ids(self, messages: list[Message], tools: list[ToolSchema] | None) -> tuple[int, ...]:
        return tuple(self.tokenizer.encode(render_chat(messages, tools)))

    async def chat(self, messages: list[Message], tools: list[ToolSchema] | None,
                   options: ChatOptions) -> tuple[int, list[ChatChoice]]:
        """(prompt tokens, one choice per sample). Raises ChatFormatError / ContextLengthError /
        ValueError for requests that cannot run."""
        prompt = self.prompt_ids(messages, tools)
        max_tokens = options.max_tokens or self.generator.context - len(prompt)
        requests = [GenerationRequest(prompt, max(max_tokens, 1), options.temperature, options.top_p,
                                      None if options.seed is None else options.seed + i, options.stop)
                    for i in range(options.n)]
        results = await self.scheduler.submit(requests)
        calls = bool(tools and options.parse_tool_calls)
        choices = [ChatChoice(r, parse_assistant_output(r.text, calls)) for r in results]
        return len(prompt), choices

    def describe(self) -> dict[str, Any]:
        c = self.model.config
        return {"backend": "reference", "checkpoint": str(self.checkpoint), "model_type": c.model_type,
                "dtype": self.dtype, "device": str(self.model.device), "layers": c.num_hidden_layers, "hidden_size": c.hidden_size,
                "routed_experts": c.n_routed_experts, "active_experts": c.num_experts_per_tok,
                "context": c.max_position_embeddings}
