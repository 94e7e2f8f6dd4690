"""Solving and grading attempts inside one process: the adapter, its models and sandboxes.

`AttemptRunner` is what every executor runs in the end: the local executor holds one in the
driver, and each Ray worker holds its own (its own event loop, model clients and sandbox
provider). It maps each error type to "record it" or "re-raise it" in one place.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from typing import TYPE_CHECKING, Any

from k2eval.adapters.base import Adapter, AttemptContext, ScoreContext
from k2eval.engine.outcomes import CONTEXT_OVERFLOW, record_context_overflow
from k2eval.engine.progress import LiveAttempt
from k2eval.engine.retry import RetryingChatModel, RetryPolicy
from k2eval.engine.sandboxes import SandboxProvider
from k2eval.errors import (
    ConfigError,
    ContextOverflow,
    InfraError,
    LimitExceeded,
    ModelError,
    RunFatalError,
    UserError,
)
from k2eval.models import resolve_model
from k2eval.models.base import ChatModel
from k2eval.records import Attempt, Item, Score
from k2eval.spec import ModelSpec, RunConfig

if TYPE_CHECKING:
    from k2eval.store.cache import ResponseCache


class RunModels:
    """The models of one run in one process: agent, optional user simulator and judge, each
    behind retries and, when the run has one, the response cache.

    Building them makes no model call; `preflight` does."""

    def __init__(self, config: RunConfig, adapter: Adapter,
                 items: list[Item] | None = None) -> None:
        check_model_flags(config, adapter, items)
        self.config = config
        self._cache: ResponseCache | None = None
        self.retrying: list[RetryingChatModel] = []
        """The retry layers, whose waits the progress line announces."""
        self.agent = self._wrap(config.model)
        self.user = self._wrap(config.user_model)
        self.judge = self._wrap(config.judge_model)

    def _wrap(self, spec: ModelSpec | None) -> ChatModel | None:
        if spec is None:
            return None
        retrying = RetryingChatModel(resolve_model(spec), RetryPolicy(
            max_tries=spec.max_tries, max_retry_after=spec.max_retry_after_s))
        self.retrying.append(retrying)
        if self.config.cache is None:
            return retrying
        from k2eval.models.caching import CachingChatModel, endpoint_identity
        from k2eval.store.cache import ResponseCache

        if self._cache is None:  # one cache (one connection pool) for the run's models
            self._cache = ResponseCache(self.config.cache)
        return CachingChatModel(retrying, self._cache,
                                self.config.cache_mode,  # type: ignore[arg-type]
                                endpoint_identity(spec))

    def all(self) -> list[ChatModel]:
        return [m for m in (self.agent, self.user, self.judge) if m is not None]

    async def preflight(self) -> None:
        for m in self.all():
            await m.preflight()

    async def aclose(self) -> None:
        for m in self.all():
            with contextlib.suppress(Exception):
                await m.aclose()


def check_model_flags(config: RunConfig, adapter: Adapter, items: list[Item] | None = None) -> None:
    """The models the adapter needs are given; with `items` (those to solve), the user
    simulator only when one of them needs it."""
    needs_user = adapter.needs_user_model if items is None else adapter.needs_user_model_for(items)
    for needed, spec, flag in ((needs_user, config.user_model, "--user-model"),
                               (adapter.needs_judge_model, config.judge_model, "--judge-model")):
        if needed and spec is None:
            raise ConfigError(f"task {config.task.name} needs {flag} (e.g. {flag} openai:gpt-4.1)")


def local_worker() -> dict[str, Any]:
    """Where this process runs, as recorded in each attempt line (`node_id` "local")."""
    return {"node_id": "local", "hostname": socket.gethostname(), "pid": os.getpid()}


class AttemptRunner:
    """Solves and scores attempts in this process.

    `models` is None when nothing is solved and no judge is needed (rescore); `sandbox_limit`
    bounds the containers this runner holds at once (None: the adapter needs none)."""

    def __init__(self, config: RunConfig, adapter: Adapter, *, run_id: str,
                 models: RunModels | None, sandbox_limit: int | None,
                 worker: dict[str, Any] | None = None, sandbox_purpose: str | None = None) -> None:
        self.config = config
        self.adapter = adapter
        self.models = models
        self.worker = worker or local_worker()
        self.sandboxes = SandboxProvider(limit=sandbox_limit, run_id=run_id,
                                         purpose=sandbox_purpose or config.task.name) \
            if sandbox_limit is not None and adapter.needs_sandbox else None
        self._in_flight: dict[int, AttemptContext] = {}
        self.score_context = ScoreContext(config=config,
                                          judge_model=models.judge if models else None,
                                          sandbox_factory=self.sandboxes)

    async def solve(self, item: Item, index: int) -> Attempt:
        models = self.models
        assert models is not None and models.agent is not None
        ctx = AttemptContext(item=item, index=index, config=self.config, model=models.agent,
                             user_model=models.user, judge_model=models.judge,
                             sandbox_factory=self.sandboxes)
        attempt = Attempt(item_id=item.id, index=index, started=time.time(), worker=self.worker)
        self._in_flight[id(ctx)] = ctx
        try:
            result = await self.adapter.solve(item, ctx)
            attempt.messages, attempt.output = result.messages, result.output
        except LimitExceeded as exc:
            attempt.output = {"ended_by": "limit", "limit": str(exc)}
        except ContextOverflow as exc:
            record_context_overflow(attempt, exc, ctx)
        except ModelError as exc:
            attempt.status = "error"
            attempt.error = {"type": type(exc).__name__, "message": str(exc), "status": exc.status}
        except (UserError, ConfigError, RunFatalError):
            raise
        except InfraError as exc:
            attempt.status = "error"
            attempt.error = {"type": "InfraError", "message": str(exc)}
        except Exception as exc:  # an adapter bug must not sink the other attempts
            attempt.status = "error"
            attempt.error = {"type": type(exc).__name__, "message": str(exc),
                             "traceback": traceback.format_exc(limit=8)}
        finally:
            self._in_flight.pop(id(ctx), None)
        attempt.ended = time.time()
        attempt.calls = ctx.calls
        attempt.usage = {role: u.to_dict() for role, u in ctx.usage.items()}
        attempt.toolcalls = ctx.toolcalls
        return attempt

    def live(self) -> list[LiveAttempt]:
        """The attempts this runner is solving, with their counters so far."""
        now = time.time()
        return [LiveAttempt(ctx.item.id, ctx.index, now - ctx.started, len(ctx.calls), ctx.steps,
                            sum(u.completion_tokens for u in ctx.usage.values()))
                for ctx in list(self._in_flight.values())]

    async def score(self, item: Item, attempt: Attempt) -> Score:
        if attempt.output.get("ended_by") == CONTEXT_OVERFLOW:
            return Score(item.id, attempt.index, 0.0, attempt.output["reason"])
        try:
            return await self.adapter.score(item, attempt, self.score_context)
        except (UserError, ConfigError, RunFatalError):
            raise
        except Exception as exc:
            return Score(item_id=item.id, index=attempt.index, value=0.0, status="error",
                         reason=f"grader failed: {type(exc).__name__}: {exc}",
                         details={"traceback": traceback.format_exc(limit=8)})

    async def aclose(self) -> None:
        if self.sandboxes is not None:
            await self.sandboxes.aclose()
