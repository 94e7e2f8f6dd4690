"""Retries for model calls: exponential backoff with full jitter, honouring Retry-After up to a cap.

Each wait is announced through `notify` (the engine shows it on the progress line), so a run
that is waiting on a rate limit says so. When consecutive calls each run out of tries on
429/503, the endpoint is refusing the run, not one request: after `max_refused_calls` of them
the whole run stops (`EndpointRefused`) instead of failing every remaining attempt slowly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from k2eval.errors import EndpointRefused, ModelError
from k2eval.models.base import ChatModel, Completion, Message, Sampling, ToolSchema

Notify = Callable[[str], None]
REFUSAL_STATUS = (429, 503)


@dataclass(frozen=True)
class RetryPolicy:
    max_tries: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 60.0
    """Cap on a server's Retry-After (`--max-retry-after`)."""
    max_refused_calls: int = 5
    """Consecutive calls out of tries on 429/503 after which the whole run stops."""

    def delay(self, try_index: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before try number `try_index + 1` (0-based index of the failed try)."""
        backoff = rng.uniform(0, min(self.max_delay, self.base_delay * (2 ** try_index)))
        if retry_after is not None:
            return min(self.max_retry_after, max(retry_after, 0.0))
        return backoff


class RetryingChatModel:
    """Wraps a `ChatModel`: retryable failures are tried again up to `policy.max_tries` times."""

    def __init__(self, inner: ChatModel, policy: RetryPolicy | None = None,
                 rng: random.Random | None = None, notify: Notify | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.policy = policy or RetryPolicy()
        self.notify = notify
        self._rng = rng or random.Random()
        self._refused_calls = 0

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    async def preflight(self) -> None:
        await self.inner.preflight()

    def _announce(self, exc: ModelError, try_index: int, delay: float) -> None:
        if self.notify is None:
            return
        why = str(exc)[:120]
        if exc.retry_after is not None and exc.retry_after > self.policy.max_retry_after:
            why += (f" (Retry-After {exc.retry_after:.0f} s, capped by --max-retry-after "
                    f"{self.policy.max_retry_after:g})")
        self.notify(f"{self.name}: {why}; try {try_index + 2}/{self.policy.max_tries} "
                    f"in {delay:.1f} s")

    async def complete(self, messages: list[Message], tools: list[ToolSchema] | None,
                       sampling: Sampling) -> Completion:
        last: ModelError | None = None
        for attempt in range(self.policy.max_tries):
            try:
                completion = await self.inner.complete(messages, tools, sampling)
            except ModelError as exc:
                if not exc.retryable:
                    raise
                last = exc
                if attempt + 1 < self.policy.max_tries:
                    delay = self.policy.delay(attempt, exc.retry_after, self._rng)
                    self._announce(exc, attempt, delay)
                    await asyncio.sleep(delay)
                continue
            self._refused_calls = 0
            if attempt:
                usage = dataclasses.replace(completion.usage,
                                            retries=completion.usage.retries + attempt)
                completion = dataclasses.replace(completion, usage=usage)
            return completion
        assert last is not None, "max_tries >= 1 is checked by ModelSpec"
        tries = self.policy.max_tries
        if last.status in REFUSAL_STATUS:
            self._refused_calls += 1
            if self._refused_calls >= self.policy.max_refused_calls:
                raise EndpointRefused(
                    f"{self.name}: the endpoint refused {self._refused_calls} calls in a row, "
                    f"each after {tries} tries (last: {str(last)[:120]}); the run stops here",
                    status=last.status)
        raise type(last)(f"gave up after {tries} tries: {last}",
                         status=last.status, retry_after=last.retry_after)

    async def aclose(self) -> None:
        await self.inner.aclose()
