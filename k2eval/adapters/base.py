"""The adapter contract: load items, solve one attempt, score one attempt.

An adapter owns its prompt, its answer extraction and its grader, and nothing else:
scheduling, retries, journaling, metrics and sandboxes' lifecycles belong to the core.
The records adapters exchange with the core (`Item`, `Attempt`, `Score`, `SolveResult`) live
in `k2eval.records` and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from k2eval.errors import ConfigError, ContextOverflow, LimitExceeded
from k2eval.models.base import ChatModel
from k2eval.records import (
    Attempt,
    Completion,
    Item,
    Message,
    Sampling,
    Score,
    SolveResult,
    ToolSchema,
    Usage,
)
from k2eval.scoring import breakdown_by_meta, toolcalls
from k2eval.spec import RunConfig, TaskSpec

if TYPE_CHECKING:
    from k2eval.sandbox import Sandbox

__all__ = [
    "Adapter", "Attempt", "AttemptContext", "Item", "SandboxFactory", "Score", "ScoreContext",
    "SolveResult", "derived_seed", "get_adapter",
]


SandboxFactory = Callable[..., AbstractAsyncContextManager["Sandbox"]]

def final_reply(attempt: Attempt, legacy_key: str = "text") -> str:
    """The text of the attempt's last assistant message, which graders extract answers from.

    The journal keeps the reply once, in `messages`; journals of k2eval 0.1 also copied it into
    `output[legacy_key]`, which is read when the attempt has no assistant message."""
    for message in reversed(attempt.messages):
        if message.get("role") == "assistant":
            return str(message.get("content") or "")
    return str(attempt.output.get(legacy_key) or "")



def derived_seed(seed: int, *parts: object) -> int:
    """A stable 63-bit seed from the run seed and any identifying parts (item id, attempt)."""
    text = "\x1f".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


class AttemptContext:
    """What `solve` gets for one attempt: models, sampling, limits, sandboxes, a seeded RNG."""

    def __init__(self, *, item: Item, index: int, config: RunConfig, model: ChatModel,
                 user_model: ChatModel | None = None, judge_model: ChatModel | None = None,
                 sandbox_factory: SandboxFactory | None = None) -> None:
        self.item = item
        self.index = index
        self.config = config
        self.spec: TaskSpec = config.task
        self.model = model
        self.user_model = user_model
        self.judge_model = judge_model
        self._sandbox_factory = sandbox_factory
        self.seed = derived_seed(config.seed, item.id, index)
        self.calls: list[dict[str, Any]] = []
        self.usage: dict[str, Usage] = {}
        self.started = time.time()
        self.last_messages: list[Message] = []
        """The messages of the last agent call: the transcript so far if the next call fails."""
        self.toolcalls: dict[str, int] | None = None
        """Tool-call conformance counts of the agent calls that offered tools."""

    @functools.cached_property
    def rng(self) -> random.Random:
        """Seeded from `seed`; made on first use (seeding costs more than a whole model call's
        bookkeeping, and most adapters never draw)."""
        return random.Random(self.seed)

    @property
    def steps(self) -> int:
        """Calls made to the agent model so far."""
        return sum(1 for c in self.calls if c["role"] == "agent")

    def sampling(self, **overrides: Any) -> Sampling:
        base = self.spec.sampling(seed=self.seed % (2**31))
        return dataclasses.replace(base, **overrides) if overrides else base

    def _check_limits(self, role: str) -> None:
        lim = self.spec.limits
        if role != "agent":
            return
        if lim.max_steps is not None and self.steps >= lim.max_steps:
            raise LimitExceeded(f"step limit reached ({lim.max_steps} model calls)")
        used = sum(u.total_tokens for r, u in self.usage.items() if r in ("agent", "agent:cached"))
        if lim.max_total_tokens is not None and used >= lim.max_total_tokens:
            raise LimitExceeded(f"token budget reached ({lim.max_total_tokens} tokens)")
        if lim.timeout_s is not None and time.time() - self.started > lim.timeout_s:
            raise LimitExceeded(f"time limit reached ({lim.timeout_s:.0f} s)")

    async def chat(self, messages: list[Message], tools: list[ToolSchema] | None = None, *,
                   role: str = "agent", sampling: Sampling | None = None) -> Completion:
        """Call a model ("agent", "user" or "judge"), enforcing limits and metering usage."""
        model = {"agent": self.model, "user": self.user_model, "judge": self.judge_model}.get(role)
        if model is None:
            raise ConfigError(f"task {self.spec.name} needs a {role} model: pass --{role}-model")
        self._check_limits(role)
        if sampling is None:
            sampling = self.sampling() if role == "agent" else self.sampling(temperature=0.0)
        if role == "agent":
            self.last_messages = list(messages)
        try:
            completion = await model.complete(messages, tools, sampling)
        except ContextOverflow as exc:
            exc.role = role
            raise
        # Replies served from the response cache spent nothing: their tokens are kept apart.
        metered = f"{role}:cached" if completion.cached else role
        self.usage.setdefault(metered, Usage()).add(completion.usage)
        call = {"role": role, "finish_reason": completion.finish_reason,
                "latency": round(completion.latency, 4),
                "prompt_tokens": completion.usage.prompt_tokens,
                "completion_tokens": completion.usage.completion_tokens,
                "retries": completion.usage.retries}
        if completion.usage.reasoning_tokens:
            call["reasoning_tokens"] = completion.usage.reasoning_tokens
        if completion.cached:
            call["cached"] = True
        self.calls.append(call)
        if role == "agent" and tools:
            counts = toolcalls.count_completion(completion, tools)
            if self.toolcalls is None:
                self.toolcalls = toolcalls.empty_counts()
            toolcalls.add_counts(self.toolcalls, counts)
        return completion

    def sandbox(self, image: str | None = None, *, reuse: bool = False,
                **limits: Any) -> AbstractAsyncContextManager[Sandbox]:
        """A sandbox for this attempt, closed (or, with `reuse`, reset and returned to a warm
        pool) when the `async with` block ends. `limits` are `SandboxLimits` fields."""
        if self._sandbox_factory is None:
            raise ConfigError("this run has no sandbox provider")
        return self._sandbox_factory(image or self.spec.sandbox_image, reuse=reuse, **limits)


class ScoreContext:
    """What `score` gets: the run config, sandboxes, and an optional judge model."""

    def __init__(self, *, config: RunConfig, judge_model: ChatModel | None = None,
                 sandbox_factory: SandboxFactory | None = None) -> None:
        self.config = config
        self.spec = config.task
        self.judge_model = judge_model
        self._sandbox_factory = sandbox_factory

    def sandbox(self, image: str | None = None, *, reuse: bool = False,
                **limits: Any) -> AbstractAsyncContextManager[Sandbox]:
        """As `AttemptContext.sandbox`."""
        if self._sandbox_factory is None:
            raise ConfigError("this run has no sandbox provider")
        return self._sandbox_factory(image or self.spec.sandbox_image, reuse=reuse, **limits)


class Adapter(ABC):
    """One benchmark. Subclasses read top to bottom: data, prompt, extraction, grader."""

    name: ClassVar[str]
    needs_sandbox: ClassVar[bool] = False
    needs_user_model: ClassVar[bool] = False
    needs_judge_model: ClassVar[bool] = False
    summary_reads_details: ClassVar[bool] = True
    """Whether `headline` / `breakdowns` read `Score.reason` or `Score.details`; False lets the
    engine keep only item, index, value and status of each score in memory."""
    images_on_nodes: bool = False
    """Set by an executor whose attempts run on other machines (Ray): each node prepares the
    images its attempts need (`prepare_image`), so `setup` checks none on this machine."""

    @abstractmethod
    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        """Items from `data` (a local path in the benchmark's native format) or the hub."""

    @abstractmethod
    async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
        """Make one attempt. Model failures propagate (the engine records an error)."""

    @abstractmethod
    async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
        """Grade one attempt. Invalid model output is a failing score with a reason."""

    def breakdowns(self, items: list[Item], scores: list[Score]) -> dict[str, Any]:
        """Extra summary sections (per category, per difficulty, ...). Default: by `meta`."""
        return breakdown_by_meta(items, scores)

    def headline(self, items: list[Item], scores: list[Score], k: int) -> dict[str, Any] | None:
        """Override the headline score when the benchmark defines its own formula."""
        return None

    def needs_user_model_for(self, items: list[Item]) -> bool:
        """Whether solving `items` needs a user simulator (default: `needs_user_model`), so
        that a run of items that need none does not ask for `--user-model`."""
        return self.needs_user_model

    async def setup(self, config: RunConfig) -> None:  # noqa: B027 - optional hook
        """Prepare once per run (build images, check prerequisites)."""

    def node_config(self, config: RunConfig) -> RunConfig:
        """The run's config as a worker on another node (Ray) is sent it: what this process
        found through its working directory or environment (a relative path, a data
        directory from an environment variable) made explicit. Default: as it is."""
        return config

    def item_image(self, item: Item, spec: TaskSpec) -> str | None:
        """The sandbox image (a full tag) an attempt at `item` needs, where an executor
        should prefer a node that already holds it (Ray); None: no particular image."""
        return None

    async def prepare_image(self, image: str, spec: TaskSpec) -> None:  # noqa: B027 - optional hook
        """Make `image` present on this machine's Docker engine (a Ray node about to run an
        attempt that needs it); raise `InfraError` when it cannot. Default: nothing (the
        sandbox reports a missing image itself)."""

    def conditions(self, config: RunConfig) -> dict[str, Any]:
        """The conditions this run was graded under, where they can differ from the official
        ones (the network grading containers had, whose texts the model was sent, ...).

        Recorded in the manifest and the summary, so that a score obtained under other
        conditions is never mistaken for an official one. Called after `setup`."""
        return {}

    def exports(self, config: RunConfig, items: list[Item],
                attempts: list[Attempt]) -> dict[str, list[dict[str, Any]]]:
        """Extra JSONL files to write into the run directory (e.g. predictions.jsonl)."""
        return {}



_ADAPTERS: dict[str, str] = {
    "aime": "k2eval.adapters.aime:AimeAdapter",
    "gpqa": "k2eval.adapters.gpqa:GpqaAdapter",
    "livecodebench": "k2eval.adapters.livecodebench:LiveCodeBenchAdapter",
    "ojbench": "k2eval.adapters.ojbench:OJBenchAdapter",
    "swebench": "k2eval.adapters.swebench:SweBenchAdapter",
    "tau2": "k2eval.adapters.tau2:Tau2Adapter",
    "acebench": "k2eval.adapters.acebench:AceBenchAdapter",
    "lmeval": "k2eval.lmeval.adapter:LmEvalAdapter",
    "toolcall-conformance": "k2eval.adapters.toolcall_conformance:ToolCallConformanceAdapter",
}


def get_adapter(name: str) -> Adapter:
    import importlib

    try:
        module, _, cls = _ADAPTERS[name].partition(":")
    except KeyError:
        raise ConfigError(f"unknown adapter {name!r}; known: {', '.join(sorted(_ADAPTERS))}") from None
    adapter: Adapter = getattr(importlib.import_module(module), cls)()
    return adapter
